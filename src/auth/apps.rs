//! App registrations for the built-in token endpoint: client id, name, app roles and a salted
//! PBKDF2-HMAC-SHA256 hash of the secret, kept in `DATA/apps.json` (written atomically), or
//! in the store when several nodes share one ([`AppsAt::Store`]), so every node's token
//! endpoint knows every app. Secrets are shown once at creation and never stored in clear.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::TenantId;
use crate::store::Store;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// PBKDF2 rounds. Slow on purpose (~tens of ms in a release build).
const ROUNDS: u32 = 120_000;
const FILE: &str = "apps.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub tenant_id: String,
    pub client_id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// `pbkdf2-sha256$ROUNDS$SALT$HASH` (base64).
    pub secret_hash: String,
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AppsFile {
    apps: Vec<App>,
}

/// What `app add` returns: the only time the secret is visible.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApp {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub roles: Vec<String>,
}

/// Where app registrations live.
#[derive(Clone)]
pub enum AppsAt {
    /// `DATA/apps.json`.
    Dir(PathBuf),
    /// The shared store (one document per app).
    Store(Arc<dyn Store>),
}

impl AppsAt {
    /// The store when it is shared by several nodes, else the data dir's file.
    pub fn for_store(data_dir: &Path, store: &Arc<dyn Store>) -> AppsAt {
        if store.shared() {
            AppsAt::Store(store.clone())
        } else {
            AppsAt::Dir(data_dir.to_path_buf())
        }
    }

    fn load(&self, tenant: Option<&str>) -> Result<Vec<App>, AuthError> {
        match self {
            AppsAt::Dir(dir) => Ok(load(dir)?
                .apps
                .into_iter()
                .filter(|a| tenant.is_none_or(|t| a.tenant_id.eq_ignore_ascii_case(t)))
                .collect()),
            AppsAt::Store(store) => {
                let tid = tenant.map(tenant_id).transpose()?;
                store
                    .app_documents(tid.as_ref())
                    .map_err(|e| AuthError::KeyStore(format!("reading app registrations: {e}")))?
                    .iter()
                    .map(|d| {
                        serde_json::from_str(d).map_err(|e| {
                            AuthError::KeyStore(format!("reading an app registration: {e}"))
                        })
                    })
                    .collect()
            }
        }
    }
}

fn tenant_id(t: &str) -> Result<TenantId, AuthError> {
    TenantId::parse(t).ok_or_else(|| AuthError::KeyStore(format!("'{t}' is not a tenant id")))
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

fn load(data_dir: &Path) -> Result<AppsFile, AuthError> {
    let p = path(data_dir);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| AuthError::KeyStore(format!("reading {}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AppsFile::default()),
        Err(e) => Err(AuthError::KeyStore(format!("reading {}: {e}", p.display()))),
    }
}

fn save(data_dir: &Path, f: &AppsFile) -> Result<(), AuthError> {
    let p = path(data_dir);
    let err =
        |e: &dyn std::fmt::Display| AuthError::KeyStore(format!("writing {}: {e}", p.display()));
    std::fs::create_dir_all(data_dir).map_err(|e| err(&e))?;
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let body = serde_json::to_vec_pretty(f).map_err(|e| err(&e))?;
    std::fs::write(&tmp, body).map_err(|e| err(&e))?;
    std::fs::rename(&tmp, &p).map_err(|e| err(&e))
}

fn hash_secret(secret: &str, salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(secret.as_bytes(), salt, rounds, &mut out);
    out
}

/// Constant-time check of `secret` against a stored hash.
fn secret_matches(secret: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["pbkdf2-sha256", rounds, salt, hash] = parts[..] else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(hash)) =
        (rounds.parse::<u32>(), B64.decode(salt), B64.decode(hash))
    else {
        return false;
    };
    let got = hash_secret(secret, &salt, rounds);
    got.len() == hash.len() && got.iter().zip(&hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Registers an app for `tenant` and returns its one-time secret.
pub fn add(at: &AppsAt, tenant: &str, name: &str, roles: &[String]) -> Result<NewApp, AuthError> {
    let client_id = uuid::Uuid::new_v4().to_string();
    let mut raw = [0u8; 30];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    // Entra-like: URL-safe, 40 characters.
    let client_secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let hash = hash_secret(&client_secret, &salt, ROUNDS);
    let app = App {
        tenant_id: tenant.to_string(),
        client_id: client_id.clone(),
        name: name.to_string(),
        roles: roles.to_vec(),
        secret_hash: format!(
            "pbkdf2-sha256${ROUNDS}${}${}",
            B64.encode(salt),
            B64.encode(hash)
        ),
        created: chrono::Utc::now().to_rfc3339(),
    };
    match at {
        AppsAt::Dir(dir) => {
            let mut f = load(dir)?;
            f.apps.push(app);
            save(dir, &f)?;
        }
        AppsAt::Store(store) => {
            let doc = serde_json::to_string(&app)
                .map_err(|e| AuthError::KeyStore(format!("encoding an app registration: {e}")))?;
            store
                .put_app_document(&tenant_id(tenant)?, &app.client_id, &doc)
                .map_err(|e| AuthError::KeyStore(format!("storing an app registration: {e}")))?;
        }
    }
    Ok(NewApp {
        tenant_id: tenant.to_string(),
        client_id,
        client_secret,
        name: name.to_string(),
        roles: roles.to_vec(),
    })
}

/// The apps of `tenant` (all tenants with `None`).
pub fn list(at: &AppsAt, tenant: Option<&str>) -> Result<Vec<App>, AuthError> {
    at.load(tenant)
}

/// Removes an app; `Ok(false)` if there was none.
pub fn remove(at: &AppsAt, tenant: &str, client_id: &str) -> Result<bool, AuthError> {
    let data_dir = match at {
        AppsAt::Dir(dir) => dir,
        AppsAt::Store(store) => {
            return store
                .delete_app_document(&tenant_id(tenant)?, client_id)
                .map_err(|e| AuthError::KeyStore(format!("removing an app registration: {e}")));
        }
    };
    let mut f = load(data_dir)?;
    let before = f.apps.len();
    f.apps.retain(|a| {
        !(a.tenant_id.eq_ignore_ascii_case(tenant) && a.client_id.eq_ignore_ascii_case(client_id))
    });
    let removed = f.apps.len() != before;
    if removed {
        save(data_dir, &f)?;
    }
    Ok(removed)
}

/// Why client credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// No such app in that tenant (or removed).
    UnknownClient,
    WrongSecret,
}

/// Checks client credentials against the registrations (reads the file each time, so apps
/// added or removed by the CLI take effect at once). Blocking: PBKDF2 is slow on purpose.
pub fn authenticate(
    at: &AppsAt,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> Result<Result<App, CredentialError>, AuthError> {
    let app = at.load(Some(tenant))?.into_iter().find(|a| {
        a.tenant_id.eq_ignore_ascii_case(tenant) && a.client_id.eq_ignore_ascii_case(client_id)
    });
    Ok(match app {
        None => Err(CredentialError::UnknownClient),
        Some(a) if secret_matches(secret, &a.secret_hash) => Ok(a),
        Some(_) => Err(CredentialError::WrongSecret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_authenticate_remove() {
        let dir = tempfile::tempdir().unwrap();
        let at = AppsAt::Dir(dir.path().to_path_buf());
        let roles = vec!["Reports.Read.All".to_string()];
        let app = add(&at, "t1", "monitoring", &roles).unwrap();
        let stored = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(
            !stored.contains(&app.client_secret),
            "secret must not be stored in clear"
        );
        assert_eq!(
            authenticate(&at, "t1", &app.client_id, &app.client_secret)
                .unwrap()
                .unwrap()
                .roles,
            roles
        );
        assert_eq!(
            authenticate(&at, "t1", &app.client_id, "nope").unwrap(),
            Err(CredentialError::WrongSecret)
        );
        assert_eq!(
            authenticate(&at, "t2", &app.client_id, &app.client_secret).unwrap(),
            Err(CredentialError::UnknownClient)
        );
        assert!(remove(&at, "t1", &app.client_id).unwrap());
        assert_eq!(
            authenticate(&at, "t1", &app.client_id, &app.client_secret).unwrap(),
            Err(CredentialError::UnknownClient)
        );
    }
}

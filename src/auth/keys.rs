//! The signing key ring: the keys the built-in issuer signs with, of three kinds.
//!
//! - `token`: RS256 key pairs for access tokens (the JWT header's `kid` picks the key);
//! - `link`: HMAC keys for download links, `$skiptoken`s and dashboard sign-in codes (each
//!   carries the short key id of its key; those minted before key ids existed carry none and
//!   are verified with the key imported from `keys/link-secret`, key id [`LEGACY_LINK_KID`]);
//! - `digest`: one secret that is never rotated, under which user ids are concealed in
//!   reports and erased users named in the audit trail. Those digests must stay the same for
//!   the life of the data, so this secret is not a signing key: on an upgraded data dir it is
//!   the bytes of the old `keys/link-secret`, and every concealed name stays what it was.
//!
//! Signing always uses the newest key of a kind. `reportroot keys rotate` retires the
//! current `token` and `link` keys and adds new ones; a retired key still verifies until its
//! `accepted_until` (retirement + the grace, [`DEFAULT_GRACE`] unless told otherwise), so
//! links and tokens signed just before a rotation keep working until they expire.
//!
//! Where the ring lives ([`KeysAt`]): in the store when several nodes share one (the
//! `signing_keys` table: a link one node signs verifies on every other), else in the data
//! dir's `keys/ring.json`. The first node to start creates the ring (atomically: one ring
//! whoever wins), importing the data dir's keys (`keys/ring.json`, or the legacy
//! `keys/signing-key.pem` and `keys/link-secret`) when it has some, so an upgraded node keeps
//! its tokens, links and concealed names.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuthError;
use crate::store::{KeyRow, Store};

pub const KIND_TOKEN: &str = "token";
pub const KIND_LINK: &str = "link";
pub const KIND_DIGEST: &str = "digest";
/// The key id of the link key imported from `keys/link-secret`: links, `$skiptoken`s and
/// sign-in codes without a key id were signed with it. Also the digest secret's key id.
pub const LEGACY_LINK_KID: &str = "0";

/// How long a retired key keeps verifying unless `keys rotate --grace` says otherwise: the
/// longest lifetime of what the server signs with its default settings. A day covers the
/// token endpoint's tokens (1 h), dashboard sessions (1 h), `reportroot token` (1 h), the
/// demo's reader token (24 h), download links (5 min) and sign-in links (10 min); a token
/// minted with a longer `--ttl` stops verifying a day after its key is retired.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

pub(super) const RING_FILE: &str = "keys/ring.json";
const RING_LOCK: &str = "keys/ring.lock";
const LEGACY_KEY_FILE: &str = "keys/signing-key.pem";
const LEGACY_SECRET_FILE: &str = "keys/link-secret";

/// Where the key ring lives.
#[derive(Clone)]
pub enum KeysAt {
    /// `DATA/keys/ring.json` (read from the legacy key files when it does not exist yet).
    Dir(PathBuf),
    /// The shared store; on first use its ring is imported from the data dir's keys when
    /// that has some.
    Store {
        store: Arc<dyn Store>,
        data_dir: PathBuf,
    },
}

impl KeysAt {
    /// The store when several nodes share it, else the data dir.
    pub fn for_store(data_dir: &Path, store: &Arc<dyn Store>) -> KeysAt {
        if store.shared() {
            KeysAt::Store {
                store: store.clone(),
                data_dir: data_dir.to_path_buf(),
            }
        } else {
            KeysAt::Dir(data_dir.to_path_buf())
        }
    }

    /// The ring, created (or imported) on first use.
    pub fn load_or_create(&self) -> Result<Vec<KeyRow>, AuthError> {
        match self {
            KeysAt::Dir(dir) => {
                if let Some(rows) = read_ring_file(dir)? {
                    return Ok(rows);
                }
                let rows = match legacy_rows(dir)? {
                    Some(rows) => rows,
                    None => fresh_rows()?,
                };
                let bytes = ring_file_bytes(&rows)?;
                let path = dir.join(RING_FILE);
                let kept = create_once(&path, &bytes)?;
                parse_ring_file(&path, &kept)
            }
            KeysAt::Store { store, data_dir } => {
                let rows = store.key_rows().map_err(store_err)?;
                if complete(&rows) {
                    return Ok(rows);
                }
                let candidate = match existing_dir_rows(data_dir)? {
                    Some(rows) => {
                        tracing::info!(
                            data_dir = %data_dir.display(),
                            "importing the data dir's keys into the database"
                        );
                        rows
                    }
                    None => fresh_rows()?,
                };
                // Only the kinds still missing once the lock is held: a node that started at
                // the same moment may have written its ring first, and then that one stays.
                let ring = store
                    .update_keys(&mut |stored| {
                        candidate
                            .iter()
                            .filter(|c| !stored.iter().any(|s| s.kind == c.kind))
                            .cloned()
                            .collect()
                    })
                    .map_err(store_err)?;
                Ok(ring)
            }
        }
    }

    /// The ring as stored now.
    pub fn read(&self) -> Result<Vec<KeyRow>, AuthError> {
        match self {
            KeysAt::Dir(dir) => match read_ring_file(dir)? {
                Some(rows) => Ok(rows),
                None => self.load_or_create(),
            },
            KeysAt::Store { store, .. } => {
                let rows = store.key_rows().map_err(store_err)?;
                if complete(&rows) {
                    Ok(rows)
                } else {
                    self.load_or_create()
                }
            }
        }
    }

    /// Retires the current token and link keys (they verify until now + `grace`) and adds a
    /// new key of each kind, which signs from now on. Returns the new keys.
    pub fn rotate(&self, grace: Duration) -> Result<Vec<KeyRow>, AuthError> {
        let new = vec![new_token_row()?, new_link_row()];
        let now = now_secs();
        let until = now.saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
        let retire = |stored: &[KeyRow]| -> Vec<KeyRow> {
            let mut out: Vec<KeyRow> = stored
                .iter()
                .filter(|k| (k.kind == KIND_TOKEN || k.kind == KIND_LINK) && k.retired.is_none())
                .map(|k| KeyRow {
                    retired: Some(now),
                    accepted_until: Some(until),
                    ..k.clone()
                })
                .collect();
            out.extend(new.iter().cloned());
            out
        };
        match self {
            KeysAt::Dir(dir) => {
                let lock_path = dir.join(RING_LOCK);
                if let Some(parent) = lock_path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| ks("creating", parent, e))?;
                }
                let lock = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| ks("opening", &lock_path, e))?;
                lock.lock().map_err(|e| ks("locking", &lock_path, e))?;
                let mut rows = self.load_or_create()?;
                for changed in retire(&rows) {
                    match rows
                        .iter_mut()
                        .find(|r| r.kind == changed.kind && r.kid == changed.kid)
                    {
                        Some(r) => *r = changed,
                        None => rows.push(changed),
                    }
                }
                write_ring_file(dir, &rows)?;
                drop(lock);
            }
            KeysAt::Store { store, .. } => {
                self.load_or_create()?;
                store
                    .update_keys(&mut |stored| retire(stored))
                    .map_err(store_err)?;
            }
        }
        Ok(new)
    }
}

fn store_err(e: crate::store::StoreError) -> AuthError {
    AuthError::KeyStore(format!("the key ring in the store: {e}"))
}

fn ks(what: &str, path: &Path, e: impl std::fmt::Display) -> AuthError {
    AuthError::KeyStore(format!("{what} {}: {e}", path.display()))
}

/// Unix seconds now (the ring's times).
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether a ring has every kind of key it needs.
fn complete(rows: &[KeyRow]) -> bool {
    [KIND_TOKEN, KIND_LINK, KIND_DIGEST]
        .iter()
        .all(|kind| rows.iter().any(|r| r.kind == *kind))
}

/// Whether a key verifies at `now`: the current one, or a retired one within its grace.
pub fn accepted(row: &KeyRow, now: i64) -> bool {
    row.retired.is_none() || row.accepted_until.is_some_and(|u| now < u)
}

/// The key of `kind` that signs: the newest not retired (the newest of all if every one is).
pub fn signing<'a>(rows: &'a [KeyRow], kind: &str) -> Option<&'a KeyRow> {
    let of_kind = || rows.iter().filter(move |r| r.kind == kind);
    of_kind()
        .filter(|r| r.retired.is_none())
        .max_by(|a, b| (a.created, &a.kid).cmp(&(b.created, &b.kid)))
        .or_else(|| of_kind().max_by(|a, b| (a.created, &a.kid).cmp(&(b.created, &b.kid))))
}

/// A token key's id: 12 bytes of SHA-256 of its modulus, base64url (as before key rings, so
/// tokens signed by an imported key keep their `kid`).
pub(super) fn token_kid(public: &RsaPublicKey) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public.n().to_bytes_be())[..12])
}

/// A link key's id: 6 bytes of a hash of the secret, base64url (8 characters).
fn link_kid(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"reportroot-link-kid|");
    h.update(secret);
    URL_SAFE_NO_PAD.encode(&h.finalize()[..6])
}

fn random_secret() -> Vec<u8> {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b.to_vec()
}

fn generate_token_pem() -> Result<String, AuthError> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .map_err(|e| AuthError::KeyStore(format!("generating RSA key: {e}")))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AuthError::KeyStore(format!("encoding RSA key: {e}")))?;
    Ok(pem.to_string())
}

fn token_row(pem: String, created: i64) -> Result<KeyRow, AuthError> {
    let private = RsaPrivateKey::from_pkcs8_pem(&pem)
        .map_err(|e| AuthError::KeyStore(format!("decoding an RSA key: {e}")))?;
    Ok(KeyRow {
        kind: KIND_TOKEN.into(),
        kid: token_kid(&RsaPublicKey::from(&private)),
        created,
        retired: None,
        accepted_until: None,
        material: pem,
    })
}

fn new_token_row() -> Result<KeyRow, AuthError> {
    token_row(generate_token_pem()?, now_secs())
}

fn new_link_row() -> KeyRow {
    let secret = random_secret();
    KeyRow {
        kind: KIND_LINK.into(),
        kid: link_kid(&secret),
        created: now_secs(),
        retired: None,
        accepted_until: None,
        material: B64.encode(secret),
    }
}

fn secret_row(kind: &str, kid: &str, secret: &[u8], created: i64) -> KeyRow {
    KeyRow {
        kind: kind.into(),
        kid: kid.into(),
        created,
        retired: None,
        accepted_until: None,
        material: B64.encode(secret),
    }
}

/// A new ring: a digest secret, a link key and a token key.
fn fresh_rows() -> Result<Vec<KeyRow>, AuthError> {
    Ok(vec![
        secret_row(KIND_DIGEST, LEGACY_LINK_KID, &random_secret(), now_secs()),
        new_link_row(),
        new_token_row()?,
    ])
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ks("reading", path, e)),
    }
}

/// The ring made of a data dir's keys from before key rings (`keys/link-secret`: the digest
/// secret and the link key [`LEGACY_LINK_KID`]; `keys/signing-key.pem`: the token key),
/// a missing one generated; `None` when the dir has neither.
fn legacy_rows(dir: &Path) -> Result<Option<Vec<KeyRow>>, AuthError> {
    let secret = read_optional(&dir.join(LEGACY_SECRET_FILE))?;
    let pem_path = dir.join(LEGACY_KEY_FILE);
    let pem = read_optional(&pem_path)?;
    if secret.is_none() && pem.is_none() {
        return Ok(None);
    }
    let now = now_secs();
    let mut rows = Vec::new();
    match secret {
        Some(s) => {
            rows.push(secret_row(KIND_DIGEST, LEGACY_LINK_KID, &s, now));
            rows.push(secret_row(KIND_LINK, LEGACY_LINK_KID, &s, now));
        }
        None => {
            rows.push(secret_row(
                KIND_DIGEST,
                LEGACY_LINK_KID,
                &random_secret(),
                now,
            ));
            rows.push(new_link_row());
        }
    }
    rows.push(match pem {
        Some(p) => token_row(
            String::from_utf8(p).map_err(|e| ks("decoding", &pem_path, e))?,
            now,
        )?,
        None => new_token_row()?,
    });
    Ok(Some(rows))
}

/// The data dir's own keys (its ring file, else its legacy key files), if it has any.
fn existing_dir_rows(dir: &Path) -> Result<Option<Vec<KeyRow>>, AuthError> {
    match read_ring_file(dir)? {
        Some(rows) => Ok(Some(rows)),
        None => legacy_rows(dir),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileKey {
    kind: String,
    kid: String,
    created: i64,
    #[serde(default)]
    retired: Option<i64>,
    #[serde(default)]
    accepted_until: Option<i64>,
    material: String,
}

#[derive(Serialize, Deserialize)]
struct RingFile {
    keys: Vec<FileKey>,
}

fn ring_file_bytes(rows: &[KeyRow]) -> Result<Vec<u8>, AuthError> {
    let file = RingFile {
        keys: rows
            .iter()
            .map(|r| FileKey {
                kind: r.kind.clone(),
                kid: r.kid.clone(),
                created: r.created,
                retired: r.retired,
                accepted_until: r.accepted_until,
                material: r.material.clone(),
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&file)
        .map_err(|e| AuthError::KeyStore(format!("encoding the key ring: {e}")))
}

fn parse_ring_file(path: &Path, bytes: &[u8]) -> Result<Vec<KeyRow>, AuthError> {
    let file: RingFile = serde_json::from_slice(bytes).map_err(|e| ks("reading", path, e))?;
    let rows: Vec<KeyRow> = file
        .keys
        .into_iter()
        .map(|k| KeyRow {
            kind: k.kind,
            kid: k.kid,
            created: k.created,
            retired: k.retired,
            accepted_until: k.accepted_until,
            material: k.material,
        })
        .collect();
    if !complete(&rows) {
        return Err(ks("reading", path, "a key kind is missing"));
    }
    Ok(rows)
}

fn read_ring_file(dir: &Path) -> Result<Option<Vec<KeyRow>>, AuthError> {
    let path = dir.join(RING_FILE);
    match read_optional(&path)? {
        Some(bytes) => parse_ring_file(&path, &bytes).map(Some),
        None => Ok(None),
    }
}

fn private_tmp(path: &Path, bytes: &[u8]) -> Result<PathBuf, AuthError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ks("creating", parent, e))?;
    }
    let tmp: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| ks("writing", &tmp, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
        f.write_all(bytes).map_err(|e| ks("writing", &tmp, e))?;
        f.sync_all().map_err(|e| ks("writing", &tmp, e))?;
    }
    Ok(tmp)
}

/// Writes `bytes` to `path` only if it does not exist yet (atomically, via a hard link), and
/// returns what the file then holds: a concurrent creator's content wins.
fn create_once(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, AuthError> {
    let tmp = private_tmp(path, bytes)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(bytes.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(|e| ks("reading", path, e))
        }
        Err(e) => Err(ks("creating", path, e)),
    }
}

/// Replaces the ring file atomically (the caller holds the ring lock).
fn write_ring_file(dir: &Path, rows: &[KeyRow]) -> Result<(), AuthError> {
    let path = dir.join(RING_FILE);
    let tmp = private_tmp(&path, &ring_file_bytes(rows)?)?;
    std::fs::rename(&tmp, &path).map_err(|e| ks("writing", &path, e))?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A secret key's bytes (`link` and `digest` keys).
pub(super) fn secret_bytes(row: &KeyRow) -> Result<Vec<u8>, AuthError> {
    B64.decode(row.material.trim()).map_err(|e| {
        AuthError::KeyStore(format!(
            "the {} key {} is not base64: {e}",
            row.kind, row.kid
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_ring_imports_the_legacy_files_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join(LEGACY_SECRET_FILE), [7u8; 32]).unwrap();
        let at = KeysAt::Dir(dir.path().to_path_buf());
        let rows = at.load_or_create().unwrap();
        let digest = rows.iter().find(|r| r.kind == KIND_DIGEST).unwrap();
        assert_eq!(secret_bytes(digest).unwrap(), vec![7u8; 32]);
        let link = signing(&rows, KIND_LINK).unwrap();
        assert_eq!(link.kid, LEGACY_LINK_KID);
        assert_eq!(at.read().unwrap(), rows, "the ring file is kept");

        let new = at.rotate(Duration::from_secs(60)).unwrap();
        let after = at.read().unwrap();
        assert_eq!(after.len(), rows.len() + 2);
        for kind in [KIND_TOKEN, KIND_LINK] {
            let s = signing(&after, kind).unwrap();
            assert!(new.contains(s), "{kind}: the new key signs");
        }
        let old = after
            .iter()
            .find(|r| r.kind == KIND_LINK && r.kid == LEGACY_LINK_KID)
            .unwrap();
        let now = now_secs();
        assert!(old.retired.is_some() && accepted(old, now));
        assert!(!accepted(old, now + 61));
        let digest_after = after.iter().find(|r| r.kind == KIND_DIGEST).unwrap();
        assert_eq!(digest_after, digest, "the digest secret never rotates");
    }
}

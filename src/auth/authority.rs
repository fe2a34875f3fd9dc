//! The built-in token issuer's key material and settings, kept in the data dir so that the
//! server and the CLI (`reportroot token`) agree.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::AuthError;

/// The audience Graph tokens carry, and the default one reportroot expects.
pub const DEFAULT_AUDIENCE: &str = "https://graph.microsoft.com";
/// Microsoft Graph's application id, which v1 tokens carry as `aud`; accepted as well.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// `app_displayname` of tokens minted by the CLI (`reportroot token`) unless `--name` is given.
pub const DEFAULT_APP_NAME: &str = "reportroot-cli";
/// `name` of delegated tokens minted by the CLI unless `--name` is given.
pub const DEFAULT_USER_NAME: &str = "reportroot admin";
/// Domain of the UPN derived from a display name when none is given.
const DEFAULT_UPN_DOMAIN: &str = "reportroot.local";
/// Issuer base used until a `--public-url` is remembered.
const DEFAULT_ISSUER_BASE: &str = "https://login.reportroot.local";

const KEY_FILE: &str = "keys/signing-key.pem";
const LINK_SECRET_FILE: &str = "keys/link-secret";
const PUBLIC_URL_FILE: &str = "public-url";

#[derive(Clone)]
pub struct Authority {
    public: RsaPublicKey,
    /// RS256 signing with ring, whose RSA private-key operations are constant-time (the
    /// `rsa` crate's are not: RUSTSEC-2023-0071). `rsa` only generates the key once and
    /// reads its public half.
    signer: std::sync::Arc<RsaKeyPair>,
    kid: String,
    link_secret: Vec<u8>,
    issuer_base: String,
}

fn ks(what: &str, path: &Path, e: impl std::fmt::Display) -> AuthError {
    AuthError::KeyStore(format!("{what} {}: {e}", path.display()))
}

/// Writes `bytes` to `path` only if it does not exist yet (atomically, via a hard link), and
/// returns what the file then holds: a concurrent creator's content wins.
fn create_once(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, AuthError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ks("creating", parent, e))?;
    }
    let tmp: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| ks("writing", &tmp, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
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

fn read_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<Vec<u8>, AuthError>,
) -> Result<Vec<u8>, AuthError> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_once(path, &make()?),
        Err(e) => Err(ks("reading", path, e)),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A stable GUID-shaped id derived from a seed string.
pub(crate) fn derived_guid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let x = |r: std::ops::Range<usize>| h[r].iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        x(0..4),
        x(4..6),
        x(6..8),
        x(8..10),
        x(10..16)
    )
}

/// The app an application token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct AppIdentity<'a> {
    pub client_id: &'a str,
    /// `app_displayname`: the registered app's name.
    pub display_name: &'a str,
}

/// The user a delegated token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct UserIdentity<'a> {
    /// `name`.
    pub display_name: &'a str,
    /// `upn`, `unique_name` and `preferred_username`.
    pub upn: &'a str,
}

/// The UPN used when none is given: the display name in lower case with runs of other
/// characters turned into dots, `@reportroot.local` (`"Adele Vance"` →
/// `adele.vance@reportroot.local`).
pub fn default_upn(display_name: &str) -> String {
    let mut local = String::new();
    for c in display_name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            local.push(c.to_ascii_lowercase());
        } else if !local.is_empty() && !local.ends_with('.') {
            local.push('.');
        }
    }
    let local = local.trim_end_matches('.');
    let local = if local.is_empty() { "user" } else { local };
    format!("{local}@{DEFAULT_UPN_DOMAIN}")
}

/// A token's `uti`: 16 random bytes, base64url (22 characters), as Entra's.
fn unique_token_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl Authority {
    /// Opens the key material in `data_dir`, creating a 2048-bit RSA key pair and a link
    /// secret on first use.
    pub fn open(data_dir: &Path) -> Result<Authority, AuthError> {
        let key_path = data_dir.join(KEY_FILE);
        let pem = read_or_create(&key_path, || {
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| AuthError::KeyStore(format!("generating RSA key: {e}")))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| AuthError::KeyStore(format!("encoding RSA key: {e}")))?;
            Ok(pem.as_bytes().to_vec())
        })?;
        let pem = String::from_utf8(pem).map_err(|e| ks("decoding", &key_path, e))?;
        let private =
            RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| ks("decoding", &key_path, e))?;
        let der = private
            .to_pkcs8_der()
            .map_err(|e| ks("encoding", &key_path, e))?;
        let signer =
            RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| ks("loading", &key_path, e))?;
        let public = RsaPublicKey::from(&private);
        drop(private);
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public.n().to_bytes_be())[..12]);

        let secret_path = data_dir.join(LINK_SECRET_FILE);
        let link_secret = read_or_create(&secret_path, || {
            let mut b = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            Ok(b.to_vec())
        })?;

        let issuer_base = std::fs::read_to_string(data_dir.join(PUBLIC_URL_FILE))
            .ok()
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_ISSUER_BASE.to_string());
        Ok(Authority {
            public: public.clone(),
            signer: std::sync::Arc::new(signer),
            kid,
            link_secret,
            issuer_base,
        })
    }

    /// Remembers the public URL (the issuer base) in the data dir, for the CLI to agree with.
    pub fn remember_public_url(data_dir: &Path, url: &str) -> Result<(), AuthError> {
        let path = data_dir.join(PUBLIC_URL_FILE);
        std::fs::write(&path, url.trim_end_matches('/')).map_err(|e| ks("writing", &path, e))
    }

    /// The issuer of tokens for `tid`: `{base}/{tid}/v2.0`.
    pub fn issuer(&self, tid: &str) -> String {
        format!("{}/{}/v2.0", self.issuer_base, tid)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn link_secret(&self) -> &[u8] {
        &self.link_secret
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.public.clone()
    }

    pub fn public_key_pem(&self) -> Result<String, AuthError> {
        self.public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| AuthError::KeyStore(format!("encoding public key: {e}")))
    }

    /// The JWKS document served at `/discovery/v2.0/keys`.
    pub fn jwks(&self) -> Value {
        let public = self.public_key();
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }]})
    }

    /// Signs arbitrary claims with RS256 and this key's `kid`.
    pub fn sign_claims(&self, claims: &Value) -> Result<String, AuthError> {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let json = |v: &Value| {
            serde_json::to_vec(v).map_err(|e| AuthError::KeyStore(format!("encoding token: {e}")))
        };
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json(&header)?),
            URL_SAFE_NO_PAD.encode(json(claims)?)
        );
        let mut sig = vec![0u8; self.signer.public().modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| AuthError::KeyStore("signing token failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The client id the CLI uses for a tenant when none is given.
    pub fn default_client_id(tid: &str) -> String {
        derived_guid(&format!("reportroot-cli-app:{tid}"))
    }

    /// The client id of the dashboard's session tokens in a tenant.
    pub fn dashboard_client_id(tid: &str) -> String {
        derived_guid(&format!("reportroot-dashboard:{tid}"))
    }

    /// The claims every token carries: `aud`, `iss`, `iat`, `nbf`, `exp`, `tid`, `uti` (random
    /// per token), `ver`.
    fn base_claims(
        &self,
        issuer: &str,
        audience: &str,
        tid: &str,
        ttl: Duration,
    ) -> serde_json::Map<String, Value> {
        let now = now_secs();
        let mut m = serde_json::Map::new();
        m.insert("aud".into(), json!(audience));
        m.insert("iss".into(), json!(issuer));
        m.insert("iat".into(), json!(now));
        m.insert("nbf".into(), json!(now));
        m.insert("exp".into(), json!(now + ttl.as_secs().max(1)));
        m.insert("tid".into(), json!(tid));
        m.insert("uti".into(), json!(unique_token_id()));
        m.insert("ver".into(), json!("2.0"));
        m
    }

    /// An application token for the CLI's app ([`DEFAULT_APP_NAME`]): `roles` exactly as
    /// given, `appid`/`azp` the client id (default: [`Authority::default_client_id`]).
    pub fn mint_app(
        &self,
        tid: &str,
        client_id: Option<&str>,
        roles: &[String],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.mint_app_named(tid, client_id, DEFAULT_APP_NAME, roles, ttl)
    }

    /// An application token whose `app_displayname` is `app_name`, for Graph's audience and
    /// the remembered issuer.
    pub fn mint_app_named(
        &self,
        tid: &str,
        client_id: Option<&str>,
        app_name: &str,
        roles: &[String],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let client = client_id
            .map(str::to_string)
            .unwrap_or_else(|| Authority::default_client_id(tid));
        let app = AppIdentity {
            client_id: &client,
            display_name: app_name,
        };
        let m = self.base_claims(&self.issuer(tid), DEFAULT_AUDIENCE, tid, ttl);
        self.finish_app(m, tid, &app, roles)
    }

    /// An application token from the token endpoint: issuer `{issuer_base}/{tid}/v2.0` and the
    /// audience the client asked for.
    pub fn mint_app_for(
        &self,
        issuer_base: &str,
        audience: &str,
        tid: &str,
        app: &AppIdentity<'_>,
        roles: &[String],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let m = self.base_claims(&format!("{issuer_base}/{tid}/v2.0"), audience, tid, ttl);
        self.finish_app(m, tid, app, roles)
    }

    /// The claims of an Entra v2 app-only token: the app (`app_displayname`, `appid`, `azp`,
    /// `appidacr`/`azpacr` "1" = authenticated with a secret), its service principal (`oid` =
    /// `sub`, a GUID stable per tenant and client id), `idp` = the issuer, `idtyp` "app" and
    /// `roles`.
    fn finish_app(
        &self,
        mut m: serde_json::Map<String, Value>,
        tid: &str,
        app: &AppIdentity<'_>,
        roles: &[String],
    ) -> Result<String, AuthError> {
        let sp = derived_guid(&format!("reportroot-sp:{tid}:{}", app.client_id));
        let idp = m.get("iss").cloned().unwrap_or(Value::Null);
        m.insert("app_displayname".into(), json!(app.display_name));
        m.insert("appid".into(), json!(app.client_id));
        m.insert("appidacr".into(), json!("1"));
        m.insert("azp".into(), json!(app.client_id));
        m.insert("azpacr".into(), json!("1"));
        m.insert("idp".into(), idp);
        m.insert("idtyp".into(), json!("app"));
        m.insert("oid".into(), json!(sp));
        m.insert("sub".into(), json!(sp));
        m.insert("roles".into(), json!(roles));
        self.sign_claims(&Value::Object(m))
    }

    /// A delegated (user) token for [`DEFAULT_USER_NAME`]: `scp` the scopes joined by
    /// spaces, `wids` the role ids.
    pub fn mint_user(
        &self,
        tid: &str,
        scopes: &[String],
        wids: &[String],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let upn = default_upn(DEFAULT_USER_NAME);
        let user = UserIdentity {
            display_name: DEFAULT_USER_NAME,
            upn: &upn,
        };
        self.mint_user_as(tid, &user, scopes, wids, ttl)
    }

    /// A delegated token with the claims of an Entra v2 user token, signed in through the
    /// CLI's public client app: the user (`name`, `upn`, `unique_name`,
    /// `preferred_username`, `oid` a GUID stable per tenant and UPN, `sub` a pairwise id per
    /// app, `idtyp` "user", `amr`), the app (`app_displayname`, `appid`, `azp`,
    /// `appidacr`/`azpacr` "0" = public client), `scp` the scopes joined by spaces and `wids`
    /// the role ids.
    pub fn mint_user_as(
        &self,
        tid: &str,
        user: &UserIdentity<'_>,
        scopes: &[String],
        wids: &[String],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let client = Authority::default_client_id(tid);
        let mut m = self.base_claims(&self.issuer(tid), DEFAULT_AUDIENCE, tid, ttl);
        let oid = derived_guid(&format!(
            "reportroot-user:{tid}:{}",
            user.upn.to_lowercase()
        ));
        let sub = URL_SAFE_NO_PAD.encode(Sha256::digest(
            format!("reportroot-sub:{tid}:{client}:{oid}").as_bytes(),
        ));
        m.insert("amr".into(), json!(["pwd"]));
        m.insert("app_displayname".into(), json!(DEFAULT_APP_NAME));
        m.insert("appid".into(), json!(client));
        m.insert("appidacr".into(), json!("0"));
        m.insert("azp".into(), json!(client));
        m.insert("azpacr".into(), json!("0"));
        m.insert("idtyp".into(), json!("user"));
        m.insert("name".into(), json!(user.display_name));
        m.insert("oid".into(), json!(oid));
        m.insert("preferred_username".into(), json!(user.upn));
        m.insert("scp".into(), json!(scopes.join(" ")));
        m.insert("sub".into(), json!(sub));
        m.insert("unique_name".into(), json!(user.upn));
        m.insert("upn".into(), json!(user.upn));
        m.insert("wids".into(), json!(wids));
        self.sign_claims(&Value::Object(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_upn_from_display_names() {
        assert_eq!(default_upn("Adele Vance"), "adele.vance@reportroot.local");
        assert_eq!(
            default_upn("reportroot admin"),
            "reportroot.admin@reportroot.local"
        );
        assert_eq!(default_upn("  Ça va? "), "a.va@reportroot.local");
        assert_eq!(default_upn("!!"), "user@reportroot.local");
    }

    #[test]
    fn uti_is_22_base64url_characters_and_random() {
        let (a, b) = (unique_token_id(), unique_token_id());
        assert_eq!(a.len(), 22);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }
}

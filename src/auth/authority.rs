//! The built-in token issuer: its key ring (see [`super::keys`]: in the data dir, or in the
//! store several nodes share), token minting, JWKS and issuer, so that every node and the CLI
//! (`reportroot token`) agree.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::AuthError;
use super::keys::{self, KIND_DIGEST, KIND_LINK, KIND_TOKEN, KeysAt, LEGACY_LINK_KID};
use crate::store::{KeyRow, Store};

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
/// Least time between two reloads of the ring for a key id this node does not know.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(1);

const PUBLIC_URL_FILE: &str = "public-url";

/// An HMAC key of download links, `$skiptoken`s and sign-in codes.
#[derive(Debug)]
pub struct LinkKey {
    /// Carried by what it signs (empty: the legacy form without a key id).
    pub kid: String,
    pub secret: Vec<u8>,
}

/// Finds the link key of a key id (`None`: the legacy form without one) if it still
/// verifies.
pub type LinkKeyLookup<'a> = &'a dyn Fn(Option<&str>) -> Option<Arc<LinkKey>>;

/// An RS256 token key, decoded once.
struct TokenKey {
    kid: String,
    public: RsaPublicKey,
    /// RS256 signing with ring, whose RSA private-key operations are constant-time (the
    /// `rsa` crate's are not: RUSTSEC-2023-0071). `rsa` only generates the key and reads
    /// its public half.
    signer: Arc<RsaKeyPair>,
    decoding: DecodingKey,
}

/// The ring as loaded: every row (for listing), and decoded the keys that verify.
struct Ring {
    rows: Vec<KeyRow>,
    tokens: Vec<(KeyRow, Arc<TokenKey>)>,
    links: Vec<(KeyRow, Arc<LinkKey>)>,
    token_signer: Arc<TokenKey>,
    link_signer: Arc<LinkKey>,
}

fn decode_token_key(row: &KeyRow) -> Result<TokenKey, AuthError> {
    let bad = |e: &dyn std::fmt::Display| {
        AuthError::KeyStore(format!("the token key {} cannot be read: {e}", row.kid))
    };
    let private = RsaPrivateKey::from_pkcs8_pem(&row.material).map_err(|e| bad(&e))?;
    let der = private.to_pkcs8_der().map_err(|e| bad(&e))?;
    let signer = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| bad(&e))?;
    let public = RsaPublicKey::from(&private);
    drop(private);
    let decoding = DecodingKey::from_rsa_components(
        &URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        &URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    )
    .map_err(|e| bad(&e))?;
    Ok(TokenKey {
        kid: row.kid.clone(),
        public,
        signer: Arc::new(signer),
        decoding,
    })
}

impl Ring {
    /// Decodes the keys of `rows` that verify at `now` (and the signing ones), reusing
    /// those `previous` already decoded.
    fn decode(rows: Vec<KeyRow>, previous: Option<&Ring>, now: i64) -> Result<Ring, AuthError> {
        let missing = |kind: &str| AuthError::KeyStore(format!("the key ring has no {kind} key"));
        let token_signing = keys::signing(&rows, KIND_TOKEN)
            .ok_or_else(|| missing(KIND_TOKEN))?
            .clone();
        let link_signing = keys::signing(&rows, KIND_LINK)
            .ok_or_else(|| missing(KIND_LINK))?
            .clone();
        let mut tokens = Vec::new();
        let mut links = Vec::new();
        for row in &rows {
            let signs = |s: &KeyRow| s.kind == row.kind && s.kid == row.kid;
            if !(keys::accepted(row, now) || signs(&token_signing) || signs(&link_signing)) {
                continue;
            }
            match row.kind.as_str() {
                KIND_TOKEN => {
                    let known = previous.and_then(|p| {
                        p.tokens
                            .iter()
                            .find(|(r, _)| r.kid == row.kid && r.material == row.material)
                            .map(|(_, k)| k.clone())
                    });
                    let key = match known {
                        Some(k) => k,
                        None => Arc::new(decode_token_key(row)?),
                    };
                    tokens.push((row.clone(), key));
                }
                KIND_LINK => links.push((
                    row.clone(),
                    Arc::new(LinkKey {
                        kid: row.kid.clone(),
                        secret: keys::secret_bytes(row)?,
                    }),
                )),
                _ => {}
            }
        }
        // Newest first: the signing key leads the JWKS.
        tokens.sort_by(|a, b| (b.0.created, &b.0.kid).cmp(&(a.0.created, &a.0.kid)));
        let find_token = |kid: &str| tokens.iter().find(|(r, _)| r.kid == kid);
        let token_signer = find_token(&token_signing.kid)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| missing(KIND_TOKEN))?;
        let link_signer = links
            .iter()
            .find(|(r, _)| r.kid == link_signing.kid)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| missing(KIND_LINK))?;
        Ok(Ring {
            rows,
            tokens,
            links,
            token_signer,
            link_signer,
        })
    }
}

/// The key ring of a node: loaded once, reloaded when asked (periodically by the server, and
/// when a key id it does not know turns up).
struct Keys {
    at: KeysAt,
    /// The concealment and erasure digest secret: never rotated, never reloaded.
    digest: Vec<u8>,
    ring: RwLock<Arc<Ring>>,
    last_reload: Mutex<Instant>,
}

#[derive(Clone)]
pub struct Authority {
    keys: Arc<Keys>,
    issuer_base: String,
}

fn ks(what: &str, path: &Path, e: impl std::fmt::Display) -> AuthError {
    AuthError::KeyStore(format!("{what} {}: {e}", path.display()))
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
    /// Opens the key ring kept in `data_dir` (`keys/`), creating it on first use.
    pub fn open(data_dir: &Path) -> Result<Authority, AuthError> {
        Authority::open_at(data_dir, KeysAt::Dir(data_dir.to_path_buf()))
    }

    /// Opens the key ring where a node on `store` keeps it: the store when several nodes
    /// share it, else the data dir.
    pub fn for_store(data_dir: &Path, store: &Arc<dyn Store>) -> Result<Authority, AuthError> {
        Authority::open_at(data_dir, KeysAt::for_store(data_dir, store))
    }

    /// Opens the key ring at `at` (created, or imported from the data dir's keys, on first
    /// use); the issuer base is the one remembered in `data_dir`.
    pub fn open_at(data_dir: &Path, at: KeysAt) -> Result<Authority, AuthError> {
        let rows = at.load_or_create()?;
        let digest = rows
            .iter()
            .find(|r| r.kind == KIND_DIGEST)
            .map(keys::secret_bytes)
            .transpose()?
            .ok_or_else(|| AuthError::KeyStore("the key ring has no digest secret".into()))?;
        let ring = Ring::decode(rows, None, keys::now_secs())?;
        let issuer_base = std::fs::read_to_string(data_dir.join(PUBLIC_URL_FILE))
            .ok()
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_ISSUER_BASE.to_string());
        Ok(Authority {
            keys: Arc::new(Keys {
                at,
                digest,
                ring: RwLock::new(Arc::new(ring)),
                last_reload: Mutex::new(Instant::now()),
            }),
            issuer_base,
        })
    }

    fn ring(&self) -> Arc<Ring> {
        self.keys
            .ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the ring again (blocking: the store or the data dir), so that keys another node
    /// or the CLI added are used and retired ones stop verifying once their grace is over.
    pub fn reload(&self) -> Result<(), AuthError> {
        *self
            .keys
            .last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let rows = self.keys.at.read()?;
        let current = self.ring();
        if rows == current.rows {
            return Ok(());
        }
        if let Some(d) = rows.iter().find(|r| r.kind == KIND_DIGEST)
            && keys::secret_bytes(d)? != self.keys.digest
        {
            tracing::warn!(
                "the stored digest secret changed; this node keeps the one it started with"
            );
        }
        let ring = Ring::decode(rows, Some(&current), keys::now_secs())?;
        tracing::info!(
            token = %ring.token_signer.kid,
            link = %ring.link_signer.kid,
            "key ring reloaded"
        );
        *self.keys.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        Ok(())
    }

    /// For a key id this node does not know (another node or the CLI may have rotated):
    /// reloads the ring unless that was done less than a second ago (blocking). `true` if it
    /// reloaded.
    pub fn reload_for_unknown_key(&self) -> bool {
        {
            let last = self
                .keys
                .last_reload
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < UNKNOWN_KID_RELOAD {
                return false;
            }
        }
        match self.reload() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "reloading the key ring failed");
                false
            }
        }
    }

    /// Retires the current token and link keys (they verify for `grace` more) and adds new
    /// ones, which sign from now on; returns the new keys. This node uses them at once;
    /// others at their next reload.
    pub fn rotate(&self, grace: Duration) -> Result<Vec<KeyRow>, AuthError> {
        let new = self.keys.at.rotate(grace)?;
        self.reload()?;
        Ok(new)
    }

    /// Every key of the ring as last loaded, oldest first per kind (material included: for
    /// the CLI's listing, which prints none of it).
    pub fn key_rows(&self) -> Vec<KeyRow> {
        self.ring().rows.clone()
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

    /// The `kid` of the key that signs tokens now.
    pub fn kid(&self) -> String {
        self.ring().token_signer.kid.clone()
    }

    /// The secret under which user ids are concealed and erased users named: never rotated,
    /// so concealed names stay the same for the life of the data.
    pub fn digest_secret(&self) -> &[u8] {
        &self.keys.digest
    }

    /// The key that signs links, `$skiptoken`s and sign-in codes now.
    pub fn link_signer(&self) -> Arc<LinkKey> {
        self.ring().link_signer.clone()
    }

    /// The link key with id `kid` if it still verifies (`None`: the legacy form without a
    /// key id, verified with the key imported from `keys/link-secret`).
    pub fn link_key(&self, kid: Option<&str>) -> Option<Arc<LinkKey>> {
        let kid = kid.unwrap_or(LEGACY_LINK_KID);
        let now = keys::now_secs();
        let ring = self.ring();
        ring.links
            .iter()
            .find(|(r, _)| {
                r.kid == kid && (keys::accepted(r, now) || r.kid == ring.link_signer.kid)
            })
            .map(|(_, k)| k.clone())
    }

    fn token_key(&self, kid: Option<&str>) -> Option<Arc<TokenKey>> {
        let ring = self.ring();
        let Some(kid) = kid else {
            return Some(ring.token_signer.clone());
        };
        let now = keys::now_secs();
        ring.tokens
            .iter()
            .find(|(r, k)| {
                r.kid == kid && (keys::accepted(r, now) || k.kid == ring.token_signer.kid)
            })
            .map(|(_, k)| k.clone())
    }

    /// The public key that verifies tokens with `kid` (no `kid`: the signing key), if that
    /// key still verifies.
    pub fn token_decoding_key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        self.token_key(kid).map(|k| k.decoding.clone())
    }

    /// The signing key's public half.
    pub fn public_key(&self) -> RsaPublicKey {
        self.ring().token_signer.public.clone()
    }

    pub fn public_key_pem(&self) -> Result<String, AuthError> {
        self.public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| AuthError::KeyStore(format!("encoding public key: {e}")))
    }

    /// The JWKS document served at `/discovery/v2.0/keys`: every token key that still
    /// verifies, the signing one first.
    pub fn jwks(&self) -> Value {
        let ring = self.ring();
        let now = keys::now_secs();
        let mut keys: Vec<&Arc<TokenKey>> = vec![&ring.token_signer];
        keys.extend(
            ring.tokens
                .iter()
                .filter(|(r, k)| keys::accepted(r, now) && k.kid != ring.token_signer.kid)
                .map(|(_, k)| k),
        );
        let keys: Vec<Value> = keys
            .into_iter()
            .map(|k| {
                json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": k.kid,
                    "n": URL_SAFE_NO_PAD.encode(k.public.n().to_bytes_be()),
                    "e": URL_SAFE_NO_PAD.encode(k.public.e().to_bytes_be()),
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Signs arbitrary claims with RS256 and the signing key's `kid`.
    pub fn sign_claims(&self, claims: &Value) -> Result<String, AuthError> {
        let key = self.ring().token_signer.clone();
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
        let json = |v: &Value| {
            serde_json::to_vec(v).map_err(|e| AuthError::KeyStore(format!("encoding token: {e}")))
        };
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json(&header)?),
            URL_SAFE_NO_PAD.encode(json(claims)?)
        );
        let mut sig = vec![0u8; key.signer.public().modulus_len()];
        key.signer
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

//! Bearer-token verification: the built-in issuer (the key ring's RS256 keys, picked by the
//! token's `kid`; an unknown `kid` reloads the ring, since another node may have rotated) and, when
//! configured, one external OpenID Connect issuer (Microsoft Entra ID, Keycloak, Auth0) whose
//! keys come from a JWKS file or URL, refreshed when an unknown `kid` appears.
//! Verified tokens are cached until they expire, so a hot client costs a hash, not an RSA
//! verification, per request; every token is still fully verified once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{AuthError, Authority, DEFAULT_AUDIENCE, GRAPH_APP_ID};

/// Allowed clock skew on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// Verified tokens remembered at most (the cache is cleared when full; ~1–2 KB each).
const CACHE_MAX: usize = 10_000;
/// Least time between two JWKS fetches triggered by unknown key ids.
const JWKS_REFETCH: Duration = Duration::from_secs(30);

/// The claims reportroot reads. `aud`, `exp`, `nbf` are checked by the decoder.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub tid: String,
    pub iss: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scp: Option<String>,
    #[serde(default)]
    pub wids: Vec<String>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    pub exp: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
    /// The caller's object id (a user, or an app's service principal): for the audit trail.
    #[serde(default)]
    pub oid: Option<String>,
    /// The app's display name: for the audit trail.
    #[serde(default)]
    pub app_displayname: Option<String>,
}

impl Claims {
    /// Delegated tokens carry `scp`; application tokens do not.
    pub fn is_delegated(&self) -> bool {
        self.scp.is_some()
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scp
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// The calling app: `azp` (v2 tokens) or `appid` (v1).
    pub fn app_id(&self) -> Option<&str> {
        self.azp.as_deref().or(self.appid.as_deref())
    }
}

/// `aud`: one string or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn values(&self) -> &[String] {
        match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(v) => v,
        }
    }
}

/// A built-in token's claims together with its `aud`, which is checked here rather than by
/// the decoder (the server's own URL is compared as a URL).
#[derive(Deserialize)]
struct WithAudience {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    aud: Option<Audience>,
}

/// A URL in the form it is compared in: no trailing slash, scheme and host (with port) in
/// lower case, the scheme's default port left out; the path is kept as it is. A string
/// without `://` is returned trimmed.
fn canonical_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (host, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let mut host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(port) = default_port
        && host.ends_with(port)
    {
        host.truncate(host.len() - port.len());
    }
    format!("{scheme}://{host}{path}")
}

/// Whether two URLs name the same resource: equal without a trailing slash, scheme and host
/// compared case-insensitively, a default port the same as none.
fn same_url(a: &str, b: &str) -> bool {
    a.contains("://") && b.contains("://") && canonical_url(a) == canonical_url(b)
}

/// Where an external issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

/// An external OpenID Connect issuer. `issuer` may contain `{tenantid}`, replaced by the
/// token's `tid` (Entra's multi-tenant form, e.g. `https://login.microsoftonline.com/{tenantid}/v2.0`).
#[derive(Debug, Clone)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub jwks: JwksSource,
}

struct External {
    config: ExternalIssuer,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    last_fetch: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

/// (token, request base).
type CacheKey = (Box<str>, Box<str>);

/// A verified token's claims, with the built-in key's `kid` it was verified with (`None`:
/// an external issuer's token), so that a cached token stops verifying with its key.
type Cached = (Claims, Option<Box<str>>);

pub struct Verifier {
    authority: Authority,
    audiences: Vec<String>,
    external: Option<External>,
    /// Keyed by the exact token and request base (compared in full, so no hash collision can
    /// stand in for a verified token).
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn invalid(m: &str) -> AuthError {
    AuthError::Invalid(m.to_string())
}

#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    tid: Option<String>,
}

/// Reads `iss` and `tid` from an unverified token, only to choose the key to verify it with.
fn peek(token: &str) -> Option<Peek> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn parse_jwks(bytes: &[u8]) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
    let set: JwkSet = serde_json::from_slice(bytes)
        .map_err(|e| AuthError::KeyStore(format!("invalid JWKS: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(_), None) => Algorithm::ES256,
            (_, Some(ka)) => match ka.to_string().parse::<Algorithm>() {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ => continue,
        };
        // Symmetric keys in a public JWKS would allow forgery by anyone who reads it.
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, (key, alg));
        }
    }
    Ok(keys)
}

impl External {
    async fn fetch(&self) -> Result<(), AuthError> {
        let bytes = match &self.config.jwks {
            JwksSource::File(p) => tokio::fs::read(p)
                .await
                .map_err(|e| AuthError::KeyStore(format!("reading {}: {e}", p.display())))?,
            JwksSource::Url(u) => self
                .http
                .get(u)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| AuthError::KeyStore(format!("fetching {u}: {e}")))?
                .bytes()
                .await
                .map_err(|e| AuthError::KeyStore(format!("fetching {u}: {e}")))?
                .to_vec(),
        };
        let keys = parse_jwks(&bytes)?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    /// The key for `kid`, fetching the JWKS again (at most every 30 s) when it is unknown.
    async fn key(&self, kid: &str) -> Result<Option<(DecodingKey, Algorithm)>, AuthError> {
        if let Some(k) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid) {
            return Ok(Some(k.clone()));
        }
        let due = {
            let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= JWKS_REFETCH);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due && let Err(e) = self.fetch().await {
            tracing::warn!(error = %e, "refreshing the external issuer's keys failed");
        }
        Ok(self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned())
    }

    fn issuer_for(&self, tid: &str) -> String {
        self.config.issuer.replace("{tenantid}", tid)
    }
}

impl Verifier {
    /// `audience` replaces the default `https://graph.microsoft.com` (Graph's app id is
    /// accepted beside it either way).
    pub async fn new(
        authority: Authority,
        audience: Option<&str>,
        external: Option<ExternalIssuer>,
    ) -> Result<Verifier, AuthError> {
        let audiences = vec![
            audience.unwrap_or(DEFAULT_AUDIENCE).to_string(),
            GRAPH_APP_ID.to_string(),
        ];
        let external = match external {
            Some(config) => {
                let ext = External {
                    config,
                    keys: RwLock::new(HashMap::new()),
                    last_fetch: Mutex::new(Some(Instant::now())),
                    http: reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .map_err(|e| AuthError::KeyStore(format!("HTTP client: {e}")))?,
                };
                ext.fetch().await?;
                Some(ext)
            }
            None => None,
        };
        Ok(Verifier {
            authority,
            audiences,
            external,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The audience tokens must carry (the first accepted one).
    pub fn audience(&self) -> &str {
        &self.audiences[0]
    }

    /// The `aud` of a token issued for `resource` (a scope without `/.default`), or `None`
    /// when the resource is not this server. Accepted: the expected audience and Graph's app
    /// id (case-insensitively; the token then carries the expected audience), and the server's
    /// own URL `own_url` (the public URL, or the `scheme://host` the request came to), which
    /// the token then carries as it is.
    pub fn audience_for(&self, resource: &str, own_url: &str) -> Option<String> {
        let resource = resource.trim_end_matches('/');
        if self
            .audiences
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(resource))
        {
            return Some(self.audience().to_string());
        }
        same_url(resource, own_url).then(|| own_url.trim_end_matches('/').to_string())
    }

    /// Whether a built-in token's `aud` names this server: one of the accepted audiences
    /// exactly, or the server's own URL `request_base` (compared as a URL).
    fn builtin_audience_ok(&self, aud: Option<&Audience>, request_base: Option<&str>) -> bool {
        aud.is_some_and(|aud| {
            aud.values().iter().any(|a| {
                self.audiences.iter().any(|ok| ok == a)
                    || request_base.is_some_and(|base| same_url(a, base))
            })
        })
    }

    fn validation(&self, alg: Algorithm, issuer: &str) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "aud", "iss"]);
        v.set_audience(&self.audiences);
        v.set_issuer(&[issuer]);
        v
    }

    /// Verifies a raw token (without `Bearer `). `request_base` is the `scheme://host` the
    /// request reached: built-in tokens may name either it or the remembered public URL as
    /// issuer base.
    pub async fn verify(
        &self,
        token: &str,
        request_base: Option<&str>,
    ) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let key: CacheKey = (token.into(), request_base.unwrap_or("").into());
        let now = now_secs();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some((c, kid)) = cached
            && c.exp + LEEWAY_SECS > now
            && c.nbf.is_none_or(|n| n <= now + LEEWAY_SECS)
            && kid.is_none_or(|k| self.authority.token_decoding_key(Some(&k)).is_some())
        {
            return Ok(c);
        }
        let (claims, kid) = self.verify_uncached(token, request_base).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (claims.clone(), kid));
        Ok(claims)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        request_base: Option<&str>,
    ) -> Result<Cached, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("Access token validation failure. Invalid audience or malformed token.")
        })?;
        let peeked = peek(token)
            .ok_or_else(|| invalid("Access token validation failure. Malformed token."))?;
        let tid = peeked.tid.unwrap_or_default();
        let iss = peeked.iss.unwrap_or_default();

        if let Some(ext) = &self.external
            && iss == ext.issuer_for(&tid)
        {
            let kid = header.kid.as_deref().ok_or_else(|| {
                invalid("Access token validation failure: the token has no key id.")
            })?;
            let (key, alg) = ext.key(kid).await?.ok_or_else(|| {
                invalid("Access token validation failure: the signing key is unknown.")
            })?;
            if header.alg != alg {
                return Err(invalid(
                    "Access token validation failure: the signing algorithm does not match the key.",
                ));
            }
            return decode(token, &key, &self.validation(alg, &iss)).map(|c| (c, None));
        }

        if header.alg != Algorithm::RS256 {
            return Err(invalid(
                "Access token validation failure: the signing algorithm is not supported.",
            ));
        }
        let kid = header.kid.as_deref();
        let builtin_key = match self.authority.token_decoding_key(kid) {
            Some(k) => k,
            None => {
                // Perhaps a key another node (or the CLI) added since this node last read
                // the ring.
                let a = self.authority.clone();
                let _ = tokio::task::spawn_blocking(move || a.reload_for_unknown_key()).await;
                self.authority.token_decoding_key(kid).ok_or_else(|| {
                    invalid("Access token validation failure: the signing key is unknown.")
                })?
            }
        };
        let mut accepted = self.authority.issuer(&tid);
        if let Some(base) = request_base
            && iss == format!("{base}/{tid}/v2.0")
        {
            accepted = iss.clone();
        }
        // `aud` is required by the validation and compared below, so that the server's own
        // URL can be matched as a URL.
        let mut validation = self.validation(Algorithm::RS256, &accepted);
        validation.validate_aud = false;
        let decoded: WithAudience = decode(token, &builtin_key, &validation)?;
        if !self.builtin_audience_ok(decoded.aud.as_ref(), request_base) {
            return Err(invalid(
                "Access token validation failure. Invalid audience.",
            ));
        }
        Ok((decoded.claims, kid.map(Box::from)))
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<T, AuthError> {
    use jsonwebtoken::errors::ErrorKind as K;
    jsonwebtoken::decode::<T>(token, key, validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            K::ExpiredSignature => invalid("Lifetime validation failed, the token is expired."),
            K::ImmatureSignature => {
                invalid("Lifetime validation failed, the token is not yet valid.")
            }
            K::InvalidAudience => invalid("Access token validation failure. Invalid audience."),
            K::InvalidIssuer => invalid("Access token validation failure. Invalid issuer."),
            K::InvalidSignature => {
                invalid("Access token validation failure: the signature is invalid.")
            }
            K::MissingRequiredClaim(c) => AuthError::Invalid(format!(
                "Access token validation failure: the '{c}' claim is missing."
            )),
            _ => invalid("Access token validation failure."),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_without_trailing_slash_case_or_default_port() {
        assert!(same_url(
            "https://Reports.Example.com/",
            "HTTPS://reports.example.com"
        ));
        assert!(same_url("https://h.example:443", "https://h.example"));
        assert!(same_url("http://127.0.0.1:80/", "http://127.0.0.1"));
        assert!(same_url("http://127.0.0.1:8080", "http://127.0.0.1:8080//"));
        assert!(same_url("https://[::1]:8443", "https://[::1]:8443/"));
        assert!(same_url(
            "https://h.example/Base",
            "https://H.example/Base/"
        ));
        // The path is compared as it is; scheme, host and port must agree.
        assert!(!same_url(
            "https://h.example/Base",
            "https://h.example/base"
        ));
        assert!(!same_url("http://h.example", "https://h.example"));
        assert!(!same_url("https://h.example:8443", "https://h.example"));
        assert!(!same_url("https://h.example.evil", "https://h.example"));
        assert!(!same_url("https://h.example", "https://h.example.evil"));
        // Not URLs: never the same as a URL, nor as each other.
        assert!(!same_url("h.example", "h.example"));
        assert!(!same_url("", ""));
    }
}

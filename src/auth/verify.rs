//! Bearer-token verification against the built-in issuer's key.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{AuthError, Authority, DEFAULT_AUDIENCE, GRAPH_APP_ID};

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

/// Verifies RS256 tokens from the built-in issuer. Allows 60 s of clock skew on `exp`/`nbf`.
pub struct Verifier {
    authority: Authority,
    decoding: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(authority: Authority, audience: Option<&str>) -> Result<Verifier, AuthError> {
        let jwks = authority.jwks();
        let key = &jwks["keys"][0];
        let decoding = DecodingKey::from_rsa_components(
            key["n"].as_str().unwrap_or_default(),
            key["e"].as_str().unwrap_or_default(),
        )
        .map_err(|e| AuthError::KeyStore(format!("loading public key: {e}")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 60;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let aud = audience.unwrap_or(DEFAULT_AUDIENCE);
        validation.set_audience(&[aud, GRAPH_APP_ID]);
        Ok(Verifier {
            authority,
            decoding,
            validation,
        })
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Verifies a raw token (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let invalid = |m: &str| AuthError::Invalid(m.to_string());
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("Access token validation failure. Invalid audience or malformed token.")
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid(
                "Access token validation failure: the signing algorithm is not supported.",
            ));
        }
        if header
            .kid
            .as_deref()
            .is_some_and(|k| k != self.authority.kid())
        {
            return Err(invalid(
                "Access token validation failure: the signing key is unknown.",
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => {
                        invalid("Lifetime validation failed, the token is expired.")
                    }
                    K::ImmatureSignature => {
                        invalid("Lifetime validation failed, the token is not yet valid.")
                    }
                    K::InvalidAudience => {
                        invalid("Access token validation failure. Invalid audience.")
                    }
                    K::InvalidSignature => {
                        invalid("Access token validation failure: the signature is invalid.")
                    }
                    K::MissingRequiredClaim(c) => AuthError::Invalid(format!(
                        "Access token validation failure: the '{c}' claim is missing."
                    )),
                    _ => invalid("Access token validation failure."),
                }
            })?;
        let claims = data.claims;
        if claims.iss != self.authority.issuer(&claims.tid) {
            return Err(invalid("Access token validation failure. Invalid issuer."));
        }
        Ok(claims)
    }
}

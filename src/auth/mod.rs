//! Who may read what. [`Authority`] is the built-in issuer: the signing key ring ([`keys`]:
//! in the data dir, or in the store several nodes share), token minting (CLI and tests), and
//! JWKS. [`Verifier`] checks
//! bearer tokens (signature, algorithm, `exp`/`nbf`, `iss`, `aud`); [`policy`] decides what a
//! verified token may do; [`signin`] the dashboard's one-time sign-in codes. Knows nothing of HTTP: the API maps [`AuthError`] to statuses.

pub mod apps;
mod authority;
pub mod keys;
pub mod policy;
pub mod signin;
mod verify;

pub use authority::{
    AppIdentity, Authority, DEFAULT_APP_NAME, DEFAULT_AUDIENCE, DEFAULT_USER_NAME, GRAPH_APP_ID,
    LinkKey, LinkKeyLookup, UserIdentity, default_upn,
};
pub use keys::{DEFAULT_GRACE, KeysAt};
pub use verify::{Claims, ExternalIssuer, JwksSource, Verifier};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token at all.
    #[error("Access token is empty.")]
    Missing,
    /// A token that does not verify; the reason is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// A valid token that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Key material could not be read or created.
    #[error("key store error: {0}")]
    KeyStore(String),
}

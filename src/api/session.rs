//! The dashboard's browser session: an `HttpOnly`, `SameSite=Strict` cookie holding a
//! short-lived read-only token, and the rule under which the report endpoints accept it.
//!
//! Invariant: a cookie is only ever an identity for requests that prove they come from the
//! dashboard's own pages: they carry `X-Requested-With: reportroot` (a custom header, which
//! a cross-site page can only send after a CORS preflight this server never grants), and
//! neither `Sec-Fetch-Site` nor `Origin` names another site. An `Authorization` header,
//! when present, always wins over the cookie.

use axum::http::{HeaderMap, HeaderValue, header};

use super::reports::{base_url, bearer_claims};
use super::{ApiError, AppState};
use crate::auth::{AuthError, Claims};

/// The cookie's name.
pub const COOKIE: &str = "reportroot_session";
/// The header (and value) the dashboard sends with every call.
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_VALUE: &str = "reportroot";

/// The session cookie's token, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Refuses a request that may come from another site (see the module's invariant).
pub fn check_same_site(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = |why: &str| {
        tracing::warn!(reason = why, "cross-site use of the session cookie refused");
        Err(ApiError::Forbidden(format!(
            "Request refused: {why}. The session cookie is accepted only from the dashboard's own pages; other clients send an Authorization header."
        )))
    };
    let marked = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(CSRF_VALUE));
    if !marked {
        return refused("the X-Requested-With header is missing");
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let same = site.to_str().is_ok_and(|s| s == "same-origin");
        if !same {
            return refused("the request comes from another site (Sec-Fetch-Site)");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = base_url(state, headers);
        let same = origin
            .to_str()
            .is_ok_and(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&own));
        if !same {
            return refused("the request comes from another origin");
        }
    }
    Ok(())
}

/// The verified session cookie's claims (the same-site rule checked first).
pub async fn cookie_claims(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let Some(token) = cookie_token(headers) else {
        return Err(AuthError::Missing.into());
    };
    check_same_site(state, headers)?;
    let base = base_url(state, headers);
    state
        .verifier
        .verify(token, Some(&base))
        .await
        .map_err(|e| match e {
            AuthError::Invalid(_) => ApiError::Unauthenticated(
                "The dashboard session has expired or is not valid. Sign in again.".into(),
            ),
            other => other.into(),
        })
}

/// A report call's identity: the bearer token, or else the session cookie.
pub async fn reader_claims(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) || cookie_token(headers).is_none() {
        return bearer_claims(state, headers).await;
    }
    cookie_claims(state, headers).await
}

/// `Set-Cookie` for a session of `max_age` seconds (`Secure` when served over TLS); an empty
/// value with `Max-Age=0` clears it.
pub fn set_cookie(value: &str, max_age: u64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .map_err(|e| ApiError::Internal(format!("cookie header: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; reportroot_session=tok.en.sig; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("tok.en.sig"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("reportroot_session=; x=y"),
        );
        assert_eq!(cookie_token(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xreportroot_session=v"),
        );
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn cookie_flags() {
        let v = set_cookie("t", 60, true).expect("cookie");
        assert_eq!(
            v.to_str().expect("ascii"),
            "reportroot_session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        let v = set_cookie("", 0, false).expect("cookie");
        assert!(!v.to_str().expect("ascii").contains("Secure"));
    }
}

//! The browser dashboard over HTTP: the page and its assets (`GET /`, `/signin`,
//! `/assets/{name}`) with a strict Content-Security-Policy, and the session endpoints
//! (`POST /signin` with a one-time code or a pasted token, `GET /session`,
//! `POST /signout`). The page reads reports through the ordinary Graph endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::reports::base_url;
use super::session::{self, check_same_site, cookie_claims, set_cookie};
use super::{ApiError, AppState};
use crate::auth::{Authority, Claims, policy};
use crate::web::{self, Asset};

/// Scripts, styles, images and calls from this origin only; no inline code, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// `app_displayname` of session tokens.
pub const SESSION_APP_NAME: &str = "reportroot dashboard";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn serve_asset(asset: &'static Asset, headers: &HeaderMap, immutable: bool) -> Response {
    let etag = asset.etag();
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.bytes).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// `GET /` and `GET /signin`: the page (the sign-in code travels in the fragment, which
/// never reaches the server or its logs).
pub async fn page(headers: HeaderMap) -> Response {
    serve_asset(web::index(), &headers, false)
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let asset = web::asset(&name)
        .ok_or_else(|| ApiError::NotFound(format!("No dashboard asset named '{name}'.")))?;
    Ok(serve_asset(asset, &headers, true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigninBody {
    code: Option<String>,
    token: Option<String>,
}

fn session_json(claims: &Claims) -> serde_json::Value {
    let expires = chrono::DateTime::from_timestamp(claims.exp as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    json!({
        "signedIn": true,
        "tenantId": claims.tid,
        "expiresOn": expires,
    })
}

fn with_cookie(body: serde_json::Value, cookie: HeaderValue) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A session token for `tid`: an app token of the dashboard with `Reports.Read.All` only.
fn mint_session(authority: &Authority, tid: &str, ttl: Duration) -> Result<String, ApiError> {
    let client = Authority::dashboard_client_id(tid);
    Ok(authority.mint_app_named(
        tid,
        Some(&client),
        SESSION_APP_NAME,
        &[policy::REPORTS_READ_ALL.to_string()],
        ttl,
    )?)
}

/// `POST /signin` with `{"code": …}` (a one-time sign-in code) or `{"token": …}` (a bearer
/// token that may read reports): sets the session cookie and answers who is signed in.
pub async fn signin(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_same_site(&state, &headers)?;
    let body: SigninBody = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest(
            "The body must be JSON with a sign-in \"code\" or an access \"token\".".into(),
        )
    })?;
    let secure = state.settings.tls;
    let (token, claims) = match (body.code, body.token) {
        (Some(code), None) => {
            let st = state.clone();
            let redeemed = tokio::task::spawn_blocking(move || {
                let a = st.verifier.authority();
                // A key id this node does not know yet: another node or the CLI may have
                // rotated the keys (this runs off the async threads, so it may read them).
                let keys = |kid: Option<&str>| {
                    a.link_key(kid)
                        .or_else(|| a.reload_for_unknown_key().then(|| a.link_key(kid))?)
                };
                st.signin_codes.redeem(&keys, &code, now_secs())
            })
            .await??;
            let token = mint_session(
                state.verifier.authority(),
                redeemed.tenant.as_str(),
                state.settings.session_ttl,
            )?;
            let base = base_url(&state, &headers);
            let claims = state.verifier.verify(&token, Some(&base)).await?;
            tracing::info!(tenant = %redeemed.tenant, "dashboard signed in with a one-time code");
            (token, claims)
        }
        (None, Some(token)) => {
            let token = token.trim().to_string();
            let base = base_url(&state, &headers);
            let claims = state.verifier.verify(&token, Some(&base)).await?;
            policy::read_reports(&claims, policy::Reading::Summary)?;
            tracing::info!(tenant = %claims.tid, "dashboard signed in with a pasted token");
            (token, claims)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "Send either a sign-in \"code\" or an access \"token\", not both.".into(),
            ));
        }
    };
    let max_age = claims.exp.saturating_sub(now_secs());
    let cookie = set_cookie(&token, max_age, secure)?;
    Ok(with_cookie(session_json(&claims), cookie))
}

/// `GET /session`: who is signed in (`{"signedIn": false}` without a cookie; 401 when the
/// cookie's token is no longer valid).
pub async fn current(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if session::cookie_token(&headers).is_none() {
        check_same_site(&state, &headers)?;
        return Ok(Json(json!({"signedIn": false})).into_response());
    }
    let claims = cookie_claims(&state, &headers).await?;
    let mut resp = Json(session_json(&claims)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /signout`: clears the cookie.
pub async fn signout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_same_site(&state, &headers)?;
    let cookie = set_cookie("", 0, state.settings.tls)?;
    Ok(with_cookie(json!({"signedIn": false}), cookie))
}

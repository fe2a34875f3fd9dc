//! The report call (`302` to a signed link, `304`, or beta JSON) and the download it links to.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::cache::Entry;
use super::links::{self, Link, LinkError};
use super::odata::{self, Function, ODataError, ReportCall};
use super::{ApiError, AppState, render};
use crate::auth::{AuthError, Claims, policy};
use crate::model::TenantId;
use crate::throttle::CallKey;

/// Verifies the request's bearer token.
pub(super) async fn bearer_claims(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Claims, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing.into());
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Invalid("Access token validation failure.".into()))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(AuthError::Invalid(
                "The Authorization header must use the Bearer scheme.".into(),
            )
            .into());
        }
    };
    let base = base_url(state, headers);
    Ok(state.verifier.verify(token, Some(&base)).await?)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `scheme://host[:port]` for links and `@odata.context`.
pub(super) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.settings.public_url {
        return u.clone();
    }
    let scheme = if state.settings.tls { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| state.settings.local_addr.to_string());
    format!("{scheme}://{host}")
}

fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// Does the `Accept` header admit the media type (with q > 0)?
fn accepts(headers: &HeaderMap, wanted: &[&str]) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let zero_q = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !zero_q && wanted.iter().any(|w| w.eq_ignore_ascii_case(media))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

fn query_format(uri: &Uri) -> Result<Option<String>, ApiError> {
    let Some(q) = uri.query() else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
        .map_err(|_| ApiError::BadRequest("The query string is malformed.".into()))?;
    Ok(pairs
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$format") || k.eq_ignore_ascii_case("format"))
        .map(|(_, v)| v))
}

/// Chooses CSV (the 302) or JSON. `$format` wins; on beta, an `Accept` that admits JSON but
/// neither CSV, octet-stream nor a wildcard also means JSON (the beta SDK's typed `get`).
fn choose_format(
    beta: bool,
    function: Function,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Format, ApiError> {
    if function == Function::LegacyActivationsUserCounts {
        return Ok(if beta { Format::Json } else { Format::Csv });
    }
    match query_format(uri)? {
        Some(f) if f.eq_ignore_ascii_case("application/json") || f.eq_ignore_ascii_case("json") => {
            Ok(Format::Json)
        }
        Some(f) if f.eq_ignore_ascii_case("text/csv") || f.eq_ignore_ascii_case("csv") => {
            Ok(Format::Csv)
        }
        Some(f) => Err(ApiError::BadRequest(format!(
            "Unsupported $format '{f}'. Use text/csv or application/json."
        ))),
        None => {
            let json_only = beta
                && accepts(headers, &["application/json"])
                && !accepts(
                    headers,
                    &[
                        "text/csv",
                        "application/octet-stream",
                        "*/*",
                        "text/*",
                        "application/*",
                    ],
                );
            Ok(if json_only { Format::Json } else { Format::Csv })
        }
    }
}

fn etag_header(etag: &str) -> HeaderValue {
    HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

async fn current_entry(
    state: &Arc<AppState>,
    tid: TenantId,
    call: ReportCall,
) -> Result<Arc<Entry>, ApiError> {
    if let Some(e) = state.cache.cached(&state.registry, &tid, call) {
        return Ok(e);
    }
    let st = state.clone();
    Ok(tokio::task::spawn_blocking(move || st.cache.current(&st.registry, &tid, call)).await??)
}

/// `GET /{v1.0|beta}/reports/{function}`.
pub async fn report(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let (version, raw_segment) = path
        .strip_prefix('/')
        .and_then(|p| p.split_once("/reports/"))
        .ok_or_else(|| {
            ApiError::NotFound(format!("Resource not found for the segment '{path}'."))
        })?;
    let beta = match version {
        "v1.0" => false,
        "beta" => true,
        other => {
            return Err(ApiError::BadRequest(format!(
                "Invalid version: '{other}'. Use v1.0 or beta."
            )));
        }
    };
    let claims = bearer_claims(&state, &headers).await?;
    let tid = policy::read_reports(&claims)?;
    let call = odata::parse_report_segment(raw_segment).map_err(|e| match e {
        ODataError::UnknownSegment(_) | ODataError::Syntax(_) => {
            ApiError::BadRequest(e.to_string())
        }
        ODataError::InvalidArgument(m) => ApiError::InvalidArgument(m),
    })?;
    let format = choose_format(beta, call.function, &uri, &headers)?;
    let key = CallKey {
        tenant: tid.to_string(),
        app: claims.app_id().unwrap_or_default().to_string(),
        function: call.function.name(),
        json: format == Format::Json,
    };
    if let Err(wait) = state.throttle.check(&key, Instant::now()) {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "Too many requests for {} from this application in this tenant. Retry after {} seconds.",
                call.function.name(),
                wait.as_secs()
            ),
            retry_after: wait.as_secs(),
        });
    }
    let entry = current_entry(&state, tid.clone(), call).await?;
    let base = base_url(&state, &headers);

    if format == Format::Json {
        let body = render::json(call.function, &entry.computed, &base, version);
        let mut resp = Json(body).into_response();
        resp.headers_mut()
            .insert(header::ETAG, etag_header(&entry.etag));
        if matches_etag(&headers, &entry.etag) {
            return Ok(not_modified(&entry.etag));
        }
        return Ok(resp);
    }
    if matches_etag(&headers, &entry.etag) {
        return Ok(not_modified(&entry.etag));
    }
    let link = Link {
        tenant: tid,
        call,
        etag: entry.etag.clone(),
        expires: now_secs() + state.settings.link_ttl.as_secs(),
    };
    let token = links::sign(state.verifier.authority().link_secret(), &link);
    let location = format!("{base}/data/download/{token}");
    let mut resp = (StatusCode::FOUND, [(header::CONTENT_TYPE, "text/plain")]).into_response();
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag_header(&entry.etag));
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location)
            .map_err(|e| ApiError::Internal(format!("location header: {e}")))?,
    );
    Ok(resp)
}

fn not_modified(etag: &str) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    resp.headers_mut().insert(header::ETAG, etag_header(etag));
    resp
}

/// `GET /data/download/{token}`: needs no Authorization; the link is the credential.
pub async fn download(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = uri
        .path()
        .strip_prefix("/data/download/")
        .unwrap_or_default();
    let link = links::verify(state.verifier.authority().link_secret(), token, now_secs()).map_err(
        |e| match e {
            LinkError::Invalid | LinkError::Expired => ApiError::LinkDenied(e.to_string()),
        },
    )?;
    let entry = match state.cache.held(&link.tenant, link.call, &link.etag) {
        Some(e) => Some(e),
        None => {
            let st = state.clone();
            let (tid, call, etag) = (link.tenant.clone(), link.call, link.etag.clone());
            tokio::task::spawn_blocking(move || st.cache.by_etag(&st.registry, &tid, call, &etag))
                .await??
        }
    };
    let call = link.call;
    let entry = entry.ok_or_else(|| {
        ApiError::NotFound(
            "The report this link was issued for is no longer available. Request the report again."
                .into(),
        )
    })?;
    if matches_etag(&headers, &entry.etag) {
        return Ok(not_modified(&entry.etag));
    }
    let filename = format!(
        "{}{}.csv",
        call.function.name().trim_start_matches("get"),
        call.period.map_or("", |p| p.as_str())
    );
    let mut resp = (StatusCode::OK, entry.csv.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ETAG, etag_header(&entry.etag));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

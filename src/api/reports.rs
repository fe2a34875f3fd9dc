//! The report call (`302` to a signed link, `304`, or JSON — paged for detail reports) and
//! the download it links to, for every function of the catalogue alike.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio_util::io::ReaderStream;

use super::cache::{Body, CacheKey, Entry, data_key};
use super::links::{self, Link, LinkError, SkipToken};
use super::odata::{self, ODataError};
use super::render::{self, JsonSink};
use super::{ApiError, AppState};
use crate::auth::{AuthError, Claims, policy};
use crate::engine::Freshness;
use crate::model::TenantId;
use crate::reports::{self, Args, Concealer, Kind, Query, ReportDef};
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

/// The query string's pairs (`$format`, `$top`, `$skipToken`, ...).
fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, ApiError> {
    let Some(q) = uri.query() else {
        return Ok(Vec::new());
    };
    serde_urlencoded::from_str(q)
        .map_err(|_| ApiError::BadRequest("The query string is malformed.".into()))
}

fn query_value<'q>(pairs: &'q [(String, String)], names: &[&str]) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_str())
}

/// Chooses CSV (the 302) or JSON. `$format` wins; on beta, an `Accept` that admits JSON but
/// neither CSV, octet-stream nor a wildcard also means JSON (the beta SDK's typed `get`).
/// v1.0 without `$format` is always CSV, whatever `Accept` says (the CLI for Microsoft 365
/// sends `Accept: application/json;odata.metadata=none` and parses CSV).
fn choose_format(
    beta: bool,
    def: &ReportDef,
    pairs: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Format, ApiError> {
    if def.legacy {
        return Ok(if beta { Format::Json } else { Format::Csv });
    }
    match query_value(pairs, &["$format", "format"]) {
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

/// The per-tenant key of concealed names, derived from the key ring's digest secret (never
/// rotated: a concealed name stays the same across key rotations).
fn concealer(state: &AppState, tid: &TenantId) -> Concealer {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(state.verifier.authority().digest_secret())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(b"concealed-names|");
    m.update(tid.as_str().as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(&m.finalize().into_bytes());
    Concealer::new(key)
}

/// Whether `call`'s user names are concealed for the tenant (detail reports only).
async fn concealed(
    state: &Arc<AppState>,
    tid: &TenantId,
    def: &ReportDef,
) -> Result<bool, ApiError> {
    if def.kind != Kind::Detail {
        return Ok(false);
    }
    let st = state.clone();
    let t = tid.clone();
    let settings = tokio::task::spawn_blocking(move || st.registry.report_settings(&t)).await??;
    Ok(settings.display_concealed_names)
}

async fn current_entry(state: &Arc<AppState>, key: CacheKey) -> Result<Arc<Entry>, ApiError> {
    if let Some(e) = state.cache.cached(&state.registry, &key) {
        return Ok(e);
    }
    let st = state.clone();
    let conceal = key.2.then(|| concealer(state, &key.0));
    tokio::task::spawn_blocking(move || st.cache.current(&st.registry, &key, conceal)).await?
}

/// Detail reports page their JSON: `$top` entries (1–1000, default 200) from the entity a
/// `$skipToken` names.
const DEFAULT_PAGE: usize = 200;
const MAX_PAGE: usize = 1000;

fn page_size(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    match query_value(pairs, &["$top", "top"]) {
        None => Ok(DEFAULT_PAGE),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid value '{v}' for $top: use a whole number from 1 to {MAX_PAGE}."
                ))
            }),
    }
}

/// One JSON page of a detail report, computed from the tenant's state.
async fn detail_page(
    state: &Arc<AppState>,
    key: CacheKey,
    pairs: &[(String, String)],
    self_url: &str,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let (tid, call, concealed) = key.clone();
    let top = page_size(pairs)?;
    let start = match query_value(pairs, &["$skipToken", "$skiptoken", "skipToken"]) {
        None => None,
        Some(t) => Some(
            links::with_reload(
                state.verifier.authority(),
                |e| *e == LinkError::UnknownKey,
                |keys| links::verify_skip(t, keys),
            )
            .await
            .ok()
            .filter(|s| s.tenant == tid && s.call == call && s.concealed == concealed)
            .ok_or_else(|| ApiError::BadRequest("The $skipToken is not valid.".into()))?,
        ),
    };
    let link_key = state.verifier.authority().link_signer();
    let conceal = concealed.then(|| concealer(state, &tid));
    let st = state.clone();
    let (entries, next) = tokio::task::spawn_blocking(move || {
        st.registry.read(&tid, |s| {
            let version = data_key(s, call);
            if let Some(t) = &start
                && (t.version != version.version || t.refresh != version.refresh)
            {
                return Err(ApiError::BadRequest(
                    "The $skipToken was issued for data that has changed since. Request the report again from its first page."
                        .into(),
                ));
            }
            let q = Query {
                args: call.args,
                conceal,
                from: start.as_ref().map_or(0, |t| t.from),
            };
            let mut sink = JsonSink::new(call.def(), top);
            reports::run(s, call, &q, &mut sink)?;
            let next = sink.next.map(|from| {
                links::sign_skip(
                    &link_key,
                    &SkipToken {
                        tenant: tid.clone(),
                        call,
                        concealed,
                        version: version.version,
                        refresh: version.refresh,
                        from,
                    },
                )
            });
            Ok((sink.into_entries(), next))
        })
    })
    .await???;
    let next_link = next.map(|token| {
        let mut kept: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| {
                !["$skipToken", "$skiptoken", "skipToken"]
                    .iter()
                    .any(|n| k.eq_ignore_ascii_case(n))
            })
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        kept.push(("$skiptoken", &token));
        let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
        format!("{self_url}?{query}")
    });
    Ok((entries, next_link))
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
    let claims = super::session::reader_claims(&state, &headers).await?;
    let call = odata::parse_report_segment(raw_segment).map_err(|e| match e {
        ODataError::UnknownSegment(_) | ODataError::Syntax(_) => {
            ApiError::BadRequest(e.to_string())
        }
        ODataError::InvalidArgument(m) => ApiError::InvalidArgument(m),
    })?;
    let def = call.def();
    let reading = match def.kind {
        Kind::Summary => policy::Reading::Summary,
        Kind::Detail => policy::Reading::Detail,
    };
    let tid = policy::read_reports(&claims, reading)?;
    let pairs = query_pairs(&uri)?;
    let format = choose_format(beta, def, &pairs, &headers)?;
    let key = CallKey {
        tenant: tid.to_string(),
        app: claims.app_id().unwrap_or_default().to_string(),
        function: def.name,
        json: format == Format::Json,
    };
    if let Err(wait) = throttle(&state, &tid, &key).await? {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "Too many requests for {} from this application in this tenant. Retry after {} seconds.",
                def.name,
                wait.as_secs()
            ),
            retry_after: wait.as_secs(),
        });
    }
    let fresh = refresh_if_stale(&state, &tid).await?;
    let concealed = concealed(&state, &tid, def).await?;
    let key: CacheKey = (tid.clone(), call, concealed);
    let base = base_url(&state, &headers);
    let context = format!(
        "{base}/{version}/$metadata#Collection(microsoft.graph.{})",
        def.entity
    );

    if format == Format::Json && def.kind == Kind::Detail {
        let self_url = format!("{base}{path}");
        let (entries, next) = detail_page(&state, key, &pairs, &self_url).await?;
        let mut body = serde_json::Map::new();
        body.insert("@odata.context".into(), Value::from(context));
        body.insert("value".into(), Value::Array(entries));
        if let Some(next) = next {
            body.insert("@odata.nextLink".into(), Value::from(next));
        }
        let mut resp = Json(Value::Object(body)).into_response();
        note_retention(&state, &tid, call, &mut resp);
        return Ok(marked(resp, fresh));
    }
    let entry = current_entry(&state, key).await?;
    if matches_etag(&headers, &entry.etag) {
        return Ok(marked(not_modified(&entry.etag), fresh));
    }
    if format == Format::Json {
        let entries = entry
            .rows
            .as_ref()
            .map(|rows| render::json_entries(def, rows))
            .unwrap_or_default();
        let body = serde_json::json!({ "@odata.context": context, "value": entries });
        let mut resp = Json(body).into_response();
        resp.headers_mut()
            .insert(header::ETAG, etag_header(&entry.etag));
        note_retention(&state, &tid, call, &mut resp);
        return Ok(marked(resp, fresh));
    }
    let mut resp = (StatusCode::FOUND, [(header::CONTENT_TYPE, "text/plain")]).into_response();
    note_retention(&state, &tid, call, &mut resp);
    let link = Link {
        tenant: tid,
        call,
        concealed,
        etag: entry.etag.clone(),
        expires: now_secs() + state.settings.link_ttl.as_secs(),
    };
    let token = links::sign(&state.verifier.authority().link_signer(), &link);
    let location = format!("{base}/data/download/{token}");
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag_header(&entry.etag));
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location)
            .map_err(|e| ApiError::Internal(format!("location header: {e}")))?,
    );
    Ok(marked(resp, fresh))
}

/// Counts a report call against the throttling limits: in process, or, on a store several
/// nodes share, in the store (one transaction per call), so the limits hold across nodes.
/// `Ok(Err(wait))`: refused.
async fn throttle(
    state: &Arc<AppState>,
    tid: &TenantId,
    key: &CallKey,
) -> Result<Result<(), Duration>, ApiError> {
    if state.throttle.limits().is_off() || !state.registry.store().shared() {
        return Ok(state.throttle.check(key, Instant::now()));
    }
    let counters = state.throttle.counters(key);
    if counters.is_empty() {
        return Ok(Ok(()));
    }
    let st = state.clone();
    let t = tid.clone();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let window_ms = crate::throttle::WINDOW.as_millis() as i64;
    let wait = tokio::task::spawn_blocking(move || {
        st.registry
            .store()
            .throttle(&t, &counters, window_ms, now_ms)
    })
    .await?
    .map_err(crate::engine::EngineError::from)?;
    Ok(match wait {
        None => Ok(()),
        Some(ms) => Err(Duration::from_secs(((ms.max(0) + 999) / 1000).max(1) as u64)),
    })
}

/// With several nodes on one store: reload the tenant first if another node wrote it (one
/// `meta` read per call; nothing to do on the embedded store).
async fn refresh_if_stale(state: &Arc<AppState>, tid: &TenantId) -> Result<Freshness, ApiError> {
    if !state.registry.store().shared() {
        return Ok(Freshness::Current);
    }
    let st = state.clone();
    let t = tid.clone();
    Ok(tokio::task::spawn_blocking(move || st.registry.refresh_if_stale(&t)).await??)
}

/// The header marking an answer given from memory while the store could not be reached to
/// check for a newer data version (`Reportroot-Freshness: unverified`): it is the last
/// version this node loaded or wrote, and a batch another node acknowledged before the
/// database went away may be missing from it.
pub const FRESHNESS: &str = "reportroot-freshness";

fn marked(mut resp: Response, fresh: Freshness) -> Response {
    if fresh == Freshness::Unverified {
        resp.headers_mut()
            .insert(FRESHNESS, HeaderValue::from_static("unverified"));
    }
    resp
}

/// The header saying a report answers with what retention left: `Reportroot-Retained-From`
/// (the first day kept) on a detail report once anything was removed (a Last Activity Date
/// may have been older), and on a summary report whose window starts before that day.
pub const RETAINED_FROM: &str = "reportroot-retained-from";

fn note_retention(
    state: &AppState,
    tid: &TenantId,
    call: crate::reports::Call,
    resp: &mut Response,
) {
    let Some(shared) = state.registry.loaded(tid) else {
        return;
    };
    let (retained, r) = {
        let s = shared.read().unwrap_or_else(|p| p.into_inner());
        (s.retained_from(), s.refresh_date())
    };
    let Some(retained) = retained else { return };
    let reaches_back = match (call.def().kind, call.args, r) {
        (Kind::Detail, _, _) => true,
        (_, Args::Period(p), Some(r)) => r.minus(p.days() - 1) < retained,
        (_, Args::Date(d), _) => d < retained,
        _ => false,
    };
    if reaches_back && let Ok(v) = HeaderValue::from_str(&retained.to_string()) {
        resp.headers_mut().insert(RETAINED_FROM, v);
    }
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
    let now = now_secs();
    let link = links::with_reload(
        state.verifier.authority(),
        |e| *e == LinkError::UnknownKey,
        |keys| links::verify(token, now, keys),
    )
    .await
    .map_err(|e| match e {
        LinkError::Invalid | LinkError::Expired | LinkError::UnknownKey => {
            ApiError::LinkDenied(e.to_string())
        }
    })?;
    let fresh = refresh_if_stale(&state, &link.tenant).await?;
    let key: CacheKey = (link.tenant.clone(), link.call, link.concealed);
    let entry = match state.cache.held(&key, &link.etag) {
        Some(e) => Some(e),
        None => {
            let st = state.clone();
            let conceal = link.concealed.then(|| concealer(&state, &link.tenant));
            let etag = link.etag.clone();
            tokio::task::spawn_blocking(move || {
                st.cache.by_etag(&st.registry, &key, conceal, &etag)
            })
            .await??
        }
    };
    let entry = entry.ok_or_else(|| {
        ApiError::NotFound(
            "The report this link was issued for is no longer available. Request the report again."
                .into(),
        )
    })?;
    if matches_etag(&headers, &entry.etag) {
        return Ok(marked(not_modified(&entry.etag), fresh));
    }
    let suffix = match link.call.args {
        Args::None => String::new(),
        Args::Period(p) => p.as_str().to_string(),
        Args::Date(d) => d.to_string(),
    };
    let filename = format!(
        "{}{suffix}.csv",
        link.call.def().name.trim_start_matches("get"),
    );
    let mut resp = match &entry.body {
        Body::Memory(bytes) => (StatusCode::OK, bytes.clone()).into_response(),
        Body::File(spool) => {
            let file = tokio::fs::File::open(&spool.path)
                .await
                .map_err(|e| ApiError::Internal(format!("opening a spooled report: {e}")))?;
            let mut resp = (
                StatusCode::OK,
                axum::body::Body::from_stream(ReaderStream::with_capacity(file, 256 * 1024)),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(spool.len));
            resp
        }
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ETAG, etag_header(&entry.etag));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(marked(resp, fresh))
}

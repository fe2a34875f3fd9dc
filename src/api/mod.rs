//! The HTTP API: Graph's report URLs, the pre-authenticated downloads, ingest, the
//! Entra-compatible sign-in endpoints, the browser dashboard and its session, and the
//! operational endpoints. Only this layer knows
//! HTTP, Graph JSON, CSV and OData, and only
//! [`error`] maps errors to statuses and Graph codes.

pub mod audit_log;
mod cache;
mod chaos;
mod context;
mod dashboard;
pub mod error;
mod identity;
mod ingest;
mod links;
mod metadata;
pub mod odata;
mod ops;
pub mod render;
mod reports;
mod session;
mod settings;
pub mod tenants;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::auth::Verifier;
use crate::engine::Registry;
use crate::telemetry::Metrics;

pub use error::ApiError;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Scheme and host for links and `@odata.context`; else the request's own.
    pub public_url: Option<String>,
    /// The address the server is bound to (fallback when a request has no usable `Host`).
    pub local_addr: SocketAddr,
    /// Whether the listener speaks TLS (the scheme of links built from `Host`).
    pub tls: bool,
    pub link_ttl: Duration,
    pub max_body_bytes: usize,
    pub ingest_limits: crate::ingest::Limits,
    /// The data dir (app registrations are read from it on each token request).
    pub data_dir: std::path::PathBuf,
    /// Fault injection on report calls and downloads (off when `None`).
    pub chaos: Option<Chaos>,
    /// Time to answer one request.
    pub request_timeout: Duration,
    /// Lifetime of a dashboard session (the cookie's token) started with a sign-in code.
    pub session_ttl: Duration,
}

/// `--chaos-rate` / `--chaos-codes`: answer this share of Graph calls with one of these
/// statuses, in Graph's error shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    pub rate: f64,
    pub codes: Vec<u16>,
}

/// Everything a handler needs, shared behind an `Arc`.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub verifier: Verifier,
    pub metrics: Metrics,
    pub settings: ApiSettings,
    pub throttle: crate::throttle::Throttle,
    /// Redeemed dashboard sign-in codes (single use, kept across restarts).
    pub signin_codes: crate::auth::signin::UsedCodes,
    cache: Arc<cache::ReportCache>,
}

impl AppState {
    pub fn new(
        registry: Arc<Registry>,
        verifier: Verifier,
        settings: ApiSettings,
        throttle: crate::throttle::Limits,
    ) -> AppState {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let cache = Arc::new(cache::ReportCache::new(&settings.data_dir.join("spool")));
        // A tenant evicted under the memory budget reloads with some of the counters the
        // cache keys on restarted: its cached reports go with it.
        let forget = cache.clone();
        registry.set_evict_hook(Box::new(move |tid| forget.forget(tid)));
        AppState {
            signin_codes: crate::auth::signin::UsedCodes::open(&settings.data_dir, now),
            cache,
            registry,
            verifier,
            metrics: Metrics::new(),
            settings,
            throttle: crate::throttle::Throttle::new(throttle),
        }
    }
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/signin", get(dashboard::page).post(dashboard::signin))
        .route("/signout", post(dashboard::signout))
        .route("/session", get(dashboard::current))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/discovery/v2.0/keys", get(ops::jwks))
        // The first segment is a Graph version for reports and a tenant for sign-in; the
        // router needs one parameter name for both.
        .route("/{first}/reports/{*function}", get(reports::report))
        .route(
            "/{first}/v2.0/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route("/{first}/oauth2/v2.0/token", post(identity::token))
        .route("/data/download/{token}", get(reports::download))
        .route("/{first}/$metadata", get(metadata::get))
        .route(
            "/{first}/admin/reportSettings",
            get(settings::get).patch(settings::patch),
        )
        .route("/admin/v1/tenants/{tid}/ingest", post(ingest::ingest))
        .route(
            "/admin/v1/tenants/{tid}",
            get(tenants::show).delete(tenants::delete),
        )
        .route(
            "/admin/v1/tenants/{tid}/users/{id}",
            axum::routing::delete(tenants::erase_user),
        )
        .route("/admin/v1/tenants/{tid}/auditLog", get(audit_log::list))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // Outermost last: the request context wraps fault injection, so injected errors get
        // the envelope, ids and metrics too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            chaos::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state)
}

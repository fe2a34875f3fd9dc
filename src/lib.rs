//! reportroot: a self-hostable, Microsoft Graph-compatible server for the Office 365 usage
//! reports. It ingests directory, license, activation and activity data per tenant, keeps it
//! durably, and serves the reports exactly as Graph does.
//!
//! Module map (data flows top to bottom on ingest, bottom to top on a report call):
//!
//! - [`api`]: HTTP (axum). Graph URLs and OData parsing, the 302 + signed download, beta
//!   JSON, ingest endpoint, error envelope. The only layer that knows HTTP, CSV and JSON.
//! - [`auth`]: the built-in token issuer (keys in the data dir), token verification, and the
//!   reports authorization policy.
//! - [`ingest`]: the NDJSON ingest contract's parser, pure.
//! - [`engine`]: per-tenant in-memory state (user ordinals, roaring bitmaps per service and
//!   day), batch planning, the validate → commit → apply registry, and streamed ingest
//!   (blocks parsed on every core while the previous block is planned).
//! - [`audit`]: the audit trail's hash chain (entry hashes, verification, erasure digests),
//!   pure; the store appends entries in the transaction of the change they record.
//! - [`reports`]: the report computations, pure functions of a tenant's state.
//! - [`store`]: the durable [`store::Store`] trait and its engines (SQLite embedded, or
//!   PostgreSQL with `--database-url`).
//! - [`model`]: the shared vocabulary (days, services, platforms, records).
//! - [`export`]: a stored tenant written back as ingest NDJSON (`reportroot export`).
//! - [`generate`]: deterministic synthetic tenants in the ingest format (demo, benchmarks).
//! - [`server`]: wiring a [`server::Config`] into a running server with graceful shutdown.
//! - [`telemetry`]: logging setup and Prometheus metrics.
//! - [`throttle`]: Graph-style sliding-window limits on report calls.
//! - [`tls`]: rustls configuration, the self-signed certificate set, the TLS listener.
//! - [`web`]: the browser dashboard's built files, embedded (served by [`api`]).

pub mod api;
pub mod audit;
pub mod auth;
pub mod engine;
pub mod export;
pub mod generate;
pub mod ingest;
pub mod lifecycle;
pub mod model;
pub mod reports;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod web;

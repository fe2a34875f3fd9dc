//! The Prometheus metrics served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub ingested_records: Counter,
    pub ingested_batches: Counter,
    pub rejected_batches: Counter,
    /// Tenants held in memory, and the bytes they are accounted for (`--memory-budget`).
    pub tenants_loaded: Gauge,
    pub tenant_state_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("reportroot");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let ingested_records = Counter::default();
        let ingested_batches = Counter::default();
        let rejected_batches = Counter::default();
        let tenants_loaded = Gauge::default();
        let tenant_state_bytes = Gauge::default();
        registry.register(
            "tenants_loaded",
            "Tenants held in memory",
            tenants_loaded.clone(),
        );
        registry.register(
            "tenant_state_bytes",
            "Bytes of tenant state held in memory (as --memory-budget counts them)",
            tenant_state_bytes.clone(),
        );
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register(
            "ingested_records",
            "Records in accepted batches",
            ingested_records.clone(),
        );
        registry.register(
            "ingested_batches",
            "Accepted ingest batches",
            ingested_batches.clone(),
        );
        registry.register(
            "rejected_batches",
            "Refused ingest batches",
            rejected_batches.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            ingested_records,
            ingested_batches,
            rejected_batches,
            tenants_loaded,
            tenant_state_bytes,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String only fails on a formatter error, which String never raises.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

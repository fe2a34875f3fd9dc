//! Computed and rendered reports, cached per tenant data version. A few recent versions are
//! kept so that a download link stays good for its lifetime while new data arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::odata::{Function, ReportCall};
use super::render::{self, Computed};
use crate::engine::{EngineError, Registry, TenantState};
use crate::model::TenantId;
use crate::reports;

/// Versions kept per tenant and report.
const KEEP_VERSIONS: usize = 4;

/// The data a report depends on: activation reports ignore activity (but not R), so an
/// activity-only batch does not invalidate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKey {
    version: u64,
    refresh: Option<crate::model::Day>,
}

fn data_key(state: &TenantState, call: ReportCall) -> DataKey {
    let version = match call.function {
        Function::ServicesUserCounts => state.version(),
        _ => state.directory_version(),
    };
    DataKey {
        version,
        refresh: state.refresh_date(),
    }
}

#[derive(Debug)]
pub struct Entry {
    pub version: DataKey,
    /// Quoted strong entity tag of the CSV bytes.
    pub etag: String,
    /// BOM + CSV, exactly as downloaded (cheap to clone into a response).
    pub csv: axum::body::Bytes,
    pub computed: Computed,
}

type Key = (TenantId, ReportCall);

#[derive(Default)]
pub struct ReportCache {
    entries: Mutex<HashMap<Key, VecDeque<Arc<Entry>>>>,
}

pub fn compute(state: &TenantState, call: ReportCall) -> Computed {
    match (call.function, call.period) {
        (Function::ActivationCounts, _) => {
            Computed::ActivationCounts(reports::activation_counts(state))
        }
        (Function::ServicesUserCounts, Some(p)) => {
            Computed::ServicesUserCounts(reports::services_user_counts(state, p))
        }
        // The parser guarantees a period for the services report; default defensively.
        (Function::ServicesUserCounts, None) => {
            Computed::ServicesUserCounts(reports::services_user_counts(state, reports::Period::D7))
        }
        (Function::ActivationsUserCounts | Function::LegacyActivationsUserCounts, _) => {
            Computed::ActivationsUserCounts(reports::activations_user_counts(state))
        }
    }
}

fn etag_of(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl ReportCache {
    fn lookup(
        &self,
        key: &(TenantId, ReportCall),
        pred: impl Fn(&Entry) -> bool,
    ) -> Option<Arc<Entry>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)?.iter().find(|e| pred(e)).cloned()
    }

    /// The cached report for the tenant's current data, if the tenant is loaded and the
    /// report was computed already: the non-blocking fast path of every warm request.
    pub fn cached(
        &self,
        registry: &Registry,
        tid: &TenantId,
        call: ReportCall,
    ) -> Option<Arc<Entry>> {
        let shared = registry.loaded(tid)?;
        let version = {
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            data_key(&state, call)
        };
        self.lookup(&(tid.clone(), call), |e| e.version == version)
    }

    /// The report as of the tenant's current data, computed on a miss. Blocking.
    pub fn current(
        &self,
        registry: &Registry,
        tid: &TenantId,
        call: ReportCall,
    ) -> Result<Arc<Entry>, EngineError> {
        let key = (tid.clone(), call);
        let version = registry.read(tid, |s| data_key(s, call))?;
        if let Some(e) = self.lookup(&key, |e| e.version == version) {
            return Ok(e);
        }
        let (version, computed) = registry.read(tid, |s| (data_key(s, call), compute(s, call)))?;
        let csv = render::csv(call.function, &computed);
        let entry = Arc::new(Entry {
            version,
            etag: etag_of(&csv),
            csv: csv.into(),
            computed,
        });
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(key).or_default();
        if !list.iter().any(|e| e.version == version) {
            list.push_front(entry.clone());
            list.truncate(KEEP_VERSIONS);
        }
        Ok(entry)
    }

    /// The rendered report whose entity tag is `etag`, if the cache holds it (non-blocking).
    pub fn held(&self, tid: &TenantId, call: ReportCall, etag: &str) -> Option<Arc<Entry>> {
        self.lookup(&(tid.clone(), call), |e| e.etag == etag)
    }

    /// The rendered report whose entity tag is `etag`, if still held (or current).
    pub fn by_etag(
        &self,
        registry: &Registry,
        tid: &TenantId,
        call: ReportCall,
        etag: &str,
    ) -> Result<Option<Arc<Entry>>, EngineError> {
        if let Some(e) = self.lookup(&(tid.clone(), call), |e| e.etag == etag) {
            return Ok(Some(e));
        }
        let current = self.current(registry, tid, call)?;
        Ok((current.etag == etag).then_some(current))
    }
}

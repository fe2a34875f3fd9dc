//! Computed and rendered reports, cached per tenant data version. A few recent versions are
//! kept so that a download link stays good for its lifetime while new data arrives.
//!
//! Summary reports are small: their CSV bytes and rows stay in memory. Detail reports (a row
//! per user) are streamed into a spool file under `DATA/spool/` while they are computed, so
//! a million-user report never sits in memory; the file is served from disk and removed
//! when its entry leaves the cache (and at start-up).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::ApiError;
use super::render::{self, CsvSink};
use crate::engine::{Registry, TenantState};
use crate::model::{Day, TenantId};
use crate::reports::{self, Call, Concealer, Depends, Kind, Query, Rows};

/// Versions kept per tenant and report.
const KEEP_VERSIONS: usize = 4;

/// The data a report depends on: activation reports ignore activity (but not R), so an
/// activity-only batch does not invalidate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataKey {
    pub version: u64,
    pub refresh: Option<Day>,
}

pub fn data_key(state: &TenantState, call: Call) -> DataKey {
    let version = match call.def().depends {
        Depends::All => state.version(),
        Depends::Directory => state.directory_version(),
    };
    DataKey {
        version,
        refresh: state.refresh_date(),
    }
}

/// A rendered detail report on disk; the file goes when the last holder drops it.
#[derive(Debug)]
pub struct SpoolFile {
    pub path: PathBuf,
    pub len: u64,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug)]
pub enum Body {
    /// BOM + CSV, exactly as downloaded (cheap to clone into a response).
    Memory(axum::body::Bytes),
    File(SpoolFile),
}

#[derive(Debug)]
pub struct Entry {
    pub version: DataKey,
    /// Quoted strong entity tag of the CSV bytes.
    pub etag: String,
    pub body: Body,
    /// The rows of a summary report (for JSON); detail reports page from the state instead.
    pub rows: Option<Rows>,
}

/// What names an entry: the tenant, the call, and whether names are concealed.
pub type CacheKey = (TenantId, Call, bool);

pub struct ReportCache {
    entries: Mutex<HashMap<CacheKey, VecDeque<Arc<Entry>>>>,
    /// Per tenant, how often it was forgotten (deleted): a report computed across a
    /// deletion is answered but never cached.
    forgotten: Mutex<HashMap<TenantId, u64>>,
    spool: PathBuf,
}

fn etag_of(digest: &[u8]) -> String {
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A writer that hashes what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ReportCache {
    /// A cache spooling into `dir` (emptied now: spool files of an earlier run are stale).
    pub fn new(dir: &Path) -> ReportCache {
        let _ = std::fs::remove_dir_all(dir);
        ReportCache {
            entries: Mutex::new(HashMap::new()),
            forgotten: Mutex::new(HashMap::new()),
            spool: dir.to_path_buf(),
        }
    }

    fn generation(&self, tid: &TenantId) -> u64 {
        let g = self.forgotten.lock().unwrap_or_else(|p| p.into_inner());
        g.get(tid).copied().unwrap_or(0)
    }

    /// Drops every cached report of the tenant (its spool files go with the last holder),
    /// so no download link issued for it finds its content again.
    pub fn forget(&self, tid: &TenantId) {
        *self
            .forgotten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tid.clone())
            .or_default() += 1;
        let dropped: Vec<_> = {
            let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<CacheKey> = map.keys().filter(|k| &k.0 == tid).cloned().collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        // Spool files are removed here, outside the map lock.
        drop(dropped);
    }

    fn lookup(&self, key: &CacheKey, pred: impl Fn(&Entry) -> bool) -> Option<Arc<Entry>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)?.iter().find(|e| pred(e)).cloned()
    }

    /// The cached report for the tenant's current data, if the tenant is loaded and the
    /// report was computed already: the non-blocking fast path of every warm request.
    pub fn cached(&self, registry: &Registry, key: &CacheKey) -> Option<Arc<Entry>> {
        let shared = registry.loaded(&key.0)?;
        let version = {
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            data_key(&state, key.1)
        };
        self.lookup(key, |e| e.version == version)
    }

    /// The report as of the tenant's current data, computed on a miss. Blocking.
    pub fn current(
        &self,
        registry: &Registry,
        key: &CacheKey,
        conceal: Option<Concealer>,
    ) -> Result<Arc<Entry>, ApiError> {
        let call = key.1;
        let generation = self.generation(&key.0);
        let version = registry.read(&key.0, |s| data_key(s, call))?;
        if let Some(e) = self.lookup(key, |e| e.version == version) {
            return Ok(e);
        }
        let q = Query::whole(call.args, conceal);
        let entry = match call.def().kind {
            Kind::Summary => {
                let (version, rows) = registry.read(&key.0, |s| {
                    let mut rows = Rows::default();
                    reports::run(s, call, &q, &mut rows).map(|()| (data_key(s, call), rows))
                })??;
                let csv = render::csv_bytes(call.def(), &rows);
                Entry {
                    version,
                    etag: etag_of(&Sha256::digest(&csv)),
                    body: Body::Memory(csv.into()),
                    rows: Some(rows),
                }
            }
            Kind::Detail => self.spool(registry, key, &q)?,
        };
        let entry = Arc::new(entry);
        let forgotten = self.forgotten.lock().unwrap_or_else(|p| p.into_inner());
        if forgotten.get(&key.0).copied().unwrap_or(0) != generation {
            return Ok(entry);
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(key.clone()).or_default();
        if !list.iter().any(|e| e.version == entry.version) {
            list.push_front(entry.clone());
            list.truncate(KEEP_VERSIONS);
        }
        Ok(entry)
    }

    /// Streams a detail report into a new spool file, hashing it on the way.
    fn spool(&self, registry: &Registry, key: &CacheKey, q: &Query) -> Result<Entry, ApiError> {
        let io = |e: std::io::Error| ApiError::Internal(format!("spooling a report: {e}"));
        std::fs::create_dir_all(&self.spool).map_err(io)?;
        let path = self
            .spool
            .join(format!("{}.csv", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&path).map_err(io)?;
        // From here on the guard removes the file on any early return.
        let mut spooled = SpoolFile { path, len: 0 };
        let out = Hashing {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            len: 0,
        };
        let call = key.1;
        let (version, written) = registry.read(&key.0, |s| {
            let mut sink = CsvSink::new(out, call.def());
            let ran = reports::run(s, call, q, &mut sink);
            (data_key(s, call), ran.map(|()| sink.finish()))
        })?;
        let mut out = written?.map_err(io)?;
        out.flush().map_err(io)?;
        spooled.len = out.len;
        Ok(Entry {
            version,
            etag: etag_of(&out.hash.finalize()),
            body: Body::File(spooled),
            rows: None,
        })
    }

    /// The rendered report whose entity tag is `etag`, if the cache holds it (non-blocking).
    pub fn held(&self, key: &CacheKey, etag: &str) -> Option<Arc<Entry>> {
        self.lookup(key, |e| e.etag == etag)
    }

    /// The rendered report whose entity tag is `etag`, if still held (or current).
    pub fn by_etag(
        &self,
        registry: &Registry,
        key: &CacheKey,
        conceal: Option<Concealer>,
        etag: &str,
    ) -> Result<Option<Arc<Entry>>, ApiError> {
        if let Some(e) = self.held(key, etag) {
            return Ok(Some(e));
        }
        let current = self.current(registry, key, conceal)?;
        Ok((current.etag == etag).then_some(current))
    }
}

//! The registry of loaded tenants: loads a tenant from the store on first use, and runs each
//! batch as plan → durable commit → apply under the tenant's write lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use super::snapshot::{self, SnapshotError};
use super::{Erasure, Planner, TenantState};
use crate::ingest::{IngestError, Numbered};
use crate::model::{Day, TenantId};
use crate::store::{
    AuditRecord, BatchWriter, Changeset, Pruned, ReportSettings, Store, StoreError, TenantStats,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Rejected(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the batch: {0}")]
    Read(#[source] std::io::Error),
}

/// The answer to an accepted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    pub ingested: usize,
    pub refresh_date: Option<Day>,
    pub version: u64,
}

type Shared = Arc<RwLock<TenantState>>;

/// Where a registry keeps its tenants' snapshots.
enum Snapshots {
    /// Files in this directory (the embedded store).
    Dir(PathBuf),
    /// In the store, for every node sharing it.
    Store,
    Off,
}

impl Snapshots {
    fn on(&self) -> bool {
        !matches!(self, Snapshots::Off)
    }
}

/// Reads a snapshot kept in the store piece by piece (never the whole of it at once).
struct PieceReader<'a> {
    store: &'a dyn Store,
    tid: &'a TenantId,
    version: u64,
    seq: u32,
    piece: Vec<u8>,
    at: usize,
}

impl<'a> PieceReader<'a> {
    fn new(store: &'a dyn Store, tid: &'a TenantId, version: u64) -> PieceReader<'a> {
        PieceReader {
            store,
            tid,
            version,
            seq: 0,
            piece: Vec::new(),
            at: 0,
        }
    }
}

impl std::io::Read for PieceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            match self
                .store
                .snapshot_piece(self.tid, self.version, self.seq)
                .map_err(std::io::Error::other)?
            {
                Some(p) => {
                    self.piece = p;
                    self.at = 0;
                    self.seq += 1;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What [`Registry::set_evict_hook`] calls with each evicted tenant.
pub type EvictHook = Box<dyn Fn(&TenantId) + Send + Sync>;

/// Whether a tenant in memory was checked against the store's data version
/// ([`Registry::refresh_if_stale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Checked (or no check needed: the store is this node's alone, or the tenant will be
    /// loaded from the store).
    Current,
    /// The store could not be reached: memory holds the last version this node loaded or
    /// wrote, which may be older than what another node acknowledged.
    Unverified,
}

pub struct Registry {
    store: Arc<dyn Store>,
    tenants: Mutex<HashMap<TenantId, Shared>>,
    /// Where snapshots live.
    snapshots: Snapshots,
    /// The data version of each tenant's last written snapshot; held while writing, so
    /// snapshot writers take turns.
    snapshotted: Mutex<HashMap<TenantId, u64>>,
    /// Each tenant's report settings, read from the store once.
    settings: Mutex<HashMap<TenantId, ReportSettings>>,
    /// `--retention-days`: day rows older than R minus this many days are dropped.
    retention_days: Option<u32>,
    /// Per tenant, the writer's turn: one batch, deletion, erasure or retention pass at a
    /// time, taken before the state's lock (see [`Registry::ingest_blocks`]).
    writers: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
    /// `--memory-budget`: the most bytes of tenant state kept loaded ([`TenantState::heap_bytes`]).
    budget: Option<u64>,
    /// Per loaded tenant: its accounted bytes and when it was last used (a tick).
    usage: Mutex<HashMap<TenantId, (u64, u64)>>,
    tick: std::sync::atomic::AtomicU64,
    evict_hook: std::sync::OnceLock<EvictHook>,
    /// Per tenant, the turn to load it from its snapshot or the store.
    loading: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
}

/// The answer to an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// OneDrive accounts that went with the user.
    pub sites: usize,
    pub version: u64,
}

/// The retention floor ([`Registry::with_retention`]): Graph's longest period must still
/// answer in full.
pub const MIN_RETENTION_DAYS: u32 = 180;

impl Registry {
    /// `snapshots`: the directory of snapshot files; without one, a store several nodes
    /// share keeps the snapshots itself ([`Store::put_snapshot`]), and others keep none.
    pub fn new(store: Arc<dyn Store>, snapshots: Option<PathBuf>) -> Registry {
        let snapshots = match snapshots {
            Some(dir) => Snapshots::Dir(dir),
            None if store.shared() => Snapshots::Store,
            None => Snapshots::Off,
        };
        Registry {
            store,
            tenants: Mutex::new(HashMap::new()),
            snapshots,
            snapshotted: Mutex::new(HashMap::new()),
            settings: Mutex::new(HashMap::new()),
            retention_days: None,
            writers: Mutex::new(HashMap::new()),
            budget: None,
            usage: Mutex::new(HashMap::new()),
            tick: std::sync::atomic::AtomicU64::new(0),
            evict_hook: std::sync::OnceLock::new(),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps at most `bytes` of tenant state loaded: past it, the least recently used
    /// tenants nobody is reading are dropped from memory (their snapshot written first if
    /// it is behind) and load again from it on their next use.
    pub fn with_memory_budget(mut self, bytes: Option<u64>) -> Registry {
        self.budget = bytes;
        self
    }

    /// Tenants in memory and the bytes they are accounted for (for `/metrics`).
    pub fn memory(&self) -> (usize, u64) {
        let usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        (usage.len(), usage.values().map(|(b, _)| b).sum())
    }

    /// Marks the tenant used now.
    fn touch(&self, tid: &TenantId) {
        let now = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = self
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(tid)
        {
            e.1 = now;
        }
    }

    /// Records the tenant's size after a change, then keeps to the budget.
    fn account(&self, tid: &TenantId, bytes: u64) {
        let now = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tid.clone(), (bytes, now));
        self.keep_to_budget(tid);
    }

    /// Evicts least recently used tenants (never `keep`, never one in use: a reader or
    /// writer holds its `Arc`) until the accounted bytes fit the budget. Each tenant is tried
    /// at most once per call. Lock order: `tenants`, then `usage`; `snapshotted`, then a
    /// tenant's state (as everywhere else).
    fn keep_to_budget(&self, keep: &TenantId) {
        let Some(budget) = self.budget else { return };
        let mut tried: Vec<TenantId> = Vec::new();
        loop {
            let victim = {
                let map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
                let usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
                let total: u64 = usage.values().map(|(b, _)| b).sum();
                if total <= budget {
                    return;
                }
                let victim = usage
                    .iter()
                    .filter(|(t, _)| *t != keep && !tried.contains(t))
                    .filter(|(t, _)| map.get(*t).is_some_and(|s| Arc::strong_count(s) == 1))
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(t, _)| t.clone());
                match victim {
                    Some(t) => t,
                    None => return,
                }
            };
            tried.push(victim.clone());
            self.evict(&victim);
        }
    }

    /// Drops a tenant from memory once its snapshot is current (so it reloads from that),
    /// and tells the report cache to forget it (`set_evict_hook`). Skipped when its snapshot
    /// cannot be written or it is in use again.
    fn evict(&self, tid: &TenantId) {
        let Some(shared) = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tid)
            .cloned()
        else {
            return;
        };
        let version = {
            let mut snapshotted = self.snapshotted.lock().unwrap_or_else(|p| p.into_inner());
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            if self.snapshots.on()
                && snapshotted.get(tid) != Some(&state.version())
                && state.version() > 0
            {
                if let Err(e) = self.write_snapshot(&state) {
                    tracing::warn!(tenant = %tid, error = %e, "not evicting: writing its snapshot failed");
                    return;
                }
                snapshotted.insert(tid.clone(), state.version());
            }
            state.version()
        };
        drop(shared);
        // Still unused (nobody else holds the `Arc`, so nobody holds its lock either) and
        // unchanged.
        let idle = |s: &Shared| {
            Arc::strong_count(s) == 1 && s.read().map(|st| st.version() == version).unwrap_or(false)
        };
        if let Some(bytes) = self.forget_loaded_if(tid, idle) {
            tracing::info!(tenant = %tid, bytes, "tenant evicted from memory (memory budget)");
        }
    }

    /// Called with each tenant evicted from memory (the API drops its cached reports: a
    /// reloaded tenant restarts some counters its cache keys use).
    pub fn set_evict_hook(&self, hook: EvictHook) {
        let _ = self.evict_hook.set(hook);
    }

    /// The tenant's writer turn (held for a whole change, before any state lock).
    fn writer(&self, tid: &TenantId) -> Arc<Mutex<()>> {
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tid.clone())
            .or_default()
            .clone()
    }

    /// Keeps `days` days of history before R (at least [`MIN_RETENTION_DAYS`]; larger
    /// values are taken as given), pruning after each batch and on [`Registry::retain_all`].
    pub fn with_retention(mut self, days: Option<u32>) -> Registry {
        self.retention_days = days.map(|d| d.max(MIN_RETENTION_DAYS));
        self
    }

    /// The first day retention keeps for a tenant with Report Refresh Date `r`.
    fn retention_floor(&self, r: Option<Day>) -> Option<Day> {
        Some(r?.minus(i32::try_from(self.retention_days?).unwrap_or(i32::MAX)))
    }

    /// Applies retention to a tenant whose writer turn the caller holds: the store first (one
    /// transaction with its audit entry) while reports go on reading, then memory under the
    /// exclusive lock. Does nothing (no store write) when nothing is older than the floor.
    fn apply_retention(&self, shared: &Shared, audit: &AuditRecord) -> Result<Pruned, EngineError> {
        let (tid, before) = {
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            // Anchored no later than tomorrow: a refresh date mistyped years ahead must not
            // take the whole history with it.
            let anchor = state.refresh_date().map(|r| r.min(Day::today().plus(1)));
            let Some(before) = self.retention_floor(anchor) else {
                return Ok(Pruned::default());
            };
            if !state.has_prunable(before) {
                return Ok(Pruned::default());
            }
            (state.tenant().clone(), before)
        };
        let mut a = audit.clone();
        a.action = "retention.prune".into();
        a.target = String::new();
        let pruned = self.store.prune(&tid, before, &a)?;
        if pruned.rows > 0 {
            let mut state = shared.write().unwrap_or_else(|p| p.into_inner());
            state.prune(before);
            state.retained_from = state.retained_from.max(Some(before));
            drop(state);
            shared.read().unwrap_or_else(|p| p.into_inner()).warm();
            tracing::info!(tenant = %tid, %before, rows = pruned.rows, "retention applied");
        }
        Ok(pruned)
    }

    /// Applies retention to every stored tenant (at start-up and daily). A tenant that fails
    /// is logged and the pass goes on.
    pub fn retain_all(&self) -> Result<u64, EngineError> {
        if self.retention_days.is_none() {
            return Ok(0);
        }
        let mut rows = 0;
        for tid in self.store.tenants()? {
            let audit = AuditRecord {
                actor_name: "reportroot (retention)".into(),
                ..crate::audit::operator("retention.prune", "", String::new())
            };
            let done = self.tenant(&tid).and_then(|shared| {
                let turn = self.writer(&tid);
                let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
                self.apply_retention(&shared, &audit)
            });
            match done {
                Ok(p) => rows += p.rows,
                Err(e) => tracing::warn!(tenant = %tid, error = %e, "applying retention failed"),
            }
        }
        Ok(rows)
    }

    /// Erases one user as if never ingested (see [`Erasure`]): the store's rows of the tenant
    /// are rewritten in one durable transaction with the audit entry, in the writer's turn
    /// (reports keep reading the old state); then the new state is swapped in, `forget`
    /// drops cached reports, and the snapshot is rewritten. `None`: no such user.
    pub fn erase_user(
        &self,
        tid: &TenantId,
        user_id: &str,
        audit: &AuditRecord,
        forget: impl FnOnce(),
    ) -> Result<Option<Erased>, EngineError> {
        let shared = self.tenant(tid)?;
        let turn = self.writer(tid);
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        // Reports go on reading the old state until the new one is swapped in: the writer's
        // turn keeps every other change out meanwhile.
        let (plan, old_meta, retained_from) = {
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            (
                Erasure::plan(&state, user_id),
                state.meta,
                state.retained_from,
            )
        };
        let Some(erasure) = plan else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let mut chunks: Vec<Changeset> = Vec::new();
        self.store
            .load(tid, &mut |c| chunks.push(erasure.chunk(c)))?;
        let meta = Erasure::meta(old_meta, &chunks);
        for c in &mut chunks {
            c.meta = meta;
        }
        let audit = AuditRecord {
            details: format!(
                "{{\"version\":{},\"oneDriveAccountsRemoved\":{}}}",
                meta.version,
                erasure.sites_removed()
            ),
            ..audit.clone()
        };
        self.store.rewrite_tenant(tid, &chunks, &meta, &audit)?;
        let mut fresh = TenantState::empty(tid.clone());
        for c in chunks {
            fresh.apply(c);
        }
        fresh.meta = meta;
        fresh.retained_from = retained_from;
        fresh.warm();
        let mut snapshotted = self.snapshotted.lock().unwrap_or_else(|p| p.into_inner());
        let old = {
            let mut state = shared.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *state, fresh)
        };
        forget();
        drop(old);
        if self.snapshots.on() {
            self.remove_snapshot(tid);
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            match self.write_snapshot(&state) {
                Ok(()) => {
                    snapshotted.insert(tid.clone(), state.version());
                }
                Err(e) => {
                    tracing::warn!(tenant = %tid, error = %e, "writing the snapshot after an erasure failed")
                }
            }
        }
        tracing::info!(tenant = %tid, sites = erasure.sites_removed(), version = meta.version, ms = started.elapsed().as_secs_f64() * 1e3, "user erased");
        Ok(Some(Erased {
            sites: erasure.sites_removed(),
            version: meta.version,
        }))
    }

    /// A snapshot of the same data version as the store, if there is one.
    fn load_snapshot(&self, tid: &TenantId) -> Option<TenantState> {
        if !self.snapshots.on() {
            return None;
        }
        let meta = match self.store.meta(tid) {
            Ok(Some(m)) => m,
            Ok(None) => {
                // Never stored, or deleted: a snapshot left by a crash mid-delete must not
                // outlive it (new data could reach its version number).
                self.remove_snapshot(tid);
                return None;
            }
            Err(e) => {
                tracing::warn!(tenant = %tid, error = %e, "reading tenant meta failed");
                return None;
            }
        };
        let read = match &self.snapshots {
            Snapshots::Dir(dir) => snapshot::read(dir, tid, meta.version),
            Snapshots::Store => match self.store.snapshot_info(tid) {
                Ok(Some((version, len))) if version == meta.version => snapshot::from_reader(
                    tid,
                    PieceReader::new(self.store.as_ref(), tid, version),
                    len,
                    version,
                ),
                // None kept, or of another version (the next write replaces it).
                Ok(_) => return None,
                Err(e) => {
                    tracing::warn!(tenant = %tid, error = %e, "reading the stored snapshot failed");
                    return None;
                }
            },
            Snapshots::Off => return None,
        };
        match read {
            Ok(Some(s)) => {
                self.snapshotted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tid.clone(), meta.version);
                Some(s)
            }
            // A snapshot of another version (one left by a crash between an erasure's or a
            // batch's commit and its rewrite) may hold data the store no longer has: remove
            // it; the tenant is loaded from the store and snapshotted anew.
            Ok(None) => {
                self.remove_snapshot(tid);
                None
            }
            Err(e) => {
                tracing::warn!(tenant = %tid, error = %e, "ignoring the snapshot; loading from the store");
                self.remove_snapshot(tid);
                None
            }
        }
    }

    /// Writes the tenant's snapshot where this registry keeps them.
    fn write_snapshot(&self, state: &TenantState) -> Result<(), SnapshotError> {
        match &self.snapshots {
            Snapshots::Dir(dir) => snapshot::write(dir, state),
            Snapshots::Store => {
                let bytes = snapshot::to_bytes(state)?;
                self.store
                    .put_snapshot(state.tenant(), state.version(), &bytes)
                    .map_err(|e| SnapshotError::Io {
                        path: format!("the store's snapshot of {}", state.tenant()),
                        source: std::io::Error::other(e),
                    })
            }
            Snapshots::Off => Ok(()),
        }
    }

    /// Removes the tenant's snapshot file (a store's snapshot is replaced by the next write,
    /// and goes with the tenant's rows on a deletion or an erasure).
    fn remove_snapshot(&self, tid: &TenantId) {
        if let Snapshots::Dir(dir) = &self.snapshots {
            remove_snapshot(dir, tid);
        }
    }

    /// Writes a snapshot of every loaded tenant whose data changed since its last one.
    /// Returns how many were written.
    pub fn snapshot_changed(&self) -> Result<usize, SnapshotError> {
        if !self.snapshots.on() {
            return Ok(0);
        }
        let tenants: Vec<(TenantId, Shared)> = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut written = 0;
        let mut snapshotted = self.snapshotted.lock().unwrap_or_else(|p| p.into_inner());
        for (tid, shared) in tenants {
            let state = shared.read().unwrap_or_else(|p| p.into_inner());
            let done = snapshotted.get(&tid).copied();
            if done == Some(state.version()) || state.version() == 0 {
                continue;
            }
            let started = std::time::Instant::now();
            self.write_snapshot(&state)?;
            tracing::info!(tenant = %tid, version = state.version(), ms = started.elapsed().as_secs_f64() * 1e3, "snapshot written");
            snapshotted.insert(tid, state.version());
            written += 1;
        }
        Ok(written)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// On a store other nodes write ([`Store::shared`]): drops the tenant from memory when
    /// the store holds a newer data version than this node's, so the next use reloads it
    /// (one cheap `meta` read per call). A report or download then never reflects an older
    /// version than the last batch any node acknowledged. Skipped while this node's own
    /// writer is at work on the tenant (it is about to apply that very version).
    ///
    /// While the store cannot be reached, a tenant in memory is kept and the answer is
    /// [`Freshness::Unverified`]: the caller may answer from memory (the last version this
    /// node loaded or wrote) but must say so, since a batch another node acknowledged
    /// before the outage may be missing. Writes and tenants not in memory need the store
    /// and fail with [`StoreError::Unavailable`] meanwhile.
    pub fn refresh_if_stale(&self, tid: &TenantId) -> Result<Freshness, EngineError> {
        if !self.store.shared() {
            return Ok(Freshness::Current);
        }
        let Some(shared) = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tid)
            .cloned()
        else {
            return Ok(Freshness::Current);
        };
        let stored = match self.store.meta(tid) {
            Ok(m) => m.map_or(0, |m| m.version),
            Err(StoreError::Unavailable(detail)) => {
                tracing::warn!(tenant = %tid, %detail, "the store is unreachable: answering from memory, unverified");
                return Ok(Freshness::Unverified);
            }
            Err(e) => return Err(e.into()),
        };
        let held = shared.read().unwrap_or_else(|p| p.into_inner()).version();
        if stored == held {
            return Ok(Freshness::Current);
        }
        let turn = self.writer(tid);
        let Ok(_turn) = turn.try_lock() else {
            return Ok(Freshness::Current);
        };
        self.forget_loaded(tid);
        tracing::info!(tenant = %tid, held, stored, "another node wrote the tenant: reloading it");
        Ok(Freshness::Current)
    }

    /// Drops the tenant from memory (readers holding it finish on the old state) and has
    /// the API forget its cached reports.
    fn forget_loaded(&self, tid: &TenantId) {
        self.forget_loaded_if(tid, |_| true);
    }

    /// [`Registry::forget_loaded`] if `pred` holds for the loaded state, decided and done
    /// under the map locks (`tenants`, then `usage`). Returns the bytes it was accounted
    /// for, `None` if it was not loaded or `pred` refused.
    fn forget_loaded_if(&self, tid: &TenantId, pred: impl FnOnce(&Shared) -> bool) -> Option<u64> {
        let bytes = {
            let mut map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            if !map.get(tid).is_some_and(pred) {
                return None;
            }
            map.remove(tid);
            usage.remove(tid).map_or(0, |(b, _)| b)
        };
        if let Some(hook) = self.evict_hook.get() {
            hook(tid);
        }
        Some(bytes)
    }

    /// The tenant's state, loaded from the store on first use (empty if never written).
    pub fn tenant(&self, tid: &TenantId) -> Result<Shared, EngineError> {
        if let Some(t) = self.loaded(tid) {
            return Ok(t);
        }
        // One loader per tenant (two first requests must not load it twice), and no global
        // lock while it loads: other tenants' requests go on (a reload after an eviction
        // can take seconds for a big tenant).
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tid.clone())
            .or_default()
            .clone();
        let _gate = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = self.loaded(tid) {
            return Ok(t);
        }
        let started = std::time::Instant::now();
        let mut state = match self.load_snapshot(tid) {
            Some(s) => s,
            None => {
                let mut state = TenantState::empty(tid.clone());
                self.store.load(tid, &mut |chunk| state.apply(chunk))?;
                state
            }
        };
        match self.store.retained_from(tid) {
            Ok(d) => state.retained_from = d,
            Err(e) => {
                tracing::warn!(tenant = %tid, error = %e, "reading the retention floor failed")
            }
        }
        state.warm();
        tracing::info!(tenant = %tid, users = state.users().len(), ms = started.elapsed().as_secs_f64() * 1e3, "tenant loaded");
        let bytes = state.heap_bytes();
        let shared = Arc::new(RwLock::new(state));
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tid.clone(), shared.clone());
        self.account(tid, bytes);
        Ok(shared)
    }

    /// The tenant's state if it is already loaded (never blocks on the store).
    pub fn loaded(&self, tid: &TenantId) -> Option<Shared> {
        let t = self
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tid)
            .cloned();
        if t.is_some() {
            self.touch(tid);
        }
        t
    }

    /// What the store holds of the tenant (`None`: nothing).
    pub fn stats(&self, tid: &TenantId) -> Result<Option<TenantStats>, EngineError> {
        Ok(self.store.stats(tid)?)
    }

    /// Deletes everything of the tenant, like a batch: the store's rows go in one durable
    /// transaction (under the tenant's write lock, so no batch or report runs meanwhile);
    /// only then is memory emptied, `forget` called (still under the lock: the API drops
    /// its cached reports there) and the snapshot file removed. A crash after the commit
    /// leaves a snapshot whose tenant has no meta in the store: it is never loaded (a
    /// snapshot is used only when its version equals the store's) and is removed when the
    /// tenant is next loaded and at start-up. The emptied state keeps counting versions up
    /// from the deleted one, so nothing keyed on an old version (cache entries, skip
    /// tokens) can match new data. Returns `false` if nothing was stored.
    pub fn delete_tenant(
        &self,
        tid: &TenantId,
        audit: &AuditRecord,
        forget: impl FnOnce(),
    ) -> Result<bool, EngineError> {
        let shared = self.tenant(tid)?;
        let turn = self.writer(tid);
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        // Lock order as in `snapshot_changed`: the writer's turn, the snapshot bookkeeping,
        // then the tenant.
        let mut snapshotted = self.snapshotted.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = shared.write().unwrap_or_else(|p| p.into_inner());
        let existed = self.store.delete_tenant(tid, audit)?;
        let mut empty = TenantState::empty(tid.clone());
        empty.meta.version = state.version() + 1;
        *state = empty;
        state.warm();
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tid);
        forget();
        // Nothing to snapshot until the next batch (which writes version + 2).
        snapshotted.insert(tid.clone(), state.version());
        self.remove_snapshot(tid);
        Ok(existed)
    }

    /// Removes snapshot files (and leftover temporary ones) of tenants the store does not
    /// hold: what a crash between a deletion's commit and the file's removal leaves.
    fn sweep_snapshots(&self, stored: &[TenantId]) {
        let Snapshots::Dir(dir) = &self.snapshots else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let tid = name.split('.').next().and_then(TenantId::parse);
            let orphan = tid.is_none_or(|t| !stored.contains(&t)) || name.ends_with(".tmp");
            if orphan && let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!(file = %name, error = %err, "removing a stale snapshot failed");
            }
        }
    }

    /// Loads every stored tenant (at start-up, so the first report is fast).
    pub fn warm_up(&self) -> Result<usize, EngineError> {
        let ids = self.store.tenants()?;
        self.sweep_snapshots(&ids);
        for tid in &ids {
            self.tenant(tid)?;
        }
        Ok(ids.len())
    }

    /// The tenant's report settings (cached; the store is read on first use).
    pub fn report_settings(&self, tid: &TenantId) -> Result<ReportSettings, EngineError> {
        if let Some(s) = self
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tid)
        {
            return Ok(*s);
        }
        let s = self.store.report_settings(tid)?;
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tid.clone(), s);
        Ok(s)
    }

    /// Stores the tenant's report settings durably, then serves them.
    pub fn set_report_settings(
        &self,
        tid: &TenantId,
        settings: ReportSettings,
        audit: &AuditRecord,
    ) -> Result<(), EngineError> {
        let mut map = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        self.store.set_report_settings(tid, &settings, audit)?;
        map.insert(tid.clone(), settings);
        Ok(())
    }

    /// Runs `f` on a read-locked tenant.
    pub fn read<T>(
        &self,
        tid: &TenantId,
        f: impl FnOnce(&TenantState) -> T,
    ) -> Result<T, EngineError> {
        let shared = self.tenant(tid)?;
        let guard: RwLockReadGuard<'_, TenantState> =
            shared.read().unwrap_or_else(|p| p.into_inner());
        Ok(f(&guard))
    }

    /// Applies one batch atomically: nothing of a refused or failed batch is kept, and an
    /// `Ok` answer means the batch is durable.
    pub fn ingest(
        &self,
        tid: &TenantId,
        batch: &[Numbered],
        audit: Option<&AuditRecord>,
    ) -> Result<IngestOutcome, EngineError> {
        self.ingest_blocks(tid, false, audit, |feeder| {
            feeder.feed(batch)?;
            Ok(batch.len())
        })
    }

    /// [`Registry::ingest`] for a batch too big to hold parsed whole: `feed` parses the
    /// batch block by block, hands each block to the [`Feeder`] and returns the record
    /// count. Same guarantees: an error from `feed` stores nothing, and `Ok` means durable.
    /// Writers of a tenant take turns (one batch, deletion, erasure or retention pass at a
    /// time); reports are blocked only while the committed change is applied.
    ///
    /// With `write_early`, each block's rows go to the store inside the batch's open
    /// transaction as soon as they are planned, overlapping the store's work with parsing
    /// (the commit was a third of a 1M-user load); the store stays busy for the whole batch,
    /// so this is for bulk loads (`reportroot ingest`), not for the server.
    pub fn ingest_blocks(
        &self,
        tid: &TenantId,
        write_early: bool,
        audit: Option<&AuditRecord>,
        feed: impl FnOnce(&mut Feeder<'_, '_>) -> Result<usize, EngineError>,
    ) -> Result<IngestOutcome, EngineError> {
        // Unverified (the store is away) fails at the commit anyway.
        self.refresh_if_stale(tid)?;
        let shared = self.tenant(tid)?;
        let turn = self.writer(tid);
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        // Planning only reads the state and the commit touches only the store: reports go on
        // reading the last applied version meanwhile (shared lock); the state is locked
        // exclusively just to apply the committed change.
        let reading = shared.read().unwrap_or_else(|p| p.into_inner());
        let t0 = std::time::Instant::now();
        let mut feeder = Feeder {
            planner: reading.planner(),
            writer: if write_early {
                Some(self.store.begin(tid)?)
            } else {
                None
            },
        };
        let records = feed(&mut feeder)?;
        let Feeder { planner, writer } = feeder;
        let change = planner.finish();
        let t1 = std::time::Instant::now();
        let audit = audit.map(|a| AuditRecord {
            action: "ingest".into(),
            details: format!(
                "{{\"records\":{records},\"version\":{},\"refreshDate\":{}}}",
                change.meta.version,
                change
                    .meta
                    .explicit_refresh
                    .or(change.meta.max_activity)
                    .map_or("null".to_string(), |d| format!("\"{d}\""))
            ),
            ..a.clone()
        });
        let committed = match writer {
            Some(w) => w.finish(
                &change.activity,
                &change.counters,
                &change.clients,
                &change.meta,
                audit.as_ref(),
            ),
            None => self.store.commit(tid, &change, audit.as_ref()),
        };
        if let Err(e) = committed {
            if matches!(e, StoreError::Conflict(_)) {
                // Another node wrote the tenant while this batch was planned: reload it, so
                // the client's retry is planned on the current version.
                drop(reading);
                self.forget_loaded(tid);
            }
            return Err(e.into());
        }
        let t2 = std::time::Instant::now();
        drop(reading);
        let mut state = shared.write().unwrap_or_else(|p| p.into_inner());
        let t3 = std::time::Instant::now();
        state.apply(change);
        let t4 = std::time::Instant::now();
        drop(state);
        // Retention after the batch (a failure here leaves the batch durable and is retried
        // by the next batch and the daily pass).
        let prune_audit = audit.unwrap_or_else(|| crate::audit::operator("", "", String::new()));
        if let Err(e) = self.apply_retention(&shared, &prune_audit) {
            tracing::warn!(tenant = %tid, error = %e, "retention after the batch failed");
        }
        // The caches reports share (licensed sets) are filled under the shared lock: readers
        // need not wait for them.
        let state = shared.read().unwrap_or_else(|p| p.into_inner());
        state.warm();
        let bytes = state.heap_bytes();
        drop(state);
        self.account(tid, bytes);
        let state = shared.read().unwrap_or_else(|p| p.into_inner());
        tracing::debug!(
            tenant = %tid,
            records,
            write_early,
            parse_and_plan_ms = (t1 - t0).as_secs_f64() * 1e3,
            commit_ms = (t2 - t1).as_secs_f64() * 1e3,
            lock_wait_ms = (t3 - t2).as_secs_f64() * 1e3,
            apply_ms = (t4 - t3).as_secs_f64() * 1e3,
            warm_ms = t4.elapsed().as_secs_f64() * 1e3,
            "batch applied"
        );
        Ok(IngestOutcome {
            ingested: records,
            refresh_date: state.refresh_date(),
            version: state.version(),
        })
    }
}

fn remove_snapshot(dir: &std::path::Path, tid: &TenantId) {
    let p = snapshot::path(dir, tid);
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(file = %p.display(), error = %e, "removing a snapshot failed"),
    }
}

/// Takes a batch's blocks in order: plans each and, when writing early, stores its rows.
pub struct Feeder<'s, 'w> {
    planner: Planner<'s>,
    writer: Option<Box<dyn BatchWriter + 'w>>,
}

impl Feeder<'_, '_> {
    pub fn feed(&mut self, block: &[Numbered]) -> Result<(), EngineError> {
        self.planner.feed(block)?;
        if let Some(w) = &mut self.writer {
            w.rows(self.planner.unwritten())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Limits, parse_batch};
    use crate::store::SqliteStore;

    /// Reports read the last applied version while a batch is planned and committed: a
    /// reader started from inside the batch's feed finishes before the feed does (with the
    /// state write-locked for the whole batch, as before, it would wait for the batch, which
    /// waits for it).
    #[test]
    fn reads_go_on_while_a_batch_is_planned() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::new(
            Arc::new(SqliteStore::open(dir.path()).unwrap()),
            None,
        ));
        let tid = TenantId::parse("t1").unwrap();
        let first = br#"{"type":"user","id":"u1","userPrincipalName":"a@x","displayName":"A"}"#;
        let batch = parse_batch(first, &Limits::default()).unwrap();
        registry.ingest(&tid, &batch, None).unwrap();
        let second = br#"{"type":"user","id":"u2","userPrincipalName":"b@x","displayName":"B"}"#;
        let batch = parse_batch(second, &Limits::default()).unwrap();
        let (r, t) = (registry.clone(), tid.clone());
        registry
            .ingest_blocks(&tid, false, None, |feeder| {
                let (tx, rx) = std::sync::mpsc::channel();
                let (r, t) = (r.clone(), t.clone());
                std::thread::spawn(move || {
                    let seen = r.read(&t, |s| (s.version(), s.users().len()));
                    let _ = tx.send(seen.ok());
                });
                let seen = rx
                    .recv_timeout(std::time::Duration::from_secs(20))
                    .expect("a report read while the batch is planned");
                assert_eq!(seen, Some((1, 1)), "the last applied version");
                feeder.feed(&batch)?;
                Ok(batch.len())
            })
            .unwrap();
        assert_eq!(registry.read(&tid, |s| s.users().len()).unwrap(), 2);
    }
}

//! Durable storage behind one interface, [`Store`]. The engine hands it a [`Changeset`] per
//! accepted batch and reads a whole tenant back on start; each engine lives in its own file
//! (`sqlite.rs`, the embedded default; `postgres.rs`, a database server). No SQL type leaves
//! this module.

mod postgres;
mod sqlite;

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::model::{
    Activation, Day, MAX_COUNTERS, Mailbox, MailboxState, Service, Site, SiteState, Span, TenantId,
    Workload,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot be reached (down, unreachable, or no connection free in time).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Another process wrote the tenant since this batch was planned.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// The operation does not exist for this engine.
    #[error("{0}")]
    Unsupported(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One key of the signing key ring as a shared store keeps it (see `auth::keys`): global,
/// not tenant data. `material` is opaque to the store (PEM or base64); only `retired` and
/// `accepted_until` ever change after the key is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// `token` (RS256), `link` (HMAC) or `digest` (the never-rotated concealment secret).
    pub kind: String,
    pub kid: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; `None` while the key is the one signing.
    pub retired: Option<i64>,
    /// Unix seconds: a retired key verifies until then.
    pub accepted_until: Option<i64>,
    pub material: String,
}

/// A user as stored. `ord` is the tenant-local dense ordinal used in bitmaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub ord: u32,
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub deleted: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub ord: u32,
    pub service: Service,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub ord: u32,
    pub product_type: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRow {
    pub ord: u32,
    pub activation: Activation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    pub ord: u32,
    pub mailbox: Mailbox,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxDayRow {
    pub ord: u32,
    pub day: Day,
    pub state: MailboxState,
}

/// A site as stored: `ord` is its tenant-local dense ordinal; `owner` the owner's user ordinal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    pub ord: u32,
    pub site: Site,
    pub owner: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDayRow {
    pub ord: u32,
    pub day: Day,
    pub state: SiteState,
}

/// All users active in `service` on `day`, as a bitmap of ordinals.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityDay {
    pub service: Service,
    pub day: Day,
    pub users: RoaringBitmap,
}

/// One workload's activity counters on one day: an entry per user with any, ordinals
/// ascending (the complete, merged block, as for [`ActivityDay`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CounterBlock {
    pub ords: Vec<u32>,
    pub values: Vec<[u32; MAX_COUNTERS]>,
}

impl CounterBlock {
    /// Little-endian: entry count, then per entry the ordinal and the counters.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.ords.len() as u32).to_le_bytes());
        for (o, v) in self.ords.iter().zip(&self.values) {
            out.extend_from_slice(&o.to_le_bytes());
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }

    /// The inverse of [`CounterBlock::encode`]; `None` if the bytes are not one.
    pub fn decode(b: &[u8]) -> Option<CounterBlock> {
        let word = |i: usize| -> Option<u32> {
            b.get(i * 4..i * 4 + 4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let n = word(0)? as usize;
        let per = 1 + MAX_COUNTERS;
        if b.len() != 4 + n.checked_mul(per * 4)? {
            return None;
        }
        let mut block = CounterBlock {
            ords: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        };
        for e in 0..n {
            let base = 1 + e * per;
            block.ords.push(word(base)?);
            let mut v = [0u32; MAX_COUNTERS];
            for (k, x) in v.iter_mut().enumerate() {
                *x = word(base + 1 + k)?;
            }
            block.values.push(v);
        }
        if block.ords.windows(2).any(|w| w[0] >= w[1]) {
            return None;
        }
        Some(block)
    }

    /// The entries of ordinals in `lo..hi`.
    pub fn range(&self, lo: u32, hi: u32) -> std::ops::Range<usize> {
        self.ords.partition_point(|o| *o < lo)..self.ords.partition_point(|o| *o < hi)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDay {
    pub workload: Workload,
    pub day: Day,
    pub block: CounterBlock,
}

/// Signals of the email app usage reports: the nine clients, then the seven Outlook versions.
pub const CLIENT_SIGNALS: usize = 16;

/// Per day, the users who used each email client and each Outlook version (the complete,
/// merged bitmaps of a touched day).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDay {
    pub day: Day,
    pub signals: Vec<RoaringBitmap>,
}

impl ClientDay {
    /// Each signal's bitmap, length-prefixed.
    pub fn encode(signals: &[RoaringBitmap], out: &mut Vec<u8>) {
        for b in signals {
            out.extend_from_slice(&(b.serialized_size() as u32).to_le_bytes());
            // Serializing into a Vec cannot fail.
            let _ = b.serialize_into(&mut *out);
        }
    }

    pub fn decode(mut b: &[u8]) -> Option<Vec<RoaringBitmap>> {
        let mut out = Vec::with_capacity(CLIENT_SIGNALS);
        for _ in 0..CLIENT_SIGNALS {
            let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
            let body = b.get(4..4 + len)?;
            out.push(RoaringBitmap::deserialize_from(body).ok()?);
            b = &b[4 + len..];
        }
        b.is_empty().then_some(out)
    }
}

/// Per-tenant scalars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantMeta {
    /// The Report Refresh Date set by the latest `refresh` record, if any.
    pub explicit_refresh: Option<Day>,
    /// The latest activity date ingested.
    pub max_activity: Option<Day>,
    /// Bumped by every accepted batch.
    pub version: u64,
}

/// What the store holds of one tenant (`GET /admin/v1/tenants/{tid}`, `reportroot tenants show`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantStats {
    pub meta: TenantMeta,
    /// Users ever ingested (deleted ones included).
    pub users: u64,
    /// Distinct days with activity in some service.
    pub activity_days: u64,
    pub first_activity: Option<Day>,
    pub last_activity: Option<Day>,
    /// Bytes of the tenant's stored values (text and blob lengths, 8 per integer), not
    /// counting the engine's page and index overhead.
    pub bytes: u64,
}

/// A tenant's `/admin/reportSettings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSettings {
    /// Graph's default since 2021: user names in detail reports are concealed.
    pub display_concealed_names: bool,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            display_concealed_names: true,
        }
    }
}

/// What one accepted batch changes, in the batch's order (a later row with the same key
/// replaces an earlier one). Also the shape of a whole tenant read back by [`Store::load`].
#[derive(Debug, Clone, Default)]
pub struct Changeset {
    pub users: Vec<UserRow>,
    pub licenses: Vec<LicenseRow>,
    pub products: Vec<ProductRow>,
    pub activations: Vec<ActivationRow>,
    pub mailboxes: Vec<MailboxRow>,
    pub mailbox_days: Vec<MailboxDayRow>,
    pub sites: Vec<SiteRow>,
    pub site_days: Vec<SiteDayRow>,
    /// The complete (merged) bitmap of each touched service-day.
    pub activity: Vec<ActivityDay>,
    /// The complete (merged) counters of each touched workload-day.
    pub counters: Vec<CounterDay>,
    /// The complete email client signals of each touched day.
    pub clients: Vec<ClientDay>,
    pub meta: TenantMeta,
}

/// Directory rows of a batch, or of a part of one (see [`BatchWriter`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rows<'a> {
    pub users: &'a [UserRow],
    pub licenses: &'a [LicenseRow],
    pub products: &'a [ProductRow],
    pub activations: &'a [ActivationRow],
    pub mailboxes: &'a [MailboxRow],
    pub mailbox_days: &'a [MailboxDayRow],
    pub sites: &'a [SiteRow],
    pub site_days: &'a [SiteDayRow],
}

impl Changeset {
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            users: &self.users,
            licenses: &self.licenses,
            products: &self.products,
            activations: &self.activations,
            mailboxes: &self.mailboxes,
            mailbox_days: &self.mailbox_days,
            sites: &self.sites,
            site_days: &self.site_days,
        }
    }
}

/// Who did what, as the audit trail records it (see [`crate::audit`]). The store appends it,
/// chained to the tenant's previous entry, in the same transaction as the change it records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The token's `appid` (or `azp`), `oid`, and app name; `"operator"` for the CLI.
    pub app_id: String,
    pub object_id: String,
    pub actor_name: String,
    /// What was done: `ingest`, `tenant.delete`, `user.erase`, `retention.prune`,
    /// `reportSettings.update`, `app.register`, `app.remove`.
    pub action: String,
    /// What it was done to (an erasure: the keyed digest of the user id, never the id).
    pub target: String,
    /// A JSON object with the figures of the change (counts, dates, versions).
    pub details: String,
    /// The `request-id` of the HTTP request, empty for the CLI.
    pub request_id: String,
}

/// An [`AuditRecord`] as stored: its place in the tenant's chain and the hashes binding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub tenant: String,
    /// 1, 2, 3, … per tenant.
    pub seq: u64,
    pub record: AuditRecord,
    /// The previous entry's `hash` (zeros for the first).
    pub prev: [u8; 32],
    pub hash: [u8; 32],
}

/// What retention removed of a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Day rows (activity, counters, email clients, mailbox and site states) removed.
    pub rows: u64,
}

/// One batch written in parts inside one open transaction: [`BatchWriter::rows`] as blocks
/// are planned, then [`BatchWriter::finish`] with the activity and scalars, which commits.
/// Nothing is visible or durable before `finish` returns `Ok`; dropping the writer
/// unfinished (a later bad line, an error) rolls everything back.
pub trait BatchWriter {
    fn rows(&mut self, rows: Rows<'_>) -> Result<(), StoreError>;
    fn finish(
        self: Box<Self>,
        activity: &[ActivityDay],
        counters: &[CounterDay],
        clients: &[ClientDay],
        meta: &TenantMeta,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError>;
}

/// A durable store of tenants. `commit` is atomic and durable when it returns `Ok`.
pub trait Store: Send + Sync + 'static {
    /// Starts writing one batch of `tenant` in parts. Holds the store's writer until the
    /// batch ends, so it is meant for bulk loads where nothing else waits on the store.
    fn begin(&self, tenant: &TenantId) -> Result<Box<dyn BatchWriter + '_>, StoreError>;
    /// Streams a whole tenant back to `sink` in chunks (users before the rows naming them;
    /// each chunk carries the meta). Returns `false` if the tenant was never written.
    fn load(&self, tenant: &TenantId, sink: &mut dyn FnMut(Changeset)) -> Result<bool, StoreError>;
    /// The tenant's scalars alone (cheap), or `None` if it was never written.
    fn meta(&self, tenant: &TenantId) -> Result<Option<TenantMeta>, StoreError>;
    /// Applies one batch's changes atomically and durably (with its audit entry, if any).
    fn commit(
        &self,
        tenant: &TenantId,
        change: &Changeset,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError>;
    /// The tenant's report settings (the defaults if never set).
    fn report_settings(&self, tenant: &TenantId) -> Result<ReportSettings, StoreError>;
    /// Replaces the tenant's report settings, durably (with the audit entry).
    fn set_report_settings(
        &self,
        tenant: &TenantId,
        settings: &ReportSettings,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Every tenant with stored data.
    fn tenants(&self) -> Result<Vec<TenantId>, StoreError>;
    /// What is stored of the tenant, or `None` if it was never written (or was deleted).
    fn stats(&self, tenant: &TenantId) -> Result<Option<TenantStats>, StoreError>;
    /// Removes every row of the tenant (data, meta, report settings) in one transaction,
    /// atomically and durably, leaving none of its bytes in the store's files (freed space
    /// overwritten, the log checkpointed). `false` if nothing was stored.
    /// The audit trail is kept: the deletion's own entry is appended in the same transaction.
    fn delete_tenant(&self, tenant: &TenantId, audit: &AuditRecord) -> Result<bool, StoreError>;
    /// Replaces every data row of the tenant (report settings and the audit trail stay) by
    /// `chunks` and sets `meta`, in one transaction with the audit entry, leaving none of
    /// the replaced bytes in the store's files (as [`Store::delete_tenant`]). Used by the
    /// erasure of a user, which renumbers the rest.
    fn rewrite_tenant(
        &self,
        tenant: &TenantId,
        chunks: &[Changeset],
        meta: &TenantMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Retention: removes the tenant's day rows dated before `before` (activity, counters,
    /// email clients), and mailbox and site states replaced before it (the state in force on
    /// `before` stays), remembers `before` (see [`Store::retained_from`]) and moves the data
    /// version on, with the audit entry, in one transaction. Nothing is written when there is nothing to remove.
    fn prune(
        &self,
        tenant: &TenantId,
        before: crate::model::Day,
        audit: &AuditRecord,
    ) -> Result<Pruned, StoreError>;
    /// The earliest day retention kept for the tenant (`None`: nothing was ever removed).
    fn retained_from(&self, tenant: &TenantId) -> Result<Option<crate::model::Day>, StoreError>;
    /// Appends one audit entry to the tenant's chain, durably.
    fn audit(&self, tenant: &TenantId, record: &AuditRecord) -> Result<AuditEntry, StoreError>;
    /// Audit entries with `seq > after`, oldest first, at most `limit`; of one tenant, or
    /// of every tenant (each in its own sequence) when `tenant` is `None`.
    fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Writes a consistent copy of the whole store (every tenant, as of one committed
    /// batch boundary) to the file `dest`, while writers go on.
    fn backup_to(&self, dest: &std::path::Path) -> Result<(), StoreError>;
    /// A cheap round trip to the store (`/healthz`): `Err` when it cannot be reached.
    fn ping(&self) -> Result<(), StoreError>;
    /// Whether other processes (other nodes) may write this store, so a node must check
    /// the tenant's data version before answering from memory.
    fn shared(&self) -> bool {
        false
    }
    /// App registrations kept in the store (a store several nodes share, so every node's
    /// token endpoint knows every app): each an opaque document (the auth module's JSON),
    /// keyed by tenant and client id. Stores that are not shared answer `Unsupported`
    /// (the data dir's `apps.json` holds them).
    fn app_documents(&self, tenant: Option<&TenantId>) -> Result<Vec<String>, StoreError> {
        let _ = tenant;
        Err(StoreError::Unsupported(
            "app registrations live in apps.json".into(),
        ))
    }
    /// Adds or replaces one app registration document.
    fn put_app_document(
        &self,
        tenant: &TenantId,
        client_id: &str,
        doc: &str,
    ) -> Result<(), StoreError> {
        let _ = (tenant, client_id, doc);
        Err(StoreError::Unsupported(
            "app registrations live in apps.json".into(),
        ))
    }
    /// Removes one app registration; `false` if there was none.
    fn delete_app_document(&self, tenant: &TenantId, client_id: &str) -> Result<bool, StoreError> {
        let _ = (tenant, client_id);
        Err(StoreError::Unsupported(
            "app registrations live in apps.json".into(),
        ))
    }
    /// Keeps the tenant's engine snapshot (opaque bytes of data version `version`) in the
    /// store, replacing the previous one, for nodes that have never loaded the tenant.
    /// Stores whose nodes keep snapshot files beside them answer `Unsupported`.
    fn put_snapshot(
        &self,
        tenant: &TenantId,
        version: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let _ = (tenant, version, bytes);
        Err(StoreError::Unsupported(
            "this store keeps no snapshots".into(),
        ))
    }
    /// The stored snapshot's version and length, if any (cheap).
    fn snapshot_info(&self, tenant: &TenantId) -> Result<Option<(u64, u64)>, StoreError> {
        let _ = tenant;
        Ok(None)
    }
    /// Piece `seq` (0, 1, …) of the stored snapshot of data version `version`; `None` past
    /// the last piece or if the snapshot is of another version.
    fn snapshot_piece(
        &self,
        tenant: &TenantId,
        version: u64,
        seq: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (tenant, version, seq);
        Ok(None)
    }
    /// The signing key ring kept in the store (a store several nodes share, so a link or
    /// token one node signs verifies on every other). Stores that are not shared answer
    /// `Unsupported` (the data dir's `keys/` holds the keys).
    fn key_rows(&self) -> Result<Vec<KeyRow>, StoreError> {
        Err(StoreError::Unsupported("keys live in the data dir".into()))
    }
    /// Changes the key ring atomically across nodes: `change` sees every stored key (under
    /// a lock that every other `update_keys` waits for) and returns the rows to write, new
    /// keys or changed `retired`/`accepted_until` of stored ones (their material is never
    /// changed). Returns the ring as stored afterwards.
    fn update_keys(
        &self,
        change: &mut dyn FnMut(&[KeyRow]) -> Vec<KeyRow>,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let _ = change;
        Err(StoreError::Unsupported("keys live in the data dir".into()))
    }
    /// Shared throttling (several nodes on one store): counts one call on each of the
    /// tenant's `counters` (name, limit per window) if all have room, atomically across
    /// nodes; otherwise counts nothing and returns the milliseconds until the fullest frees a
    /// slot. Stores that are not shared count in process (`Unsupported`).
    fn throttle(
        &self,
        tenant: &TenantId,
        counters: &[(String, u32)],
        window_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let _ = (tenant, counters, window_ms, now_ms);
        Err(StoreError::Unsupported(
            "this store counts throttling in process".into(),
        ))
    }
}

/// Where tenants are stored: the embedded SQLite file in the data dir (the default), or a
/// PostgreSQL database.
#[derive(Debug, Clone, Default)]
pub enum StoreKind {
    #[default]
    Sqlite,
    Postgres(PostgresOptions),
}

impl StoreKind {
    /// PostgreSQL when `url` is given, else SQLite.
    pub fn from_url(url: Option<String>, ca_file: Option<PathBuf>) -> StoreKind {
        match url {
            Some(url) if !url.trim().is_empty() => {
                StoreKind::Postgres(PostgresOptions { url, ca_file })
            }
            _ => StoreKind::Sqlite,
        }
    }

    /// Opens the store (SQLite: `DATA_DIR/reportroot.sqlite3`, created if needed;
    /// PostgreSQL: connects and migrates).
    pub fn open(&self, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreKind::Sqlite => Arc::new(SqliteStore::open(data_dir)?),
            StoreKind::Postgres(o) => Arc::new(PostgresStore::connect(o)?),
        })
    }

    /// Where the engine keeps its snapshot files. Only with SQLite: a snapshot is matched
    /// to the store by data version alone, and a data dir can outlive or be pointed at
    /// another PostgreSQL database, so PostgreSQL keeps its snapshots in the database.
    pub fn snapshot_dir(&self, data_dir: &Path) -> Option<PathBuf> {
        match self {
            StoreKind::Sqlite => Some(data_dir.join("snapshots")),
            StoreKind::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreKind::Postgres(_))
    }
}

//! The embedded default engine: one SQLite database file in the data dir, WAL mode with
//! `synchronous=FULL`, so a committed batch survives a crash or power loss.

use std::path::Path;
use std::sync::Mutex;

use roaring::RoaringBitmap;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    ActivationRow, ActivityDay, AuditEntry, AuditRecord, BatchWriter, Changeset, ClientDay,
    CounterBlock, CounterDay, LicenseRow, MailboxDayRow, MailboxRow, ProductRow, Pruned,
    ReportSettings, Rows, SiteDayRow, SiteRow, Store, StoreError, TenantMeta, TenantStats, UserRow,
};
use crate::model::{
    Activation, Day, Mailbox, MailboxState, Platform, RecipientType, Service, Site, SiteKind,
    SiteState, Span, TenantId, Workload,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    tid TEXT PRIMARY KEY,
    explicit_refresh INTEGER,
    max_activity INTEGER,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, id TEXT NOT NULL,
    upn TEXT NOT NULL, display_name TEXT NOT NULL, deleted INTEGER,
    PRIMARY KEY (tid, ord)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_licenses (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, service INTEGER NOT NULL,
    assigned INTEGER NOT NULL, removed INTEGER,
    PRIMARY KEY (tid, ord, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS product_assignments (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, product TEXT NOT NULL,
    assigned INTEGER NOT NULL, removed INTEGER,
    PRIMARY KEY (tid, ord, product)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activations (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, product TEXT NOT NULL, device TEXT NOT NULL,
    platform INTEGER NOT NULL, activated INTEGER NOT NULL, deactivated INTEGER, shared INTEGER NOT NULL,
    PRIMARY KEY (tid, ord, product, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activity_days (
    tid TEXT NOT NULL, service INTEGER NOT NULL, day INTEGER NOT NULL, users BLOB NOT NULL,
    PRIMARY KEY (tid, service, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter_days (
    tid TEXT NOT NULL, workload INTEGER NOT NULL, day INTEGER NOT NULL, counters BLOB NOT NULL,
    PRIMARY KEY (tid, workload, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailboxes (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, created INTEGER NOT NULL, deleted INTEGER,
    recipient_type INTEGER NOT NULL, issue_warning INTEGER NOT NULL, prohibit_send INTEGER NOT NULL,
    prohibit_send_receive INTEGER NOT NULL, deleted_item_quota INTEGER NOT NULL, has_archive INTEGER NOT NULL,
    PRIMARY KEY (tid, ord)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailbox_days (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, day INTEGER NOT NULL, item_count INTEGER NOT NULL,
    storage_used INTEGER NOT NULL, deleted_item_count INTEGER NOT NULL, deleted_item_size INTEGER NOT NULL,
    PRIMARY KEY (tid, ord, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sites (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, id TEXT NOT NULL, kind INTEGER NOT NULL, url TEXT NOT NULL,
    owner_id TEXT, owner_ord INTEGER, template TEXT NOT NULL, created INTEGER NOT NULL, deleted INTEGER,
    PRIMARY KEY (tid, ord)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site_days (
    tid TEXT NOT NULL, ord INTEGER NOT NULL, day INTEGER NOT NULL, file_count INTEGER NOT NULL,
    active_file_count INTEGER NOT NULL, page_views INTEGER NOT NULL, visited_pages INTEGER NOT NULL,
    storage_used INTEGER NOT NULL, storage_allocated INTEGER NOT NULL,
    PRIMARY KEY (tid, ord, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_days (
    tid TEXT NOT NULL, day INTEGER NOT NULL, signals BLOB NOT NULL,
    PRIMARY KEY (tid, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_settings (
    tid TEXT PRIMARY KEY, display_concealed_names INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retention (
    tid TEXT PRIMARY KEY, retained_from INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_log (
    tid TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    app_id TEXT NOT NULL, object_id TEXT NOT NULL, actor_name TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL, request_id TEXT NOT NULL,
    prev BLOB NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (tid, seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The database file (backups open it a second time).
    path: std::path::PathBuf,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn opt_day(v: Option<i64>) -> Option<Day> {
    v.map(|d| Day(d as i32))
}

impl SqliteStore {
    /// Opens (creating if needed) `DIR/reportroot.sqlite3`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join("reportroot.sqlite3");
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        // Freed space is overwritten with zeros, so a deleted tenant's (or a replaced row's)
        // bytes do not linger in free pages of the database file.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(db)?;
        // A 64 MiB page cache (SQLite's default is 2 MiB): a bulk load's B-tree pages were
        // spilled to the WAL mid-transaction and fetched back as the next rows landed.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        // Two statements per row table (full chunks and the rest) besides the others.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back the
        // open transaction when it is dropped, so recover from poisoning.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Rows per `INSERT` statement for the directory and state tables: a bulk load writes
/// millions of rows, and one statement step per 32 rows instead of one per row cut the
/// store's share of the planner thread's time (see NOTES.md, session 6).
const ROWS_PER_INSERT: usize = 32;

/// Binds values to consecutive parameters from `$i` (1-based).
macro_rules! bind {
    ($st:expr, $i:expr; $($v:expr),+ $(,)?) => {{
        let mut k: usize = $i;
        $(
            $st.raw_bind_parameter(k, $v)?;
            k += 1;
        )+
        let _ = k;
        Ok(())
    }};
}

/// `INSERT OR REPLACE INTO {into} VALUES …` for every row, [`ROWS_PER_INSERT`] rows per
/// statement (the rest one by one). Rows keep their order, so a later row with the same
/// key replaces an earlier one, as with one statement per row.
fn insert_rows<R>(
    tx: &Connection,
    into: &str,
    rows: &[R],
    bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &R) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    use std::fmt::Write;
    // `into` is `table (col, col, …)`: one parameter per listed column.
    let cols = into
        .split_once('(')
        .map_or(1, |(_, c)| c.matches(',').count() + 1);
    let values = |n: usize| {
        let mut v = String::new();
        for r in 0..n {
            v.push_str(if r == 0 { "(" } else { ",(" });
            for c in 0..cols {
                let _ = write!(v, "{}?{}", if c == 0 { "" } else { "," }, r * cols + c + 1);
            }
            v.push(')');
        }
        v
    };
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut st = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO {into} VALUES {}",
            values(ROWS_PER_INSERT)
        ))?;
        for chunk in &mut chunks {
            for (k, r) in chunk.iter().enumerate() {
                bind(&mut st, k * cols + 1, r)?;
            }
            st.raw_execute()?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut st = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO {into} VALUES {}",
            values(1)
        ))?;
        for r in rest {
            bind(&mut st, 1, r)?;
            st.raw_execute()?;
        }
    }
    Ok(())
}

fn write_rows(tx: &Connection, t: &str, r: Rows<'_>) -> rusqlite::Result<()> {
    insert_rows(
        tx,
        "users (tid, ord, id, upn, display_name, deleted)",
        r.users,
        |st, i, u| {
            bind!(st, i; t, u.ord, &u.id, &u.user_principal_name, &u.display_name,
                u.deleted.map(|d| d.0))
        },
    )?;
    insert_rows(
        tx,
        "service_licenses (tid, ord, service, assigned, removed)",
        r.licenses,
        |st, i, l| {
            bind!(st, i; t, l.ord, l.service.index() as i64, l.span.start.0,
                l.span.end.map(|d| d.0))
        },
    )?;
    insert_rows(
        tx,
        "product_assignments (tid, ord, product, assigned, removed)",
        r.products,
        |st, i, p| bind!(st, i; t, p.ord, &p.product_type, p.span.start.0, p.span.end.map(|d| d.0)),
    )?;
    insert_rows(
        tx,
        "activations (tid, ord, product, device, platform, activated, deactivated, shared)",
        r.activations,
        |st, i, a| {
            let x = &a.activation;
            bind!(st, i; t, a.ord, &x.product_type, &x.device_id, x.platform.index() as i64,
                x.active.start.0, x.active.end.map(|d| d.0), x.shared_computer)
        },
    )?;
    insert_rows(
        tx,
        "mailboxes (tid, ord, created, deleted, recipient_type, issue_warning, prohibit_send, \
         prohibit_send_receive, deleted_item_quota, has_archive)",
        r.mailboxes,
        |st, i, m| {
            let x = &m.mailbox;
            bind!(st, i; t, m.ord, x.created.0, x.deleted.map(|d| d.0),
                x.recipient_type as i64, x.issue_warning_quota as i64,
                x.prohibit_send_quota as i64, x.prohibit_send_receive_quota as i64,
                x.deleted_item_quota as i64, x.has_archive)
        },
    )?;
    insert_rows(
        tx,
        "mailbox_days (tid, ord, day, item_count, storage_used, deleted_item_count, \
         deleted_item_size)",
        r.mailbox_days,
        |st, i, m| {
            let x = &m.state;
            bind!(st, i; t, m.ord, m.day.0, x.item_count as i64, x.storage_used as i64,
                x.deleted_item_count as i64, x.deleted_item_size as i64)
        },
    )?;
    insert_rows(
        tx,
        "sites (tid, ord, id, kind, url, owner_id, owner_ord, template, created, deleted)",
        r.sites,
        |st, i, x| {
            bind!(st, i; t, x.ord, &x.site.id, x.site.kind as i64, &x.site.url, &x.site.owner,
                x.owner, &x.site.root_web_template, x.site.created.0,
                x.site.deleted.map(|d| d.0))
        },
    )?;
    insert_rows(
        tx,
        "site_days (tid, ord, day, file_count, active_file_count, page_views, visited_pages, \
         storage_used, storage_allocated)",
        r.site_days,
        |st, i, x| {
            let v = &x.state;
            bind!(st, i; t, x.ord, x.day.0, v.file_count as i64, v.active_file_count as i64,
                v.page_view_count as i64, v.visited_page_count as i64, v.storage_used as i64,
                v.storage_allocated as i64)
        },
    )?;
    Ok(())
}

fn write_tail(
    tx: &Connection,
    t: &str,
    activity: &[ActivityDay],
    counters: &[CounterDay],
    clients: &[ClientDay],
    meta: &TenantMeta,
) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO client_days (tid, day, signals) VALUES (?1, ?2, ?3)",
    )?;
    let mut blob = Vec::new();
    for c in clients {
        blob.clear();
        ClientDay::encode(&c.signals, &mut blob);
        st.execute(params![t, c.day.0, blob])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO counter_days (tid, workload, day, counters) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut blob = Vec::new();
    for c in counters {
        blob.clear();
        c.block.encode(&mut blob);
        st.execute(params![t, c.workload.index() as i64, c.day.0, blob])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO activity_days (tid, service, day, users) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut buf = Vec::new();
    for a in activity {
        buf.clear();
        a.users
            .serialize_into(&mut buf)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        st.execute(params![t, a.service.index() as i64, a.day.0, buf])?;
    }
    tx.execute(
        "INSERT INTO tenants (tid, explicit_refresh, max_activity, version) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(tid) DO UPDATE SET explicit_refresh = ?2, max_activity = ?3, version = ?4",
        params![
            t,
            meta.explicit_refresh.map(|d| d.0),
            meta.max_activity.map(|d| d.0),
            meta.version as i64
        ],
    )?;
    Ok(())
}

/// A batch in one open `BEGIN IMMEDIATE` transaction on the locked connection.
struct SqliteBatch<'a> {
    conn: std::sync::MutexGuard<'a, Connection>,
    tid: String,
    committed: bool,
}

impl BatchWriter for SqliteBatch<'_> {
    fn rows(&mut self, rows: Rows<'_>) -> Result<(), StoreError> {
        write_rows(&self.conn, &self.tid, rows).map_err(db)
    }

    fn finish(
        mut self: Box<Self>,
        activity: &[ActivityDay],
        counters: &[CounterDay],
        clients: &[ClientDay],
        meta: &TenantMeta,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError> {
        write_tail(&self.conn, &self.tid, activity, counters, clients, meta).map_err(db)?;
        if let Some(a) = audit {
            append_audit(&self.conn, &self.tid, a).map_err(db)?;
        }
        self.conn.execute_batch("COMMIT").map_err(db)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for SqliteBatch<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Nothing to report to: the batch already failed. SQLite also rolls back an
            // open transaction if the process dies, so a crash keeps nothing either.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Appends `r` to the tenant's audit chain inside the caller's open transaction.
fn append_audit(tx: &Connection, t: &str, r: &AuditRecord) -> rusqlite::Result<AuditEntry> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log WHERE tid = ?1 ORDER BY seq DESC LIMIT 1",
            [t],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq as u64 + 1, hash32(&hash)),
        None => (1, [0u8; 32]),
    };
    let hash = crate::audit::entry_hash(t, seq, &prev, r);
    tx.prepare_cached(
        "INSERT INTO audit_log (tid, seq, at_ms, app_id, object_id, actor_name, action, target, details, request_id, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        t,
        seq as i64,
        r.at_ms,
        r.app_id,
        r.object_id,
        r.actor_name,
        r.action,
        r.target,
        r.details,
        r.request_id,
        prev.as_slice(),
        hash.as_slice()
    ])?;
    tracing::info!(tenant = %t, seq, action = %r.action, hash = %crate::audit::hex(&hash), "audit entry appended");
    Ok(AuditEntry {
        tenant: t.to_string(),
        seq,
        record: r.clone(),
        prev,
        hash,
    })
}

/// A stored hash as 32 bytes (a damaged one reads as zeros, which verification reports).
fn hash32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if b.len() == 32 {
        out.copy_from_slice(b);
    }
    out
}

/// Empties the log into the database file after a deletion, so no earlier frame keeps the
/// removed bytes (secure_delete has zeroed the freed pages in the new frames).
fn checkpoint(conn: &Connection, tenant: &TenantId, what: &str) -> Result<(), StoreError> {
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(db)?;
    if busy != 0 {
        // The change itself is committed; the next checkpoint (SQLite runs them as the log
        // grows, and at close) rewrites those pages.
        tracing::warn!(tenant = %tenant, what, "the log could not be checkpointed (a reader, such as a backup, holds it)");
    }
    Ok(())
}

/// Tables holding a tenant's data (what an erasure rewrites); settings, retention and the
/// audit trail are kept.
const DATA_TABLES: [&str; 11] = [
    "users",
    "service_licenses",
    "product_assignments",
    "activations",
    "activity_days",
    "counter_days",
    "mailboxes",
    "mailbox_days",
    "sites",
    "site_days",
    "client_days",
];

/// Every table holding tenant rows, keyed by `tid` (the audit trail outlives a deletion).
const TENANT_TABLES: [&str; 14] = [
    "retention",
    "users",
    "service_licenses",
    "product_assignments",
    "activations",
    "activity_days",
    "counter_days",
    "mailboxes",
    "mailbox_days",
    "sites",
    "site_days",
    "client_days",
    "report_settings",
    "tenants",
];

/// Per table, the size of a row's values: text and blob lengths, 8 per integer.
fn row_bytes(table: &str) -> &'static str {
    match table {
        "users" => "length(id) + length(upn) + length(display_name) + 24",
        "service_licenses" => "32",
        "product_assignments" => "length(product) + 24",
        "activations" => "length(product) + length(device) + 48",
        "activity_days" => "length(users) + 16",
        "counter_days" => "length(counters) + 16",
        "client_days" => "length(signals) + 8",
        "sites" => {
            "length(id) + length(url) + coalesce(length(owner_id), 0) + length(template) + 40"
        }
        "mailboxes" => "72",
        "mailbox_days" => "48",
        "site_days" => "64",
        _ => "0",
    }
}

/// Rows handed to the sink at a time, so loading never holds a whole tenant twice.
const CHUNK: usize = 100_000;

fn read_meta(conn: &Connection, t: &str) -> Result<Option<TenantMeta>, StoreError> {
    conn.query_row(
        "SELECT explicit_refresh, max_activity, version FROM tenants WHERE tid = ?1",
        [t],
        |r| {
            Ok(TenantMeta {
                explicit_refresh: opt_day(r.get(0)?),
                max_activity: opt_day(r.get(1)?),
                version: r.get::<_, i64>(2)? as u64,
            })
        },
    )
    .optional()
    .map_err(db)
}

/// Streams a tenant to `sink` in chunks: users first, then licenses, products, activations
/// and activity. Every chunk carries the tenant's meta.
fn read(conn: &Connection, t: &str, sink: &mut dyn FnMut(Changeset)) -> Result<bool, StoreError> {
    let meta = read_meta(conn, t)?;
    let Some(meta) = meta else { return Ok(false) };
    let fresh = || Changeset {
        meta,
        ..Changeset::default()
    };
    let mut c = fresh();
    let mut n = 0usize;
    let mut flush = |c: &mut Changeset, n: &mut usize, force: bool| {
        *n += 1;
        if force || *n >= CHUNK {
            sink(std::mem::replace(c, fresh()));
            *n = 0;
        }
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("tenant {t}: {what}"));

    let mut st = conn
        .prepare(
            "SELECT ord, id, upn, display_name, deleted FROM users WHERE tid = ?1 ORDER BY ord",
        )
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        c.users.push(UserRow {
            ord: r.get(0).map_err(db)?,
            id: r.get(1).map_err(db)?,
            user_principal_name: r.get(2).map_err(db)?,
            display_name: r.get(3).map_err(db)?,
            deleted: opt_day(r.get(4).map_err(db)?),
        });
        flush(&mut c, &mut n, false);
    }

    let mut st = conn
        .prepare("SELECT ord, service, assigned, removed FROM service_licenses WHERE tid = ?1")
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let service = Service::from_index(r.get::<_, i64>(1).map_err(db)? as usize)
            .ok_or_else(|| corrupt("unknown service"))?;
        c.licenses.push(LicenseRow {
            ord: r.get(0).map_err(db)?,
            service,
            span: Span {
                start: Day(r.get::<_, i64>(2).map_err(db)? as i32),
                end: opt_day(r.get(3).map_err(db)?),
            },
        });
        flush(&mut c, &mut n, false);
    }

    let mut st = conn
        .prepare("SELECT ord, product, assigned, removed FROM product_assignments WHERE tid = ?1")
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        c.products.push(ProductRow {
            ord: r.get(0).map_err(db)?,
            product_type: r.get(1).map_err(db)?,
            span: Span {
                start: Day(r.get::<_, i64>(2).map_err(db)? as i32),
                end: opt_day(r.get(3).map_err(db)?),
            },
        });
        flush(&mut c, &mut n, false);
    }

    let mut st = conn
        .prepare(
            "SELECT ord, product, device, platform, activated, deactivated, shared FROM activations WHERE tid = ?1",
        )
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let platform = Platform::from_index(r.get::<_, i64>(3).map_err(db)? as usize)
            .ok_or_else(|| corrupt("unknown platform"))?;
        c.activations.push(ActivationRow {
            ord: r.get(0).map_err(db)?,
            activation: Activation {
                product_type: r.get(1).map_err(db)?,
                device_id: r.get(2).map_err(db)?,
                platform,
                active: Span {
                    start: Day(r.get::<_, i64>(4).map_err(db)? as i32),
                    end: opt_day(r.get(5).map_err(db)?),
                },
                shared_computer: r.get(6).map_err(db)?,
            },
        });
        flush(&mut c, &mut n, false);
    }

    let mut st = conn
        .prepare("SELECT service, day, users FROM activity_days WHERE tid = ?1")
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let service = Service::from_index(r.get::<_, i64>(0).map_err(db)? as usize)
            .ok_or_else(|| corrupt("unknown service"))?;
        let blob = r
            .get_ref(2)
            .map_err(db)?
            .as_blob()
            .map_err(|e| corrupt(&e.to_string()))?;
        let users = RoaringBitmap::deserialize_from(blob)
            .map_err(|e| corrupt(&format!("activity bitmap: {e}")))?;
        c.activity.push(ActivityDay {
            service,
            day: Day(r.get::<_, i64>(1).map_err(db)? as i32),
            users,
        });
        // Bitmaps are large: hand them over a few at a time.
        n += CHUNK / 64;
        flush(&mut c, &mut n, false);
    }
    let mut st = conn
        .prepare(
            "SELECT ord, created, deleted, recipient_type, issue_warning, prohibit_send, prohibit_send_receive,
             deleted_item_quota, has_archive FROM mailboxes WHERE tid = ?1",
        )
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let big = |i: usize| r.get::<_, i64>(i).map(|v| v as u64).map_err(db);
        c.mailboxes.push(MailboxRow {
            ord: r.get(0).map_err(db)?,
            mailbox: Mailbox {
                created: Day(r.get::<_, i64>(1).map_err(db)? as i32),
                deleted: opt_day(r.get(2).map_err(db)?),
                recipient_type: RecipientType::from_index(big(3)? as usize)
                    .ok_or_else(|| corrupt("unknown recipient type"))?,
                issue_warning_quota: big(4)?,
                prohibit_send_quota: big(5)?,
                prohibit_send_receive_quota: big(6)?,
                deleted_item_quota: big(7)?,
                has_archive: r.get(8).map_err(db)?,
            },
        });
        flush(&mut c, &mut n, false);
    }
    let mut st = conn
        .prepare(
            "SELECT ord, day, item_count, storage_used, deleted_item_count, deleted_item_size
             FROM mailbox_days WHERE tid = ?1 ORDER BY ord, day",
        )
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let big = |i: usize| r.get::<_, i64>(i).map(|v| v as u64).map_err(db);
        c.mailbox_days.push(MailboxDayRow {
            ord: r.get(0).map_err(db)?,
            day: Day(r.get::<_, i64>(1).map_err(db)? as i32),
            state: MailboxState {
                item_count: big(2)?,
                storage_used: big(3)?,
                deleted_item_count: big(4)?,
                deleted_item_size: big(5)?,
            },
        });
        flush(&mut c, &mut n, false);
    }

    let mut st = conn
        .prepare(
            "SELECT ord, id, kind, url, owner_id, owner_ord, template, created, deleted
             FROM sites WHERE tid = ?1 ORDER BY ord",
        )
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        c.sites.push(SiteRow {
            ord: r.get(0).map_err(db)?,
            site: Site {
                id: r.get(1).map_err(db)?,
                kind: SiteKind::from_index(r.get::<_, i64>(2).map_err(db)? as usize)
                    .ok_or_else(|| corrupt("unknown site kind"))?,
                url: r.get(3).map_err(db)?,
                owner: r.get(4).map_err(db)?,
                root_web_template: r.get(6).map_err(db)?,
                created: Day(r.get::<_, i64>(7).map_err(db)? as i32),
                deleted: opt_day(r.get(8).map_err(db)?),
            },
            owner: r.get(5).map_err(db)?,
        });
        flush(&mut c, &mut n, false);
    }
    let mut st = conn
        .prepare(
            "SELECT ord, day, file_count, active_file_count, page_views, visited_pages, storage_used,
             storage_allocated FROM site_days WHERE tid = ?1 ORDER BY ord, day",
        )
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let big = |i: usize| r.get::<_, i64>(i).map(|v| v as u64).map_err(db);
        c.site_days.push(SiteDayRow {
            ord: r.get(0).map_err(db)?,
            day: Day(r.get::<_, i64>(1).map_err(db)? as i32),
            state: SiteState {
                file_count: big(2)?,
                active_file_count: big(3)?,
                page_view_count: big(4)?,
                visited_page_count: big(5)?,
                storage_used: big(6)?,
                storage_allocated: big(7)?,
            },
        });
        flush(&mut c, &mut n, false);
    }

    let mut st = conn
        .prepare("SELECT day, signals FROM client_days WHERE tid = ?1")
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let blob = r
            .get_ref(1)
            .map_err(db)?
            .as_blob()
            .map_err(|e| corrupt(&e.to_string()))?;
        let signals = ClientDay::decode(blob).ok_or_else(|| corrupt("client signals"))?;
        n += CHUNK / 64;
        c.clients.push(ClientDay {
            day: Day(r.get::<_, i64>(0).map_err(db)? as i32),
            signals,
        });
        flush(&mut c, &mut n, false);
    }
    let mut st = conn
        .prepare("SELECT workload, day, counters FROM counter_days WHERE tid = ?1")
        .map_err(db)?;
    let mut rows = st.query([t]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let workload = Workload::from_index(r.get::<_, i64>(0).map_err(db)? as usize)
            .ok_or_else(|| corrupt("unknown workload"))?;
        let blob = r
            .get_ref(2)
            .map_err(db)?
            .as_blob()
            .map_err(|e| corrupt(&e.to_string()))?;
        let block = CounterBlock::decode(blob).ok_or_else(|| corrupt("counter block"))?;
        n += block.ords.len() / 8;
        c.counters.push(CounterDay {
            workload,
            day: Day(r.get::<_, i64>(1).map_err(db)? as i32),
            block,
        });
        flush(&mut c, &mut n, false);
    }
    flush(&mut c, &mut n, true);
    Ok(true)
}

impl Store for SqliteStore {
    fn meta(&self, tenant: &TenantId) -> Result<Option<TenantMeta>, StoreError> {
        read_meta(&self.conn(), tenant.as_str())
    }

    fn load(&self, tenant: &TenantId, sink: &mut dyn FnMut(Changeset)) -> Result<bool, StoreError> {
        let conn = self.conn();
        read(&conn, tenant.as_str(), sink)
    }

    fn commit(
        &self,
        tenant: &TenantId,
        change: &Changeset,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError> {
        let mut w = self.begin(tenant)?;
        w.rows(change.rows())?;
        w.finish(
            &change.activity,
            &change.counters,
            &change.clients,
            &change.meta,
            audit,
        )
    }

    fn begin(&self, tenant: &TenantId) -> Result<Box<dyn BatchWriter + '_>, StoreError> {
        let conn = self.conn();
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        Ok(Box::new(SqliteBatch {
            conn,
            tid: tenant.as_str().to_string(),
            committed: false,
        }))
    }

    fn report_settings(&self, tenant: &TenantId) -> Result<ReportSettings, StoreError> {
        let conn = self.conn();
        let concealed = conn
            .query_row(
                "SELECT display_concealed_names FROM report_settings WHERE tid = ?1",
                [tenant.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(db)?;
        Ok(match concealed {
            Some(v) => ReportSettings {
                display_concealed_names: v != 0,
            },
            None => ReportSettings::default(),
        })
    }

    fn set_report_settings(
        &self,
        tenant: &TenantId,
        settings: &ReportSettings,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute(
            "INSERT OR REPLACE INTO report_settings (tid, display_concealed_names) VALUES (?1, ?2)",
            params![tenant.as_str(), i64::from(settings.display_concealed_names)],
        )
        .map_err(db)?;
        append_audit(&tx, tenant.as_str(), audit).map_err(db)?;
        tx.commit().map_err(db)
    }

    fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT tid FROM tenants ORDER BY tid")
            .map_err(db)?;
        let ids: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        Ok(ids.iter().filter_map(|s| TenantId::parse(s)).collect())
    }

    fn stats(&self, tenant: &TenantId) -> Result<Option<TenantStats>, StoreError> {
        let conn = self.conn();
        let t = tenant.as_str();
        let Some(meta) = read_meta(&conn, t)? else {
            return Ok(None);
        };
        let users: i64 = conn
            .query_row("SELECT count(*) FROM users WHERE tid = ?1", [t], |r| {
                r.get(0)
            })
            .map_err(db)?;
        let (days, first, last): (i64, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT count(DISTINCT day), min(day), max(day) FROM activity_days WHERE tid = ?1",
                [t],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(db)?;
        let mut bytes = 0i64;
        for table in TENANT_TABLES {
            if matches!(table, "tenants" | "report_settings") {
                continue;
            }
            let sql = format!(
                "SELECT coalesce(sum({} + length(tid)), 0) FROM {table} WHERE tid = ?1",
                row_bytes(table)
            );
            bytes += conn
                .query_row(&sql, [t], |r| r.get::<_, i64>(0))
                .map_err(db)?;
        }
        Ok(Some(TenantStats {
            meta,
            users: users as u64,
            activity_days: days as u64,
            first_activity: opt_day(first),
            last_activity: opt_day(last),
            bytes: bytes.max(0) as u64,
        }))
    }

    fn delete_tenant(&self, tenant: &TenantId, audit: &AuditRecord) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let t = tenant.as_str();
        // secure_delete is on for this connection (see `open`): freed pages are zeroed.
        let tx = conn.transaction().map_err(db)?;
        let mut removed = 0usize;
        for table in TENANT_TABLES {
            removed += tx
                .execute(&format!("DELETE FROM {table} WHERE tid = ?1"), [t])
                .map_err(db)?;
        }
        if removed == 0 {
            return Ok(false);
        }
        append_audit(&tx, t, audit).map_err(db)?;
        tx.commit().map_err(db)?;
        // The WAL still holds the pages as they were before; copy the new ones into the
        // database file and empty the log, so no earlier frame keeps the tenant's bytes.
        checkpoint(&conn, tenant, "tenant deletion")?;
        Ok(true)
    }

    fn rewrite_tenant(
        &self,
        tenant: &TenantId,
        chunks: &[Changeset],
        meta: &TenantMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let t = tenant.as_str();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        for table in DATA_TABLES {
            tx.execute(&format!("DELETE FROM {table} WHERE tid = ?1"), [t])
                .map_err(db)?;
        }
        for c in chunks {
            write_rows(&tx, t, c.rows()).map_err(db)?;
            write_tail(&tx, t, &c.activity, &c.counters, &c.clients, meta).map_err(db)?;
        }
        write_tail(&tx, t, &[], &[], &[], meta).map_err(db)?;
        append_audit(&tx, t, audit).map_err(db)?;
        tx.commit().map_err(db)?;
        checkpoint(&conn, tenant, "tenant rewrite")
    }

    fn prune(
        &self,
        tenant: &TenantId,
        before: Day,
        audit: &AuditRecord,
    ) -> Result<Pruned, StoreError> {
        let mut conn = self.conn();
        let t = tenant.as_str();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut rows = 0u64;
        for table in ["activity_days", "counter_days", "client_days"] {
            rows += tx
                .execute(
                    &format!("DELETE FROM {table} WHERE tid = ?1 AND day < ?2"),
                    params![t, before.0],
                )
                .map_err(db)? as u64;
        }
        // A state holds until the next one: keep each mailbox's and site's state in force
        // on `before` (its latest on or before that day), drop the ones it replaced.
        for table in ["mailbox_days", "site_days"] {
            rows += tx
                .execute(
                    &format!(
                        "DELETE FROM {table} WHERE tid = ?1 AND day < ?2 AND day < (
                             SELECT max(k.day) FROM {table} k
                             WHERE k.tid = ?1 AND k.ord = {table}.ord AND k.day <= ?2)"
                    ),
                    params![t, before.0],
                )
                .map_err(db)? as u64;
        }
        if rows == 0 {
            return Ok(Pruned { rows });
        }
        // A new data version: cached reports and snapshots of the old one no longer match.
        tx.execute(
            "UPDATE tenants SET version = version + 1 WHERE tid = ?1",
            [t],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO retention (tid, retained_from) VALUES (?1, ?2)
             ON CONFLICT(tid) DO UPDATE SET retained_from = max(retained_from, ?2)",
            params![t, before.0],
        )
        .map_err(db)?;
        let mut a = audit.clone();
        a.details = format!("{{\"before\":\"{before}\",\"rowsRemoved\":{rows}}}");
        append_audit(&tx, t, &a).map_err(db)?;
        tx.commit().map_err(db)?;
        checkpoint(&conn, tenant, "retention")?;
        Ok(Pruned { rows })
    }

    fn retained_from(&self, tenant: &TenantId) -> Result<Option<Day>, StoreError> {
        let conn = self.conn();
        let d: Option<i64> = conn
            .query_row(
                "SELECT retained_from FROM retention WHERE tid = ?1",
                [tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(opt_day(d))
    }

    fn audit(&self, tenant: &TenantId, record: &AuditRecord) -> Result<AuditEntry, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let e = append_audit(&tx, tenant.as_str(), record).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(e)
    }

    fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn();
        let sql = "SELECT tid, seq, at_ms, app_id, object_id, actor_name, action, target, details, request_id, prev, hash
                   FROM audit_log WHERE (?1 IS NULL OR tid = ?1) AND seq > ?2 ORDER BY tid, seq LIMIT ?3";
        let mut st = conn.prepare(sql).map_err(db)?;
        let rows = st
            .query_map(
                params![
                    tenant.map(|t| t.as_str()),
                    after as i64,
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(AuditEntry {
                        tenant: r.get(0)?,
                        seq: r.get::<_, i64>(1)? as u64,
                        record: AuditRecord {
                            at_ms: r.get(2)?,
                            app_id: r.get(3)?,
                            object_id: r.get(4)?,
                            actor_name: r.get(5)?,
                            action: r.get(6)?,
                            target: r.get(7)?,
                            details: r.get(8)?,
                            request_id: r.get(9)?,
                        },
                        prev: hash32(&r.get::<_, Vec<u8>>(10)?),
                        hash: hash32(&r.get::<_, Vec<u8>>(11)?),
                    })
                },
            )
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        // A connection of its own: the copy reads one snapshot of the database (a WAL read
        // transaction, all pages in one step) while the store's writer goes on committing.
        let src = Connection::open_with_flags(
            self.path.as_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        src.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        let mut out = Connection::open(dest).map_err(db)?;
        {
            let b = rusqlite::backup::Backup::new(&src, &mut out).map_err(db)?;
            match b.step(-1).map_err(db)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(StoreError::Database(format!(
                        "the backup did not complete in one step: {other:?}"
                    )));
                }
            }
        }
        // A self-contained file: no WAL beside it.
        out.pragma_update(None, "journal_mode", "DELETE")
            .map_err(db)?;
        Ok(())
    }

    fn ping(&self) -> Result<(), StoreError> {
        // A writer holding the connection (a batch committing) proves the file is open and
        // working: do not wait for it.
        let conn = match self.conn.try_lock() {
            Ok(c) => c,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map_err(db)?;
        Ok(())
    }
}

//! The PostgreSQL engine, for deployments whose store is a database server (or Citus, which
//! distributes every table by its leading `tid` column).
//!
//! The [`Store`] trait is synchronous and is only called from blocking contexts
//! (`spawn_blocking`, the CLI), so the store owns a small tokio runtime of its own: the pool's
//! connection tasks run on its worker thread and every call blocks the calling thread on
//! [`tokio::runtime::Runtime::block_on`]. The driver is `tokio-postgres` with a
//! `deadpool-postgres` pool, TLS by rustls when the URL says `sslmode=require`.
//!
//! Writes: one transaction per batch, the tenant's batches serialized by a transaction-level
//! advisory lock on the tenant id; rows go by binary `COPY` into session-private staging
//! tables and are merged into the tenant tables with one `INSERT … ON CONFLICT` per table at
//! the end (a later row with the same key wins, as in the batch). Schema migrations run at
//! start under a session-level advisory lock, so nodes starting together take turns.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::TryStreamExt;
use roaring::RoaringBitmap;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Row};

use super::{
    ActivationRow, ActivityDay, AuditEntry, AuditRecord, BatchWriter, Changeset, ClientDay,
    CounterBlock, CounterDay, KeyRow, LicenseRow, MailboxDayRow, MailboxRow, ProductRow, Pruned,
    ReportSettings, Rows, SiteDayRow, SiteRow, Store, StoreError, TenantMeta, TenantStats, UserRow,
};
use crate::model::{
    Activation, Day, Mailbox, MailboxState, Platform, RecipientType, Service, Site, SiteKind,
    SiteState, Span, TenantId, Workload,
};

/// The advisory lock class of schema migrations (session lock, key 1).
const MIGRATION_LOCK: i32 = 0x5252_0001;
/// The advisory lock class of tenant writers (transaction lock, key `hashtext(tid)`).
const TENANT_LOCK: i32 = 0x5252_0002;
/// Advisory lock class of a tenant's shared throttling counters.
const THROTTLE_LOCK: i32 = 0x5252_0003;
/// Advisory lock class of the signing key ring (transaction lock, key 1).
const KEYS_LOCK: i32 = 0x5252_0004;

/// Schema versions in order; each is applied once, in its own transaction. Every table of
/// tenant data has `tid` as the leading column of its primary key (the Citus distribution
/// column); text keys use the "C" collation so their order is bytewise, as in SQLite.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "
CREATE TABLE tenants (
    tid TEXT COLLATE \"C\" NOT NULL, explicit_refresh INTEGER, max_activity INTEGER,
    version BIGINT NOT NULL,
    PRIMARY KEY (tid)
);
CREATE TABLE users (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, id TEXT NOT NULL,
    upn TEXT NOT NULL, display_name TEXT NOT NULL, deleted INTEGER,
    PRIMARY KEY (tid, ord)
);
CREATE TABLE service_licenses (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, service INTEGER NOT NULL,
    assigned INTEGER NOT NULL, removed INTEGER,
    PRIMARY KEY (tid, ord, service)
);
CREATE TABLE product_assignments (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, product TEXT COLLATE \"C\" NOT NULL,
    assigned INTEGER NOT NULL, removed INTEGER,
    PRIMARY KEY (tid, ord, product)
);
CREATE TABLE activations (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, product TEXT COLLATE \"C\" NOT NULL,
    device TEXT COLLATE \"C\" NOT NULL, platform INTEGER NOT NULL, activated INTEGER NOT NULL,
    deactivated INTEGER, shared BOOLEAN NOT NULL,
    PRIMARY KEY (tid, ord, product, device)
);
CREATE TABLE activity_days (
    tid TEXT COLLATE \"C\" NOT NULL, service INTEGER NOT NULL, day INTEGER NOT NULL,
    users BYTEA NOT NULL,
    PRIMARY KEY (tid, service, day)
);
CREATE TABLE counter_days (
    tid TEXT COLLATE \"C\" NOT NULL, workload INTEGER NOT NULL, day INTEGER NOT NULL,
    counters BYTEA NOT NULL,
    PRIMARY KEY (tid, workload, day)
);
CREATE TABLE mailboxes (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, created INTEGER NOT NULL, deleted INTEGER,
    recipient_type INTEGER NOT NULL, issue_warning BIGINT NOT NULL, prohibit_send BIGINT NOT NULL,
    prohibit_send_receive BIGINT NOT NULL, deleted_item_quota BIGINT NOT NULL,
    has_archive BOOLEAN NOT NULL,
    PRIMARY KEY (tid, ord)
);
CREATE TABLE mailbox_days (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, day INTEGER NOT NULL,
    item_count BIGINT NOT NULL, storage_used BIGINT NOT NULL, deleted_item_count BIGINT NOT NULL,
    deleted_item_size BIGINT NOT NULL,
    PRIMARY KEY (tid, ord, day)
);
CREATE TABLE sites (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, id TEXT NOT NULL, kind INTEGER NOT NULL,
    url TEXT NOT NULL, owner_id TEXT, owner_ord BIGINT, template TEXT NOT NULL,
    created INTEGER NOT NULL, deleted INTEGER,
    PRIMARY KEY (tid, ord)
);
CREATE TABLE site_days (
    tid TEXT COLLATE \"C\" NOT NULL, ord BIGINT NOT NULL, day INTEGER NOT NULL,
    file_count BIGINT NOT NULL, active_file_count BIGINT NOT NULL, page_views BIGINT NOT NULL,
    visited_pages BIGINT NOT NULL, storage_used BIGINT NOT NULL, storage_allocated BIGINT NOT NULL,
    PRIMARY KEY (tid, ord, day)
);
CREATE TABLE client_days (
    tid TEXT COLLATE \"C\" NOT NULL, day INTEGER NOT NULL, signals BYTEA NOT NULL,
    PRIMARY KEY (tid, day)
);
CREATE TABLE report_settings (
    tid TEXT COLLATE \"C\" NOT NULL, display_concealed_names BOOLEAN NOT NULL,
    PRIMARY KEY (tid)
);
",
    ),
    (
        2,
        "
CREATE TABLE retention (
    tid TEXT COLLATE \"C\" NOT NULL, retained_from INTEGER NOT NULL,
    PRIMARY KEY (tid)
);
CREATE TABLE audit_log (
    tid TEXT COLLATE \"C\" NOT NULL, seq BIGINT NOT NULL, at_ms BIGINT NOT NULL,
    app_id TEXT NOT NULL, object_id TEXT NOT NULL, actor_name TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL, request_id TEXT NOT NULL,
    prev BYTEA NOT NULL, hash BYTEA NOT NULL,
    PRIMARY KEY (tid, seq)
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
",
    ),
    (
        3,
        "
CREATE TABLE throttle_hits (
    tid TEXT COLLATE \"C\" NOT NULL, counter TEXT COLLATE \"C\" NOT NULL,
    at_ms BIGINT NOT NULL, id BIGSERIAL NOT NULL,
    PRIMARY KEY (tid, counter, at_ms, id)
);
",
    ),
    (
        4,
        "
CREATE TABLE snapshots (
    tid TEXT COLLATE \"C\" NOT NULL, seq INTEGER NOT NULL, version BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (tid, seq)
);
",
    ),
    (
        5,
        "
CREATE TABLE apps (
    tid TEXT COLLATE \"C\" NOT NULL, client_id TEXT COLLATE \"C\" NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tid, client_id)
);
",
    ),
    // The one global table: the signing key ring is no tenant's data (on Citus, a
    // reference table), so it is keyed by kind and key id.
    (
        6,
        "
CREATE TABLE signing_keys (
    kind TEXT COLLATE \"C\" NOT NULL, kid TEXT COLLATE \"C\" NOT NULL,
    created BIGINT NOT NULL, retired BIGINT, accepted_until BIGINT, material TEXT NOT NULL,
    PRIMARY KEY (kind, kid)
);
",
    ),
    // The blobs (roaring bitmaps, counter blocks, snapshot pieces) are stored out of line
    // without compression: pglz spent 44% of the server's time of a 100k-user load
    // compressing bitmaps that are compressed already, and snapshots on every write.
    (
        7,
        "
ALTER TABLE activity_days ALTER COLUMN users SET STORAGE EXTERNAL;
ALTER TABLE counter_days ALTER COLUMN counters SET STORAGE EXTERNAL;
ALTER TABLE client_days ALTER COLUMN signals SET STORAGE EXTERNAL;
ALTER TABLE snapshots ALTER COLUMN data SET STORAGE EXTERNAL;
",
    ),
];

/// Session-private staging tables, one per tenant table, without `tid` (the merge supplies
/// it) and with `seq`, the row's position in the batch (the last of equal keys wins).
/// Emptied at every commit; gone with the session. Created once per session (the check
/// keeps `IF NOT EXISTS` notices out of the log).
const STAGING: &str = "
DO $$ BEGIN IF to_regclass('pg_temp.stage_client_days') IS NULL THEN
CREATE TEMP TABLE stage_users (seq BIGINT, ord BIGINT, id TEXT, upn TEXT,
    display_name TEXT, deleted INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_service_licenses (seq BIGINT, ord BIGINT, service INTEGER,
    assigned INTEGER, removed INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_product_assignments (seq BIGINT, ord BIGINT, product TEXT,
    assigned INTEGER, removed INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_activations (seq BIGINT, ord BIGINT, product TEXT,
    device TEXT, platform INTEGER, activated INTEGER, deactivated INTEGER, shared BOOLEAN)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_mailboxes (seq BIGINT, ord BIGINT, created INTEGER,
    deleted INTEGER, recipient_type INTEGER, issue_warning BIGINT, prohibit_send BIGINT,
    prohibit_send_receive BIGINT, deleted_item_quota BIGINT, has_archive BOOLEAN)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_mailbox_days (seq BIGINT, ord BIGINT, day INTEGER,
    item_count BIGINT, storage_used BIGINT, deleted_item_count BIGINT, deleted_item_size BIGINT)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_sites (seq BIGINT, ord BIGINT, id TEXT, kind INTEGER,
    url TEXT, owner_id TEXT, owner_ord BIGINT, template TEXT, created INTEGER, deleted INTEGER)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_site_days (seq BIGINT, ord BIGINT, day INTEGER,
    file_count BIGINT, active_file_count BIGINT, page_views BIGINT, visited_pages BIGINT,
    storage_used BIGINT, storage_allocated BIGINT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_activity_days (seq BIGINT, service INTEGER, day INTEGER,
    users BYTEA) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_counter_days (seq BIGINT, workload INTEGER, day INTEGER,
    counters BYTEA) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_client_days (seq BIGINT, day INTEGER, signals BYTEA)
    ON COMMIT DELETE ROWS;
ALTER TABLE stage_activity_days ALTER COLUMN users SET STORAGE EXTERNAL;
ALTER TABLE stage_counter_days ALTER COLUMN counters SET STORAGE EXTERNAL;
ALTER TABLE stage_client_days ALTER COLUMN signals SET STORAGE EXTERNAL;
END IF; END $$;
";

/// One staged table: its binary `COPY` into the staging table and the merge into the
/// tenant table (`$1` is the tenant id).
struct Staged {
    copy: &'static str,
    types: &'static [Type],
    merge: &'static str,
}

const USERS: Staged = Staged {
    copy: "COPY stage_users (seq, ord, id, upn, display_name, deleted) FROM STDIN (FORMAT binary)",
    types: &[
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
    ],
    merge: "INSERT INTO users (tid, ord, id, upn, display_name, deleted)
        SELECT DISTINCT ON (ord) $1, ord, id, upn, display_name, deleted
        FROM stage_users ORDER BY ord, seq DESC
        ON CONFLICT (tid, ord) DO UPDATE SET id = EXCLUDED.id, upn = EXCLUDED.upn,
        display_name = EXCLUDED.display_name, deleted = EXCLUDED.deleted",
};

const LICENSES: Staged = Staged {
    copy: "COPY stage_service_licenses (seq, ord, service, assigned, removed) FROM STDIN (FORMAT binary)",
    types: &[Type::INT8, Type::INT8, Type::INT4, Type::INT4, Type::INT4],
    merge: "INSERT INTO service_licenses (tid, ord, service, assigned, removed)
        SELECT DISTINCT ON (ord, service) $1, ord, service, assigned, removed
        FROM stage_service_licenses ORDER BY ord, service, seq DESC
        ON CONFLICT (tid, ord, service) DO UPDATE SET assigned = EXCLUDED.assigned,
        removed = EXCLUDED.removed",
};

const PRODUCTS: Staged = Staged {
    copy: "COPY stage_product_assignments (seq, ord, product, assigned, removed) FROM STDIN (FORMAT binary)",
    types: &[Type::INT8, Type::INT8, Type::TEXT, Type::INT4, Type::INT4],
    merge: "INSERT INTO product_assignments (tid, ord, product, assigned, removed)
        SELECT DISTINCT ON (ord, product) $1, ord, product, assigned, removed
        FROM stage_product_assignments ORDER BY ord, product, seq DESC
        ON CONFLICT (tid, ord, product) DO UPDATE SET assigned = EXCLUDED.assigned,
        removed = EXCLUDED.removed",
};

const ACTIVATIONS: Staged = Staged {
    copy: "COPY stage_activations (seq, ord, product, device, platform, activated, deactivated, shared)
        FROM STDIN (FORMAT binary)",
    types: &[
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::BOOL,
    ],
    merge: "INSERT INTO activations (tid, ord, product, device, platform, activated, deactivated, shared)
        SELECT DISTINCT ON (ord, product, device) $1, ord, product, device, platform, activated,
        deactivated, shared
        FROM stage_activations ORDER BY ord, product, device, seq DESC
        ON CONFLICT (tid, ord, product, device) DO UPDATE SET platform = EXCLUDED.platform,
        activated = EXCLUDED.activated, deactivated = EXCLUDED.deactivated, shared = EXCLUDED.shared",
};

const MAILBOXES: Staged = Staged {
    copy: "COPY stage_mailboxes (seq, ord, created, deleted, recipient_type, issue_warning, prohibit_send,
        prohibit_send_receive, deleted_item_quota, has_archive) FROM STDIN (FORMAT binary)",
    types: &[
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::BOOL,
    ],
    merge: "INSERT INTO mailboxes (tid, ord, created, deleted, recipient_type, issue_warning,
        prohibit_send, prohibit_send_receive, deleted_item_quota, has_archive)
        SELECT DISTINCT ON (ord) $1, ord, created, deleted, recipient_type, issue_warning,
        prohibit_send, prohibit_send_receive, deleted_item_quota, has_archive
        FROM stage_mailboxes ORDER BY ord, seq DESC
        ON CONFLICT (tid, ord) DO UPDATE SET created = EXCLUDED.created, deleted = EXCLUDED.deleted,
        recipient_type = EXCLUDED.recipient_type, issue_warning = EXCLUDED.issue_warning,
        prohibit_send = EXCLUDED.prohibit_send, prohibit_send_receive = EXCLUDED.prohibit_send_receive,
        deleted_item_quota = EXCLUDED.deleted_item_quota, has_archive = EXCLUDED.has_archive",
};

const MAILBOX_DAYS: Staged = Staged {
    copy: "COPY stage_mailbox_days (seq, ord, day, item_count, storage_used, deleted_item_count,
        deleted_item_size) FROM STDIN (FORMAT binary)",
    types: &[
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ],
    merge: "INSERT INTO mailbox_days (tid, ord, day, item_count, storage_used, deleted_item_count,
        deleted_item_size)
        SELECT DISTINCT ON (ord, day) $1, ord, day, item_count, storage_used, deleted_item_count,
        deleted_item_size
        FROM stage_mailbox_days ORDER BY ord, day, seq DESC
        ON CONFLICT (tid, ord, day) DO UPDATE SET item_count = EXCLUDED.item_count,
        storage_used = EXCLUDED.storage_used, deleted_item_count = EXCLUDED.deleted_item_count,
        deleted_item_size = EXCLUDED.deleted_item_size",
};

const SITES: Staged = Staged {
    copy: "COPY stage_sites (seq, ord, id, kind, url, owner_id, owner_ord, template, created, deleted)
        FROM STDIN (FORMAT binary)",
    types: &[
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::INT4,
        Type::INT4,
    ],
    merge: "INSERT INTO sites (tid, ord, id, kind, url, owner_id, owner_ord, template, created, deleted)
        SELECT DISTINCT ON (ord) $1, ord, id, kind, url, owner_id, owner_ord, template, created, deleted
        FROM stage_sites ORDER BY ord, seq DESC
        ON CONFLICT (tid, ord) DO UPDATE SET id = EXCLUDED.id, kind = EXCLUDED.kind,
        url = EXCLUDED.url, owner_id = EXCLUDED.owner_id, owner_ord = EXCLUDED.owner_ord,
        template = EXCLUDED.template, created = EXCLUDED.created, deleted = EXCLUDED.deleted",
};

const SITE_DAYS: Staged = Staged {
    copy: "COPY stage_site_days (seq, ord, day, file_count, active_file_count, page_views, visited_pages,
        storage_used, storage_allocated) FROM STDIN (FORMAT binary)",
    types: &[
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ],
    merge: "INSERT INTO site_days (tid, ord, day, file_count, active_file_count, page_views,
        visited_pages, storage_used, storage_allocated)
        SELECT DISTINCT ON (ord, day) $1, ord, day, file_count, active_file_count, page_views,
        visited_pages, storage_used, storage_allocated
        FROM stage_site_days ORDER BY ord, day, seq DESC
        ON CONFLICT (tid, ord, day) DO UPDATE SET file_count = EXCLUDED.file_count,
        active_file_count = EXCLUDED.active_file_count, page_views = EXCLUDED.page_views,
        visited_pages = EXCLUDED.visited_pages, storage_used = EXCLUDED.storage_used,
        storage_allocated = EXCLUDED.storage_allocated",
};

const ACTIVITY: Staged = Staged {
    copy: "COPY stage_activity_days (seq, service, day, users) FROM STDIN (FORMAT binary)",
    types: &[Type::INT8, Type::INT4, Type::INT4, Type::BYTEA],
    merge: "INSERT INTO activity_days (tid, service, day, users)
        SELECT DISTINCT ON (service, day) $1, service, day, users
        FROM stage_activity_days ORDER BY service, day, seq DESC
        ON CONFLICT (tid, service, day) DO UPDATE SET users = EXCLUDED.users",
};

const COUNTERS: Staged = Staged {
    copy: "COPY stage_counter_days (seq, workload, day, counters) FROM STDIN (FORMAT binary)",
    types: &[Type::INT8, Type::INT4, Type::INT4, Type::BYTEA],
    merge: "INSERT INTO counter_days (tid, workload, day, counters)
        SELECT DISTINCT ON (workload, day) $1, workload, day, counters
        FROM stage_counter_days ORDER BY workload, day, seq DESC
        ON CONFLICT (tid, workload, day) DO UPDATE SET counters = EXCLUDED.counters",
};

const CLIENTS: Staged = Staged {
    copy: "COPY stage_client_days (seq, day, signals) FROM STDIN (FORMAT binary)",
    types: &[Type::INT8, Type::INT4, Type::BYTEA],
    merge: "INSERT INTO client_days (tid, day, signals)
        SELECT DISTINCT ON (day) $1, day, signals
        FROM stage_client_days ORDER BY day, seq DESC
        ON CONFLICT (tid, day) DO UPDATE SET signals = EXCLUDED.signals",
};

/// Binary `COPY` straight into the tenant tables (in [`STAGED`] order, the row tables
/// only), tried first for each block of rows: a bulk load of new rows skips the staging
/// and merge. A key already stored, or repeated in the block, fails the `COPY` (unique
/// violation); the block is then staged, and so is every later block of that table.
const DIRECT: [(&str, &[Type]); 8] = [
    (
        "COPY users (tid, ord, id, upn, display_name, deleted) FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
        ],
    ),
    (
        "COPY service_licenses (tid, ord, service, assigned, removed) FROM STDIN (FORMAT binary)",
        &[Type::TEXT, Type::INT8, Type::INT4, Type::INT4, Type::INT4],
    ),
    (
        "COPY product_assignments (tid, ord, product, assigned, removed) FROM STDIN (FORMAT binary)",
        &[Type::TEXT, Type::INT8, Type::TEXT, Type::INT4, Type::INT4],
    ),
    (
        "COPY activations (tid, ord, product, device, platform, activated, deactivated, shared)
        FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
            Type::INT4,
            Type::BOOL,
        ],
    ),
    (
        "COPY mailboxes (tid, ord, created, deleted, recipient_type, issue_warning, prohibit_send,
        prohibit_send_receive, deleted_item_quota, has_archive) FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::BOOL,
        ],
    ),
    (
        "COPY mailbox_days (tid, ord, day, item_count, storage_used, deleted_item_count,
        deleted_item_size) FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::INT8,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ],
    ),
    (
        "COPY sites (tid, ord, id, kind, url, owner_id, owner_ord, template, created, deleted)
        FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT4,
            Type::INT4,
        ],
    ),
    (
        "COPY site_days (tid, ord, day, file_count, active_file_count, page_views, visited_pages,
        storage_used, storage_allocated) FROM STDIN (FORMAT binary)",
        &[
            Type::TEXT,
            Type::INT8,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ],
    ),
];

/// Every staged table, in merge order.
const STAGED: [&Staged; 11] = [
    &USERS,
    &LICENSES,
    &PRODUCTS,
    &ACTIVATIONS,
    &MAILBOXES,
    &MAILBOX_DAYS,
    &SITES,
    &SITE_DAYS,
    &ACTIVITY,
    &COUNTERS,
    &CLIENTS,
];

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

/// Every table a tenant deletion empties of the tenant (the audit trail outlives it).
const TENANT_TABLES: [&str; 16] = [
    "snapshots",
    "throttle_hits",
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

/// Per table, the sum of its rows' value sizes for one tenant, measured as the SQLite
/// engine measures them (text and blob lengths, 8 per integer, plus the tenant id).
const STATS_BYTES: [&str; 11] = [
    "SELECT coalesce(sum(length(id) + length(upn) + length(display_name) + 24 + length(tid)), 0)::BIGINT FROM users WHERE tid = $1",
    "SELECT coalesce(sum(32 + length(tid)), 0)::BIGINT FROM service_licenses WHERE tid = $1",
    "SELECT coalesce(sum(length(product) + 24 + length(tid)), 0)::BIGINT FROM product_assignments WHERE tid = $1",
    "SELECT coalesce(sum(length(product) + length(device) + 48 + length(tid)), 0)::BIGINT FROM activations WHERE tid = $1",
    "SELECT coalesce(sum(length(users) + 16 + length(tid)), 0)::BIGINT FROM activity_days WHERE tid = $1",
    "SELECT coalesce(sum(length(counters) + 16 + length(tid)), 0)::BIGINT FROM counter_days WHERE tid = $1",
    "SELECT coalesce(sum(72 + length(tid)), 0)::BIGINT FROM mailboxes WHERE tid = $1",
    "SELECT coalesce(sum(48 + length(tid)), 0)::BIGINT FROM mailbox_days WHERE tid = $1",
    "SELECT coalesce(sum(length(id) + length(url) + coalesce(length(owner_id), 0) + length(template) + 40 + length(tid)), 0)::BIGINT FROM sites WHERE tid = $1",
    "SELECT coalesce(sum(64 + length(tid)), 0)::BIGINT FROM site_days WHERE tid = $1",
    "SELECT coalesce(sum(length(signals) + 8 + length(tid)), 0)::BIGINT FROM client_days WHERE tid = $1",
];

/// How long a caller waits for a pooled connection, or for a new one to be made.
const POOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections kept open at most.
const POOL_SIZE: usize = 16;
/// Rows handed to the load sink at a time (as in the SQLite engine).
const CHUNK: usize = 100_000;

/// An error with its causes (the TLS and I/O details sit in the sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn db(e: tokio_postgres::Error) -> StoreError {
    if server_away(&e) {
        StoreError::Unavailable(chain(&e))
    } else {
        StoreError::Database(chain(&e))
    }
}

/// Whether the error says the server is away (stopping, restarting, unreachable) rather
/// than that the statement was wrong: the connection closed or failed on I/O, or the server
/// ended the session — `pg_ctl stop -m fast` answers a statement in flight with
/// `57P01 admin_shutdown` before it closes the socket; `57P02` is a crash restart, `57P03`
/// a server starting up or shutting down, class `08` a connection failure.
fn server_away(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(d) = e.as_db_error() {
        let code = d.code();
        return code == &SqlState::ADMIN_SHUTDOWN
            || code == &SqlState::CRASH_SHUTDOWN
            || code == &SqlState::CANNOT_CONNECT_NOW
            || code.code().starts_with("08");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {}", chain(&e)))
}

fn opt_day(v: Option<i32>) -> Option<Day> {
    v.map(Day)
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/dbname?sslmode=require` (or the key=value form).
    pub url: String,
    /// Extra trusted CA certificates (PEM) for `sslmode=require`, beside the Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

pub struct PostgresStore {
    /// `Some` until dropped: shut down in the background, so dropping the store inside an
    /// async context never blocks.
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Host, port and database, for logs (never the password).
    target: String,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// rustls for `sslmode=require`: the server's certificate is verified against the Mozilla
/// roots and the CA file, with the host name of the URL.
fn rustls_connector(
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| StoreError::Database(format!("reading {}: {e}", path.display())))?;
        for c in certs {
            let c =
                c.map_err(|e| StoreError::Database(format!("reading {}: {e}", path.display())))?;
            roots.add(c).map_err(|e| {
                StoreError::Database(format!("CA certificate in {}: {e}", path.display()))
            })?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The URL without its password, for logs and errors.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default)");
    format!("{host}:{port}/{db}")
}

impl PostgresStore {
    /// After a deletion or an erasure: `VACUUM` the tables, so the dead rows' space is
    /// marked reusable at once rather than whenever autovacuum comes (their bytes stay in
    /// the pages until reused; `VACUUM FULL`, which takes an exclusive lock, and expiring WAL
    /// archives and backups remove them for good: README). A failure is logged; the change
    /// itself is committed.
    fn vacuum(&self, tables: &[&str]) {
        let r = self.with_conn(async |conn| {
            for table in tables {
                conn.batch_execute(&format!("VACUUM {table}"))
                    .await
                    .map_err(db)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, "VACUUM after a deletion failed");
        }
    }

    /// Connects, and applies any schema migrations the database lacks.
    pub fn connect(opts: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(&opts.url)
            .map_err(|e| StoreError::Database(format!("invalid database URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("reportroot");
        }
        let target = describe(&config);
        let mgr_config = ManagerConfig {
            // Every path that can fail between BEGIN and COMMIT closes its connection instead
            // of returning it (`with_conn`, the batch's drop, load), so a pooled connection
            // is never mid-transaction and the fast check (still open?) is enough.
            recycling_method: RecyclingMethod::Fast,
        };
        let mgr = match config.get_ssl_mode() {
            SslMode::Require => {
                let tls = rustls_connector(opts.ca_file.as_deref())?;
                Manager::from_config(config, tls, mgr_config)
            }
            // `prefer` (the default) with no TLS connector means plain TCP.
            _ => Manager::from_config(config, NoTls, mgr_config),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("reportroot-pg")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                path: "the PostgreSQL runtime".into(),
                source,
            })?;
        let pool = {
            let _guard = rt.enter();
            Pool::builder(mgr)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(POOL_TIMEOUT))
                .create_timeout(Some(POOL_TIMEOUT))
                .recycle_timeout(Some(POOL_TIMEOUT))
                .build()
                .map_err(|e| StoreError::Database(format!("connection pool: {e}")))?
        };
        let store = PostgresStore {
            rt: Some(rt),
            pool,
            target,
        };
        store.migrate()?;
        tracing::info!(database = %store.target, "PostgreSQL store ready");
        Ok(store)
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            // Only `drop` takes the runtime.
            None => unreachable!("the PostgreSQL store's runtime is gone"),
        }
    }

    /// Applies missing migrations under a session advisory lock; a second node starting at
    /// the same time waits here, then finds everything applied.
    fn migrate(&self) -> Result<(), StoreError> {
        self.block_on(async {
            let conn = self.pool.get().await.map_err(pool_err)?;
            conn.execute("SELECT pg_advisory_lock($1, 1)", &[&MIGRATION_LOCK])
                .await
                .map_err(db)?;
            let result = apply_migrations(&conn).await;
            match result {
                Ok(()) => {
                    conn.execute("SELECT pg_advisory_unlock($1, 1)", &[&MIGRATION_LOCK])
                        .await
                        .map_err(db)?;
                    Ok(())
                }
                Err(e) => {
                    // Closing the session releases its lock and rolls back what was begun.
                    let _ = deadpool_postgres::Object::take(conn);
                    Err(e)
                }
            }
        })
    }
}

async fn apply_migrations(conn: &Client) -> Result<(), StoreError> {
    conn.batch_execute(
        "DO $$ BEGIN IF to_regclass('schema_migrations') IS NULL THEN
            CREATE TABLE schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
        END IF; END $$",
    )
    .await
    .map_err(db)?;
    let applied: Vec<i32> = conn
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        conn.batch_execute("BEGIN").await.map_err(db)?;
        conn.batch_execute(sql).await.map_err(db)?;
        conn.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db)?;
        conn.batch_execute("COMMIT").await.map_err(db)?;
        tracing::info!(version, "applied a schema migration");
    }
    Ok(())
}

/// Opens a binary `COPY` into a staging table.
async fn copy_in(conn: &Client, staged: &Staged) -> Result<BinaryCopyInWriter, StoreError> {
    let sink = conn.copy_in(staged.copy).await.map_err(db)?;
    Ok(BinaryCopyInWriter::new(sink, staged.types))
}

/// Copies `$items` into a staging table, one row per item, `seq` counting on across calls;
/// sets `$dirty` when anything was staged.
macro_rules! stage {
    ($conn:expr, $staged:expr, $dirty:expr, $seq:expr, $items:expr, |$x:ident| [$($v:expr),* $(,)?]) => {
        if !$items.is_empty() {
            let w = copy_in($conn, &$staged).await?;
            let mut w = std::pin::pin!(w);
            for $x in $items.iter() {
                *$seq += 1;
                let s: i64 = *$seq;
                w.as_mut().write(&[&s, $(&$v),*]).await.map_err(db)?;
            }
            w.finish().await.map_err(db)?;
            $dirty = true;
        }
    };
}

/// Writes `$items` of row table `$i`: straight into the table while that works (see
/// [`DIRECT`]), else into its staging table.
macro_rules! put {
    ($conn:expr, $tid:expr, $i:expr, $staged:expr, $state:expr, $seq:expr, $items:expr, |$x:ident| [$($v:expr),* $(,)?]) => {
        if !$items.is_empty() {
            let mut written = false;
            if $state.direct[$i] {
                $conn.batch_execute("SAVEPOINT direct_copy").await.map_err(db)?;
                let (sql, types) = DIRECT[$i];
                let attempt = async {
                    let sink = $conn.copy_in(sql).await?;
                    let w = BinaryCopyInWriter::new(sink, types);
                    let mut w = std::pin::pin!(w);
                    for $x in $items.iter() {
                        w.as_mut().write(&[&$tid, $(&$v),*]).await?;
                    }
                    w.finish().await
                }
                .await;
                match attempt {
                    Ok(_) => {
                        $conn.batch_execute("RELEASE SAVEPOINT direct_copy").await.map_err(db)?;
                        written = true;
                    }
                    Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                        $conn
                            .batch_execute("ROLLBACK TO SAVEPOINT direct_copy; RELEASE SAVEPOINT direct_copy")
                            .await
                            .map_err(db)?;
                        $state.direct[$i] = false;
                        tracing::debug!(table = $staged.copy.split(' ').nth(1).unwrap_or(""), "keys already stored or repeated: staging this table's rows");
                    }
                    Err(e) => return Err(db(e)),
                }
            }
            if !written {
                stage!($conn, $staged, $state.dirty[$i], $seq, $items, |$x| [$($v),*]);
            }
        }
    };
}

fn day_opt(d: Option<Day>) -> Option<i32> {
    d.map(|d| d.0)
}

/// Where the open batch's rows went, per table in [`STAGED`] order.
struct Dirty {
    /// The staging table holds rows (to merge at commit).
    dirty: [bool; 11],
    /// Row tables still written straight into the table.
    direct: [bool; 8],
}

impl Default for Dirty {
    fn default() -> Self {
        Dirty {
            dirty: [false; 11],
            direct: [true; 8],
        }
    }
}

async fn stage_rows(
    conn: &Client,
    tid: &str,
    r: Rows<'_>,
    seq: &mut i64,
    state: &mut Dirty,
) -> Result<(), StoreError> {
    put!(conn, tid, 0, USERS, state, seq, r.users, |u| [
        i64::from(u.ord),
        u.id,
        u.user_principal_name,
        u.display_name,
        day_opt(u.deleted),
    ]);
    put!(conn, tid, 1, LICENSES, state, seq, r.licenses, |l| [
        i64::from(l.ord),
        l.service.index() as i32,
        l.span.start.0,
        day_opt(l.span.end),
    ]);
    put!(conn, tid, 2, PRODUCTS, state, seq, r.products, |p| [
        i64::from(p.ord),
        p.product_type,
        p.span.start.0,
        day_opt(p.span.end),
    ]);
    put!(conn, tid, 3, ACTIVATIONS, state, seq, r.activations, |a| [
        i64::from(a.ord),
        a.activation.product_type,
        a.activation.device_id,
        a.activation.platform.index() as i32,
        a.activation.active.start.0,
        day_opt(a.activation.active.end),
        a.activation.shared_computer,
    ]);
    put!(conn, tid, 4, MAILBOXES, state, seq, r.mailboxes, |m| [
        i64::from(m.ord),
        m.mailbox.created.0,
        day_opt(m.mailbox.deleted),
        m.mailbox.recipient_type as i32,
        m.mailbox.issue_warning_quota as i64,
        m.mailbox.prohibit_send_quota as i64,
        m.mailbox.prohibit_send_receive_quota as i64,
        m.mailbox.deleted_item_quota as i64,
        m.mailbox.has_archive,
    ]);
    put!(
        conn,
        tid,
        5,
        MAILBOX_DAYS,
        state,
        seq,
        r.mailbox_days,
        |m| [
            i64::from(m.ord),
            m.day.0,
            m.state.item_count as i64,
            m.state.storage_used as i64,
            m.state.deleted_item_count as i64,
            m.state.deleted_item_size as i64,
        ]
    );
    put!(conn, tid, 6, SITES, state, seq, r.sites, |x| [
        i64::from(x.ord),
        x.site.id,
        x.site.kind as i32,
        x.site.url,
        x.site.owner,
        x.owner.map(i64::from),
        x.site.root_web_template,
        x.site.created.0,
        day_opt(x.site.deleted),
    ]);
    put!(conn, tid, 7, SITE_DAYS, state, seq, r.site_days, |x| [
        i64::from(x.ord),
        x.day.0,
        x.state.file_count as i64,
        x.state.active_file_count as i64,
        x.state.page_view_count as i64,
        x.state.visited_page_count as i64,
        x.state.storage_used as i64,
        x.state.storage_allocated as i64,
    ]);
    Ok(())
}

async fn stage_tail(
    conn: &Client,
    activity: &[ActivityDay],
    counters: &[CounterDay],
    clients: &[ClientDay],
    seq: &mut i64,
    dirty: &mut Dirty,
) -> Result<(), StoreError> {
    let d = &mut dirty.dirty;
    let mut activity_blobs = Vec::with_capacity(activity.len());
    for a in activity {
        let mut buf = Vec::with_capacity(a.users.serialized_size());
        a.users
            .serialize_into(&mut buf)
            .map_err(|e| StoreError::Database(format!("serializing a bitmap: {e}")))?;
        activity_blobs.push((a.service.index() as i32, a.day.0, buf));
    }
    stage!(conn, ACTIVITY, d[8], seq, activity_blobs, |a| [
        a.0, a.1, a.2
    ]);
    let counter_blobs: Vec<(i32, i32, Vec<u8>)> = counters
        .iter()
        .map(|c| {
            let mut b = Vec::new();
            c.block.encode(&mut b);
            (c.workload.index() as i32, c.day.0, b)
        })
        .collect();
    stage!(conn, COUNTERS, d[9], seq, counter_blobs, |c| [
        c.0, c.1, c.2
    ]);
    let client_blobs: Vec<(i32, Vec<u8>)> = clients
        .iter()
        .map(|c| {
            let mut b = Vec::new();
            ClientDay::encode(&c.signals, &mut b);
            (c.day.0, b)
        })
        .collect();
    stage!(conn, CLIENTS, d[10], seq, client_blobs, |c| [c.0, c.1]);
    Ok(())
}

/// A batch in one open transaction on one pooled connection, holding the tenant's
/// advisory lock. Dropped unfinished, its connection is closed (not returned to the pool),
/// which rolls the transaction back on the server.
struct PostgresBatch<'a> {
    store: &'a PostgresStore,
    conn: Option<deadpool_postgres::Object>,
    tid: String,
    seq: i64,
    dirty: Dirty,
}

impl PostgresBatch<'_> {
    fn conn(&self) -> Result<&Client, StoreError> {
        self.conn
            .as_deref()
            .map(|c| &**c)
            .ok_or_else(|| StoreError::Database("the batch's connection is gone".into()))
    }
}

impl BatchWriter for PostgresBatch<'_> {
    fn rows(&mut self, rows: Rows<'_>) -> Result<(), StoreError> {
        let mut seq = self.seq;
        let mut dirty = std::mem::take(&mut self.dirty);
        let conn = self.conn()?;
        let r = self
            .store
            .block_on(stage_rows(conn, &self.tid, rows, &mut seq, &mut dirty));
        self.seq = seq;
        self.dirty = dirty;
        r
    }

    fn finish(
        mut self: Box<Self>,
        activity: &[ActivityDay],
        counters: &[CounterDay],
        clients: &[ClientDay],
        meta: &TenantMeta,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError> {
        self.stage_tail(activity, counters, clients)?;
        self.commit(meta, audit, true)
    }
}

impl PostgresBatch<'_> {
    /// Stages a batch's (or a chunk's) activity, counters and email clients.
    fn stage_tail(
        &mut self,
        activity: &[ActivityDay],
        counters: &[CounterDay],
        clients: &[ClientDay],
    ) -> Result<(), StoreError> {
        let mut seq = self.seq;
        let mut dirty = std::mem::take(&mut self.dirty);
        let conn = self.conn()?;
        let r = self.store.block_on(stage_tail(
            conn, activity, counters, clients, &mut seq, &mut dirty,
        ));
        self.seq = seq;
        self.dirty = dirty;
        r
    }

    /// Runs SQL with the tenant id as `$1` inside the batch's transaction.
    fn execute(&self, sql: &str) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let tid = self.tid.as_str();
        self.store
            .block_on(async { conn.execute(sql, &[&tid]).await.map_err(db) })
    }

    /// Merges what was staged, sets the tenant's meta, appends the audit entry and commits.
    /// With `check_version`, refuses when the database holds a data version not older than
    /// `meta`'s.
    fn commit(
        mut self: Box<Self>,
        meta: &TenantMeta,
        audit: Option<&AuditRecord>,
        check_version: bool,
    ) -> Result<(), StoreError> {
        let dirty = std::mem::take(&mut self.dirty);
        let conn = self.conn()?;
        let tid = self.tid.as_str();
        self.store.block_on(async {
            // Another process (a second node) may have written this tenant since this
            // batch was planned: refuse rather than overwrite with rows planned on older data.
            let stored: Option<i64> = conn
                .query_opt("SELECT version FROM tenants WHERE tid = $1", &[&tid])
                .await
                .map_err(db)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(db)?;
            if check_version
                && let Some(v) = stored
                && v >= meta.version as i64
            {
                return Err(StoreError::Conflict(format!(
                    "tenant {tid} is at data version {v} in the database, this batch was planned for version {}",
                    meta.version
                )));
            }
            for (staged, is_dirty) in STAGED.iter().zip(dirty.dirty) {
                if is_dirty {
                    let started = std::time::Instant::now();
                    let rows = conn.execute(staged.merge, &[&tid]).await.map_err(db)?;
                    tracing::debug!(
                        table = staged.copy.split(' ').nth(1).unwrap_or(""),
                        rows,
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        "staged rows merged"
                    );
                }
            }
            conn.execute(
                "INSERT INTO tenants (tid, explicit_refresh, max_activity, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tid) DO UPDATE SET explicit_refresh = EXCLUDED.explicit_refresh,
                 max_activity = EXCLUDED.max_activity, version = EXCLUDED.version",
                &[
                    &tid,
                    &day_opt(meta.explicit_refresh),
                    &day_opt(meta.max_activity),
                    &(meta.version as i64),
                ],
            )
            .await
            .map_err(db)?;
            if let Some(a) = audit {
                append_audit(conn, tid, a).await?;
            }
            let started = std::time::Instant::now();
            conn.batch_execute("COMMIT").await.map_err(db)?;
            tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "batch committed");
            Ok(())
        })?;
        // Committed: the connection goes back to the pool.
        drop(self.conn.take());
        Ok(())
    }
}

/// A stored hash as 32 bytes (a damaged one reads as zeros, which verification reports).
fn hash32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if b.len() == 32 {
        out.copy_from_slice(b);
    }
    out
}

/// Appends `r` to the tenant's audit chain inside the caller's open transaction, which
/// holds the tenant's advisory lock (so two appends never take the same `seq`).
async fn append_audit(conn: &Client, t: &str, r: &AuditRecord) -> Result<AuditEntry, StoreError> {
    let last = conn
        .query_opt(
            "SELECT seq, hash FROM audit_log WHERE tid = $1 ORDER BY seq DESC LIMIT 1",
            &[&t],
        )
        .await
        .map_err(db)?;
    let (seq, prev) = match last {
        Some(row) => {
            let seq: i64 = row.try_get(0).map_err(db)?;
            let hash: &[u8] = row.try_get(1).map_err(db)?;
            (seq as u64 + 1, hash32(hash))
        }
        None => (1, [0u8; 32]),
    };
    let hash = crate::audit::entry_hash(t, seq, &prev, r);
    conn.execute(
        "INSERT INTO audit_log (tid, seq, at_ms, app_id, object_id, actor_name, action, target,
         details, request_id, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &t,
            &(seq as i64),
            &r.at_ms,
            &r.app_id,
            &r.object_id,
            &r.actor_name,
            &r.action,
            &r.target,
            &r.details,
            &r.request_id,
            &prev.as_slice(),
            &hash.as_slice(),
        ],
    )
    .await
    .map_err(db)?;
    tracing::info!(tenant = %t, seq, action = %r.action, hash = %crate::audit::hex(&hash), "audit entry appended");
    Ok(AuditEntry {
        tenant: t.to_string(),
        seq,
        record: r.clone(),
        prev,
        hash,
    })
}

/// `BEGIN` and the tenant's transaction advisory lock (held to the commit).
async fn begin_locked(conn: &Client, t: &str) -> Result<(), StoreError> {
    conn.batch_execute("BEGIN").await.map_err(db)?;
    conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&TENANT_LOCK, &t],
    )
    .await
    .map_err(db)?;
    Ok(())
}

impl Drop for PostgresBatch<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Unfinished (a later bad line, an error): close the session instead of
            // returning it mid-transaction; the server rolls back and frees the lock.
            drop(deadpool_postgres::Object::take(conn));
        }
    }
}

/// Hands rows to the load sink in chunks; every chunk carries the meta.
struct Chunker<'s> {
    sink: &'s mut dyn FnMut(Changeset),
    meta: TenantMeta,
    c: Changeset,
    n: usize,
}

impl Chunker<'_> {
    fn counted(&mut self, weight: usize) {
        self.n += weight;
        if self.n >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let fresh = Changeset {
            meta: self.meta,
            ..Changeset::default()
        };
        (self.sink)(std::mem::replace(&mut self.c, fresh));
        self.n = 0;
    }
}

/// Streams one query's rows through `each`.
async fn each_row(
    conn: &Client,
    sql: &str,
    tid: &str,
    mut each: impl FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let rows = conn.query_raw(sql, [tid]).await.map_err(db)?;
    let mut rows = std::pin::pin!(rows);
    while let Some(r) = rows.try_next().await.map_err(db)? {
        each(r)?;
    }
    Ok(())
}

fn ord(r: &Row, i: usize) -> Result<u32, StoreError> {
    let v: i64 = r.try_get(i).map_err(db)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("ordinal {v} out of range")))
}

fn big(r: &Row, i: usize) -> Result<u64, StoreError> {
    Ok(r.try_get::<_, i64>(i).map_err(db)? as u64)
}

fn int(r: &Row, i: usize) -> Result<i32, StoreError> {
    r.try_get(i).map_err(db)
}

fn nday(r: &Row, i: usize) -> Result<Option<Day>, StoreError> {
    Ok(opt_day(r.try_get(i).map_err(db)?))
}

async fn read_meta(conn: &Client, t: &str) -> Result<Option<TenantMeta>, StoreError> {
    let row = conn
        .query_opt(
            "SELECT explicit_refresh, max_activity, version FROM tenants WHERE tid = $1",
            &[&t],
        )
        .await
        .map_err(db)?;
    row.map(|r| {
        Ok(TenantMeta {
            explicit_refresh: nday(&r, 0)?,
            max_activity: nday(&r, 1)?,
            version: big(&r, 2)?,
        })
    })
    .transpose()
}

/// Streams a tenant in the SQLite engine's order (users first; within a table, key order).
async fn read(conn: &Client, t: &str, sink: &mut dyn FnMut(Changeset)) -> Result<bool, StoreError> {
    // One snapshot of the tenant across all the queries.
    conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(db)?;
    let Some(meta) = read_meta(conn, t).await? else {
        conn.batch_execute("COMMIT").await.map_err(db)?;
        return Ok(false);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("tenant {t}: {what}"));
    let mut k = Chunker {
        sink,
        meta,
        c: Changeset {
            meta,
            ..Changeset::default()
        },
        n: 0,
    };
    each_row(
        conn,
        "SELECT ord, id, upn, display_name, deleted FROM users WHERE tid = $1 ORDER BY ord",
        t,
        |r| {
            k.c.users.push(UserRow {
                ord: ord(&r, 0)?,
                id: r.try_get(1).map_err(db)?,
                user_principal_name: r.try_get(2).map_err(db)?,
                display_name: r.try_get(3).map_err(db)?,
                deleted: nday(&r, 4)?,
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, service, assigned, removed FROM service_licenses WHERE tid = $1 ORDER BY ord, service",
        t,
        |r| {
            let service = Service::from_index(int(&r, 1)? as usize)
                .ok_or_else(|| corrupt("unknown service"))?;
            k.c.licenses.push(LicenseRow {
                ord: ord(&r, 0)?,
                service,
                span: Span {
                    start: Day(int(&r, 2)?),
                    end: nday(&r, 3)?,
                },
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, product, assigned, removed FROM product_assignments WHERE tid = $1 ORDER BY ord, product",
        t,
        |r| {
            k.c.products.push(ProductRow {
                ord: ord(&r, 0)?,
                product_type: r.try_get(1).map_err(db)?,
                span: Span {
                    start: Day(int(&r, 2)?),
                    end: nday(&r, 3)?,
                },
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, product, device, platform, activated, deactivated, shared FROM activations
         WHERE tid = $1 ORDER BY ord, product, device",
        t,
        |r| {
            let platform = Platform::from_index(int(&r, 3)? as usize)
                .ok_or_else(|| corrupt("unknown platform"))?;
            k.c.activations.push(ActivationRow {
                ord: ord(&r, 0)?,
                activation: Activation {
                    product_type: r.try_get(1).map_err(db)?,
                    device_id: r.try_get(2).map_err(db)?,
                    platform,
                    active: Span {
                        start: Day(int(&r, 4)?),
                        end: nday(&r, 5)?,
                    },
                    shared_computer: r.try_get(6).map_err(db)?,
                },
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT service, day, users FROM activity_days WHERE tid = $1 ORDER BY service, day",
        t,
        |r| {
            let service = Service::from_index(int(&r, 0)? as usize)
                .ok_or_else(|| corrupt("unknown service"))?;
            let blob: &[u8] = r.try_get(2).map_err(db)?;
            let users = RoaringBitmap::deserialize_from(blob)
                .map_err(|e| corrupt(&format!("activity bitmap: {e}")))?;
            k.c.activity.push(ActivityDay {
                service,
                day: Day(int(&r, 1)?),
                users,
            });
            // Bitmaps are large: hand them over a few at a time.
            k.counted(CHUNK / 64);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, created, deleted, recipient_type, issue_warning, prohibit_send, prohibit_send_receive,
         deleted_item_quota, has_archive FROM mailboxes WHERE tid = $1 ORDER BY ord",
        t,
        |r| {
            k.c.mailboxes.push(MailboxRow {
                ord: ord(&r, 0)?,
                mailbox: Mailbox {
                    created: Day(int(&r, 1)?),
                    deleted: nday(&r, 2)?,
                    recipient_type: RecipientType::from_index(int(&r, 3)? as usize)
                        .ok_or_else(|| corrupt("unknown recipient type"))?,
                    issue_warning_quota: big(&r, 4)?,
                    prohibit_send_quota: big(&r, 5)?,
                    prohibit_send_receive_quota: big(&r, 6)?,
                    deleted_item_quota: big(&r, 7)?,
                    has_archive: r.try_get(8).map_err(db)?,
                },
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, day, item_count, storage_used, deleted_item_count, deleted_item_size
         FROM mailbox_days WHERE tid = $1 ORDER BY ord, day",
        t,
        |r| {
            k.c.mailbox_days.push(MailboxDayRow {
                ord: ord(&r, 0)?,
                day: Day(int(&r, 1)?),
                state: MailboxState {
                    item_count: big(&r, 2)?,
                    storage_used: big(&r, 3)?,
                    deleted_item_count: big(&r, 4)?,
                    deleted_item_size: big(&r, 5)?,
                },
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, id, kind, url, owner_id, owner_ord, template, created, deleted
         FROM sites WHERE tid = $1 ORDER BY ord",
        t,
        |r| {
            let owner: Option<i64> = r.try_get(5).map_err(db)?;
            let owner = owner
                .map(|o| u32::try_from(o).map_err(|_| corrupt("owner ordinal out of range")))
                .transpose()?;
            k.c.sites.push(SiteRow {
                ord: ord(&r, 0)?,
                site: Site {
                    id: r.try_get(1).map_err(db)?,
                    kind: SiteKind::from_index(int(&r, 2)? as usize)
                        .ok_or_else(|| corrupt("unknown site kind"))?,
                    url: r.try_get(3).map_err(db)?,
                    owner: r.try_get(4).map_err(db)?,
                    root_web_template: r.try_get(6).map_err(db)?,
                    created: Day(int(&r, 7)?),
                    deleted: nday(&r, 8)?,
                },
                owner,
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT ord, day, file_count, active_file_count, page_views, visited_pages, storage_used,
         storage_allocated FROM site_days WHERE tid = $1 ORDER BY ord, day",
        t,
        |r| {
            k.c.site_days.push(SiteDayRow {
                ord: ord(&r, 0)?,
                day: Day(int(&r, 1)?),
                state: SiteState {
                    file_count: big(&r, 2)?,
                    active_file_count: big(&r, 3)?,
                    page_view_count: big(&r, 4)?,
                    visited_page_count: big(&r, 5)?,
                    storage_used: big(&r, 6)?,
                    storage_allocated: big(&r, 7)?,
                },
            });
            k.counted(1);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT day, signals FROM client_days WHERE tid = $1 ORDER BY day",
        t,
        |r| {
            let blob: &[u8] = r.try_get(1).map_err(db)?;
            let signals = ClientDay::decode(blob).ok_or_else(|| corrupt("client signals"))?;
            k.c.clients.push(ClientDay {
                day: Day(int(&r, 0)?),
                signals,
            });
            k.counted(CHUNK / 64);
            Ok(())
        },
    )
    .await?;
    each_row(
        conn,
        "SELECT workload, day, counters FROM counter_days WHERE tid = $1 ORDER BY workload, day",
        t,
        |r| {
            let workload = Workload::from_index(int(&r, 0)? as usize)
                .ok_or_else(|| corrupt("unknown workload"))?;
            let blob: &[u8] = r.try_get(2).map_err(db)?;
            let block = CounterBlock::decode(blob).ok_or_else(|| corrupt("counter block"))?;
            let weight = block.ords.len() / 8;
            k.c.counters.push(CounterDay {
                workload,
                day: Day(int(&r, 1)?),
                block,
            });
            k.counted(weight);
            Ok(())
        },
    )
    .await?;
    k.flush();
    conn.batch_execute("COMMIT").await.map_err(db)?;
    Ok(true)
}

impl PostgresStore {
    /// Runs `f` on a pooled connection. On an error the connection is closed rather than
    /// returned to the pool, so a transaction `f` left open never reaches another caller.
    fn with_conn<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.block_on(async {
            let conn = self.pool.get().await.map_err(pool_err)?;
            let r = f(&conn).await;
            if r.is_err() {
                drop(deadpool_postgres::Object::take(conn));
            }
            r
        })
    }
}

impl PostgresStore {
    /// A batch on a connection of its own: staging tables ready, a transaction open and
    /// the tenant's advisory lock taken (this tenant's batches from every process on the
    /// database wait here for each other).
    fn batch(&self, tenant: &TenantId) -> Result<Box<PostgresBatch<'_>>, StoreError> {
        let tid = tenant.as_str().to_string();
        let conn = self.block_on(async {
            let conn = self.pool.get().await.map_err(pool_err)?;
            let prepared = async {
                conn.batch_execute(STAGING).await.map_err(db)?;
                begin_locked(&conn, &tid).await
            }
            .await;
            match prepared {
                Ok(()) => Ok(conn),
                Err(e) => {
                    drop(deadpool_postgres::Object::take(conn));
                    Err(e)
                }
            }
        })?;
        Ok(Box::new(PostgresBatch {
            store: self,
            conn: Some(conn),
            tid,
            seq: 0,
            dirty: Dirty::default(),
        }))
    }
}

impl Store for PostgresStore {
    fn begin(&self, tenant: &TenantId) -> Result<Box<dyn BatchWriter + '_>, StoreError> {
        Ok(self.batch(tenant)?)
    }

    fn load(&self, tenant: &TenantId, sink: &mut dyn FnMut(Changeset)) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        self.block_on(async {
            let conn = self.pool.get().await.map_err(pool_err)?;
            let r = read(&conn, t, sink).await;
            if r.is_err() {
                drop(deadpool_postgres::Object::take(conn));
            }
            r
        })
    }

    fn meta(&self, tenant: &TenantId) -> Result<Option<TenantMeta>, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| read_meta(conn, t).await)
    }

    fn commit(
        &self,
        tenant: &TenantId,
        change: &Changeset,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError> {
        let mut w = self.batch(tenant)?;
        w.rows(change.rows())?;
        w.finish(
            &change.activity,
            &change.counters,
            &change.clients,
            &change.meta,
            audit,
        )
    }

    fn report_settings(&self, tenant: &TenantId) -> Result<ReportSettings, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            let row = conn
                .query_opt(
                    "SELECT display_concealed_names FROM report_settings WHERE tid = $1",
                    &[&t],
                )
                .await
                .map_err(db)?;
            Ok(match row {
                Some(r) => ReportSettings {
                    display_concealed_names: r.try_get(0).map_err(db)?,
                },
                None => ReportSettings::default(),
            })
        })
    }

    fn set_report_settings(
        &self,
        tenant: &TenantId,
        settings: &ReportSettings,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let t = tenant.as_str();
        let v = settings.display_concealed_names;
        self.with_conn(async |conn| {
            begin_locked(conn, t).await?;
            conn.execute(
                "INSERT INTO report_settings (tid, display_concealed_names) VALUES ($1, $2)
                 ON CONFLICT (tid) DO UPDATE SET display_concealed_names = EXCLUDED.display_concealed_names",
                &[&t, &v],
            )
            .await
            .map_err(db)?;
            append_audit(conn, t, audit).await?;
            conn.batch_execute("COMMIT").await.map_err(db)
        })
    }

    fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.with_conn(async |conn| {
            let rows = conn
                .query("SELECT tid FROM tenants ORDER BY tid", &[])
                .await
                .map_err(db)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let s: &str = r.try_get(0).map_err(db)?;
                if let Some(t) = TenantId::parse(s) {
                    out.push(t);
                }
            }
            Ok(out)
        })
    }

    fn stats(&self, tenant: &TenantId) -> Result<Option<TenantStats>, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(db)?;
            let Some(meta) = read_meta(conn, t).await? else {
                conn.batch_execute("COMMIT").await.map_err(db)?;
                return Ok(None);
            };
            let users: i64 = conn
                .query_one("SELECT count(*) FROM users WHERE tid = $1", &[&t])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(db)?;
            let r = conn
                .query_one(
                    "SELECT count(DISTINCT day), min(day), max(day) FROM activity_days WHERE tid = $1",
                    &[&t],
                )
                .await
                .map_err(db)?;
            let days: i64 = r.try_get(0).map_err(db)?;
            let first = nday(&r, 1)?;
            let last = nday(&r, 2)?;
            let mut bytes = 0i64;
            for sql in STATS_BYTES {
                bytes += conn
                    .query_one(sql, &[&t])
                    .await
                    .and_then(|r| r.try_get::<_, i64>(0))
                    .map_err(db)?;
            }
            conn.batch_execute("COMMIT").await.map_err(db)?;
            Ok(Some(TenantStats {
                meta,
                users: users.max(0) as u64,
                activity_days: days.max(0) as u64,
                first_activity: first,
                last_activity: last,
                bytes: bytes.max(0) as u64,
            }))
        })
    }

    fn delete_tenant(&self, tenant: &TenantId, audit: &AuditRecord) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            begin_locked(conn, t).await?;
            let mut removed = 0u64;
            for table in TENANT_TABLES {
                removed += conn
                    .execute(&format!("DELETE FROM {table} WHERE tid = $1"), &[&t])
                    .await
                    .map_err(db)?;
            }
            if removed == 0 {
                conn.batch_execute("ROLLBACK").await.map_err(db)?;
                return Ok(false);
            }
            append_audit(conn, t, audit).await?;
            conn.batch_execute("COMMIT").await.map_err(db)?;
            tracing::info!(tenant = %t, rows = removed, "tenant deleted from PostgreSQL");
            Ok(true)
        })
        .inspect(|deleted| {
            if *deleted {
                self.vacuum(&DATA_TABLES);
            }
        })
    }

    fn rewrite_tenant(
        &self,
        tenant: &TenantId,
        chunks: &[Changeset],
        meta: &TenantMeta,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut w = self.batch(tenant)?;
        // The kept snapshot holds the old rows too (the erased user): it goes with them,
        // and the node writes a new one.
        for table in DATA_TABLES.iter().chain(&["snapshots"]) {
            w.execute(&format!("DELETE FROM {table} WHERE tid = $1"))?;
        }
        for c in chunks {
            w.rows(c.rows())?;
            w.stage_tail(&c.activity, &c.counters, &c.clients)?;
        }
        // The erasure moves the version on by one from what it read: refused (rolled back)
        // if another node wrote the tenant since, so no batch of theirs is overwritten.
        w.commit(meta, Some(audit), true)?;
        self.vacuum(&DATA_TABLES);
        Ok(())
    }

    fn prune(
        &self,
        tenant: &TenantId,
        before: Day,
        audit: &AuditRecord,
    ) -> Result<Pruned, StoreError> {
        let t = tenant.as_str();
        let b = before.0;
        self.with_conn(async |conn| {
            begin_locked(conn, t).await?;
            let mut rows = 0u64;
            for sql in [
                "DELETE FROM activity_days WHERE tid = $1 AND day < $2",
                "DELETE FROM counter_days WHERE tid = $1 AND day < $2",
                "DELETE FROM client_days WHERE tid = $1 AND day < $2",
                // A state holds until the next one: keep each mailbox's and site's state in
                // force on `before` (its latest on or before that day), drop those it replaced.
                "DELETE FROM mailbox_days d WHERE d.tid = $1 AND d.day < $2 AND d.day < (
                     SELECT max(k.day) FROM mailbox_days k
                     WHERE k.tid = $1 AND k.ord = d.ord AND k.day <= $2)",
                "DELETE FROM site_days d WHERE d.tid = $1 AND d.day < $2 AND d.day < (
                     SELECT max(k.day) FROM site_days k
                     WHERE k.tid = $1 AND k.ord = d.ord AND k.day <= $2)",
            ] {
                rows += conn.execute(sql, &[&t, &b]).await.map_err(db)?;
            }
            if rows == 0 {
                conn.batch_execute("ROLLBACK").await.map_err(db)?;
                return Ok(Pruned { rows });
            }
            // A new data version: cached reports of the old one no longer match.
            conn.execute(
                "UPDATE tenants SET version = version + 1 WHERE tid = $1",
                &[&t],
            )
            .await
            .map_err(db)?;
            conn.execute(
                "INSERT INTO retention (tid, retained_from) VALUES ($1, $2)
                 ON CONFLICT (tid) DO UPDATE SET retained_from = GREATEST(retention.retained_from, EXCLUDED.retained_from)",
                &[&t, &b],
            )
            .await
            .map_err(db)?;
            let mut a = audit.clone();
            a.details = format!("{{\"before\":\"{before}\",\"rowsRemoved\":{rows}}}");
            append_audit(conn, t, &a).await?;
            conn.batch_execute("COMMIT").await.map_err(db)?;
            Ok(Pruned { rows })
        })
    }

    fn retained_from(&self, tenant: &TenantId) -> Result<Option<Day>, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            let row = conn
                .query_opt("SELECT retained_from FROM retention WHERE tid = $1", &[&t])
                .await
                .map_err(db)?;
            row.map(|r| int(&r, 0).map(Day)).transpose()
        })
    }

    fn audit(&self, tenant: &TenantId, record: &AuditRecord) -> Result<AuditEntry, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            begin_locked(conn, t).await?;
            let e = append_audit(conn, t, record).await?;
            conn.batch_execute("COMMIT").await.map_err(db)?;
            Ok(e)
        })
    }

    fn audit_entries(
        &self,
        tenant: Option<&TenantId>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let t = tenant.map(|t| t.as_str());
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(async |conn| {
            // One tenant's chain, or (for the operator's `reportroot audit`) every chain.
            let rows = conn
                .query(
                    "SELECT tid, seq, at_ms, app_id, object_id, actor_name, action, target, details,
                     request_id, prev, hash FROM audit_log
                     WHERE ($1::TEXT IS NULL OR tid = $1) AND seq > $2 ORDER BY tid, seq LIMIT $3",
                    &[&t, &after, &limit],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEntry {
                        tenant: r.try_get(0).map_err(db)?,
                        seq: big(r, 1)?,
                        record: AuditRecord {
                            at_ms: r.try_get(2).map_err(db)?,
                            app_id: r.try_get(3).map_err(db)?,
                            object_id: r.try_get(4).map_err(db)?,
                            actor_name: r.try_get(5).map_err(db)?,
                            action: r.try_get(6).map_err(db)?,
                            target: r.try_get(7).map_err(db)?,
                            details: r.try_get(8).map_err(db)?,
                            request_id: r.try_get(9).map_err(db)?,
                        },
                        prev: hash32(r.try_get(10).map_err(db)?),
                        hash: hash32(r.try_get(11).map_err(db)?),
                    })
                })
                .collect()
        })
    }

    fn backup_to(&self, _dest: &Path) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(format!(
            "the store is the PostgreSQL database {}: back it up with pg_dump (and restore with pg_restore); `reportroot backup` copies only the embedded SQLite store",
            self.target
        )))
    }

    fn shared(&self) -> bool {
        true
    }

    fn app_documents(&self, tenant: Option<&TenantId>) -> Result<Vec<String>, StoreError> {
        let t = tenant.map(|t| t.as_str().to_string());
        self.with_conn(async |conn| {
            let rows = conn
                .query(
                    "SELECT doc FROM apps WHERE ($1::TEXT IS NULL OR tid = $1) ORDER BY tid, client_id",
                    &[&t],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(db))
                .collect()
        })
    }

    fn put_app_document(
        &self,
        tenant: &TenantId,
        client_id: &str,
        doc: &str,
    ) -> Result<(), StoreError> {
        let t = tenant.as_str();
        let c = client_id.to_ascii_lowercase();
        self.with_conn(async |conn| {
            conn.execute(
                "INSERT INTO apps (tid, client_id, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (tid, client_id) DO UPDATE SET doc = EXCLUDED.doc",
                &[&t, &c, &doc],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn delete_app_document(&self, tenant: &TenantId, client_id: &str) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        let c = client_id.to_ascii_lowercase();
        self.with_conn(async |conn| {
            let n = conn
                .execute(
                    "DELETE FROM apps WHERE tid = $1 AND client_id = $2",
                    &[&t, &c],
                )
                .await
                .map_err(db)?;
            Ok(n > 0)
        })
    }

    fn put_snapshot(
        &self,
        tenant: &TenantId,
        version: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let t = tenant.as_str();
        // Pieces well under PostgreSQL's 1 GB limit for one value; one transaction, so a
        // reader sees the old snapshot or the new one, never a mix.
        const PIECE: usize = 32 << 20;
        self.with_conn(async |conn| {
            conn.batch_execute("BEGIN").await.map_err(db)?;
            conn.execute("DELETE FROM snapshots WHERE tid = $1", &[&t])
                .await
                .map_err(db)?;
            let version = version as i64;
            for (seq, piece) in bytes.chunks(PIECE).enumerate() {
                conn.execute(
                    "INSERT INTO snapshots (tid, seq, version, data) VALUES ($1, $2, $3, $4)",
                    &[&t, &(seq as i32), &version, &piece],
                )
                .await
                .map_err(db)?;
            }
            conn.batch_execute("COMMIT").await.map_err(db)?;
            Ok(())
        })
    }

    fn snapshot_info(&self, tenant: &TenantId) -> Result<Option<(u64, u64)>, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            let row = conn
                .query_one(
                    "SELECT min(version), max(version), sum(length(data))::BIGINT FROM snapshots WHERE tid = $1",
                    &[&t],
                )
                .await
                .map_err(db)?;
            let lo: Option<i64> = row.try_get(0).map_err(db)?;
            let hi: Option<i64> = row.try_get(1).map_err(db)?;
            let len: Option<i64> = row.try_get(2).map_err(db)?;
            Ok(match (lo, hi, len) {
                (Some(lo), Some(hi), Some(len)) if lo == hi => Some((hi as u64, len as u64)),
                _ => None,
            })
        })
    }

    fn snapshot_piece(
        &self,
        tenant: &TenantId,
        version: u64,
        seq: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            let row = conn
                .query_opt(
                    "SELECT data FROM snapshots WHERE tid = $1 AND seq = $2 AND version = $3",
                    &[&t, &(seq as i32), &(version as i64)],
                )
                .await
                .map_err(db)?;
            row.map(|r| r.try_get::<_, Vec<u8>>(0).map_err(db))
                .transpose()
        })
    }

    fn throttle(
        &self,
        tenant: &TenantId,
        counters: &[(String, u32)],
        window_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let t = tenant.as_str();
        self.with_conn(async |conn| {
            conn.batch_execute("BEGIN").await.map_err(db)?;
            conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&THROTTLE_LOCK, &t],
            )
            .await
            .map_err(db)?;
            conn.execute(
                "DELETE FROM throttle_hits WHERE tid = $1 AND at_ms <= $2",
                &[&t, &(now_ms - window_ms)],
            )
            .await
            .map_err(db)?;
            let mut wait: Option<i64> = None;
            for (counter, limit) in counters {
                if *limit == 0 {
                    wait = Some(wait.unwrap_or(0).max(1000));
                    continue;
                }
                // The call that must leave the window before this one fits: the limit-th
                // most recent still counted.
                let row = conn
                    .query_opt(
                        "SELECT at_ms FROM throttle_hits WHERE tid = $1 AND counter = $2
                         ORDER BY at_ms DESC OFFSET $3 LIMIT 1",
                        &[&t, counter, &(i64::from(*limit) - 1)],
                    )
                    .await
                    .map_err(db)?;
                if let Some(row) = row {
                    let at: i64 = row.try_get(0).map_err(db)?;
                    wait = Some(wait.unwrap_or(0).max(at + window_ms - now_ms));
                }
            }
            if wait.is_none() {
                for (counter, _) in counters {
                    conn.execute(
                        "INSERT INTO throttle_hits (tid, counter, at_ms) VALUES ($1, $2, $3)",
                        &[&t, counter, &now_ms],
                    )
                    .await
                    .map_err(db)?;
                }
            }
            conn.batch_execute("COMMIT").await.map_err(db)?;
            Ok(wait)
        })
    }

    fn key_rows(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.with_conn(async |conn| read_keys(conn).await)
    }

    fn update_keys(
        &self,
        change: &mut dyn FnMut(&[KeyRow]) -> Vec<KeyRow>,
    ) -> Result<Vec<KeyRow>, StoreError> {
        self.with_conn(async |conn| {
            conn.batch_execute("BEGIN").await.map_err(db)?;
            conn.execute("SELECT pg_advisory_xact_lock($1, 1)", &[&KEYS_LOCK])
                .await
                .map_err(db)?;
            let stored = read_keys(conn).await?;
            for k in change(&stored) {
                conn.execute(
                    "INSERT INTO signing_keys (kind, kid, created, retired, accepted_until, material)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (kind, kid) DO UPDATE
                     SET retired = EXCLUDED.retired, accepted_until = EXCLUDED.accepted_until",
                    &[
                        &k.kind,
                        &k.kid,
                        &k.created,
                        &k.retired,
                        &k.accepted_until,
                        &k.material,
                    ],
                )
                .await
                .map_err(db)?;
            }
            let ring = read_keys(conn).await?;
            conn.batch_execute("COMMIT").await.map_err(db)?;
            Ok(ring)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(async |conn| {
            conn.simple_query("SELECT 1").await.map_err(db)?;
            Ok(())
        })
    }
}

async fn read_keys(conn: &Client) -> Result<Vec<KeyRow>, StoreError> {
    let rows = conn
        .query(
            "SELECT kind, kid, created, retired, accepted_until, material FROM signing_keys
             ORDER BY kind, created, kid",
            &[],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(KeyRow {
                kind: r.try_get(0).map_err(db)?,
                kid: r.try_get(1).map_err(db)?,
                created: r.try_get(2).map_err(db)?,
                retired: r.try_get(3).map_err(db)?,
                accepted_until: r.try_get(4).map_err(db)?,
                material: r.try_get(5).map_err(db)?,
            })
        })
        .collect()
}

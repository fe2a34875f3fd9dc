//! The embedded default engine: one SQLite database file in the data dir, WAL mode with
//! `synchronous=FULL`, so a committed batch survives a crash or power loss.

use std::path::Path;
use std::sync::Mutex;

use roaring::RoaringBitmap;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    ActivationRow, ActivityDay, Changeset, LicenseRow, ProductRow, Store, StoreError, TenantMeta,
    UserRow,
};
use crate::model::{Activation, Day, Platform, Service, Span, TenantId};

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
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
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
        let conn = Connection::open(dir.join("reportroot.sqlite3")).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back the
        // open transaction when it is dropped, so recover from poisoning.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn write(tx: &rusqlite::Transaction<'_>, t: &str, c: &Changeset) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO tenants (tid, explicit_refresh, max_activity, version) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(tid) DO UPDATE SET explicit_refresh = ?2, max_activity = ?3, version = ?4",
        params![
            t,
            c.meta.explicit_refresh.map(|d| d.0),
            c.meta.max_activity.map(|d| d.0),
            c.meta.version as i64
        ],
    )?;
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO users (tid, ord, id, upn, display_name, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for u in &c.users {
        st.execute(params![
            t,
            u.ord,
            u.id,
            u.user_principal_name,
            u.display_name,
            u.deleted.map(|d| d.0)
        ])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO service_licenses (tid, ord, service, assigned, removed) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for l in &c.licenses {
        st.execute(params![
            t,
            l.ord,
            l.service.index() as i64,
            l.span.start.0,
            l.span.end.map(|d| d.0)
        ])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO product_assignments (tid, ord, product, assigned, removed) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in &c.products {
        st.execute(params![
            t,
            p.ord,
            p.product_type,
            p.span.start.0,
            p.span.end.map(|d| d.0)
        ])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO activations (tid, ord, product, device, platform, activated, deactivated, shared)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for a in &c.activations {
        let x = &a.activation;
        st.execute(params![
            t,
            a.ord,
            x.product_type,
            x.device_id,
            x.platform.index() as i64,
            x.active.start.0,
            x.active.end.map(|d| d.0),
            x.shared_computer
        ])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO activity_days (tid, service, day, users) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut buf = Vec::new();
    for a in &c.activity {
        buf.clear();
        a.users
            .serialize_into(&mut buf)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        st.execute(params![t, a.service.index() as i64, a.day.0, buf])?;
    }
    Ok(())
}

fn read(conn: &Connection, t: &str) -> Result<Option<Changeset>, StoreError> {
    let meta = conn
        .query_row(
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
        .map_err(db)?;
    let Some(meta) = meta else { return Ok(None) };
    let mut c = Changeset {
        meta,
        ..Changeset::default()
    };
    let mut st = conn
        .prepare(
            "SELECT ord, id, upn, display_name, deleted FROM users WHERE tid = ?1 ORDER BY ord",
        )
        .map_err(db)?;
    c.users = st
        .query_map([t], |r| {
            Ok(UserRow {
                ord: r.get(0)?,
                id: r.get(1)?,
                user_principal_name: r.get(2)?,
                display_name: r.get(3)?,
                deleted: opt_day(r.get(4)?),
            })
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("tenant {t}: {what}"));
    let mut st = conn
        .prepare("SELECT ord, service, assigned, removed FROM service_licenses WHERE tid = ?1")
        .map_err(db)?;
    let rows: Vec<(u32, i64, i64, Option<i64>)> = st
        .query_map([t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (ord, service, start, end) in rows {
        let service =
            Service::from_index(service as usize).ok_or_else(|| corrupt("unknown service"))?;
        c.licenses.push(LicenseRow {
            ord,
            service,
            span: Span {
                start: Day(start as i32),
                end: opt_day(end),
            },
        });
    }
    let mut st = conn
        .prepare("SELECT ord, product, assigned, removed FROM product_assignments WHERE tid = ?1")
        .map_err(db)?;
    c.products = st
        .query_map([t], |r| {
            Ok(ProductRow {
                ord: r.get(0)?,
                product_type: r.get(1)?,
                span: Span {
                    start: Day(r.get::<_, i64>(2)? as i32),
                    end: opt_day(r.get(3)?),
                },
            })
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut st = conn
        .prepare(
            "SELECT ord, product, device, platform, activated, deactivated, shared FROM activations WHERE tid = ?1",
        )
        .map_err(db)?;
    type ActRow = (u32, String, String, i64, i64, Option<i64>, bool);
    let rows: Vec<ActRow> = st
        .query_map([t], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (ord, product_type, device_id, platform, start, end, shared) in rows {
        let platform =
            Platform::from_index(platform as usize).ok_or_else(|| corrupt("unknown platform"))?;
        c.activations.push(ActivationRow {
            ord,
            activation: Activation {
                product_type,
                device_id,
                platform,
                active: Span {
                    start: Day(start as i32),
                    end: opt_day(end),
                },
                shared_computer: shared,
            },
        });
    }
    let mut st = conn
        .prepare("SELECT service, day, users FROM activity_days WHERE tid = ?1")
        .map_err(db)?;
    let rows: Vec<(i64, i64, Vec<u8>)> = st
        .query_map([t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (service, day, blob) in rows {
        let service =
            Service::from_index(service as usize).ok_or_else(|| corrupt("unknown service"))?;
        let users = RoaringBitmap::deserialize_from(&blob[..])
            .map_err(|e| corrupt(&format!("activity bitmap: {e}")))?;
        c.activity.push(ActivityDay {
            service,
            day: Day(day as i32),
            users,
        });
    }
    Ok(Some(c))
}

impl Store for SqliteStore {
    fn load(&self, tenant: &TenantId) -> Result<Option<Changeset>, StoreError> {
        let conn = self.conn();
        read(&conn, tenant.as_str())
    }

    fn commit(&self, tenant: &TenantId, change: &Changeset) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        write(&tx, tenant.as_str(), change).map_err(db)?;
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
}

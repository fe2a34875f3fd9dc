//! The PostgreSQL store against a real PostgreSQL (a fresh database per test, see
//! `common::pg`): the same tenant gives byte-identical reports on SQLite and PostgreSQL,
//! restarts reload it, refused batches store nothing, deletion removes every row, batches of
//! one tenant are serialized across processes, migrations are safe when nodes start
//! together, `/healthz` follows the database's reachability, and every table and query is
//! scoped by the tenant column.

mod common;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pg::{self, TestDb};
use common::{TENANT_A, TENANT_B, TestServer, pg_store};
use reportroot::engine::{Registry, StreamOptions};
use reportroot::generate;
use reportroot::ingest::Limits;
use reportroot::model::{Day, TenantId};
use reportroot::reports::catalogue::{Params, ReportId};
use reportroot::store::{PostgresOptions, PostgresStore, Store, StoreError, StoreKind};
use serde_json::{Value, json};
use support::assert_bytes;

const END: &str = "2026-10-31";

/// A generated tenant (every record kind), as NDJSON.
fn tenant_ndjson(users: u32, seed: u64) -> String {
    let opts = generate::Options {
        users,
        days: 200,
        seed,
        end: Day::parse(END).expect("day"),
        single_date: false,
        usage: true,
    };
    let mut out = Vec::new();
    generate::write_tenant(&opts, &mut out, |_| {}).expect("generate");
    String::from_utf8(out).expect("utf-8")
}

/// A batch that changes stored rows and repeats keys inside itself (the last one wins):
/// renames the first user twice, deletes the second, removes a product assignment.
fn edit_batch(nd: &str) -> String {
    let users: Vec<Value> = nd
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "user")
        .take(2)
        .collect();
    let product = nd
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "productAssignment")
        .expect("a product assignment");
    let mut first = users[0].clone();
    first["displayName"] = json!("Renamed Once");
    let mut again = first.clone();
    again["displayName"] = json!("Renamed Twice");
    let mut second = users[1].clone();
    second["deletedDate"] = json!("2026-10-20");
    let mut removed = product;
    removed["removedDate"] = json!("2026-10-15");
    [first, again, second, removed]
        .iter()
        .map(|v| format!("{v}\n"))
        .collect()
}

/// Every function of the catalogue with each parameter form worth comparing.
fn report_paths() -> Vec<String> {
    let mut out = Vec::new();
    for id in ReportId::all() {
        let d = id.def();
        let name = d.name;
        match d.params {
            Params::None => out.push(format!("/v1.0/reports/{name}")),
            Params::Period => {
                for p in ["D7", "D30", "D90", "D180"] {
                    out.push(format!("/v1.0/reports/{name}(period='{p}')"));
                }
            }
            Params::PeriodOrDate => {
                for p in ["D7", "D180"] {
                    out.push(format!("/v1.0/reports/{name}(period='{p}')"));
                }
                out.push(format!("/v1.0/reports/{name}(date={END})"));
                out.push(format!("/v1.0/reports/{name}(date=2026-10-25)"));
            }
        }
    }
    out
}

async fn all_reports(srv: &TestServer, tid: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for p in report_paths() {
        let body = srv.download(tid, &p).await;
        out.push((p, body));
    }
    out
}

/// Names in clear, so the comparison covers the stored names (concealed names are keyed
/// by each data dir's own secret).
async fn show_names(srv: &TestServer, tid: &str) {
    let resp = srv
        .client()
        .patch(srv.url("/beta/admin/reportSettings"))
        .bearer_auth(srv.app_token(tid, &["ReportSettings.ReadWrite.All"]))
        .json(&json!({"displayConcealedNames": false}))
        .send()
        .await
        .expect("patch settings");
    assert!(resp.status().is_success(), "report settings patched");
}

async fn ingest_ok(srv: &TestServer, tid: &str, nd: &str) {
    let resp = srv.ingest(tid, nd).await;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "ingest: {body}");
}

async fn sqlite_server() -> TestServer {
    TestServer::start_with(|c| c.store = StoreKind::Sqlite).await
}

async fn pg_server(db: &TestDb) -> TestServer {
    TestServer::start_with(|c| c.store = pg_store(db)).await
}

fn assert_same(want: &[(String, Vec<u8>)], got: &[(String, Vec<u8>)], ctx: &str) {
    assert_eq!(want.len(), got.len());
    for ((p, w), (q, g)) in want.iter().zip(got) {
        assert_eq!(p, q);
        assert_bytes(g, w, &format!("{ctx}: {p}"));
    }
}

/// Loads both servers with the same three batches (the tenant, the tenant again over its
/// own rows, an edit batch with repeated keys) and returns the SQLite server's reports.
async fn load_both(sqlite: &TestServer, postgres: &TestServer) -> Vec<(String, Vec<u8>)> {
    let nd = tenant_ndjson(300, 7);
    let edit = edit_batch(&nd);
    for srv in [sqlite, postgres] {
        show_names(srv, TENANT_A).await;
        ingest_ok(srv, TENANT_A, &nd).await;
        ingest_ok(srv, TENANT_A, &nd).await;
        ingest_ok(srv, TENANT_A, &edit).await;
    }
    let want = all_reports(sqlite, TENANT_A).await;
    assert!(want.len() > 60, "{} report calls", want.len());
    let renamed = want
        .iter()
        .any(|(_, b)| String::from_utf8_lossy(b).contains("Renamed Twice"));
    assert!(renamed, "the edit batch's last rename shows in some report");
    want
}

#[tokio::test]
async fn every_report_is_byte_identical_on_sqlite_and_postgres_also_after_a_restart() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let sqlite = sqlite_server().await;
    let postgres = pg_server(&db).await;
    let want = load_both(&sqlite, &postgres).await;
    let got = all_reports(&postgres, TENANT_A).await;
    assert_same(&want, &got, "PostgreSQL-backed server");

    // A restart loads the tenant from the database's rows alone (no snapshot files).
    let dir = postgres.stop().await;
    assert!(!dir.path().join("snapshots").exists());
    let postgres = TestServer::start_in(dir, |c| c.store = pg_store(&db)).await;
    let got = all_reports(&postgres, TENANT_A).await;
    assert_same(&want, &got, "PostgreSQL-backed server after a restart");

    // And the stored figures agree with SQLite's.
    let stats = |srv: &TestServer| {
        let c = srv.client();
        let url = srv.url(&format!("/admin/v1/tenants/{TENANT_A}"));
        let tok = srv.writer(TENANT_A);
        async move {
            let v: Value = c
                .get(url)
                .bearer_auth(tok)
                .send()
                .await
                .expect("stats")
                .json()
                .await
                .expect("json");
            v
        }
    };
    let (a, b) = (stats(&sqlite).await, stats(&postgres).await);
    for k in [
        "users",
        "dataVersion",
        "activityDays",
        "bytesStored",
        "reportRefreshDate",
    ] {
        assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
    }
}

#[tokio::test]
async fn a_refused_batch_stores_nothing_on_postgres() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let srv = pg_server(&db).await;
    let nd = tenant_ndjson(120, 3);
    ingest_ok(&srv, TENANT_A, &nd).await;
    let before = all_reports(&srv, TENANT_A).await;
    let users_before = db.query_strings("SELECT count(*) FROM users");

    // New users, then a bad line: the whole batch is refused.
    let mut bad = String::new();
    for i in 0..500 {
        bad.push_str(&format!(
            "{{\"type\":\"user\",\"id\":\"new{i}\",\"userPrincipalName\":\"new{i}@x\",\"displayName\":\"N\"}}\n"
        ));
    }
    bad.push_str("{\"type\":\"user\",\"id\":\n");
    let resp = srv.ingest(TENANT_A, &bad).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(db.query_strings("SELECT count(*) FROM users"), users_before);
    assert_eq!(
        db.query_strings("SELECT count(*) FROM users WHERE id LIKE 'new%'"),
        vec!["0"]
    );
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |c| c.store = pg_store(&db)).await;
    assert_same(
        &before,
        &all_reports(&srv, TENANT_A).await,
        "after a refused batch",
    );
}

/// The bulk path (`reportroot ingest`) writes rows while it parses, inside one open
/// transaction: a bad line late in the file leaves nothing behind, and the tenant lock
/// and the connection are released.
#[tokio::test]
async fn a_bulk_load_failing_late_rolls_back_everything_written_early() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let url = db.url.clone();
    let mut nd = tenant_ndjson(200, 5);
    nd.push_str("{\"type\":\"activity\",\"userId\":\"nobody\",\"service\":\"teams\",\"date\":\"2026-10-01\"}\n");
    let good = tenant_ndjson(50, 6);
    tokio::task::spawn_blocking(move || {
        let store =
            PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("connect");
        let registry = Registry::new(Arc::new(store), None);
        let tid = TenantId::parse(TENANT_A).expect("tid");
        let opts = StreamOptions {
            limits: Limits::default(),
            block_bytes: 64 << 10,
            threads: 2,
            write_early: true,
        };
        let err = registry.ingest_stream(&tid, nd.as_bytes(), &opts, None, |_| {});
        assert!(err.is_err(), "the unknown user is refused");
        assert_eq!(registry.store().meta(&tid).expect("meta"), None);
        // The tenant is not locked: the next batch goes through at once.
        let ok = registry
            .ingest_stream(&tid, good.as_bytes(), &opts, None, |_| {})
            .expect("a good batch after the failed one");
        assert!(ok.ingested > 0);
    })
    .await
    .expect("bulk load task");
    assert_eq!(db.query_strings("SELECT count(*) FROM users"), vec!["50"]);
}

#[tokio::test]
async fn deleting_a_tenant_removes_every_row_of_it_and_nothing_else() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let srv = pg_server(&db).await;
    ingest_ok(&srv, TENANT_A, &tenant_ndjson(80, 1)).await;
    ingest_ok(&srv, TENANT_B, &tenant_ndjson(60, 2)).await;
    show_names(&srv, TENANT_A).await;
    let b_before = all_reports(&srv, TENANT_B).await;
    // Every table but the audit trail, which outlives a deletion by design, and the two
    // global ones (no tenant's data: schema versions and the signing key ring).
    let tables = db.query_strings(
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = 'public'
           AND table_name NOT IN ('schema_migrations', 'audit_log', 'signing_keys')
         ORDER BY 1",
    );
    assert_eq!(tables.len(), 17, "{tables:?}");
    let rows_of = |tid: &str| -> u64 {
        tables
            .iter()
            .map(|t| {
                db.query_strings(&format!("SELECT count(*) FROM {t} WHERE tid = '{tid}'"))[0]
                    .parse::<u64>()
                    .expect("count")
            })
            .sum()
    };
    assert!(rows_of(TENANT_A) > 1000);
    let b_rows = rows_of(TENANT_B);

    let resp = srv
        .client()
        .delete(srv.url(&format!("/admin/v1/tenants/{TENANT_A}")))
        .bearer_auth(srv.writer(TENANT_A))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(rows_of(TENANT_A), 0, "no row of the deleted tenant is left");
    assert_eq!(
        db.query_strings(&format!(
            "SELECT action FROM audit_log WHERE tid = '{TENANT_A}' ORDER BY seq DESC LIMIT 1"
        )),
        vec!["tenant.delete"],
        "the deletion is on the tenant's audit trail"
    );
    assert_eq!(rows_of(TENANT_B), b_rows);
    let resp = srv
        .client()
        .get(srv.url(&format!("/admin/v1/tenants/{TENANT_A}")))
        .bearer_auth(srv.writer(TENANT_A))
        .send()
        .await
        .expect("show");
    assert_eq!(resp.status().as_u16(), 404);
    assert_same(
        &b_before,
        &all_reports(&srv, TENANT_B).await,
        "the other tenant",
    );
    // A second delete finds nothing.
    let resp = srv
        .client()
        .delete(srv.url(&format!("/admin/v1/tenants/{TENANT_A}")))
        .bearer_auth(srv.writer(TENANT_A))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 404);
}

/// Two processes' batches for one tenant: the second waits for the first's commit, then is
/// refused because it was planned on the data version the first one replaced.
#[tokio::test]
async fn batches_of_one_tenant_are_serialized_across_stores() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let opts = PostgresOptions { url, ca_file: None };
        let a = PostgresStore::connect(&opts).expect("node a");
        let b = Arc::new(PostgresStore::connect(&opts).expect("node b"));
        let tid = TenantId::parse(TENANT_A).expect("tid");
        let other = TenantId::parse(TENANT_B).expect("tid");
        let meta = reportroot::store::TenantMeta {
            explicit_refresh: None,
            max_activity: None,
            version: 1,
        };
        let wa = a.begin(&tid).expect("a begins");
        let (b2, t2) = (b.clone(), tid.clone());
        let waiter = std::thread::spawn(move || {
            let started = Instant::now();
            let w = b2.begin(&t2).expect("b begins");
            let waited = started.elapsed();
            (waited, w.finish(&[], &[], &[], &meta, None))
        });
        // Another tenant is not held up.
        let started = Instant::now();
        b.begin(&other)
            .expect("other tenant")
            .finish(&[], &[], &[], &meta, None)
            .expect("other tenant commits");
        assert!(started.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(600));
        wa.finish(&[], &[], &[], &meta, None).expect("a commits");
        let (waited, result) = waiter.join().expect("b's thread");
        assert!(
            waited >= Duration::from_millis(500),
            "b waited {waited:?} for a's commit"
        );
        match result {
            Err(StoreError::Conflict(m)) => assert!(m.contains("version 1"), "{m}"),
            other => panic!("b's stale batch must be refused, got {other:?}"),
        }
        assert_eq!(a.meta(&tid).expect("meta").map(|m| m.version), Some(1));
    })
    .await
    .expect("task");
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    PostgresStore::connect(&PostgresOptions { url, ca_file: None })
                        .map(|s| s.tenants().map(|t| t.len()))
                })
            })
            .collect();
        for h in handles {
            let r = h.join().expect("thread");
            assert!(matches!(r, Ok(Ok(0))), "{r:?}");
        }
    })
    .await
    .expect("task");
    assert_eq!(
        db.query_strings("SELECT count(*) FROM schema_migrations"),
        vec!["7"]
    );
    // The blob columns are stored without pglz compression (migration 7).
    assert_eq!(
        db.query_strings(
            "SELECT c.relname || '.' || a.attname || '=' || a.attstorage::text
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              WHERE c.relname IN ('activity_days', 'counter_days', 'client_days', 'snapshots')
                AND a.atttypid = 'bytea'::regtype ORDER BY 1"
        ),
        vec![
            "activity_days.users=e",
            "client_days.signals=e",
            "counter_days.counters=e",
            "snapshots.data=e"
        ]
    );
}

/// Every table's primary key starts with `tid` (the Citus distribution column), but the two
/// global tables, which hold no tenant's data: `schema_migrations` and `signing_keys` (the
/// key ring every node signs and verifies with; a reference table on Citus).
#[tokio::test]
async fn every_table_is_keyed_by_tenant_first() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("connect")
    })
    .await
    .expect("task");
    let first_key_columns = db.query_strings(
        "SELECT t.table_name || ':' || coalesce((
             SELECT k.column_name FROM information_schema.table_constraints c
             JOIN information_schema.key_column_usage k
               ON k.constraint_name = c.constraint_name AND k.table_name = c.table_name
             WHERE c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY'
               AND k.ordinal_position = 1), '-')
         FROM information_schema.tables t
         WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'
           AND t.table_name NOT IN ('schema_migrations', 'signing_keys')
         ORDER BY 1",
    );
    assert_eq!(first_key_columns.len(), 18, "{first_key_columns:?}");
    for t in &first_key_columns {
        assert!(
            t.ends_with(":tid"),
            "{t}: the primary key must start with tid"
        );
    }
}

/// The SQL text of both engines: every statement on a tenant table names the tenant
/// column (a `WHERE tid = ` filter, or `tid` as the first inserted or copied column), and the
/// PostgreSQL schema declares `tid` first in every primary key.
#[test]
fn every_statement_on_a_tenant_table_is_scoped_by_tenant() {
    const TABLES: [&str; 15] = [
        "retention",
        "audit_log",
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
    let root = env!("CARGO_MANIFEST_DIR");
    let mut checked = 0;
    for file in ["src/store/postgres.rs", "src/store/sqlite.rs"] {
        let src = std::fs::read_to_string(format!("{root}/{file}")).expect("source");
        for lit in string_literals(&src) {
            let sql = lit.split_whitespace().collect::<Vec<_>>().join(" ");
            let upper = sql.to_ascii_uppercase();
            for stmt in upper.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let kind = stmt.split(' ').next().unwrap_or("");
                let table = match kind {
                    "SELECT" | "DELETE" => after(stmt, " FROM "),
                    "UPDATE" => after(stmt, "UPDATE "),
                    "INSERT" => after(stmt, " INTO "),
                    "COPY" => after(stmt, "COPY "),
                    _ => None,
                };
                let Some(table) = table else { continue };
                let table = table.to_ascii_lowercase();
                let is_tenant_table = TABLES.contains(&table.as_str()) || table == "{table}";
                if !is_tenant_table {
                    continue;
                }
                checked += 1;
                // Listing the tenants is the one statement over all of them.
                if stmt == "SELECT TID FROM TENANTS ORDER BY TID" {
                    continue;
                }
                let ok = match kind {
                    "COPY" => stmt.contains(&format!("COPY {} (TID,", table.to_ascii_uppercase())),
                    "INSERT" => {
                        stmt.contains(&format!("INTO {} (TID,", table.to_ascii_uppercase()))
                            || stmt.contains("INTO {TABLE} (TID,")
                    }
                    // `WHERE tid = $1`, `WHERE d.tid = $1`, or the operator's optional
                    // filter `WHERE ($1 IS NULL OR tid = $1)`.
                    _ => stmt.split_once(" WHERE ").is_some_and(|(_, w)| {
                        w.starts_with("TID = ") || w.contains(".TID = ") || w.contains(" OR TID = ")
                    }),
                };
                assert!(ok, "{file}: not scoped by tenant: {sql}");
            }
            // Primary keys in the PostgreSQL schema.
            if file.ends_with("postgres.rs") {
                for create in upper.split("CREATE TABLE ").skip(1) {
                    let name = create.split(' ').next().unwrap_or("").to_ascii_lowercase();
                    if name == "if"
                        || name == "schema_migrations"
                        || !TABLES.contains(&name.as_str())
                    {
                        continue;
                    }
                    assert!(
                        create.contains("PRIMARY KEY (TID"),
                        "{name}: primary key must start with tid"
                    );
                }
            }
        }
    }
    assert!(checked >= 60, "only {checked} statements found");
}

fn after<'a>(stmt: &'a str, word: &str) -> Option<&'a str> {
    let rest = &stmt[stmt.find(word)? + word.len()..];
    rest.split([' ', '(']).next()
}

/// The contents of the Rust string literals of `src` (plain `"…"`, escapes kept as written).
fn string_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == '/' && chars.peek() == Some(&'/') {
            // A comment runs to the end of the line.
            for d in chars.by_ref() {
                if d == '\n' {
                    break;
                }
            }
            prev = '\n';
            continue;
        }
        if c == '"' && prev != '\'' {
            let mut s = String::new();
            let mut escaped = false;
            for d in chars.by_ref() {
                if escaped {
                    s.push(d);
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == '"' {
                    break;
                } else {
                    s.push(d);
                }
            }
            out.push(s);
            prev = '"';
            continue;
        }
        prev = c;
    }
    out
}

/// A TCP relay to the PostgreSQL server that the test can take down and bring back: a
/// network cut (sessions severed without a word from the server, new connections refused),
/// which differs from a stopped server (`tests/postgres_outage.rs`, where the server ends
/// its sessions with `57P01 admin_shutdown`). The machine's server stays up for the other
/// tests.
struct Relay {
    addr: std::net::SocketAddr,
    target: String,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let r = Relay {
            addr,
            target,
            tasks: Arc::default(),
        };
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                tasks.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(accept);
    }

    /// Refuses new connections and cuts the open ones.
    fn down(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("re-binding the relay: {e}"),
            }
        };
        self.serve(listener);
    }
}

async fn health(srv: &TestServer) -> (u16, Option<String>, Value) {
    let resp = srv
        .client()
        .get(srv.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn healthz_follows_the_database_and_the_node_recovers() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let mut url = reqwest::Url::parse(&db.url).expect("url");
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    );
    let relay = Relay::start(target).await;
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(relay.addr.port())).expect("port");
    let kind = StoreKind::Postgres(PostgresOptions {
        url: url.to_string(),
        ca_file: None,
    });
    let srv = TestServer::start_with(|c| c.store = kind).await;
    let (status, _, body) = health(&srv).await;
    assert_eq!(status, 200, "{body}");
    ingest_ok(&srv, TENANT_A, &tenant_ndjson(40, 9)).await;

    relay.down();
    let started = Instant::now();
    let (status, retry, body) = health(&srv).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(body["status"], "unavailable");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A write needs the database: 503 with Retry-After, in Graph's envelope.
    let resp = srv.ingest(TENANT_A, &tenant_ndjson(40, 9)).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let err: Value = resp.json().await.expect("envelope");
    assert_eq!(err["error"]["code"], "ServiceNotAvailable");
    // A tenant not in memory needs the database: 503 too.
    let resp = srv
        .get(
            "/v1.0/reports/getOffice365ActivationCounts",
            &srv.reader(TENANT_B),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    // A loaded tenant's reports are answered from memory meanwhile, marked unverified.
    let resp = srv
        .get(
            "/v1.0/reports/getOffice365ActivationCounts",
            &srv.reader(TENANT_A),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 302);
    assert_eq!(
        resp.headers()
            .get("reportroot-freshness")
            .and_then(|v| v.to_str().ok()),
        Some("unverified")
    );

    relay.up().await;
    let mut healthy = false;
    for _ in 0..50 {
        if health(&srv).await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the node recovers when the database is back");
    ingest_ok(&srv, TENANT_A, &tenant_ndjson(40, 10)).await;
    let resp = srv
        .get(
            "/v1.0/reports/getOffice365ActivationCounts",
            &srv.reader(TENANT_B),
        )
        .await;
    assert_eq!(
        resp.status().as_u16(),
        302,
        "an unloaded tenant loads again"
    );
}

/// `sslmode=require` speaks TLS (rustls) and verifies the server's certificate: refused
/// against an unknown issuer, accepted with that certificate given as the CA. Runs where
/// the server has TLS on with a certificate for `localhost` (Debian's default cluster).
#[tokio::test]
async fn sslmode_require_uses_tls_and_verifies_the_certificate() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let ssl = db.query_strings("SHOW ssl");
    let cert = db.query_strings("SHOW ssl_cert_file");
    let cert = std::path::PathBuf::from(cert.first().cloned().unwrap_or_default());
    if ssl.first().map(String::as_str) != Some("on") || std::fs::read(&cert).is_err() {
        eprintln!("skipped: the test server has no TLS certificate readable here");
        return;
    }
    let mut url = reqwest::Url::parse(&db.url).expect("url");
    url.set_host(Some("localhost")).expect("host");
    url.set_query(Some("sslmode=require"));
    let url = url.to_string();
    let name = db.name.clone();
    let (untrusted, trusted) = tokio::task::spawn_blocking(move || {
        let untrusted = PostgresStore::connect(&PostgresOptions {
            url: url.clone(),
            ca_file: None,
        })
        .err()
        .map(|e| e.to_string());
        let trusted = PostgresStore::connect(&PostgresOptions {
            url,
            ca_file: Some(cert),
        });
        (untrusted, trusted)
    })
    .await
    .expect("task");
    let untrusted = untrusted.expect("an unknown issuer is refused");
    assert!(
        untrusted.to_lowercase().contains("certificate")
            || untrusted.to_lowercase().contains("issuer"),
        "{untrusted}"
    );
    let store = trusted.expect("trusted with the CA file");
    let tls_sessions = db.query_strings(&format!(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE s.ssl AND a.datname = '{name}' AND a.application_name = 'reportroot'"
    ));
    assert_ne!(tls_sessions, vec!["0"], "the store's sessions use TLS");
    drop(store);
}

/// `reportroot export` both ways: a tenant exported from SQLite and ingested into an empty
/// PostgreSQL store, and one exported from PostgreSQL and ingested into an empty SQLite
/// store, give byte-identical reports.
#[tokio::test]
async fn export_then_ingest_into_the_other_store_gives_identical_reports() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let sqlite = sqlite_server().await;
    let postgres = pg_server(&db).await;
    let want = load_both(&sqlite, &postgres).await;

    let tid = TenantId::parse(TENANT_A).expect("tid");
    let (dir, url) = (sqlite.dir.path().to_path_buf(), db.url.clone());
    let (from_sqlite, from_pg) = tokio::task::spawn_blocking(move || {
        let export = |store: &dyn Store| {
            let mut out = Vec::new();
            let summary = reportroot::export::write_tenant(store, &tid, &mut out).expect("export");
            assert_eq!(summary.users, 300);
            String::from_utf8(out).expect("utf-8")
        };
        let s = reportroot::store::SqliteStore::open(&dir).expect("open sqlite");
        let p = PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("pg");
        (export(&s), export(&p))
    })
    .await
    .expect("export task");
    assert_eq!(from_sqlite, from_pg, "both stores export the same records");

    let db2 = TestDb::create();
    let into_pg = pg_server(&db2).await;
    let into_sqlite = sqlite_server().await;
    show_names(&into_pg, TENANT_A).await;
    show_names(&into_sqlite, TENANT_A).await;
    ingest_ok(&into_pg, TENANT_A, &from_sqlite).await;
    ingest_ok(&into_sqlite, TENANT_A, &from_pg).await;
    assert_same(
        &want,
        &all_reports(&into_pg, TENANT_A).await,
        "SQLite export ingested into PostgreSQL",
    );
    assert_same(
        &want,
        &all_reports(&into_sqlite, TENANT_A).await,
        "PostgreSQL export ingested into SQLite",
    );
}

/// The CLI with `REPORTROOT_DATABASE_URL`: `ingest` writes into the database, `tenants
/// list` reads it, `export` writes the tenant back, and an export re-ingested into an
/// empty SQLite data dir exports the very same records.
#[test]
fn the_cli_ingests_lists_and_exports_with_a_database_url() {
    if pg::skipped("postgres_store") {
        return;
    }
    const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
    let db = TestDb::create();
    let work = tempfile::tempdir().expect("tempdir");
    let input = work.path().join("tenant.ndjson");
    std::fs::write(&input, tenant_ndjson(150, 4)).expect("write input");
    let data = work.path().join("data");
    let run = |args: &[&str], pg: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(args).env_remove("REPORTROOT_DATABASE_URL");
        if pg {
            cmd.env("REPORTROOT_DATABASE_URL", &db.url);
        }
        let out = cmd.output().expect("run reportroot");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let d = data.to_str().expect("path");
    let i = input.to_str().expect("path");
    run(&["ingest", "--data", d, "--tenant", TENANT_A, i], true);
    assert!(
        !data.join("reportroot.sqlite3").exists(),
        "nothing is written to the data dir's SQLite file"
    );
    let list = run(&["tenants", "list", "--data", d], true);
    assert!(
        list.contains(TENANT_A) && list.contains("users 150"),
        "{list}"
    );
    let exported = work.path().join("export.ndjson");
    let e = exported.to_str().expect("path");
    run(
        &["export", "--data", d, "--tenant", TENANT_A, "--out", e],
        true,
    );

    let sqlite_dir = work.path().join("sqlite");
    let s = sqlite_dir.to_str().expect("path");
    run(&["ingest", "--data", s, "--tenant", TENANT_A, e], false);
    let again = run(&["export", "--data", s, "--tenant", TENANT_A], false);
    assert_eq!(
        std::fs::read_to_string(&exported).expect("read export"),
        again,
        "PostgreSQL → export → SQLite → export is a fixed point"
    );
}

/// The data lifecycle on both engines: with 180-day retention, after the same batches, a
/// user's erasure and a settings change, both servers give byte-identical reports (the
/// PostgreSQL one also after a restart, from the database alone); both audit trails record
/// the same actions in a valid hash chain, and PostgreSQL refuses to alter its trail.
#[tokio::test]
async fn erasure_retention_and_audit_agree_between_sqlite_and_postgres() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let sqlite = TestServer::start_with(|c| {
        c.store = StoreKind::Sqlite;
        c.retention_days = Some(180);
    })
    .await;
    let postgres = TestServer::start_with(|c| {
        c.store = pg_store(&db);
        c.retention_days = Some(180);
    })
    .await;
    load_both(&sqlite, &postgres).await;
    let nd = tenant_ndjson(300, 7);
    let victim = nd
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "user")
        .nth(5)
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .expect("a user");
    for srv in [&sqlite, &postgres] {
        let resp = srv
            .client()
            .delete(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/users/{victim}")))
            .bearer_auth(srv.writer(TENANT_A))
            .send()
            .await
            .expect("erase");
        assert!(resp.status().is_success(), "erasure: {}", resp.status());
    }
    let want = all_reports(&sqlite, TENANT_A).await;
    assert_same(
        &want,
        &all_reports(&postgres, TENANT_A).await,
        "after retention and an erasure",
    );
    let dir = postgres.stop().await;
    let postgres = TestServer::start_in(dir, |c| {
        c.store = pg_store(&db);
        c.retention_days = Some(180);
    })
    .await;
    assert_same(
        &want,
        &all_reports(&postgres, TENANT_A).await,
        "after retention, an erasure and a restart",
    );
    assert_eq!(
        db.query_strings(&format!(
            "SELECT count(*) FROM users WHERE tid = '{TENANT_A}' AND id = '{victim}'"
        )),
        vec!["0"]
    );
    assert_ne!(
        db.query_strings(&format!(
            "SELECT count(*) FROM retention WHERE tid = '{TENANT_A}'"
        )),
        vec!["0"],
        "retention removed rows and remembered its day"
    );

    let trail = |srv: &TestServer| {
        let c = srv.client();
        let url = srv.url(&format!("/admin/v1/tenants/{TENANT_A}/auditLog"));
        let tok = srv.writer(TENANT_A);
        async move {
            let v: Value = c
                .get(url)
                .bearer_auth(tok)
                .send()
                .await
                .expect("audit log")
                .json()
                .await
                .expect("json");
            v["value"].as_array().cloned().unwrap_or_default()
        }
    };
    let (a, b) = (trail(&sqlite).await, trail(&postgres).await);
    let actions = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["action"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(actions(&a), actions(&b));
    assert!(actions(&b).contains(&"user.erase".to_string()), "{b:?}");
    assert!(
        actions(&b).contains(&"retention.prune".to_string()),
        "{b:?}"
    );
    for (i, e) in b.iter().enumerate().skip(1) {
        assert_eq!(e["previousHash"], b[i - 1]["hash"], "chained");
    }
    // The trail is append-only in the database itself.
    let tamper = db.query_strings(&format!(
        "DO $$ BEGIN
             UPDATE audit_log SET action = 'nothing' WHERE tid = '{TENANT_A}';
         EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'refused'; END $$;
         SELECT count(*) FROM audit_log WHERE action = 'nothing'"
    ));
    assert_eq!(tamper, vec!["0"]);
}

/// Bulk loads written block by block (`reportroot ingest`): rows go straight into the
/// tables until a block repeats a stored key, then through staging; either way the stored
/// rows are SQLite's (compared through `export`), for a first load whose later blocks
/// redefine earlier rows, and for a second load over it.
#[tokio::test]
async fn bulk_loads_with_repeated_keys_store_what_sqlite_stores() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let url = db.url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let nd = tenant_ndjson(200, 12);
    // The tenant, then its first 150 records again and the edits (renames repeat a key
    // inside one block, and redefine rows written by earlier blocks).
    let mut first = nd.clone();
    for l in nd.lines().take(150) {
        first.push_str(l);
        first.push('\n');
    }
    first.push_str(&edit_batch(&nd));
    let second = tenant_ndjson(200, 13);
    tokio::task::spawn_blocking(move || {
        let tid = TenantId::parse(TENANT_A).expect("tid");
        let opts = StreamOptions {
            limits: Limits::default(),
            block_bytes: 32 << 10,
            threads: 2,
            write_early: true,
        };
        let pg: Arc<dyn Store> =
            Arc::new(PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("pg"));
        let sq: Arc<dyn Store> =
            Arc::new(reportroot::store::SqliteStore::open(&path).expect("sqlite"));
        let export = |store: &dyn Store| {
            let mut out = Vec::new();
            reportroot::export::write_tenant(store, &tid, &mut out).expect("export");
            String::from_utf8(out).expect("utf-8")
        };
        let registries = [
            Registry::new(pg.clone(), None),
            Registry::new(sq.clone(), None),
        ];
        for batch in [&first, &second] {
            for r in &registries {
                r.ingest_stream(&tid, batch.as_bytes(), &opts, None, |_| {})
                    .expect("bulk load");
            }
            let (p, s) = (export(pg.as_ref()), export(sq.as_ref()));
            assert!(p.contains("Renamed Twice"));
            assert!(p == s, "PostgreSQL stores what SQLite stores");
        }
    })
    .await
    .expect("task");
}

/// Backup and restore of a PostgreSQL store are `pg_dump` and `pg_restore` (README): a
/// server on the restored database answers byte-identical reports, and the restored audit
/// trail still verifies.
#[tokio::test]
async fn pg_dump_and_pg_restore_round_trip_gives_identical_reports() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let srv = pg_server(&db).await;
    ingest_ok(&srv, TENANT_A, &tenant_ndjson(120, 3)).await;
    show_names(&srv, TENANT_A).await;
    let want = all_reports(&srv, TENANT_A).await;

    let work = tempfile::tempdir().expect("tempdir");
    let dump = work.path().join("reportroot.dump");
    let out = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&db.url)
        .output()
        .expect("pg_dump runs (Debian's postgresql-client)");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The dump is taken while the server runs; it goes on answering.
    assert_same(&want, &all_reports(&srv, TENANT_A).await, "after the dump");

    let db2 = TestDb::create();
    let out = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&db2.url)
        .arg(&dump)
        .output()
        .expect("pg_restore runs");
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = pg_server(&db2).await;
    assert_same(
        &want,
        &all_reports(&restored, TENANT_A).await,
        "restored database",
    );

    let url = db2.url.clone();
    let entries = tokio::task::spawn_blocking(move || {
        let p = PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("pg");
        p.audit_entries(None, 0, 10_000).expect("audit entries")
    })
    .await
    .expect("audit task");
    assert!(!entries.is_empty());
    reportroot::audit::verify(&entries).expect("the restored audit chain verifies");
}

/// Two reportroot nodes on one PostgreSQL database, each with a data dir of its own (the
/// keys are the database's). A batch acknowledged by one node shows in the other's next
/// report; a link one node signs is served by the other; a batch sent to the node whose
/// memory is behind is planned on the current version.
#[tokio::test]
async fn two_nodes_on_one_database_answer_alike() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let a = pg_server(&db).await;
    let b = pg_server(&db).await;
    let nd = tenant_ndjson(100, 5);
    ingest_ok(&a, TENANT_A, &nd).await;
    show_names(&a, TENANT_A).await;
    // B loads the tenant as A left it.
    assert_same(
        &all_reports(&a, TENANT_A).await,
        &all_reports(&b, TENANT_A).await,
        "B after A's first batch",
    );

    // A's next batch: B's next report shows it (B held the older version in memory).
    ingest_ok(&a, TENANT_A, &edit_batch(&nd)).await;
    let from_a = all_reports(&a, TENANT_A).await;
    assert_same(
        &from_a,
        &all_reports(&b, TENANT_A).await,
        "B after A's second batch",
    );

    // B signs a link; A serves it, byte for byte.
    let path = "/v1.0/reports/getOffice365ActiveUserDetail(period='D30')";
    let resp = b.get(path, &b.reader(TENANT_A)).await;
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let on_a = location.replacen(&b.base, &a.base, 1);
    assert_ne!(on_a, location);
    let body = a.client().get(&on_a).send().await.expect("download from A");
    assert_eq!(body.status().as_u16(), 200);
    let body = body.bytes().await.expect("bytes").to_vec();
    assert!(
        body == a.download(TENANT_A, path).await,
        "A serves B's link"
    );

    // A batch through B, whose memory may be behind A's: planned on the current version,
    // and A's next report shows it.
    let extra = r#"{"type":"user","id":"node-b-user","userPrincipalName":"nodeb@x","displayName":"Node B"}
{"type":"serviceLicense","userId":"node-b-user","service":"exchange","assignedDate":"2026-01-01"}
"#;
    ingest_ok(&a, TENANT_A, r#"{"type":"refresh","date":"2026-10-31"}"#).await;
    ingest_ok(&b, TENANT_A, extra).await;
    assert_same(
        &all_reports(&b, TENANT_A).await,
        &all_reports(&a, TENANT_A).await,
        "A after B's batch",
    );
    let users = |srv: &TestServer| {
        let url = srv.url(&format!("/admin/v1/tenants/{TENANT_A}"));
        let token = srv.writer(TENANT_A);
        let c = srv.client();
        async move {
            c.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("show")
                .json::<Value>()
                .await
                .expect("json")["users"]
                .clone()
        }
    };
    assert_eq!(users(&a).await, json!(101));
    assert_eq!(users(&b).await, json!(101));
}

/// `--throttle` on two nodes sharing a database: the limits count calls to both nodes.
#[tokio::test]
async fn throttle_limits_hold_across_two_nodes() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let limits: reportroot::throttle::Limits = "csv=3".parse().expect("limits");
    let a = TestServer::start_with(|c| {
        c.store = pg_store(&db);
        c.throttle = limits;
    })
    .await;
    let b = TestServer::start_with(|c| {
        c.store = pg_store(&db);
        c.throttle = limits;
    })
    .await;
    ingest_ok(&a, TENANT_A, &tenant_ndjson(30, 4)).await;
    let path = "/v1.0/reports/getOffice365ActivationCounts";
    let token = a.reader(TENANT_A);
    for srv in [&a, &b, &a] {
        assert_eq!(srv.get(path, &token).await.status().as_u16(), 302);
    }
    for srv in [&b, &a] {
        let resp = srv.get(path, &token).await;
        assert_eq!(
            resp.status().as_u16(),
            429,
            "the fourth call, on either node"
        );
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .expect("retry-after")
            .parse()
            .expect("seconds");
        assert!((1..=600).contains(&retry), "{retry}");
    }
    // Another function has its own counter.
    let other = "/v1.0/reports/getOffice365ServicesUserCounts(period='D7')";
    assert_eq!(b.get(other, &token).await.status().as_u16(), 302);
}

/// A node that has never loaded a tenant reads the snapshot another node kept in the
/// database, not the tenant's rows: with the rows of its users removed behind the store's
/// back, the fresh node still answers what the first one did.
#[tokio::test]
async fn a_fresh_node_loads_the_snapshot_kept_in_the_database() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let a = pg_server(&db).await;
    ingest_ok(&a, TENANT_A, &tenant_ndjson(120, 6)).await;
    show_names(&a, TENANT_A).await;
    let want = all_reports(&a, TENANT_A).await;
    // A graceful stop writes the changed tenants' snapshots (as the 30 s timer does).
    drop(a.stop().await);
    let kept = db.query_strings(&format!(
        "SELECT DISTINCT version FROM snapshots WHERE tid = '{TENANT_A}'"
    ));
    let version = db.query_strings(&format!(
        "SELECT version FROM tenants WHERE tid = '{TENANT_A}'"
    ));
    assert_eq!(kept, version, "the kept snapshot is of the stored version");
    db.query_strings(&format!(
        "WITH gone AS (DELETE FROM users WHERE tid = '{TENANT_A}' RETURNING 1) SELECT count(*) FROM gone"
    ));
    let b = pg_server(&db).await;
    assert_same(
        &want,
        &all_reports(&b, TENANT_A).await,
        "the fresh node, from the snapshot",
    );
}

/// `reportroot migrate`: a tenant of a SQLite data dir copied into PostgreSQL, and from
/// there into a second SQLite data dir, answers the same reports at each step; a target
/// that already holds the tenant is refused.
#[tokio::test]
async fn migrate_moves_tenants_between_sqlite_and_postgres() {
    if pg::skipped("postgres_store") {
        return;
    }
    const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env_remove("REPORTROOT_DATABASE_URL")
            .output()
            .expect("run reportroot");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let nd = work.path().join("t.ndjson");
    std::fs::write(&nd, tenant_ndjson(150, 8)).expect("write");
    let d = data.to_str().expect("utf-8 path");
    let (ok, err) = run(&[
        "ingest",
        "--data",
        d,
        "--tenant",
        TENANT_A,
        nd.to_str().expect("path"),
    ]);
    assert!(ok, "{err}");
    let db = TestDb::create();
    let (ok, err) = run(&["migrate", "--data", d, "--to", &db.url]);
    assert!(ok, "{err}");
    let (ok, _) = run(&["migrate", "--data", d, "--to", &db.url]);
    assert!(
        !ok,
        "a second copy into a target holding the tenant is refused"
    );
    let data2 = work.path().join("data2");
    let d2 = data2.to_str().expect("utf-8 path");
    let (ok, err) = run(&[
        "migrate",
        "--data",
        d,
        "--database-url",
        &db.url,
        "--to",
        &format!("sqlite:{d2}"),
    ]);
    assert!(ok, "{err}");

    // A server on (a copy of) each store; all share the first server's keys, so concealed
    // names agree (the PostgreSQL one imports them into the database at its first start).
    let copy_of = |from: &std::path::Path, keys: Option<&std::path::Path>| -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        if let Ok(entries) = std::fs::read_dir(from) {
            for e in entries.flatten() {
                if e.path().is_file() && e.file_name() != "lock" {
                    std::fs::copy(e.path(), t.path().join(e.file_name())).expect("copy");
                }
            }
        }
        if let Some(keys) = keys {
            common::copy_keys(keys, t.path());
        }
        t
    };
    let original =
        TestServer::start_in(copy_of(&data, None), |c| c.store = StoreKind::Sqlite).await;
    let keys = original.dir.path().to_path_buf();
    let want = all_reports(&original, TENANT_A).await;
    let empty = work.path().join("none");
    let on_pg =
        TestServer::start_in(copy_of(&empty, Some(&keys)), |c| c.store = pg_store(&db)).await;
    assert_same(
        &want,
        &all_reports(&on_pg, TENANT_A).await,
        "migrated into PostgreSQL",
    );
    let back = TestServer::start_in(copy_of(&data2, Some(&keys)), |c| {
        c.store = StoreKind::Sqlite
    })
    .await;
    assert_same(
        &want,
        &all_reports(&back, TENANT_A).await,
        "migrated back into SQLite",
    );
}

/// App registrations live in the database when nodes share one: an app registered once
/// gets tokens from every node's token endpoint, and a removed one from none.
#[tokio::test]
async fn an_app_registered_once_gets_tokens_from_every_node() {
    if pg::skipped("postgres_store") {
        return;
    }
    let db = TestDb::create();
    let a = pg_server(&db).await;
    let b = pg_server(&db).await;
    let url = db.url.clone();
    let (app, at) = tokio::task::spawn_blocking(move || {
        let store: Arc<dyn Store> =
            Arc::new(PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("pg"));
        let at = reportroot::auth::apps::AppsAt::Store(store);
        let app = reportroot::auth::apps::add(
            &at,
            TENANT_A,
            "monitoring",
            &["Reports.Read.All".to_string()],
        )
        .expect("register");
        (app, at)
    })
    .await
    .expect("register task");
    let token = |srv: &TestServer| {
        let body = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .expect("form");
        let req = srv
            .client()
            .post(srv.url(&format!("/{TENANT_A}/oauth2/v2.0/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        async move { req.send().await.expect("token request").status().as_u16() }
    };
    assert_eq!(token(&a).await, 200);
    assert_eq!(token(&b).await, 200);
    // Not in either node's apps.json.
    assert!(!a.dir.path().join("apps.json").exists());
    let id = app.client_id.clone();
    let removed = tokio::task::spawn_blocking(move || {
        reportroot::auth::apps::remove(&at, TENANT_A, &id).expect("remove")
    })
    .await
    .expect("remove task");
    assert!(removed);
    // Entra answers an unknown client with 400 unauthorized_client.
    assert_eq!(token(&a).await, 400);
    assert_eq!(token(&b).await, 400);
}

//! The node against a PostgreSQL that really stops: the test runs a private cluster of its
//! own (Debian's `initdb` and `pg_ctl`, as `scripts/ensure-postgres` does: trust auth on
//! 127.0.0.1, a free port, run as the `postgres` user when the test runs as root), starts the
//! real `reportroot serve --database-url` against it, stops the cluster with
//! `pg_ctl stop -m fast` and starts it again on the same port and data dir, without
//! restarting the node.
//!
//! While the database is away: `/healthz` answers 503 naming the store; an ingest, and a
//! report of a tenant that is not in memory, answer 503 `ServiceNotAvailable` with
//! `Retry-After`; a tenant in memory is answered from memory, marked
//! `Reportroot-Freshness: unverified`; no request takes more than a few seconds and the
//! process does not die. When the database is back the node recovers by itself, and the
//! database holds exactly what was acknowledged. A batch whose transaction is open when the
//! database stops is refused with 503 and is either stored whole or not at all.
//!
//! Runs like the other PostgreSQL tests (skipped only with `REPORTROOT_TEST_SKIP_POSTGRES=1`);
//! the PostgreSQL server binaries must be installed (`scripts/ensure-postgres` installs
//! them; `REPORTROOT_TEST_PG_BINDIR` names another directory holding `initdb` and `pg_ctl`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pg;
use common::{READ_ROLE, TENANT_A, TENANT_B, WRITE_ROLE};
use reportroot::generate;
use reportroot::model::Day;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::HashMap;

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
/// Ingested while the database stops under it.
const TENANT_C: &str = "3c8e0f21-3333-4c4c-9c9c-cccccccccccc";
/// Never stored: its first batch meets the outage.
const TENANT_D: &str = "4d9f1a32-4444-4d4d-9d9d-dddddddddddd";
/// The longest a request may take while the database is away (connect refused at once;
/// the node's connect timeout is 5 s for a database that does not answer at all).
const PROMPT: Duration = Duration::from_secs(6);
/// How long the node may take to notice the database is back.
const RECOVERY: Duration = Duration::from_secs(20);
const REPORT: &str = "/v1.0/reports/getOffice365ActivationCounts";
const FRESHNESS: &str = "reportroot-freshness";
/// The prefix of the clusters' temporary directories (followed by the test's pid).
const DIR_PREFIX: &str = "rr-outage-pg-";

fn tenant_ndjson(users: u32, seed: u64) -> String {
    let opts = generate::Options {
        users,
        days: 200,
        seed,
        end: Day::parse("2026-10-31").expect("day"),
        single_date: false,
        usage: true,
    };
    let mut out = Vec::new();
    generate::write_tenant(&opts, &mut out, |_| {}).expect("generate");
    String::from_utf8(out).expect("utf-8")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The directory holding `initdb` and `pg_ctl`: `REPORTROOT_TEST_PG_BINDIR`, else the newest
/// of Debian's `/usr/lib/postgresql/*/bin`.
fn bindir() -> Option<PathBuf> {
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Ok(d) = std::env::var("REPORTROOT_TEST_PG_BINDIR")
        && !d.trim().is_empty()
    {
        return usable(Path::new(&d)).then(|| PathBuf::from(d));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            usable(&bin).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, d)| d)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the process runs (a zombie waiting for its reaper does not: the postmaster's
/// parent, pg_ctl, is gone by then).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The postmaster's pid, from its pid file (`None`: not running).
fn postmaster_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A private PostgreSQL cluster in a temporary directory. Dropped, it is stopped
/// (`-m immediate`, then SIGKILL if need be) and its directory removed, also when the test
/// fails half-way.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn start() -> Cluster {
        sweep_leftovers();
        let Some(bin) = bindir() else {
            panic!(
                "the outage test runs a PostgreSQL cluster of its own and needs the server \
                 binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin (or \
                 REPORTROOT_TEST_PG_BINDIR): `source scripts/ensure-postgres` installs them \
                 (Debian's postgresql), or set REPORTROOT_TEST_SKIP_POSTGRES=1 to skip the \
                 PostgreSQL tests"
            );
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("tempdir");
        if running_as_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let out = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .output()
                .expect("chown");
            assert!(
                out.status.success(),
                "chown postgres: {}",
                output_text(&out)
            );
        }
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
        };
        let data = cluster.data();
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", output_text(&out));
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        writeln!(
            conf,
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 60\nfsync = off\n",
            cluster.port,
            cluster.dir.path().display()
        )
        .expect("write postgresql.conf");
        cluster.pg_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// One of the cluster's programs, run as `postgres` when the test runs as root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl")
    }

    /// `pg_ctl start -w` on the same data dir and port.
    fn pg_start(&self) {
        let log = self.dir.path().join("server.log");
        let out = self.pg_ctl(&["-l", log.to_str().expect("path"), "-w", "-t", "60", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            output_text(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m fast -w`: active transactions roll back, sessions are cut, the
    /// server is gone when this returns.
    fn pg_stop(&self) {
        let out = self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", output_text(&out));
        assert!(postmaster_pid(&self.data()).is_none(), "the server stopped");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        if let Some(pid) = postmaster_pid(&data) {
            let _ = self.pg_ctl(&["-m", "immediate", "-w", "-t", "20", "stop"]);
            if alive(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Stops and removes the clusters of test processes that died without their `Drop`.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        let data = e.path().join("data");
        if let Some(pid) = postmaster_pid(&data) {
            let is_postgres = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("postgres"));
            if is_postgres {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(e.path());
    }
}

/// `reportroot serve --database-url` as a process of its own.
struct Node {
    child: Child,
    base: String,
    data: tempfile::TempDir,
    /// Tokens for every (tenant, role) the test uses, minted before any outage by
    /// `reportroot token --database-url`: with a database the signing keys live in it, so a
    /// token signed with a key of the node's data directory would be refused.
    tokens: HashMap<(String, String), String>,
    http: reqwest::Client,
}

impl Node {
    fn start(url: &str) -> Node {
        let data = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(data.path().join("serve.log")).expect("log file");
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(["--database-url", url])
            .env_remove("REPORTROOT_DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start reportroot serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("reportroot listening on ") => {
                    break l.rsplit(' ').next().unwrap_or_default().to_string();
                }
                Some(Ok(_)) => {}
                _ => panic!(
                    "reportroot serve did not start: {}",
                    std::fs::read_to_string(data.path().join("serve.log")).unwrap_or_default()
                ),
            }
        };
        // Keep reading its stdout, so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let mut tokens = HashMap::new();
        for tid in [TENANT_A, TENANT_B, TENANT_C, TENANT_D] {
            for role in [READ_ROLE, WRITE_ROLE] {
                let token = cli_ok(
                    url,
                    &[
                        "token",
                        "--data",
                        data.path().to_str().expect("path"),
                        "--tenant",
                        tid,
                        "--app",
                        "--roles",
                        role,
                    ],
                );
                tokens.insert(
                    (tid.to_string(), role.to_string()),
                    token.trim().to_string(),
                );
            }
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Node {
            child,
            base,
            data,
            tokens,
            http,
        }
    }

    fn token(&self, tid: &str, role: &str) -> String {
        self.tokens
            .get(&(tid.to_string(), role.to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("no token minted for {tid} as {role}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("serve.log")).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        let exited = self.child.try_wait().expect("try_wait");
        assert!(
            exited.is_none(),
            "reportroot exited ({exited:?}): {}",
            self.log()
        );
    }

    /// Sends a request; returns the answer and how long it took.
    async fn send(&self, req: reqwest::RequestBuilder) -> (reqwest::Response, Duration) {
        let started = Instant::now();
        let resp = req.send().await.expect("request");
        (resp, started.elapsed())
    }

    async fn health(&self) -> (reqwest::Response, Duration) {
        self.send(self.http.get(format!("{}/healthz", self.base)))
            .await
    }

    async fn ingest(&self, tid: &str, nd: &str) -> (reqwest::Response, Duration) {
        self.send(
            self.http
                .post(format!("{}/admin/v1/tenants/{tid}/ingest", self.base))
                .bearer_auth(self.token(tid, WRITE_ROLE))
                .header("content-type", "application/x-ndjson")
                .body(nd.to_string()),
        )
        .await
    }

    async fn report(&self, tid: &str) -> (reqwest::Response, Duration) {
        self.send(
            self.http
                .get(format!("{}{REPORT}", self.base))
                .bearer_auth(self.token(tid, READ_ROLE)),
        )
        .await
    }

    /// The report call's redirect followed: the call's and the download's headers, and
    /// the CSV.
    async fn report_csv(&self, tid: &str) -> (HeaderMap, HeaderMap, Vec<u8>) {
        let (call, _) = self.report(tid).await;
        let status = call.status().as_u16();
        let headers = call.headers().clone();
        assert_eq!(
            status,
            302,
            "report call for {tid}: {}",
            call.text().await.unwrap_or_default()
        );
        let location = header(&headers, "location").expect("location").to_string();
        let (dl, _) = self.send(self.http.get(location)).await;
        assert_eq!(dl.status().as_u16(), 200, "download for {tid}");
        let dl_headers = dl.headers().clone();
        let body = dl.bytes().await.expect("body").to_vec();
        (headers, dl_headers, body)
    }

    async fn wait_healthy(&self) -> Duration {
        let started = Instant::now();
        loop {
            let (resp, _) = self.health().await;
            if resp.status().as_u16() == 200 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < RECOVERY,
                "the node did not recover within {RECOVERY:?}: {}",
                resp.text().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM: the node must exit cleanly, having logged no panic.
    fn stop(mut self) {
        self.assert_running();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let started = Instant::now();
        let exit = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log();
        assert!(exit.success(), "reportroot exited with {exit}: {log}");
        assert!(!log.contains("panicked"), "a panic was logged: {log}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI against the cluster (a second process writing the same database).
fn cli(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--database-url", url])
        .env_remove("REPORTROOT_DATABASE_URL")
        .output()
        .expect("run reportroot")
}

fn cli_ok(url: &str, args: &[&str]) -> String {
    let out = cli(url, args);
    assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn export(url: &str, dir: &Path, tid: &str) -> String {
    cli_ok(
        url,
        &[
            "export",
            "--data",
            dir.to_str().expect("path"),
            "--tenant",
            tid,
        ],
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A 503 in Graph's envelope with `Retry-After`, answered promptly.
async fn assert_unavailable(what: &str, (resp, took): (reqwest::Response, Duration)) {
    let status = resp.status().as_u16();
    let retry = header(resp.headers(), "retry-after").map(str::to_string);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(retry.as_deref(), Some("5"), "{what}: Retry-After");
    assert_eq!(
        body["error"]["code"], "ServiceNotAvailable",
        "{what}: {body}"
    );
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "{what}: {body}"
    );
    assert!(took < PROMPT, "{what} took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_survives_postgresql_stopping_and_recovers_when_it_starts_again() {
    if pg::skipped("postgres_outage") {
        return;
    }
    let cluster = Cluster::start();
    let url = cluster.url();
    let mut node = Node::start(&url);
    let cli_dir = tempfile::tempdir().expect("tempdir");
    let cli_data = cli_dir.path().to_str().expect("path").to_string();

    let (resp, _) = node.health().await;
    assert_eq!(resp.status().as_u16(), 200);

    // Tenant A: ingested through the node and in its memory (a report loaded it).
    let (resp, _) = node.ingest(TENANT_A, &tenant_ndjson(40, 9)).await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let (call, _, a_before) = node.report_csv(TENANT_A).await;
    assert_eq!(header(&call, FRESHNESS), None);
    // Tenant B: written by another process (the CLI), never loaded by this node.
    let b_file = cli_dir.path().join("b.ndjson");
    std::fs::write(&b_file, tenant_ndjson(30, 5)).expect("write b");
    cli_ok(
        &url,
        &[
            "ingest",
            "--data",
            &cli_data,
            "--tenant",
            TENANT_B,
            b_file.to_str().expect("path"),
        ],
    );
    let exported_a = export(&url, cli_dir.path(), TENANT_A);
    let exported_b = export(&url, cli_dir.path(), TENANT_B);

    // PostgreSQL stops.
    let t = Instant::now();
    cluster.pg_stop();
    eprintln!("pg_ctl stop -m fast: {:?}", t.elapsed());

    let (resp, took) = node.health().await;
    let status = resp.status().as_u16();
    let retry = header(resp.headers(), "retry-after").map(str::to_string);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(
        body["store"]
            .as_str()
            .is_some_and(|s| s.contains("database")),
        "the body names the store: {body}"
    );
    assert!(took < PROMPT, "healthz took {took:?}");

    // Writes need the database.
    assert_unavailable(
        "ingest into a loaded tenant",
        node.ingest(TENANT_A, &tenant_ndjson(40, 10)).await,
    )
    .await;
    assert_unavailable(
        "ingest into a new tenant",
        node.ingest(TENANT_D, &tenant_ndjson(5, 1)).await,
    )
    .await;
    // A tenant not in memory needs the database.
    assert_unavailable("report of an unloaded tenant", node.report(TENANT_B).await).await;
    // A tenant in memory is answered from memory, marked as not checked against the store.
    let t = Instant::now();
    let (call, dl, during) = node.report_csv(TENANT_A).await;
    assert!(
        t.elapsed() < PROMPT,
        "report from memory took {:?}",
        t.elapsed()
    );
    assert_eq!(header(&call, FRESHNESS), Some("unverified"));
    assert_eq!(header(&dl, FRESHNESS), Some("unverified"));
    assert_eq!(during, a_before, "the last version this node held");
    // Still failing, still answering, after several tries.
    for _ in 0..3 {
        assert_unavailable(
            "ingest, again",
            node.ingest(TENANT_A, &tenant_ndjson(3, 2)).await,
        )
        .await;
    }
    node.assert_running();

    // PostgreSQL starts again on the same port and data dir; the node is not restarted.
    cluster.pg_start();
    let recovered = node.wait_healthy().await;
    eprintln!("healthz back to 200 {recovered:?} after pg_ctl start returned");
    let (call, _, after) = node.report_csv(TENANT_A).await;
    assert_eq!(
        header(&call, FRESHNESS),
        None,
        "checked against the store again"
    );
    assert_eq!(after, a_before, "nothing of the refused batch was applied");
    node.report_csv(TENANT_B).await;
    // The database holds exactly what was acknowledged before the outage.
    assert_eq!(export(&url, cli_dir.path(), TENANT_A), exported_a);
    assert_eq!(export(&url, cli_dir.path(), TENANT_B), exported_b);
    let tenants = cli_ok(&url, &["tenants", "list", "--data", &cli_data]);
    assert!(!tenants.contains(TENANT_D), "{tenants}");
    // Writes work again.
    let (resp, _) = node.ingest(TENANT_A, &tenant_ndjson(40, 10)).await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    assert_ne!(export(&url, cli_dir.path(), TENANT_A), exported_a);
    let (resp, _) = node.ingest(TENANT_D, &tenant_ndjson(5, 1)).await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );

    // A batch whose transaction is open when PostgreSQL stops: refused with 503 (or, had
    // it committed first, acknowledged), and stored whole or not at all.
    let batch = tenant_ndjson(400, 21);
    let caught = in_flight(&node, &cluster, &batch).await;
    let status = caught.answer.status().as_u16();
    eprintln!(
        "batch in flight: caught in its transaction: {}, answered {status} {:?} after the stop",
        caught.in_transaction, caught.after_stop
    );
    assert!(
        caught.in_transaction || status == 200,
        "the batch was seen in flight"
    );
    if status != 200 {
        assert_unavailable("the batch in flight", (caught.answer, caught.after_stop)).await;
    }
    cluster.pg_start();
    node.wait_healthy().await;
    let stored = cli(&url, &["export", "--data", &cli_data, "--tenant", TENANT_C]);
    let stored_whole = stored.status.success() && !stored.stdout.is_empty();
    if status == 200 {
        assert!(stored_whole, "an acknowledged batch is stored");
    }
    let rows = rows_of(&url, TENANT_C).await;
    if stored_whole {
        // Stored whole: the same batch again changes nothing (but the audit trail).
        let first = String::from_utf8(stored.stdout).expect("utf-8");
        let (resp, _) = node.ingest(TENANT_C, &batch).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            export(&url, cli_dir.path(), TENANT_C),
            first,
            "stored whole"
        );
        let data_rows = |r: Vec<(String, i64)>| -> Vec<(String, i64)> {
            r.into_iter().filter(|(t, _)| t != "audit_log").collect()
        };
        assert_eq!(
            data_rows(rows),
            data_rows(rows_of(&url, TENANT_C).await),
            "stored whole"
        );
    } else {
        let tenants = cli_ok(&url, &["tenants", "list", "--data", &cli_data]);
        assert!(!tenants.contains(TENANT_C), "nothing stored: {tenants}");
        assert!(
            rows.is_empty(),
            "no row of the refused batch is stored: {rows:?}"
        );
        let (resp, _) = node.ingest(TENANT_C, &batch).await;
        assert_eq!(resp.status().as_u16(), 200, "the retry is stored");
    }
    node.report_csv(TENANT_C).await;

    node.stop();
    let data = cluster.data();
    let pid = postmaster_pid(&data).expect("the cluster runs");
    drop(cluster);
    assert!(!alive(pid), "the cluster's postmaster is gone");
    assert!(!data.exists(), "the cluster's directory is removed");
}

/// Every table holding rows of `tid`, with their row counts (the audit trail included).
async fn rows_of(url: &str, tid: &str) -> Vec<(String, i64)> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the cluster");
    let conn = tokio::spawn(conn);
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND column_name = 'tid' ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() > 10, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {t} WHERE tid = $1"), &[&tid])
            .await
            .expect("count")
            .get(0);
        if n > 0 {
            out.push((t, n));
        }
    }
    drop(c);
    let _ = conn.await;
    out
}

struct InFlight {
    answer: reqwest::Response,
    /// Whether the stop was seen to land inside the batch's open transaction.
    in_transaction: bool,
    /// From the stop (or the answer, if it came first) to the answer.
    after_stop: Duration,
}

/// Sends `batch` for tenant C and stops PostgreSQL as soon as the node's batch transaction
/// is at its end: it has written rows (a session of the node with a transaction id) and
/// merges the staged ones (`INSERT INTO … SELECT … ON CONFLICT`), so most of the batch is
/// written but not committed. If the answer comes first (the merge was too quick to see),
/// stops it anyway.
async fn in_flight(node: &Node, cluster: &Cluster, batch: &str) -> InFlight {
    let (watch, conn) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the cluster");
    let conn = tokio::spawn(conn);
    let send = node.ingest(TENANT_C, batch);
    tokio::pin!(send);
    let started = Instant::now();
    let mut in_transaction = false;
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(120) {
        tokio::select! {
            (a, _) = &mut send => { answer = Some(a); break; }
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
        in_transaction = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reportroot' \
                 AND backend_xid IS NOT NULL AND query LIKE 'INSERT INTO %'",
                &[],
            )
            .await
            .is_ok_and(|r| r.get::<_, i64>(0) > 0);
        if in_transaction {
            break;
        }
    }
    drop(watch);
    let _ = conn.await;
    let stop = tokio::task::block_in_place(|| {
        cluster.pg_stop();
        Instant::now()
    });
    let answer = match answer {
        Some(a) => a,
        None => send.await.0,
    };
    InFlight {
        answer,
        in_transaction,
        after_stop: stop.elapsed(),
    }
}

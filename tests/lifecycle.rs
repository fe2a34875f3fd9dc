//! The data lifecycle (issue 13, first parts): a tenant shown and deleted over HTTP and by the
//! CLI, deletion leaving nothing of the tenant's users on disk and surviving a restart, and a
//! backup taken during an ingest restoring to a batch boundary.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TENANT_A, TENANT_B, TestServer};
use reportroot::reports::{CATALOGUE, Params};
use serde_json::{Value, json};
use support::{expect_error, ingest_ok, ndjson};

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
/// A tenant never written: what an empty tenant answers.
const TENANT_C: &str = "3c9a0f21-3333-4c4c-9c9c-cccccccccccc";

/// Names only tenant A's users carry (searched for on disk after the deletion).
fn secret_user(i: u32) -> (String, String, String) {
    (
        format!("zq-erased-id-{i:04}"),
        format!("zq.erased.{i:04}@erasure.example"),
        format!("Zq Erased Person {i:04}"),
    )
}

/// A small tenant with every kind of record: 3 users, activity on 2024-03-01 and
/// 2024-03-05, refresh 2024-03-10.
fn small_tenant() -> Vec<Value> {
    let mut v = Vec::new();
    for i in 0..3 {
        let (id, upn, name) = secret_user(i);
        v.push(json!({"type":"user","id":id,"userPrincipalName":upn,"displayName":name}));
        v.push(json!({"type":"serviceLicense","userId":id,"service":"exchange","assignedDate":"2024-01-01"}));
        v.push(json!({"type":"productAssignment","userId":id,"productType":"MICROSOFT 365 APPS FOR ENTERPRISE","assignedDate":"2024-01-01"}));
        v.push(json!({"type":"activation","userId":id,"productType":"MICROSOFT 365 APPS FOR ENTERPRISE","deviceId":format!("dev-{id}"),"platform":"windows","activatedDate":"2024-01-02","sharedComputer":false}));
        v.push(json!({"type":"activity","userId":id,"service":"exchange","date":"2024-03-01"}));
        v.push(json!({"type":"activityCounts","userId":id,"workload":"exchange","date":"2024-03-05","send":3,"receive":4}));
        v.push(json!({"type":"mailbox","userId":id,"createdDate":"2024-01-01","recipientType":"user","issueWarningQuota":100,"prohibitSendQuota":200,"prohibitSendReceiveQuota":300,"deletedItemQuota":50,"hasArchive":false}));
        v.push(json!({"type":"mailboxDay","userId":id,"date":"2024-03-01","itemCount":5,"storageUsed":10,"deletedItemCount":0,"deletedItemSize":0}));
        v.push(json!({"type":"site","id":format!("site-{id}"),"kind":"oneDrive","url":format!("https://x/personal/{id}"),"ownerId":id,"rootWebTemplate":"SPSPERS","createdDate":"2024-01-01"}));
        v.push(json!({"type":"emailClients","userId":id,"date":"2024-03-05","clients":["outlookForWeb"],"outlookVersion":null}));
    }
    v.push(json!({"type":"refresh","date":"2024-03-10"}));
    v
}

/// The URL of every report in the catalogue (D30 where a period is taken).
fn report_paths() -> Vec<String> {
    CATALOGUE
        .iter()
        .map(|d| {
            if d.legacy {
                format!("/v1.0/reports/{}", d.name)
            } else {
                match d.params {
                    Params::None => format!("/v1.0/reports/{}()", d.name),
                    Params::Period | Params::PeriodOrDate => {
                        format!("/v1.0/reports/{}(period='D30')", d.name)
                    }
                }
            }
        })
        .collect()
}

/// Every report of `tid`, downloaded.
async fn all_reports(srv: &TestServer, tid: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for p in report_paths() {
        let body = srv.download(tid, &p).await;
        out.push((p, body));
    }
    out
}

fn assert_same(got: &[(String, Vec<u8>)], want: &[(String, Vec<u8>)], ctx: &str) {
    assert_eq!(got.len(), want.len());
    for ((p, g), (_, w)) in got.iter().zip(want) {
        assert!(
            g == w,
            "{ctx}: {p} differs:\n{}\nvs\n{}",
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w)
        );
    }
}

async fn location(srv: &TestServer, tid: &str, path: &str) -> String {
    let resp = srv.get(path, &srv.reader(tid)).await;
    assert_eq!(resp.status().as_u16(), 302, "{path}");
    resp.headers()["location"].to_str().unwrap().to_string()
}

async fn admin(
    srv: &TestServer,
    method: reqwest::Method,
    tid: &str,
    token: &str,
) -> reqwest::Response {
    srv.client()
        .request(method, srv.url(&format!("/admin/v1/tenants/{tid}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn tenant_show_reports_what_is_stored_to_the_tenant_writer_only() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &small_tenant()).await;
    let resp = admin(&srv, reqwest::Method::GET, TENANT_A, &srv.writer(TENANT_A)).await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["tenantId"], TENANT_A);
    assert_eq!(v["users"], 3);
    // exchange activity on 03-01 (activity) and 03-05 (non-zero counters).
    assert_eq!(v["activityDays"], 2);
    assert_eq!(v["firstActivityDate"], "2024-03-01");
    assert_eq!(v["lastActivityDate"], "2024-03-05");
    assert_eq!(v["reportRefreshDate"], "2024-03-10");
    assert_eq!(v["dataVersion"], 1);
    assert!(v["bytesStored"].as_u64().unwrap() > 3 * 40, "{v}");

    ingest_ok(
        &srv,
        TENANT_A,
        &[json!({"type":"refresh","date":"2024-03-12"})],
    )
    .await;
    let v: Value = admin(&srv, reqwest::Method::GET, TENANT_A, &srv.writer(TENANT_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["dataVersion"], 2);
    assert_eq!(v["reportRefreshDate"], "2024-03-12");

    // Authorised as ingest: a reader, another tenant's writer, no token.
    for (token, status, code) in [
        (srv.reader(TENANT_A), 403, "S2SUnauthorized"),
        (srv.writer(TENANT_B), 403, "S2SUnauthorized"),
        ("garbage".to_string(), 401, "InvalidAuthenticationToken"),
    ] {
        for m in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let resp = admin(&srv, m.clone(), TENANT_A, &token).await;
            expect_error(resp, status, code, &format!("{m} with a wrong token")).await;
        }
    }
    // A tenant with nothing stored.
    let resp = admin(&srv, reqwest::Method::GET, TENANT_C, &srv.writer(TENANT_C)).await;
    expect_error(resp, 404, "ResourceNotFound", "unknown tenant").await;
    let resp = admin(
        &srv,
        reqwest::Method::DELETE,
        TENANT_C,
        &srv.writer(TENANT_C),
    )
    .await;
    expect_error(resp, 404, "ResourceNotFound", "unknown tenant delete").await;
    // Still there after the refused deletes.
    let resp = admin(&srv, reqwest::Method::GET, TENANT_A, &srv.writer(TENANT_A)).await;
    assert_eq!(resp.status().as_u16(), 200);
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn deleting_a_tenant_removes_it_everywhere_and_for_good() {
    let srv = TestServer::start().await;
    // Reports name users in clear, so detail reports carry the names too.
    support::set_concealed(&srv, TENANT_A, false).await;
    ingest_ok(&srv, TENANT_A, &small_tenant()).await;
    ingest_ok(&srv, TENANT_B, &support::fixture()).await;
    // A restart writes the snapshots, which the deletion must remove.
    let dir = srv.stop().await;
    let snap = dir
        .path()
        .join("snapshots")
        .join(format!("{TENANT_A}.snap"));
    assert!(snap.is_file());
    let srv = TestServer::start_in(dir, |_| {}).await;

    let empty = all_reports(&srv, TENANT_C).await;
    let before_a = all_reports(&srv, TENANT_A).await;
    let before_b = all_reports(&srv, TENANT_B).await;
    let detail = location(
        &srv,
        TENANT_A,
        "/v1.0/reports/getOffice365ActiveUserDetail(period='D30')",
    )
    .await;
    let summary = location(
        &srv,
        TENANT_A,
        "/v1.0/reports/getOffice365ActivationsUserCounts",
    )
    .await;
    // A JSON page's next link (its `$skiptoken` is bound to the data version).
    let page: Value = srv
        .client()
        .get(srv.url("/beta/reports/getOffice365ActiveUserDetail(period='D30')?$format=application/json&$top=1"))
        .bearer_auth(srv.reader(TENANT_A))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = page["@odata.nextLink"]
        .as_str()
        .expect("a next page")
        .to_string();
    assert_eq!(
        srv.client().get(&detail).send().await.unwrap().status(),
        200
    );
    let detail_csv = String::from_utf8(
        before_a[report_paths()
            .iter()
            .position(|p| p.contains("getOffice365ActiveUserDetail"))
            .unwrap()]
        .1
        .clone(),
    )
    .unwrap();
    assert!(
        detail_csv.contains("zq.erased.0001@erasure.example"),
        "{detail_csv}"
    );

    let resp = admin(
        &srv,
        reqwest::Method::DELETE,
        TENANT_A,
        &srv.writer(TENANT_A),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(!snap.exists(), "the snapshot file is removed");
    // While the server runs: the log is checkpointed and emptied, and neither the database
    // nor the log holds the users any more.
    let db_path = srv.dir.path().join("reportroot.sqlite3");
    let wal = srv.dir.path().join("reportroot.sqlite3-wal");
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "the WAL is truncated"
    );
    for f in [&db_path, &wal] {
        let bytes = std::fs::read(f).unwrap_or_default();
        let (id, upn, name) = secret_user(1);
        for needle in [id, upn, name] {
            assert!(
                !find(&bytes, needle.as_bytes()),
                "{} holds {needle} right after the delete",
                f.display()
            );
        }
    }
    let resp = srv
        .client()
        .get(&next)
        .bearer_auth(srv.reader(TENANT_A))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "BadRequest", "a $skiptoken of the deleted data").await;

    // Links issued before stop working at once.
    for link in [&detail, &summary] {
        let resp = srv.client().get(link).send().await.unwrap();
        expect_error(
            resp,
            404,
            "ResourceNotFound",
            "a link of the deleted tenant",
        )
        .await;
    }
    let resp = admin(&srv, reqwest::Method::GET, TENANT_A, &srv.writer(TENANT_A)).await;
    expect_error(resp, 404, "ResourceNotFound", "show after delete").await;
    assert_ne!(before_a, empty);
    assert_same(&all_reports(&srv, TENANT_A).await, &empty, "deleted tenant");
    assert_same(
        &all_reports(&srv, TENANT_B).await,
        &before_b,
        "other tenant",
    );

    // Restart: still gone; the other tenant unchanged.
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let resp = admin(&srv, reqwest::Method::GET, TENANT_A, &srv.writer(TENANT_A)).await;
    expect_error(resp, 404, "ResourceNotFound", "show after restart").await;
    assert_same(
        &all_reports(&srv, TENANT_A).await,
        &empty,
        "deleted tenant after restart",
    );
    assert_same(
        &all_reports(&srv, TENANT_B).await,
        &before_b,
        "other tenant after restart",
    );
    let dir = srv.stop().await;

    // Nothing of its users in any file of the data dir.
    let all = files(dir.path());
    assert!(all.iter().any(|p| p.ends_with("reportroot.sqlite3")));
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        for i in 0..3 {
            let (id, upn, name) = secret_user(i);
            for needle in [id, upn, name] {
                assert!(
                    !find(&bytes, needle.as_bytes()),
                    "{} still holds {needle}",
                    f.display()
                );
            }
        }
    }
    // Tenant B's users are still on disk (the search would find them).
    let db = std::fs::read(dir.path().join("reportroot.sqlite3")).unwrap();
    assert!(find(&db, b"u1@contoso.example"));

    // A new ingest for the deleted tenant starts afresh.
    let srv = TestServer::start_in(dir, |_| {}).await;
    support::set_concealed(&srv, TENANT_A, false).await;
    ingest_ok(&srv, TENANT_A, &small_tenant()).await;
    assert_same(
        &all_reports(&srv, TENANT_A).await,
        &before_a,
        "re-ingested tenant",
    );
}

fn run(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn cli_lists_shows_and_deletes_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = dir.path().join("a.ndjson");
    let b = dir.path().join("b.ndjson");
    std::fs::write(&a, ndjson(&small_tenant())).unwrap();
    std::fs::write(&b, ndjson(&support::fixture())).unwrap();
    for (tid, f) in [(TENANT_A, &a), (TENANT_B, &b)] {
        let out = Command::new(BIN)
            .args(["ingest", "--tenant", tid, "--data"])
            .arg(&data)
            .arg(f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(&["tenants", "list", "--json"], &data);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["tenantId"].as_str().unwrap())
        .collect();
    let mut want = vec![TENANT_A, TENANT_B];
    want.sort();
    assert_eq!(ids, want);

    let out = run(&["tenants", "show", "--tenant", TENANT_A], &data);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["users"], 3);
    assert_eq!(v["activityDays"], 2);
    assert_eq!(v["reportRefreshDate"], "2024-03-10");

    let out = run(&["tenants", "delete", "--tenant", TENANT_A], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["tenants", "list", "--json"], &data);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["tenantId"], TENANT_B);
    for args in [
        &["tenants", "show", "--tenant", TENANT_A][..],
        &["tenants", "delete", "--tenant", TENANT_A][..],
    ] {
        let out = run(args, &data);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no data is stored"));
    }
    // Not a data dir: refused, nothing created.
    let none = dir.path().join("none");
    let out = run(&["tenants", "list"], &none);
    assert!(!out.status.success());
    assert!(!none.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_during_an_ingest_restores_to_a_batch_boundary() {
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.ndjson");
    let ok = Command::new(BIN)
        .args([
            "generate", "--tenant", TENANT_A, "--users", "3000", "--days", "30", "--out",
        ])
        .arg(&big)
        .status()
        .unwrap();
    assert!(ok.success());
    let big = std::fs::read_to_string(&big).unwrap();

    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &small_tenant()).await;
    ingest_ok(&srv, TENANT_B, &support::fixture()).await;
    let before = all_reports(&srv, TENANT_A).await;
    let b_reports = all_reports(&srv, TENANT_B).await;

    // The big batch goes in over HTTP while backups are taken in a loop.
    let url = srv.url(&format!("/admin/v1/tenants/{TENANT_A}/ingest"));
    let token = srv.writer(TENANT_A);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let ingest = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .body(big)
            .send()
            .await
            .unwrap();
        d.store(true, std::sync::atomic::Ordering::SeqCst);
        resp.status().as_u16()
    });
    let data = srv.dir.path().to_path_buf();
    let out_dir = work.path().to_path_buf();
    let backups = tokio::task::spawn_blocking(move || {
        let mut taken = Vec::new();
        for n in 0.. {
            let during = !done.load(std::sync::atomic::Ordering::SeqCst);
            let out = out_dir.join(format!("backup-{n}.tar"));
            let o = run(&["backup", "--out", out.to_str().unwrap()], &data);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            taken.push((out, during));
            if !during {
                break;
            }
        }
        taken
    })
    .await
    .unwrap();
    assert_eq!(ingest.await.unwrap(), 200);
    let after = all_reports(&srv, TENANT_A).await;
    assert_ne!(before, after);
    assert!(
        backups.iter().any(|(_, during)| *during),
        "no backup started during the ingest"
    );
    drop(srv);

    // The first backup (taken during the ingest) and the last (after it).
    // The first, one in the middle, the last three taken during the ingest (the ones
    // nearest its commit) and the last (after it).
    let n = backups.len();
    let mut idx = vec![
        0,
        n / 2,
        n.saturating_sub(4),
        n.saturating_sub(3),
        n.saturating_sub(2),
        n - 1,
    ];
    idx.dedup();
    let picks: Vec<_> = idx.iter().map(|i| &backups[*i]).collect();
    let mut saw = Vec::new();
    for (i, (file, _)) in picks.iter().enumerate() {
        let target = work.path().join(format!("restored-{i}"));
        let o = Command::new(BIN)
            .args(["restore", "--from"])
            .arg(file)
            .arg("--data")
            .arg(&target)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dir = tempfile::tempdir().unwrap();
        std::fs::remove_dir(dir.path()).unwrap();
        std::fs::rename(&target, dir.path()).unwrap();
        let srv = TestServer::start_in(dir, |_| {}).await;
        let got = all_reports(&srv, TENANT_A).await;
        if got == before {
            saw.push("before");
        } else {
            assert_same(
                &got,
                &after,
                "a restored backup is neither before nor after the batch",
            );
            saw.push("after");
        }
        assert_same(
            &all_reports(&srv, TENANT_B).await,
            &b_reports,
            "tenant B restored",
        );
    }
    eprintln!(
        "{} backups ({} started during the ingest); restored: {saw:?}",
        backups.len(),
        backups.iter().filter(|(_, d)| *d).count()
    );
    assert_eq!(
        saw.last().copied(),
        Some("after"),
        "the last backup was taken after the ingest"
    );
}

#[test]
fn restore_refuses_a_non_empty_dir_and_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = dir.path().join("a.ndjson");
    std::fs::write(&a, ndjson(&small_tenant())).unwrap();
    let out = Command::new(BIN)
        .args(["ingest", "--tenant", TENANT_A, "--data"])
        .arg(&data)
        .arg(&a)
        .output()
        .unwrap();
    assert!(out.status.success());
    let file = dir.path().join("b.tar");
    let out = run(&["backup", "--out", file.to_str().unwrap()], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep-me"), b"x").unwrap();
    let out = Command::new(BIN)
        .args(["restore", "--from"])
        .arg(&file)
        .arg("--data")
        .arg(&busy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    let out = Command::new(BIN)
        .args(["restore", "--from"])
        .arg(&a)
        .arg("--data")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a reportroot backup"));
    assert!(
        !dir.path().join("x").exists(),
        "nothing is left of a failed restore"
    );

    // The archive is a plain tar a shell can list.
    let out = Command::new("tar").arg("-tf").arg(&file).output().unwrap();
    let names = String::from_utf8_lossy(&out.stdout);
    // (`reportroot ingest` alone creates no keys; a server's data dir has them too.)
    assert!(names.contains("reportroot.sqlite3"), "{names}");
}

/// A data dir with a generated tenant A (2,000 users) and the fixture as tenant B, both
/// with snapshots written by a server's shutdown.
async fn loaded_dir(work: &Path) -> tempfile::TempDir {
    let big = work.join("big.ndjson");
    let b = work.join("b.ndjson");
    let ok = Command::new(BIN)
        .args([
            "generate", "--tenant", TENANT_A, "--users", "2000", "--days", "30", "--out",
        ])
        .arg(&big)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(&b, ndjson(&support::fixture())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (tid, f) in [(TENANT_A, &big), (TENANT_B, &b)] {
        let out = Command::new(BIN)
            .args(["ingest", "--tenant", tid, "--data"])
            .arg(dir.path())
            .arg(f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to.path())
        .status()
        .unwrap();
    assert!(ok.success());
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tenant_delete_leaves_all_or_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = loaded_dir(work.path()).await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let before = all_reports(&srv, TENANT_A).await;
    let b = all_reports(&srv, TENANT_B).await;
    let empty = all_reports(&srv, TENANT_C).await;
    let dir = srv.stop().await;
    let snap = |d: &Path| d.join("snapshots").join(format!("{TENANT_A}.snap"));
    assert!(snap(dir.path()).is_file());

    let args = ["tenants", "delete", "--tenant", TENANT_A];
    let delays = [0, 20, 60, 120, 200, 350, 600];
    let outcomes = killed_runs(dir.path(), &args, &delays, &before, &empty, &b).await;
    assert_eq!(outcomes.first(), Some(&"kept"));
    assert_eq!(outcomes.last(), Some(&"done"));
}

/// Runs `reportroot ARGS --data COPY` on a fresh copy of `dir` once per delay, SIGKILLed
/// that many milliseconds after its start, then once to its end. After each, a server on
/// the copy must answer tenant A's reports as `before` ("kept") or as `done` ("done"),
/// never anything else, and tenant B's as `b`. Returns the outcomes in order.
async fn killed_runs(
    dir: &Path,
    args: &[&str],
    delays: &[u64],
    before: &[(String, Vec<u8>)],
    done: &[(String, Vec<u8>)],
    b: &[(String, Vec<u8>)],
) -> Vec<&'static str> {
    let mut outcomes = Vec::new();
    for delay in delays.iter().copied().map(Some).chain([None]) {
        let copy = copy_dir(dir);
        let mut child = Command::new(BIN)
            .args(args)
            .arg("--data")
            .arg(copy.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if let Some(ms) = delay {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            let _ = child.kill();
        }
        let _ = child.wait();
        let srv = TestServer::start_in(copy, |_| {}).await;
        let got = all_reports(&srv, TENANT_A).await;
        if got == before {
            outcomes.push("kept");
        } else {
            assert_same(
                &got,
                done,
                &format!("killed after {delay:?} ms: neither kept nor done"),
            );
            outcomes.push("done");
        }
        assert_same(&all_reports(&srv, TENANT_B).await, b, "tenant B");
        drop(srv.stop().await);
    }
    eprintln!("outcomes: {outcomes:?}");
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_erasure_leaves_all_or_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = loaded_dir(work.path()).await;
    // The first user: erasing them renumbers every other one.
    let first: Value = std::fs::read_to_string(work.path().join("big.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["type"] == "user")
        .unwrap();
    let victim = first["id"].as_str().unwrap().to_string();
    let srv = TestServer::start_in(dir, |_| {}).await;
    let before = all_reports(&srv, TENANT_A).await;
    let b = all_reports(&srv, TENANT_B).await;
    let dir = srv.stop().await;
    // What a completed erasure answers.
    let done = copy_dir(dir.path());
    let out = run(
        &["tenants", "erase", "--tenant", TENANT_A, "--user", &victim],
        done.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srv = TestServer::start_in(done, |_| {}).await;
    let after = all_reports(&srv, TENANT_A).await;
    drop(srv.stop().await);
    assert_ne!(before, after);

    let args = ["tenants", "erase", "--tenant", TENANT_A, "--user", &victim];
    let delays = [0, 30, 80, 150, 250, 400, 700];
    let outcomes = killed_runs(dir.path(), &args, &delays, &before, &after, &b).await;
    assert_eq!(outcomes.last(), Some(&"done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_left_by_a_crash_after_the_commit_is_never_loaded() {
    let work = tempfile::tempdir().unwrap();
    let dir = loaded_dir(work.path()).await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let empty = all_reports(&srv, TENANT_C).await;
    let dir = srv.stop().await;
    let snap = dir
        .path()
        .join("snapshots")
        .join(format!("{TENANT_A}.snap"));
    let orphan = std::fs::read(&snap).unwrap();
    let out = run(&["tenants", "delete", "--tenant", TENANT_A], dir.path());
    assert!(out.status.success());
    assert!(!snap.exists());
    // As if the process died between the commit and the file's removal.
    std::fs::write(&snap, &orphan).unwrap();
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert!(!snap.exists(), "the orphan snapshot is removed at start-up");
    assert_same(&all_reports(&srv, TENANT_A).await, &empty, "deleted tenant");
}

// ---- Erasure of one user -------------------------------------------------------------

/// A generated tenant (every kind of record) as NDJSON lines.
fn generated_tenant(users: u32) -> Vec<Value> {
    let opts = reportroot::generate::Options {
        users,
        days: 200,
        seed: 7,
        end: reportroot::model::Day::parse("2026-10-31").unwrap(),
        single_date: false,
        usage: true,
    };
    let mut nd = Vec::new();
    reportroot::generate::write_tenant(&opts, &mut nd, |_| {}).unwrap();
    std::str::from_utf8(&nd)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The tenant as it would have been ingested without the user `id`: none of their records,
/// none of their OneDrive account, and their SharePoint sites without an owner.
fn without_user(records: &[Value], id: &str) -> Vec<Value> {
    let mut gone_sites = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in records {
        let mut r = r.clone();
        if r["userId"] == id || (r["type"] == "user" && r["id"] == id) {
            continue;
        }
        if r["type"] == "site" && r["ownerId"] == id {
            if r["kind"] == "oneDrive" {
                gone_sites.insert(r["id"].as_str().unwrap().to_string());
                continue;
            }
            r["ownerId"] = Value::Null;
        }
        if r["type"] == "siteDay" && gone_sites.contains(r["siteId"].as_str().unwrap()) {
            continue;
        }
        out.push(r);
    }
    out
}

/// Every report at every period (and JSON pages of the detail reports), downloaded.
async fn every_answer(srv: &TestServer, tid: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in CATALOGUE {
        let paths: Vec<String> = match (d.legacy, d.params) {
            (true, _) | (false, Params::None) => vec![
                report_paths()
                    .into_iter()
                    .find(|p| p.ends_with(d.name) || p.ends_with(&format!("{}()", d.name)))
                    .unwrap(),
            ],
            _ => ["D7", "D30", "D90", "D180"]
                .iter()
                .map(|p| format!("/v1.0/reports/{}(period='{p}')", d.name))
                .collect(),
        };
        for p in paths {
            out.push((p.clone(), srv.download(tid, &p).await));
        }
    }
    out
}

async fn erase(srv: &TestServer, tid: &str, id: &str) -> reqwest::Response {
    srv.client()
        .delete(srv.url(&format!("/admin/v1/tenants/{tid}/users/{id}")))
        .bearer_auth(srv.writer(tid))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn erasing_a_user_reads_as_if_never_ingested_and_leaves_nothing_on_disk() {
    let records = generated_tenant(120);
    // The owner of the first SharePoint site: a user with a mailbox, a OneDrive account, a
    // SharePoint site, activity, counters and email clients, early in the ordinals.
    let victim = records
        .iter()
        .find(|r| r["type"] == "site" && r["kind"] == "sharePoint")
        .and_then(|r| r["ownerId"].as_str())
        .unwrap()
        .to_string();
    let user = records
        .iter()
        .find(|r| r["type"] == "user" && r["id"] == victim.as_str())
        .unwrap()
        .clone();
    let upn = user["userPrincipalName"].as_str().unwrap().to_string();
    let name = user["displayName"].as_str().unwrap().to_string();
    for kind in ["mailbox", "activityCounts", "emailClients", "activation"] {
        assert!(
            records
                .iter()
                .any(|r| r["type"] == kind && r["userId"] == victim.as_str()),
            "the victim has {kind} records"
        );
    }
    assert!(
        records.iter().any(|r| r["type"] == "site"
            && r["kind"] == "oneDrive"
            && r["ownerId"] == victim.as_str()),
        "the victim has a OneDrive account"
    );

    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &records).await;
    // The same link secret, so concealed names are the same digests.
    let oracle = TestServer::start_in(common::dir_with_keys_of(&srv), |_| {}).await;
    ingest_ok(&oracle, TENANT_A, &without_user(&records, &victim)).await;
    ingest_ok(&srv, TENANT_B, &small_tenant()).await;
    let other_before = all_reports(&srv, TENANT_B).await;
    // Names in clear, so a report that still carried the user would show them; and the
    // cached detail reports (spool files) hold them before the erasure.
    support::set_concealed(&srv, TENANT_A, false).await;
    let before = every_answer(&srv, TENANT_A).await;
    assert!(
        before.iter().any(|(_, b)| find(b, upn.as_bytes())),
        "the user is in the reports before"
    );
    let link = location(
        &srv,
        TENANT_A,
        "/v1.0/reports/getOffice365ActiveUserDetail(period='D30')",
    )
    .await;

    let resp = erase(&srv, TENANT_A, &victim).await;
    assert_eq!(resp.status().as_u16(), 204);
    // A link to a report holding the user stops working.
    let resp = srv.client().get(&link).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404, "old link after the erasure");
    // Erasing again: no such user.
    expect_error(
        erase(&srv, TENANT_A, &victim).await,
        404,
        "ResourceNotFound",
        "again",
    )
    .await;
    // Only the tenant's writer may erase.
    let resp = srv
        .client()
        .delete(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/users/{victim}")))
        .bearer_auth(srv.reader(TENANT_A))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "a reader cannot erase");

    for concealed in [false, true] {
        support::set_concealed(&srv, TENANT_A, concealed).await;
        support::set_concealed(&oracle, TENANT_A, concealed).await;
        let got = every_answer(&srv, TENANT_A).await;
        let want = every_answer(&oracle, TENANT_A).await;
        assert_same(
            &got,
            &want,
            &format!("after the erasure (concealed {concealed})"),
        );
    }
    assert_same(
        &all_reports(&srv, TENANT_B).await,
        &other_before,
        "other tenant",
    );

    // After a restart: the same answers, and no file of the data dir holds the user.
    support::set_concealed(&srv, TENANT_A, false).await;
    support::set_concealed(&oracle, TENANT_A, false).await;
    let dir = srv.stop().await;
    // (Generated display names repeat: the name is searched for only if the user's own.)
    let name_is_theirs = records
        .iter()
        .filter(|r| r["type"] == "user" && r["displayName"] == name.as_str())
        .count()
        == 1;
    let mut needles = vec![&victim, &upn];
    if name_is_theirs {
        needles.push(&name);
    }
    for f in files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for needle in &needles {
            assert!(
                !find(&bytes, needle.as_bytes()),
                "{} still holds {needle:?}",
                f.display()
            );
        }
    }
    let srv = TestServer::start_in(dir, |_| {}).await;
    let got = every_answer(&srv, TENANT_A).await;
    let want = every_answer(&oracle, TENANT_A).await;
    assert_same(&got, &want, "after the erasure and a restart");

    // The audit trail names the erasure by a digest, never by the id.
    let log: Value = srv
        .client()
        .get(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/auditLog")))
        .bearer_auth(srv.writer(TENANT_A))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let erasure = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.erase")
        .expect("an erasure entry")
        .clone();
    assert_eq!(erasure["target"].as_str().unwrap().len(), 64);
    assert!(!erasure.to_string().contains(&victim));

    // A later ingest naming the user creates them anew, as a new user (last ordinal).
    ingest_ok(&srv, TENANT_A, std::slice::from_ref(&user)).await;
    let resp = srv
        .get(
            &format!("/admin/v1/tenants/{TENANT_A}"),
            &srv.writer(TENANT_A),
        )
        .await;
    let v: Value = resp.json().await.unwrap();
    let users_before = records.iter().filter(|r| r["type"] == "user").count();
    assert_eq!(v["users"], users_before);
    let dir = srv.stop().await;

    // The CLI finds the erasure by the id (the operator knows it), and the chain verifies.
    let out = run(
        &[
            "audit", "--tenant", TENANT_A, "--erased", &victim, "--verify",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user.erase"), "{text}");
    assert!(text.contains("verified"), "{text}");
    let out = run(
        &["audit", "--tenant", TENANT_A, "--erased", "someone-else"],
        dir.path(),
    );
    assert!(!out.status.success(), "no erasure of another id");
}

#[tokio::test]
async fn erasing_by_cli_matches_erasing_over_http() {
    let records = small_tenant();
    let (victim, _, _) = secret_user(1);
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &records).await;
    assert_eq!(erase(&srv, TENANT_A, &victim).await.status().as_u16(), 204);
    let over_http = all_reports(&srv, TENANT_A).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::copy_keys(srv.dir.path(), &data);
    drop(srv);
    let f = dir.path().join("a.ndjson");
    std::fs::write(&f, ndjson(&records)).unwrap();
    let out = Command::new(BIN)
        .args(["ingest", "--tenant", TENANT_A, "--data"])
        .arg(&data)
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["tenants", "erase", "--tenant", TENANT_A, "--user", &victim],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["tenants", "erase", "--tenant", TENANT_A, "--user", &victim],
        &data,
    );
    assert!(!out.status.success(), "a second erasure finds no user");
    let srv = TestServer::start_in(tempdir_of(data), |_| {}).await;
    assert_same(
        &all_reports(&srv, TENANT_A).await,
        &over_http,
        "CLI erasure",
    );
}

/// Moves a data dir into a TempDir the test server can own.
fn tempdir_of(data: PathBuf) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().to_path_buf();
    std::fs::remove_dir(&dest).unwrap();
    std::fs::rename(&data, &dest).unwrap();
    t
}

// ---- Audit trail ----------------------------------------------------------------------

#[tokio::test]
async fn the_audit_trail_records_who_changed_what_and_detects_tampering() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &small_tenant()).await;
    support::set_concealed(&srv, TENANT_A, false).await;
    let (victim, _, _) = secret_user(0);
    assert_eq!(erase(&srv, TENANT_A, &victim).await.status().as_u16(), 204);
    ingest_ok(
        &srv,
        TENANT_A,
        &[json!({"type":"refresh","date":"2024-03-11"})],
    )
    .await;

    // Paged JSON: two at a time, following the next links.
    let mut url = srv.url(&format!("/admin/v1/tenants/{TENANT_A}/auditLog?$top=2"));
    let mut entries = Vec::new();
    loop {
        let resp = srv
            .client()
            .get(&url)
            .bearer_auth(srv.writer(TENANT_A))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.headers().contains_key("request-id"));
        let v: Value = resp.json().await.unwrap();
        entries.extend(v["value"].as_array().unwrap().iter().cloned());
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["ingest", "reportSettings.update", "user.erase", "ingest"]
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["sequence"], i + 1);
        assert_eq!(e["initiatedBy"]["appId"].as_str().unwrap().len(), 36, "{e}");
        assert!(
            !e["initiatedBy"]["objectId"].as_str().unwrap().is_empty(),
            "{e}"
        );
        assert_eq!(e["requestId"].as_str().unwrap().len(), 36, "{e}");
        if i > 0 {
            assert_eq!(e["previousHash"], entries[i - 1]["hash"]);
        }
    }
    assert_eq!(entries[0]["details"]["records"], small_tenant().len());
    assert_eq!(entries[1]["details"]["displayConcealedNames"], false);
    // Another tenant's writer, and a reader, are refused.
    for token in [srv.writer(TENANT_B), srv.reader(TENANT_A)] {
        let resp = srv
            .get(&format!("/admin/v1/tenants/{TENANT_A}/auditLog"), &token)
            .await;
        assert_eq!(resp.status().as_u16(), 403);
    }
    expect_error(
        srv.get(
            &format!("/admin/v1/tenants/{TENANT_A}/auditLog?$top=0"),
            &srv.writer(TENANT_A),
        )
        .await,
        400,
        "BadRequest",
        "$top=0",
    )
    .await;
    // A tenant deletion is recorded, and its trail outlives it.
    let resp = admin(
        &srv,
        reqwest::Method::DELETE,
        TENANT_A,
        &srv.writer(TENANT_A),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 204);
    let dir = srv.stop().await;

    let out = run(&["audit", "--verify", "--json"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"tenant.delete\""), "{text}");
    assert!(
        text.contains(&format!("verified {TENANT_A}: 5 entries")),
        "{text}"
    );

    // The store refuses to change an entry; altering the file behind its back is found.
    let db = dir.path().join("reportroot.sqlite3");
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(
        conn.execute("UPDATE audit_log SET details = '{}' WHERE seq = 2", [])
            .is_err()
    );
    assert!(
        conn.execute("DELETE FROM audit_log WHERE seq = 2", [])
            .is_err()
    );
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
         UPDATE audit_log SET details = '{\"displayConcealedNames\":true}' WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let out = run(&["audit", "--verify"], dir.path());
    assert!(!out.status.success(), "an altered entry is found");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 2 was altered"), "{err}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // (Opening the store put the triggers back.)
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
         UPDATE audit_log SET details = '{\"displayConcealedNames\":false}' WHERE seq = 2;
         DELETE FROM audit_log WHERE seq = 3;",
    )
    .unwrap();
    drop(conn);
    let out = run(&["audit", "--verify"], dir.path());
    assert!(!out.status.success(), "a removed entry is found");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 4 follows entry 2"), "{err}");
}

// ---- Retention ------------------------------------------------------------------------

#[tokio::test]
async fn retention_drops_what_is_older_than_r_minus_n_at_the_boundary_day() {
    let r = reportroot::model::Day::parse("2026-10-31").unwrap();
    let day = |n: i32| r.minus(n).to_string();
    // Activity on R-181 (removed), R-180 (the boundary: kept) and R-179; mailbox states on
    // R-200 (replaced before the boundary: removed), R-190 (in force on R-180: kept), R-10.
    let mut records = vec![];
    for i in 0..3 {
        records.push(support::user(&format!("u{i}")));
        records.push(json!({"type":"serviceLicense","userId":format!("u{i}"),"service":"exchange","assignedDate":"2025-01-01"}));
    }
    for (u, n) in [("u0", 181), ("u1", 180), ("u2", 179)] {
        records.push(json!({"type":"activity","userId":u,"service":"exchange","date":day(n)}));
        records.push(json!({"type":"activityCounts","userId":u,"workload":"exchange","date":day(n),"send":n,"receive":1}));
    }
    records.push(json!({"type":"mailbox","userId":"u0","createdDate":"2025-01-01","recipientType":"user","issueWarningQuota":100,"prohibitSendQuota":200,"prohibitSendReceiveQuota":300,"deletedItemQuota":50,"hasArchive":false}));
    for (n, items) in [(200, 1), (190, 2), (10, 3)] {
        records.push(json!({"type":"mailboxDay","userId":"u0","date":day(n),"itemCount":items,"storageUsed":items * 10,"deletedItemCount":0,"deletedItemSize":0}));
    }
    records.push(json!({"type":"refresh","date":r.to_string()}));

    let keep_all = TestServer::start().await;
    ingest_ok(&keep_all, TENANT_A, &records).await;
    let srv = TestServer::start_with(|c| c.retention_days = Some(180)).await;
    ingest_ok(&srv, TENANT_A, &records).await;

    let show = |srv: &TestServer| {
        let url = srv.url(&format!("/admin/v1/tenants/{TENANT_A}"));
        let token = srv.writer(TENANT_A);
        let c = srv.client();
        async move {
            c.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let v = show(&srv).await;
    assert_eq!(v["firstActivityDate"], day(180), "{v}");
    assert_eq!(v["activityDays"], 2, "{v}");
    assert_eq!(show(&keep_all).await["firstActivityDate"], day(181));

    // Every Graph period still answers in full: the summaries equal the unpruned tenant's.
    let detail_of = |p: &str| p.contains("Detail");
    for concealed in [true] {
        let _ = concealed;
        let got = every_answer(&srv, TENANT_A).await;
        let want = every_answer(&keep_all, TENANT_A).await;
        let (gd, gs): (Vec<_>, Vec<_>) = got.into_iter().partition(|(p, _)| detail_of(p));
        let (wd, ws): (Vec<_>, Vec<_>) = want.into_iter().partition(|(p, _)| detail_of(p));
        assert_same(&gs, &ws, "summaries with retention");
        // Detail reports differ only where a Last Activity Date was older than kept.
        let differs: Vec<&String> = gd
            .iter()
            .zip(&wd)
            .filter(|((_, g), (_, w))| g != w)
            .map(|((p, _), _)| p)
            .collect();
        assert!(
            differs.iter().any(|p| p.contains("ActiveUserDetail")),
            "u0's last activity (R-181) is gone: {differs:?}"
        );
    }
    // The detail report says so in a header; a summary whose window is kept does not.
    let resp = srv
        .get(
            "/v1.0/reports/getOffice365ActiveUserDetail(period='D180')",
            &srv.reader(TENANT_A),
        )
        .await;
    assert_eq!(
        resp.headers()["reportroot-retained-from"],
        day(180).as_str()
    );
    let resp = srv
        .get(
            "/v1.0/reports/getOffice365ServicesUserCounts(period='D180')",
            &srv.reader(TENANT_A),
        )
        .await;
    assert!(!resp.headers().contains_key("reportroot-retained-from"));
    let resp = keep_all
        .get(
            "/v1.0/reports/getOffice365ActiveUserDetail(period='D180')",
            &keep_all.reader(TENANT_A),
        )
        .await;
    assert!(!resp.headers().contains_key("reportroot-retained-from"));

    // Restart: the same answers, the floor remembered.
    let before = every_answer(&srv, TENANT_A).await;
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |c| c.retention_days = Some(180)).await;
    assert_same(
        &every_answer(&srv, TENANT_A).await,
        &before,
        "after a restart",
    );
    // And from the store alone (the snapshot is memory's copy): memory was pruned as the
    // store was.
    let dir = srv.stop().await;
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    let srv = TestServer::start_in(dir, |c| c.retention_days = Some(180)).await;
    assert_same(
        &every_answer(&srv, TENANT_A).await,
        &before,
        "loaded from the store",
    );
    let resp = srv
        .get(
            "/v1.0/reports/getOffice365ActiveUserDetail(period='D7')",
            &srv.reader(TENANT_A),
        )
        .await;
    assert_eq!(
        resp.headers()["reportroot-retained-from"],
        day(180).as_str()
    );

    // R moves by a day: the boundary moves with it.
    ingest_ok(
        &srv,
        TENANT_A,
        &[json!({"type":"refresh","date":r.plus(1).to_string()})],
    )
    .await;
    let v = show(&srv).await;
    assert_eq!(v["firstActivityDate"], day(179), "{v}");
    let log: Value = srv
        .get(
            &format!("/admin/v1/tenants/{TENANT_A}/auditLog"),
            &srv.writer(TENANT_A),
        )
        .await
        .json()
        .await
        .unwrap();
    let prunes: Vec<&Value> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "retention.prune")
        .collect();
    assert_eq!(prunes.len(), 2, "{log}");
    assert_eq!(prunes[0]["details"]["before"], day(180));
}

// ---- One process per data dir ---------------------------------------------------------

#[tokio::test]
async fn a_running_server_owns_its_data_dir() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &small_tenant()).await;
    let data = srv.dir.path().to_path_buf();
    let f = data.join("x.ndjson");
    std::fs::write(&f, ndjson(&small_tenant())).unwrap();
    for args in [
        vec![
            "ingest".to_string(),
            "--tenant".into(),
            TENANT_A.into(),
            f.display().to_string(),
        ],
        vec![
            "tenants".into(),
            "delete".into(),
            "--tenant".into(),
            TENANT_A.into(),
        ],
        vec![
            "tenants".into(),
            "erase".into(),
            "--tenant".into(),
            TENANT_A.into(),
            "--user".into(),
            "u0".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, &data);
        assert!(!out.status.success(), "{args:?} beside a running server");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("in use by another reportroot process"),
            "{err}"
        );
    }
    // Reading commands go on.
    for args in [&["tenants", "list"][..], &["audit"][..]] {
        let out = run(args, &data);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Once it stops, the dir is free.
    let dir = srv.stop().await;
    let out = run(&["tenants", "delete", "--tenant", TENANT_A], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

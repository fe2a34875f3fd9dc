//! The binary as a user runs it: `demo` (the README's main job) answers its own curl lines,
//! `generate` → `ingest` → `serve` agree, `token` mints tokens the server accepts, and SIGTERM
//! stops the server cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");

/// Reads stdout lines until one contains `until`; returns them all.
fn read_until(child: &mut Child, until: &str) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let until = until.to_string();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.contains(&until);
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the binary printed its banner in time")
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the server did not stop within 10 s of SIGTERM");
}

/// `reportroot generate` of a 30-day tenant into `file`.
fn generate(file: &std::path::Path, users: u32, seed: u32) {
    let ok = Command::new(BIN)
        .args(["generate", "--tenant", common::TENANT_A, "--days", "30"])
        .args([
            "--users",
            &users.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(file)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `reportroot ingest` of `file` into `data`, with the given block size if any.
fn ingest_cmd(data: &std::path::Path, file: &std::path::Path, block: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["ingest", "--tenant", common::TENANT_A]);
    if let Some(b) = block {
        cmd.args(["--block-bytes", b]);
    }
    cmd.arg("--data").arg(data).arg(file);
    cmd
}

#[tokio::test]
async fn demo_answers_its_own_curl_lines_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--users",
            "150",
            "--data",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let lines = read_until(&mut child, "Press Ctrl-C");
    assert!(
        lines[0].starts_with(
            "Open the dashboard (one-time sign-in link, valid 1 h): http://127.0.0.1:"
        ) && lines[0].contains("/signin#code="),
        "the sign-in link comes first: {lines:?}"
    );
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("export TOKEN='"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("an export TOKEN line")
        .to_string();
    let urls: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("curl "))
        .map(|l| {
            let url = l.rsplit(" \"").next().unwrap().trim_end_matches('"');
            url.replace("\\$", "$")
        })
        .collect();
    assert_eq!(urls.len(), 10, "{lines:?}");
    let client = reqwest::Client::new();
    for url in &urls {
        let resp = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{url}");
        let body = resp.bytes().await.unwrap();
        if url.contains("$format=application/json") {
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let want = if url.contains("$top=5") { 5 } else { 1 };
            assert_eq!(v["value"].as_array().map(Vec::len), Some(want), "{url}");
        } else {
            assert!(
                body.starts_with(b"\xEF\xBB\xBFReport Refresh Date,"),
                "{url}"
            );
            assert!(
                body.split(|b| *b == b'\n').count() > 2,
                "{url} has data rows"
            );
        }
    }
    let status = terminate(&mut child);
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[tokio::test]
async fn generate_ingest_token_and_serve_agree() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.ndjson");
    let tid = common::TENANT_A;
    generate(&file, 300, 9);
    let data = dir.path().join("data");
    let out = ingest_cmd(&data, &file, None).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("report refresh date 2026-10-31"));

    // A bad file is refused whole, naming the line.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"type\":\"refresh\",\"date\":\"2026-11-01\"}\n{\"type\":\"nope\"}\n",
    )
    .unwrap();
    let out = ingest_cmd(&data, &bad, None).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: field 'type'"));

    let token = Command::new(BIN)
        .args(["token", "--tenant", tid, "--app", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();

    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = read_until(&mut child, "Dashboard for tenant");
    let base = lines
        .iter()
        .find(|l| l.starts_with("reportroot listening on "))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    // The sign-in link printed at start, and one from `reportroot signin-link` for the
    // running server, each work once.
    let printed = lines
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        printed.starts_with(&format!("{base}/signin#code=")),
        "{printed}"
    );
    let cli_link = Command::new(BIN)
        .args([
            "signin-link",
            "--tenant",
            tid,
            "--ttl",
            "5m",
            "--url",
            &base,
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let cli_link = String::from_utf8(cli_link.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        cli_link.starts_with(&format!("{base}/signin#code=")),
        "{cli_link}"
    );
    let client = reqwest::Client::new();
    for link in [&printed, &cli_link] {
        let code = link.split("#code=").nth(1).unwrap();
        for want in [200, 401] {
            let resp = client
                .post(format!("{base}/signin"))
                .header("x-requested-with", "reportroot")
                .json(&serde_json::json!({ "code": code }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), want, "{link}");
        }
    }
    let resp = reqwest::Client::new()
        .get(format!(
            "{base}/v1.0/reports/getOffice365ServicesUserCounts(period='D7')"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    // The refused file's refresh record did not move R.
    assert!(body.contains("\r\n2026-10-31,"), "{body}");
    assert!(terminate(&mut child).success());
}

/// The CLI plans a file block by block: tiny blocks (users' records split across blocks)
/// give byte-identical state to one block, and a bad last line refuses the whole file.
#[test]
fn ingest_in_blocks_equals_one_block_and_refuses_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.ndjson");
    let tid = common::TENANT_A;
    generate(&file, 200, 4);
    let ingest = |data: &std::path::Path, file: &std::path::Path, block: &str| {
        ingest_cmd(data, file, Some(block)).output().unwrap()
    };
    let snap = |data: &std::path::Path| {
        std::fs::read(data.join("snapshots").join(format!("{tid}.snap"))).unwrap()
    };
    let (one, many) = (dir.path().join("one"), dir.path().join("many"));
    assert!(ingest(&one, &file, "67108864").status.success());
    assert!(ingest(&many, &file, "4096").status.success());
    let whole = snap(&one);
    assert!(whole.len() > 10_000);
    assert_eq!(whole, snap(&many), "block size changed the in-memory state");
    // The CLI writes rows while planning; what it stored must be what the server's
    // one-shot commit stores for the same batch.
    let reference = dir.path().join("reference");
    {
        use reportroot::store::Store;
        let tenant = reportroot::model::TenantId::parse(tid).unwrap();
        let registry = reportroot::engine::Registry::new(
            std::sync::Arc::new(reportroot::store::SqliteStore::open(&reference).unwrap()),
            None,
        );
        let text = std::fs::read(&file).unwrap();
        let batch =
            reportroot::ingest::parse_batch(&text, &reportroot::ingest::Limits::default()).unwrap();
        registry.ingest(&tenant, &batch, None).unwrap();
        let stored = |dir: &std::path::Path| {
            let store = reportroot::store::SqliteStore::open(dir).unwrap();
            let mut all = Vec::new();
            store
                .load(&tenant, &mut |c| {
                    all.push(format!(
                        "{:?}",
                        (
                            c.users,
                            c.licenses,
                            c.products,
                            c.activations,
                            c.activity,
                            c.meta
                        )
                    ))
                })
                .unwrap();
            all
        };
        let want = stored(&reference);
        assert!(!want.is_empty());
        assert_eq!(
            stored(&many),
            want,
            "blocks stored other rows than one commit"
        );
        assert_eq!(stored(&one), want);
    }

    // The same file with an unknown user on its last line: refused whole, line named.
    let mut text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().count() + 1;
    text.push_str(
        "{\"type\":\"activity\",\"userId\":\"nobody\",\"service\":\"teams\",\"date\":\"2026-10-01\"}\n",
    );
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, text).unwrap();
    let refused = dir.path().join("refused");
    let out = ingest(&refused, &bad, "4096");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("line {last}: field 'userId'")),
        "{err}"
    );
    // Nothing of it was stored: a one-user file afterwards leaves a one-user state.
    let small = dir.path().join("small.ndjson");
    std::fs::write(
        &small,
        "{\"type\":\"user\",\"id\":\"u1\",\"userPrincipalName\":\"u1@x\",\"displayName\":\"U\"}\n",
    )
    .unwrap();
    assert!(ingest(&refused, &small, "4096").status.success());
    assert!(
        snap(&refused).len() < 1_000,
        "the refused file left rows behind"
    );
}

/// `reportroot ingest` writes rows into an open transaction while it plans: SIGKILL once
/// uncommitted rows are in the WAL must leave nothing stored (and a finished run everything).
#[test]
fn ingest_killed_midway_stores_nothing() {
    use reportroot::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.ndjson");
    let tid = common::TENANT_A;
    generate(&file, 6000, 8);
    let tenant = reportroot::model::TenantId::parse(tid).unwrap();
    let mut killed_midway = 0;
    for (round, wal_bytes) in [256u64 << 10, 1 << 20, 2 << 20].into_iter().enumerate() {
        let data = dir.path().join(format!("d{round}"));
        let wal = data.join("reportroot.sqlite3-wal");
        let mut child = ingest_cmd(&data, &file, Some("65536"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until rows of the open transaction have spilled into the WAL, then kill.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none()
            && std::fs::metadata(&wal).map_or(0, |m| m.len()) < wal_bytes
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        // Then a one-user batch: afterwards the store must hold it alone (a killed batch's
        // rows, committed or orphaned, would show up here).
        let one = dir.path().join("one.ndjson");
        std::fs::write(
            &one,
            "{\"type\":\"user\",\"id\":\"late-user\",\"userPrincipalName\":\"l@x\",\"displayName\":\"L\"}\n",
        )
        .unwrap();
        let out = ingest_cmd(&data, &one, None).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = reportroot::store::SqliteStore::open(&data).unwrap();
        let (mut users, mut licenses) = (0, 0);
        store
            .load(&tenant, &mut |c| {
                users += c.users.len();
                licenses += c.licenses.len();
            })
            .unwrap();
        if finished {
            assert_eq!(users, 6001, "a finished ingest lost rows");
        } else {
            killed_midway += 1;
            assert_eq!(
                (users, licenses),
                (1, 0),
                "a killed ingest left rows behind"
            );
        }
    }
    assert!(killed_midway >= 1, "every ingest finished before its kill");
}

//! The signing key ring, with the real binary: two `reportroot serve` processes on one
//! PostgreSQL database (separate data dirs, no keys copied) verify each other's links and
//! tokens; `reportroot keys rotate` (the CLI, while they run) keeps old links and tokens
//! valid until their grace is over, new ones carry the new key ids and verify everywhere,
//! and concealed names do not change; the same on a SQLite data dir.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TENANT_A;
use common::pg::{self, TestDb};
use reportroot::model::Day;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
const DETAIL: &str = "/v1.0/reports/getOffice365ActiveUserDetail(period='D30')";
const COUNTS: &str = "/v1.0/reports/getOffice365ServicesUserCounts(period='D7')";

/// A `reportroot serve` process; killed when dropped.
struct Node {
    child: Child,
    base: String,
    data: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL the nodes are reached at behind their (imagined) load balancer: the issuer base
/// of the tokens their token endpoints issue, the same on every node.
const PUBLIC_URL: &str = "http://reports.example.test";

/// Starts `reportroot serve` on 127.0.0.1:0 over `data` (and the database `db`), reading
/// the key ring again every `reload`.
fn serve(data: &Path, db: Option<&str>, reload: &str) -> Node {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--key-reload", reload])
        .args(["--public-url", PUBLIC_URL])
        .arg("--data")
        .arg(data)
        .env_remove("REPORTROOT_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = db {
        cmd.args(["--database-url", url]);
    }
    let mut child = cmd.spawn().expect("start reportroot serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let banner = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.strip_prefix("reportroot listening on ")
                .map(str::to_string)
        });
        let _ = tx.send(banner);
        // Keep reading, so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let base = rx
        .recv_timeout(Duration::from_secs(120))
        .ok()
        .flatten()
        .expect("the server printed its address");
    Node {
        child,
        base,
        data: data.to_path_buf(),
    }
}

/// Runs the CLI (with `REPORTROOT_DATABASE_URL` = `db` when given) and returns its stdout.
fn cli(args: &[&str], data: &Path, db: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .env_remove("REPORTROOT_DATABASE_URL");
    if let Some(url) = db {
        cmd.env("REPORTROOT_DATABASE_URL", url);
    }
    let out = cmd.output().expect("run reportroot");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn token(node: &Node, db: Option<&str>, role: &str) -> String {
    cli(
        &["token", "--tenant", TENANT_A, "--app", "--roles", role],
        &node.data,
        db,
    )
    .trim()
    .to_string()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn ndjson() -> String {
    let opts = reportroot::generate::Options {
        users: 60,
        days: 30,
        seed: 3,
        end: Day::parse("2026-10-31").expect("day"),
        single_date: false,
        usage: false,
    };
    let mut out = Vec::new();
    reportroot::generate::write_tenant(&opts, &mut out, |_| {}).expect("generate");
    String::from_utf8(out).expect("utf-8")
}

async fn ingest(node: &Node, writer: &str) {
    let resp = client()
        .post(format!("{}/admin/v1/tenants/{TENANT_A}/ingest", node.base))
        .bearer_auth(writer)
        .header("content-type", "application/x-ndjson")
        .body(ndjson())
        .send()
        .await
        .expect("ingest");
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

/// A report call's status and, for a 302, its download link.
async fn report(node: &Node, path: &str, token: &str) -> (u16, Option<String>) {
    let resp = client()
        .get(format!("{}{path}", node.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("report call");
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    (resp.status().as_u16(), location)
}

async fn link(node: &Node, path: &str, token: &str) -> String {
    let (status, location) = report(node, path, token).await;
    assert_eq!(status, 302, "report call on {}", node.base);
    location.expect("location")
}

/// Downloads `link` from `node` (whichever node signed it): status and body.
async fn download(node: &Node, link: &str) -> (u16, Vec<u8>) {
    let path = &link[link.find("/data/download/").expect("a download link")..];
    let resp = client()
        .get(format!("{}{path}", node.base))
        .send()
        .await
        .expect("download");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// The key id a download link carries (links of payload version 3).
fn link_kid(link: &str) -> String {
    let token = link.rsplit('/').next().expect("token");
    let payload = token.split('.').next().expect("payload");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("utf-8");
    let parts: Vec<&str> = text.split('|').collect();
    assert_eq!(parts[0], "3", "a link with a key id: {text}");
    parts[1].to_string()
}

/// The `kid` of a JWT's header.
fn token_kid(jwt: &str) -> String {
    let header = jwt.split('.').next().expect("header");
    let v: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64")).expect("json");
    v["kid"].as_str().expect("kid").to_string()
}

/// Asks `f` until it gives `want` (the nodes read the ring again every second).
async fn eventually<T: PartialEq + std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    want: T,
    mut f: impl FnMut() -> F,
) {
    let start = Instant::now();
    loop {
        let got = f().await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn jwks_kids(node: &Node) -> Vec<String> {
    let v: Value = client()
        .get(format!("{}/discovery/v2.0/keys", node.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A token from `node`'s token endpoint, for an app registered (in the database) with the
/// CLI.
async fn endpoint_token(node: &Node, db: &str) -> String {
    let app: Value = serde_json::from_str(&cli(
        &[
            "app",
            "add",
            "--tenant",
            TENANT_A,
            "--name",
            "monitoring",
            "--json",
        ],
        &node.data,
        Some(db),
    ))
    .expect("app json");
    let form = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("client_id", app["clientId"].as_str().expect("client id")),
        (
            "client_secret",
            app["clientSecret"].as_str().expect("client secret"),
        ),
        ("scope", "https://graph.microsoft.com/.default"),
    ])
    .expect("form");
    let resp: Value = client()
        .post(format!("{}/{TENANT_A}/oauth2/v2.0/token", node.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    resp["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// Two processes on one database, separate data dirs, no keys copied: a link B signs is
/// served by A byte for byte (concealed names alike), and a token A's token endpoint
/// issues is accepted by B. Only one key ring exists however the two started.
#[tokio::test]
async fn two_processes_on_one_database_share_the_key_ring() {
    if pg::skipped("key_ring") {
        return;
    }
    let db = TestDb::create();
    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Started together: both may find the database without keys.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| serve(da.path(), Some(&db.url), "10s"));
        let b = s.spawn(|| serve(dbb.path(), Some(&db.url), "10s"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert_eq!(
        db.query_strings(
            "SELECT kind || ':' || count(*) FROM signing_keys GROUP BY kind ORDER BY kind"
        ),
        vec!["digest:1", "link:1", "token:1"],
        "one key ring"
    );
    for d in [da.path(), dbb.path()] {
        assert!(!d.join("keys").exists(), "no keys in {}", d.display());
    }

    ingest(&a, &token(&a, Some(&db.url), common::WRITE_ROLE)).await;
    let reader = token(&b, Some(&db.url), common::READ_ROLE);
    let on_b = link(&b, DETAIL, &reader).await;
    let (status, from_a) = download(&a, &on_b).await;
    assert_eq!(status, 200, "A serves B's link");
    let (status, from_b) = download(&b, &on_b).await;
    assert_eq!(status, 200);
    assert!(from_a == from_b, "identical bytes from both nodes");
    assert!(
        String::from_utf8_lossy(&from_a).lines().count() > 50,
        "the detail report"
    );

    let issued = endpoint_token(&a, &db.url).await;
    assert_eq!(
        report(&b, COUNTS, &issued).await.0,
        302,
        "B accepts A's token"
    );
}

/// `keys rotate` by the CLI against the database while two nodes run: what was signed
/// before keeps working on both nodes, new links and tokens carry the new key ids and work
/// on both (B, which reads the ring only hourly, learns the new keys from the unknown key
/// id), concealed names stay the same (a third node started after the rotation computes the
/// same bytes), and once the old keys' grace is over what they signed is refused.
#[tokio::test]
async fn a_rotation_keeps_old_links_and_tokens_until_their_grace_is_over() {
    if pg::skipped("key_ring") {
        return;
    }
    let db = TestDb::create();
    let url = Some(db.url.as_str());
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = serve(dirs[0].path(), url, "1s");
    let b = serve(dirs[1].path(), url, "1h");
    ingest(&a, &token(&a, url, common::WRITE_ROLE)).await;
    let old_token = endpoint_token(&a, &db.url).await;
    let old_link = link(&a, DETAIL, &old_token).await;
    let (old_token_kid, old_link_kid) = (token_kid(&old_token), link_kid(&old_link));
    let (_, before) = download(&b, &old_link).await;

    let out = cli(&["keys", "rotate"], dirs[2].path(), url);
    assert!(
        out.contains("new token key") && out.contains("new link key"),
        "{out}"
    );
    let list = cli(&["keys", "list", "--json"], dirs[2].path(), url);
    let list: Vec<Value> = serde_json::from_str(&list).expect("list json");
    assert_eq!(list.len(), 5, "{list:?}");
    assert!(
        list.iter()
            .any(|k| k["kid"] == old_link_kid.as_str() && k["status"] == "verifying"),
        "{list:?}"
    );

    // What the old keys signed still works, on both nodes.
    for node in [&a, &b] {
        assert_eq!(
            download(node, &old_link).await.0,
            200,
            "old link on {}",
            node.base
        );
        assert_eq!(
            report(node, COUNTS, &old_token).await.0,
            302,
            "old token on {}",
            node.base
        );
    }
    // A signs with the new keys within a second; B verifies them at once.
    eventually("A's new links", true, || async {
        link_kid(&link(&a, DETAIL, &old_token).await) != old_link_kid
    })
    .await;
    let new_link = link(&a, DETAIL, &old_token).await;
    let new_token = endpoint_token(&a, &db.url).await;
    assert_ne!(token_kid(&new_token), old_token_kid);
    for node in [&a, &b] {
        assert_eq!(
            download(node, &new_link).await.0,
            200,
            "new link on {}",
            node.base
        );
        assert_eq!(
            report(node, COUNTS, &new_token).await.0,
            302,
            "new token on {}",
            node.base
        );
    }
    // Both nodes now hold the rotated ring: the old keys still verify there.
    for node in [&a, &b] {
        let at = &node.base;
        assert_eq!(
            download(node, &old_link).await.0,
            200,
            "old link on {at}, reloaded"
        );
        assert_eq!(
            report(node, COUNTS, &old_token).await.0,
            302,
            "old token on {at}, reloaded"
        );
    }
    let kids = jwks_kids(&b).await;
    assert!(
        kids.contains(&old_token_kid) && kids.contains(&token_kid(&new_token)),
        "{kids:?}"
    );

    // Concealed names: the same bytes from a node that computes the report afresh.
    let c = serve(dirs[2].path(), url, "1s");
    let fresh = link(&c, DETAIL, &new_token).await;
    assert_eq!(link_kid(&fresh), link_kid(&new_link));
    let (status, after) = download(&c, &fresh).await;
    assert_eq!(status, 200);
    assert!(before == after, "concealed names unchanged by the rotation");

    // The old keys' grace ends (as if retired a day ago): refused on every node, once it has
    // read the ring again; the new ones still work.
    db.query_strings(
        "UPDATE signing_keys SET retired = retired - 172800, accepted_until = accepted_until - 172800
         WHERE retired IS NOT NULL RETURNING kid",
    );
    eventually("the old link on A", 403, || async {
        download(&a, &old_link).await.0
    })
    .await;
    eventually("the old token on A", 401, || async {
        report(&a, COUNTS, &old_token).await.0
    })
    .await;
    eventually("the old link on C", 403, || async {
        download(&c, &old_link).await.0
    })
    .await;
    assert_eq!(download(&a, &new_link).await.0, 200);
    assert_eq!(report(&c, COUNTS, &new_token).await.0, 302);
    assert!(!jwks_kids(&a).await.contains(&old_token_kid));
    drop(b);
}

/// A data dir on SQLite: `keys rotate` while the server runs keeps the old link valid and
/// the server signs new links with the new key; `--grace 0s` ends the replaced key at once
/// (its link is refused) while the first key keeps its day; concealed names stay the same
/// after a restart.
#[tokio::test]
async fn a_rotation_on_a_sqlite_data_dir_keeps_old_links_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = serve(dir.path(), None, "1s");
    ingest(&node, &token(&node, None, common::WRITE_ROLE)).await;
    let reader = token(&node, None, common::READ_ROLE);
    let first = link(&node, DETAIL, &reader).await;
    let (_, before) = download(&node, &first).await;

    let out = cli(&["keys", "rotate"], dir.path(), None);
    assert!(out.contains("new link key"), "{out}");
    assert!(dir.path().join("keys/ring.json").is_file());
    assert_eq!(download(&node, &first).await.0, 200, "the old link");
    assert_eq!(report(&node, COUNTS, &reader).await.0, 302, "the old token");
    eventually("a link with the new key", true, || async {
        link_kid(&link(&node, DETAIL, &reader).await) != link_kid(&first)
    })
    .await;
    let second = link(&node, DETAIL, &reader).await;
    assert_eq!(download(&node, &second).await.0, 200, "the new link");
    assert_eq!(
        download(&node, &first).await.0,
        200,
        "the old link, reloaded"
    );
    assert_eq!(
        report(&node, COUNTS, &reader).await.0,
        302,
        "the old token, reloaded"
    );
    let new_reader = token(&node, None, common::READ_ROLE);
    assert_ne!(token_kid(&new_reader), token_kid(&reader));
    assert_eq!(report(&node, COUNTS, &new_reader).await.0, 302);

    // Rotated again with no grace: the second key's links are refused at once, the
    // first key's (retired with a day's grace) still verify.
    cli(&["keys", "rotate", "--grace", "0s"], dir.path(), None);
    eventually("the second link", 403, || async {
        download(&node, &second).await.0
    })
    .await;
    assert_eq!(download(&node, &first).await.0, 200, "the first link");

    drop(node);
    node = serve(dir.path(), None, "1s");
    let reader = token(&node, None, common::READ_ROLE);
    let (_, after) = download(&node, &link(&node, DETAIL, &reader).await).await;
    assert!(
        before == after,
        "concealed names unchanged by the rotations"
    );
}

/// A data dir from before key rings (`keys/link-secret` only), moved onto PostgreSQL: its
/// keys are imported, so a link of the old form (no key id) still verifies and names are
/// concealed as on the SQLite node with the same secret.
#[tokio::test]
async fn an_upgraded_data_dir_keeps_its_link_secret_in_the_database() {
    if pg::skipped("key_ring") {
        return;
    }
    let secret = [42u8; 32];
    let legacy = |d: &Path| {
        std::fs::create_dir_all(d.join("keys")).unwrap();
        std::fs::write(d.join("keys/link-secret"), secret).unwrap();
    };
    let db = TestDb::create();
    let (dp, ds) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    legacy(dp.path());
    legacy(ds.path());
    let on_pg = serve(dp.path(), Some(&db.url), "10s");
    let on_sqlite = serve(ds.path(), None, "10s");
    assert_eq!(
        db.query_strings("SELECT kid FROM signing_keys WHERE kind = 'link'"),
        vec!["0"],
        "the legacy link key, imported"
    );
    let mut bodies = Vec::new();
    for (node, url) in [(&on_pg, Some(db.url.as_str())), (&on_sqlite, None)] {
        ingest(node, &token(node, url, common::WRITE_ROLE)).await;
        let l = link(node, DETAIL, &token(node, url, common::READ_ROLE)).await;
        assert_eq!(link_kid(&l), "0");
        let (status, body) = download(node, &l).await;
        assert_eq!(status, 200);
        bodies.push((l, body));
    }
    assert!(bodies[0].1 == bodies[1].1, "concealed alike");

    // The same link in the form minted before key ids: payload version 2, no key id.
    let (l, body) = &bodies[0];
    let token = l.rsplit('/').next().expect("token");
    let payload = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let old = payload.replacen("3|0|", "2|", 1);
    use hmac::Mac;
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&secret).unwrap();
    m.update(old.as_bytes());
    let old_link = format!(
        "/data/download/{}.{}",
        URL_SAFE_NO_PAD.encode(&old),
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    );
    let (status, again) = download(&on_pg, &old_link).await;
    assert_eq!(status, 200, "a link without a key id");
    assert!(&again == body);
}

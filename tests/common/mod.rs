//! Test harness: starts the real server on 127.0.0.1:0 with a temporary data dir, in this
//! process, and talks HTTP to it. Tokens are minted with the server's own signing key, exactly
//! as `reportroot token` does.
//!
//! With `REPORTROOT_TEST_STORE=postgres` every server stores its tenants in a fresh
//! PostgreSQL database of its own (see [`pg`]) instead of the data dir's SQLite file; a
//! restart on the same data dir reuses that database.
#![allow(dead_code)]

pub mod pg;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reportroot::auth::Authority;
use reportroot::server::{Config, Server};
use reportroot::store::{PostgresOptions, PostgresStore, StoreKind};

/// The test database of each data dir of a PostgreSQL-backed server (kept across restarts).
static DATABASES: Mutex<BTreeMap<PathBuf, Arc<pg::TestDb>>> = Mutex::new(BTreeMap::new());

/// Whether the harness runs servers on PostgreSQL (`REPORTROOT_TEST_STORE=postgres`).
pub fn postgres_mode() -> bool {
    std::env::var("REPORTROOT_TEST_STORE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// The store kind for a PostgreSQL test database.
pub fn pg_store(db: &pg::TestDb) -> StoreKind {
    StoreKind::Postgres(PostgresOptions {
        url: db.url.clone(),
        ca_file: None,
    })
}

pub const TENANT_A: &str = "8a3c8d6e-1111-4a4a-9a9a-aaaaaaaaaaaa";
pub const TENANT_B: &str = "2b7f9e10-2222-4b4b-9b9b-bbbbbbbbbbbb";
pub const PERSONAL_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";
pub const WRITE_ROLE: &str = "ReportData.ReadWrite.All";
pub const READ_ROLE: &str = "Reports.Read.All";

pub struct TestServer {
    /// `http://127.0.0.1:PORT` (`https://` with TLS), no trailing slash.
    pub base: String,
    pub dir: tempfile::TempDir,
    pub authority: Authority,
    /// The PostgreSQL database, when the harness put the server on one.
    pub db: Option<Arc<pg::TestDb>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Start with a tweaked configuration (for example a short download-link lifetime).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, tweak).await
    }

    /// Start on an existing data dir (to test restarts).
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let db = postgres_mode().then(|| {
            DATABASES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(dir.path().to_path_buf())
                .or_insert_with(|| Arc::new(pg::TestDb::create()))
                .clone()
        });
        let mut config = Config::new(dir.path().to_path_buf());
        config.listen = "127.0.0.1:0".parse().expect("addr");
        if let Some(db) = &db {
            config.store = pg_store(db);
        }
        tweak(&mut config);
        let server = Server::bind(config).await.expect("bind server");
        // The server's own key ring (the data dir's, or the database's).
        let authority = server.authority().clone();
        let addr = server.local_addr();
        let scheme = server.scheme();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run_until(async {
                    let _ = rx.await;
                })
                .await
                .expect("server run");
        });
        TestServer {
            base: format!("{scheme}://{addr}"),
            dir,
            authority,
            db,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stop the server gracefully and hand back its data dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An application token whose `roles` claim is exactly `roles`.
    pub fn app_token(&self, tid: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.authority
            .mint_app(tid, None, &roles, Duration::from_secs(3600))
            .expect("mint app token")
    }

    /// A reader token (`Reports.Read.All`) for `tid`.
    pub fn reader(&self, tid: &str) -> String {
        self.app_token(tid, &[READ_ROLE])
    }

    /// A writer token (`ReportData.ReadWrite.All`) for `tid`.
    pub fn writer(&self, tid: &str) -> String {
        self.app_token(tid, &[WRITE_ROLE])
    }

    /// A delegated token with `scp` = scopes joined by spaces and `wids` = the role template ids.
    pub fn user_token(&self, tid: &str, scopes: &[&str], wids: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let wids: Vec<String> = wids.iter().map(|s| s.to_string()).collect();
        self.authority
            .mint_user(tid, &scopes, &wids, Duration::from_secs(3600))
            .expect("mint user token")
    }

    /// Sign arbitrary claims with the server's key (RS256, the server's `kid`).
    pub fn sign_claims(&self, claims: &serde_json::Value) -> String {
        self.authority.sign_claims(claims).expect("sign claims")
    }

    /// The issuer the server expects for `tid`.
    pub fn issuer(&self, tid: &str) -> String {
        self.authority.issuer(tid)
    }

    /// The server's public key as PEM (for algorithm-confusion tests).
    pub fn public_key_pem(&self) -> String {
        self.authority.public_key_pem().expect("public key pem")
    }

    /// A client that does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// POST an NDJSON batch with a writer token for `tid`.
    pub async fn ingest(&self, tid: &str, ndjson: &str) -> reqwest::Response {
        self.client()
            .post(self.url(&format!("/admin/v1/tenants/{tid}/ingest")))
            .bearer_auth(self.writer(tid))
            .header("content-type", "application/x-ndjson")
            .body(ndjson.to_string())
            .send()
            .await
            .expect("ingest request")
    }

    /// GET a report path (for example `/v1.0/reports/getOffice365ActivationCounts`) with a token,
    /// without following the redirect.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get request")
    }

    /// GET a report with a reader token for `tid`, follow the 302 (asserting it), and return the
    /// downloaded body bytes.
    pub async fn download(&self, tid: &str, path: &str) -> Vec<u8> {
        let resp = self.get(path, &self.reader(tid)).await;
        assert_eq!(
            resp.status().as_u16(),
            302,
            "report call for {path} should redirect"
        );
        let location = resp
            .headers()
            .get("location")
            .expect("location header")
            .to_str()
            .expect("ascii location")
            .to_string();
        let dl = self.client().get(&location).send().await.expect("download");
        assert_eq!(dl.status().as_u16(), 200, "download of {location}");
        dl.bytes().await.expect("body").to_vec()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Dropped for good (not stopped for a restart): its database goes too.
        if self.db.is_some() {
            DATABASES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(self.dir.path());
        }
    }
}

/// Copies the key files of the data dir `from` (the key ring, and the legacy link secret and
/// signing key if any) into `to`, so a second server on SQLite accepts the first one's
/// tokens and links and conceals names alike. (On a shared PostgreSQL store the keys are in
/// the database: nothing to copy.)
pub fn copy_keys(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to.join("keys")).expect("keys dir");
    for f in ["keys/ring.json", "keys/link-secret", "keys/signing-key.pem"] {
        if from.join(f).is_file() {
            std::fs::copy(from.join(f), to.join(f)).expect("copy key");
        }
    }
}

/// A new data dir holding the keys of `srv`'s. On PostgreSQL the keys live in the
/// database: the new dir gets a database of its own (the one a server started in it uses),
/// migrated, with `srv`'s signing key ring copied into it.
pub fn dir_with_keys_of(srv: &TestServer) -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    copy_keys(srv.dir.path(), t.path());
    if let Some(from) = &srv.db {
        let to = Arc::new(pg::TestDb::create());
        let url = to.url.clone();
        // On a thread of its own: the PostgreSQL store runs its own runtime.
        std::thread::spawn(move || {
            PostgresStore::connect(&PostgresOptions { url, ca_file: None })
                .map(drop)
                .expect("migrate the new database")
        })
        .join()
        .expect("migrate thread");
        let rows = from.query_strings(
            "SELECT format('INSERT INTO signing_keys VALUES (%L, %L, %s, %s, %s, %L)', kind, kid,
                    created, coalesce(retired::text, 'NULL'),
                    coalesce(accepted_until::text, 'NULL'), material)
               FROM signing_keys",
        );
        assert!(!rows.is_empty(), "the first server's key ring");
        for insert in rows {
            to.query_strings(&insert);
        }
        DATABASES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.path().to_path_buf(), to);
    }
    t
}

/// Registers an app for `tid` where `srv` keeps them (its data dir, or the PostgreSQL
/// database it runs on).
pub fn register_app(
    srv: &TestServer,
    tid: &str,
    name: &str,
    roles: &[String],
) -> reportroot::auth::apps::NewApp {
    use reportroot::auth::apps;
    let dir = srv.dir.path().to_path_buf();
    let url = srv.db.as_ref().map(|db| db.url.clone());
    let (tid, name, roles) = (tid.to_string(), name.to_string(), roles.to_vec());
    // On a thread of its own: the PostgreSQL store runs its own runtime.
    std::thread::spawn(move || {
        let at = match url {
            Some(url) => apps::AppsAt::Store(Arc::new(
                PostgresStore::connect(&PostgresOptions { url, ca_file: None }).expect("connect"),
            )),
            None => apps::AppsAt::Dir(dir),
        };
        apps::add(&at, &tid, &name, &roles).expect("register app")
    })
    .join()
    .expect("register thread")
}

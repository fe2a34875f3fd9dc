//! A fresh, uniquely named PostgreSQL database per test, on the server named by
//! `REPORTROOT_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, a
//! role allowed to create databases). Dropped (`WITH (FORCE)`) when the handle is dropped;
//! databases left by a killed test process are dropped by the next run.
//!
//! No PostgreSQL answering fails the test with a pointer to `scripts/ensure-postgres` (which
//! installs and starts one), unless `REPORTROOT_TEST_SKIP_POSTGRES=1`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const PREFIX: &str = "rr_test_";

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn admin_url() -> String {
    std::env::var("REPORTROOT_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// `true` when the PostgreSQL tests should be skipped (and say so).
pub fn skipped(test: &str) -> bool {
    if std::env::var("REPORTROOT_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("{test}: skipped (REPORTROOT_TEST_SKIP_POSTGRES=1)");
        return true;
    }
    false
}

/// Runs `f` on a thread of its own with a runtime of its own (callable from async tests
/// and from `Drop`).
fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|_| Err("the PostgreSQL helper thread panicked".into()))
}

async fn connect_admin(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn block<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(f)
}

/// A database of its own for one test.
pub struct TestDb {
    /// The URL of the new database (same server, role and options as the admin URL).
    pub url: String,
    pub name: String,
    admin: String,
}

impl TestDb {
    /// Creates a fresh database; panics with instructions when no PostgreSQL answers.
    pub fn create() -> TestDb {
        let admin = admin_url();
        let name = format!(
            "{PREFIX}{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        let (a, n) = (admin.clone(), name.clone());
        let made = on_thread(move || {
            block(async move {
                let c = connect_admin(&a).await?;
                sweep(&c).await;
                c.batch_execute(&format!("CREATE DATABASE {n}"))
                    .await
                    .map_err(|e| format!("CREATE DATABASE {n}: {e}"))
            })
        });
        if let Err(e) = made {
            panic!(
                "no PostgreSQL for the tests ({e}). Run `source scripts/ensure-postgres` \
                 (installs and starts one, exports REPORTROOT_TEST_DATABASE_URL), or set \
                 REPORTROOT_TEST_SKIP_POSTGRES=1 to skip these tests."
            );
        }
        let mut url = reqwest::Url::parse(&admin).expect("the admin URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            name,
            admin,
        }
    }

    /// Runs SQL on the test database and returns the first column of every row as text.
    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        let (url, sql) = (self.url.clone(), sql.to_string());
        on_thread(move || {
            block(async move {
                let c = connect_admin(&url).await?;
                let rows = c.simple_query(&sql).await.map_err(|e| e.to_string())?;
                Ok(rows
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some(r.get(0).unwrap_or("").to_string())
                        }
                        _ => None,
                    })
                    .collect())
            })
        })
        .expect("query the test database")
    }
}

/// Drops databases of test processes that are gone.
async fn sweep(c: &tokio_postgres::Client) {
    let Ok(rows) = c
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'rr\\_test\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for r in rows {
        let name: String = r.get(0);
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = c
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (a, n) = (self.admin.clone(), self.name.clone());
        let _ = on_thread(move || {
            block(async move {
                let c = connect_admin(&a).await?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        });
    }
}

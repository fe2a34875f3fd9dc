//! Assembles a running server from a [`Config`]: opens the store, warms the engine, binds the
//! listener, and serves until shutdown (SIGINT/SIGTERM, or a future in tests), letting
//! in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{self, ApiSettings, AppState};
use crate::auth::{AuthError, Authority, ExternalIssuer, Verifier};
use crate::engine::{EngineError, Registry};
use crate::ingest::Limits;
use crate::store::{StoreError, StoreKind};
use crate::tls::{TlsError, TlsListener, TlsSource};

/// How often changed tenants are snapshotted while serving.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// How often the key ring is read again unless told otherwise (a few small rows or one
/// small file; keys already decoded are kept): a rotation by another node or the CLI is
/// signed with here within this time, and a key past its grace stops verifying.
pub const KEY_RELOAD_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Scheme and host used in links and as the issuer base; remembered in the data dir.
    pub public_url: Option<String>,
    /// Expected token audience (default `https://graph.microsoft.com`).
    pub audience: Option<String>,
    /// Lifetime of pre-authenticated download links.
    pub link_ttl: Duration,
    /// Largest accepted ingest body.
    pub max_body_bytes: usize,
    pub ingest_limits: Limits,
    /// Serve HTTPS with this certificate (plain HTTP when `None`).
    pub tls: Option<TlsSource>,
    /// Accept tokens from this external OpenID Connect issuer beside the built-in one.
    pub external_issuer: Option<ExternalIssuer>,
    /// Report-call throttling (off by default).
    pub throttle: crate::throttle::Limits,
    /// Fault injection for client testing (off by default).
    pub chaos: Option<crate::api::Chaos>,
    pub connection: ConnectionLimits,
    /// Where tenants are stored (the embedded SQLite file in `data_dir` by default).
    pub store: StoreKind,
    /// `--retention-days`: history kept before the Report Refresh Date (`None`: all).
    pub retention_days: Option<u32>,
    /// `--memory-budget`: the most bytes of tenant state kept loaded (`None`: no limit).
    pub memory_budget: Option<u64>,
    /// Lifetime of a dashboard session started with a sign-in code.
    pub session_ttl: Duration,
    /// How often the key ring is read again (see [`KEY_RELOAD_EVERY`]).
    pub key_reload: Duration,
}

/// Limits on connections and requests, applied by the HTTP server itself.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Largest request head (request line and headers), in bytes (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Time to receive a request's head; also how long an idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// Time to answer one request, body included (408 in Graph's envelope after that).
    pub request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_header_bytes: 64 << 10,
            max_headers: 100,
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
        }
    }
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            public_url: None,
            audience: None,
            link_ttl: Duration::from_secs(300),
            max_body_bytes: 256 << 20,
            ingest_limits: Limits::default(),
            tls: None,
            external_issuer: None,
            throttle: crate::throttle::Limits::default(),
            chaos: None,
            connection: ConnectionLimits::default(),
            store: StoreKind::Sqlite,
            retention_days: None,
            memory_budget: None,
            session_ttl: Duration::from_secs(3600),
            key_reload: KEY_RELOAD_EVERY,
        }
    }
}

/// The default `--memory-budget`: half of the machine's memory (`MemTotal` of
/// `/proc/meminfo`); `None` (no limit) where that cannot be read.
pub fn default_memory_budget() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024 / 2)
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

enum Listener {
    Plain(tokio::net::TcpListener),
    Tls(TlsListener),
}

pub struct Server {
    listener: Listener,
    app: axum::Router,
    local_addr: SocketAddr,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
    authority: Authority,
    key_reload: Duration,
    /// Held while the server runs: one process owns a data dir.
    _lock: crate::lifecycle::DataDirLock,
}

impl Server {
    /// Opens the data dir and binds the listener; nothing is served until [`Server::run_until`].
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let Config {
            listen,
            data_dir,
            public_url,
            audience,
            link_ttl,
            max_body_bytes,
            ingest_limits,
            tls,
            external_issuer,
            throttle,
            chaos,
            connection,
            store,
            retention_days,
            memory_budget,
            session_ttl,
            key_reload,
        } = config;
        let lock = crate::lifecycle::DataDirLock::acquire(&data_dir, "serve")?;
        let public_url = public_url.map(|u| u.trim_end_matches('/').to_string());
        let dir = data_dir.clone();
        let remembered = public_url.clone();
        let (registry, authority) =
            tokio::task::spawn_blocking(move || -> Result<_, ServerError> {
                let registry = Registry::new(store.open(&dir)?, store.snapshot_dir(&dir))
                    .with_retention(retention_days)
                    .with_memory_budget(memory_budget);
                let tenants = registry.warm_up()?;
                tracing::info!(tenants, data_dir = %dir.display(), postgres = store.is_postgres(), "store opened");
                if let Some(u) = &remembered {
                    Authority::remember_public_url(&dir, u)?;
                }
                // The key ring: in the store when nodes share it, else in the data dir.
                let authority = Authority::for_store(&dir, registry.store())?;
                Ok((registry, authority))
            })
            .await
            .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
        let verifier =
            Verifier::new(authority.clone(), audience.as_deref(), external_issuer).await?;
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = tcp.local_addr().map_err(ServerError::Serve)?;
        let listener = match &tls {
            Some(source) => {
                let dir = data_dir.clone();
                let source = source.clone();
                let config =
                    tokio::task::spawn_blocking(move || crate::tls::server_config(&source, &dir))
                        .await
                        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
                Listener::Tls(TlsListener::new(tcp, config).map_err(ServerError::Serve)?)
            }
            None => Listener::Plain(tcp),
        };
        let settings = ApiSettings {
            public_url,
            local_addr,
            tls: tls.is_some(),
            link_ttl,
            max_body_bytes,
            ingest_limits,
            data_dir: data_dir.clone(),
            chaos,
            request_timeout: connection.request_timeout,
            session_ttl,
        };
        let registry = Arc::new(registry);
        let state = Arc::new(AppState::new(
            registry.clone(),
            verifier,
            settings,
            throttle,
        ));
        Ok(Server {
            listener,
            app: api::router(state),
            local_addr,
            limits: connection,
            registry,
            authority,
            key_reload,
            _lock: lock,
        })
    }

    /// Every tenant with stored data (from the store, off the async threads).
    pub async fn stored_tenants(&self) -> Result<Vec<crate::model::TenantId>, ServerError> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || registry.store().tenants())
            .await
            .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?
            .map_err(ServerError::Store)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The built-in issuer with the key ring this server signs and verifies with.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        match self.listener {
            Listener::Plain(_) => "http",
            Listener::Tls(_) => "https",
        }
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    /// Snapshots of changed tenants are written every 30 s and at shutdown.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let registry = self.registry.clone();
        let snapshots = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let r = registry.clone();
                match tokio::task::spawn_blocking(move || r.snapshot_changed()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "writing snapshots failed"),
                    Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
                    Ok(Ok(_)) => {}
                }
            }
        });
        // Retention at start-up and then daily (data also ages only when R moves, which only
        // a batch does, and each batch applies retention itself).
        let registry = self.registry.clone();
        let retention = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETENTION_EVERY);
            loop {
                tick.tick().await;
                let r = registry.clone();
                match tokio::task::spawn_blocking(move || r.retain_all()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "applying retention failed"),
                    Err(e) => tracing::warn!(error = %e, "retention task failed"),
                    Ok(Ok(_)) => {}
                }
            }
        });
        // The key ring, read again now and then: rotations by other nodes or the CLI.
        let authority = self.authority.clone();
        let every = self.key_reload.max(Duration::from_millis(100));
        let keys = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let a = authority.clone();
                match tokio::task::spawn_blocking(move || a.reload()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "reloading the key ring failed"),
                    Err(e) => tracing::warn!(error = %e, "key ring task failed"),
                    Ok(Ok(())) => {}
                }
            }
        });
        match self.listener {
            Listener::Plain(l) => serve_loop(l, self.app, self.limits, shutdown).await,
            Listener::Tls(l) => serve_loop(l, self.app, self.limits, shutdown).await,
        }
        snapshots.abort();
        retention.abort();
        keys.abort();
        let r = self.registry.clone();
        match tokio::task::spawn_blocking(move || r.snapshot_changed()).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "writing snapshots at shutdown failed"),
            Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
            Ok(Ok(n)) => tracing::info!(written = n, "snapshots written at shutdown"),
        }
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run(self) -> Result<(), ServerError> {
        self.run_until(shutdown_signal()).await
    }
}

/// The accept loop: hyper's HTTP/1 server with the connection limits, and a graceful
/// shutdown that stops accepting, lets open requests finish (30 s at most), then returns.
async fn serve_loop<L>(
    mut listener: L,
    app: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use tower::ServiceExt;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (io, _addr) = tokio::select! {
            conn = listener.accept() => conn,
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = http.serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("gave up waiting for open connections after 30 s"),
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

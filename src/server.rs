//! Assembles a running server from a [`Config`]: opens the store, warms the engine, binds the
//! listener, and serves until shutdown (SIGINT/SIGTERM, or a future in tests), letting
//! in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{self, ApiSettings, AppState};
use crate::auth::{AuthError, Authority, Verifier};
use crate::engine::{EngineError, Registry};
use crate::ingest::Limits;
use crate::store::{SqliteStore, StoreError};

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
        }
    }
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
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

pub struct Server {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    local_addr: SocketAddr,
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
        } = config;
        let public_url = public_url.map(|u| u.trim_end_matches('/').to_string());
        let dir = data_dir.clone();
        let remembered = public_url.clone();
        let (registry, authority) =
            tokio::task::spawn_blocking(move || -> Result<_, ServerError> {
                let store = SqliteStore::open(&dir)?;
                let registry = Registry::new(Arc::new(store));
                let tenants = registry.warm_up()?;
                tracing::info!(tenants, data_dir = %dir.display(), "store opened");
                if let Some(u) = &remembered {
                    Authority::remember_public_url(&dir, u)?;
                }
                Ok((registry, Authority::open(&dir)?))
            })
            .await
            .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
        let verifier = Verifier::new(authority, audience.as_deref())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(ServerError::Serve)?;
        let settings = ApiSettings {
            public_url,
            local_addr,
            tls: false,
            link_ttl,
            max_body_bytes,
            ingest_limits,
        };
        let state = Arc::new(AppState::new(Arc::new(registry), verifier, settings));
        Ok(Server {
            listener,
            app: api::router(state),
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServerError::Serve)
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run(self) -> Result<(), ServerError> {
        self.run_until(shutdown_signal()).await
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

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
use crate::store::{SqliteStore, StoreError};
use crate::tls::{TlsError, TlsListener, TlsSource};

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
    #[error(transparent)]
    Tls(#[from] TlsError),
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
        let verifier = Verifier::new(authority, audience.as_deref(), external_issuer).await?;
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

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        match self.listener {
            Listener::Plain(_) => "http",
            Listener::Tls(_) => "https",
        }
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        match self.listener {
            Listener::Plain(l) => {
                axum::serve(l, self.app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Listener::Tls(l) => {
                axum::serve(l, self.app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
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

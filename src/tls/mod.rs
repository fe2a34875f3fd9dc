//! TLS for the listener (rustls, ring; no OpenSSL): certificates from PEM files, or a
//! self-signed set created once in the data dir (a local CA and a leaf for `localhost` and
//! `127.0.0.1`), and an axum [`Listener`](axum::serve::Listener) that does handshakes off the
//! accept loop so a slow client cannot stall others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {message}")]
    Pem { path: String, message: String },
    #[error("creating the self-signed certificate: {0}")]
    Generate(String),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Created in `DATA/tls/` on first use and kept.
    SelfSigned,
}

/// Paths of the self-signed set inside a data dir.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = data_dir.join("tls");
    (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"))
}

fn io_err(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `DATA/tls/{ca,cert,key}.pem` unless they exist. The leaf (cert.pem holds leaf then
/// CA) is valid for `localhost`, `127.0.0.1` and `::1`; trust `ca.pem` in clients.
pub fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let (ca_path, cert_path, key_path) = self_signed_paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let g = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let ca_key = KeyPair::generate().map_err(g)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(g)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "reportroot local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let ca = ca_params.self_signed(&ca_key).map_err(g)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(g)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(g)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let leaf = params.signed_by(&leaf_key, &issuer).map_err(g)?;

    let dir = ca_path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    std::fs::write(&ca_path, ca.pem()).map_err(|e| io_err(&ca_path, e))?;
    std::fs::write(&key_path, leaf_key.serialize_pem()).map_err(|e| io_err(&key_path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600));
    }
    // Written last: its presence means the set is complete.
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca.pem()))
        .map_err(|e| io_err(&cert_path, e))?;
    Ok((cert_path, key_path))
}

/// Builds the rustls server configuration (HTTP/1.1 over ALPN).
pub fn server_config(source: &TlsSource, data_dir: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert, key) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned => ensure_self_signed(data_dir)?,
    };
    let pem = |path: &Path, e: &dyn std::fmt::Display| TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| pem(&cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(&cert, &e))?;
    if certs.is_empty() {
        return Err(pem(&cert, &"no certificate found"));
    }
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| pem(&key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS listener for `axum::serve`: a background task accepts TCP connections and runs each
/// handshake in its own task (10 s limit); finished streams are handed to `accept`.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local_addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task only ends when this receiver is gone, so this is unreachable in
            // practice; wait forever rather than panic.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

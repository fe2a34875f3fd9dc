//! TLS for the listener (rustls, ring; no OpenSSL): certificates from PEM files, or a
//! self-signed set created once in the data dir (a local CA and a leaf for `localhost`,
//! `127.0.0.1`, `::1` and any `--tls-names`, re-issued under the same CA when a name is
//! added), and an axum [`Listener`](axum::serve::Listener) that does handshakes off the
//! accept loop so a slow client cannot stall others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
    #[error("'{0}' is not a DNS name or IP address the certificate can be valid for")]
    Name(String),
}

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Created in `DATA/tls/` on first use and kept; the leaf is valid for `localhost`,
    /// `127.0.0.1`, `::1` and `names` (DNS names or IP addresses).
    SelfSigned {
        names: Vec<String>,
    },
}

/// Paths of the self-signed set inside a data dir.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = data_dir.join("tls");
    (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"))
}

/// The local CA's private key, kept so the leaf can be re-issued under the same CA.
fn ca_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("ca-key.pem")
}

fn io_err(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A name the leaf certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LeafName {
    Dns(String),
    Ip(std::net::IpAddr),
}

impl LeafName {
    fn server_name(&self) -> Result<ServerName<'static>, TlsError> {
        match self {
            LeafName::Dns(d) => {
                ServerName::try_from(d.clone()).map_err(|_| TlsError::Name(d.clone()))
            }
            LeafName::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        }
    }

    fn san(&self) -> Result<rcgen::SanType, TlsError> {
        Ok(match self {
            LeafName::Dns(d) => rcgen::SanType::DnsName(
                d.clone()
                    .try_into()
                    .map_err(|_| TlsError::Name(d.clone()))?,
            ),
            LeafName::Ip(ip) => rcgen::SanType::IpAddress(*ip),
        })
    }
}

/// `localhost`, `127.0.0.1`, `::1`, then the requested names (checked, lower-cased, without
/// a trailing dot, each once).
fn leaf_names(requested: &[String]) -> Result<Vec<LeafName>, TlsError> {
    let mut names = vec![
        LeafName::Dns("localhost".into()),
        LeafName::Ip(std::net::Ipv4Addr::LOCALHOST.into()),
        LeafName::Ip(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    for raw in requested {
        let n = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if n.is_empty() {
            continue;
        }
        let name = match n.parse::<std::net::IpAddr>() {
            Ok(ip) => LeafName::Ip(ip),
            Err(_) => match ServerName::try_from(n.as_str()) {
                Ok(ServerName::DnsName(_)) => LeafName::Dns(n),
                _ => return Err(TlsError::Name(raw.clone())),
            },
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The local CA's parameters. The same every time, so that a leaf signed with the kept CA
/// key names the CA in `ca.pem` as its issuer.
fn ca_params() -> Result<rcgen::CertificateParams, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    p.distinguished_name
        .push(DnType::CommonName, "reportroot local CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// A leaf for `names`, with `key`, signed by the CA.
fn sign_leaf(
    names: &[LeafName],
    key: &rcgen::KeyPair,
    ca: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> Result<rcgen::Certificate, TlsError> {
    use rcgen::{CertificateParams, DnType};
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    params.subject_alt_names = names.iter().map(LeafName::san).collect::<Result<_, _>>()?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params.signed_by(key, ca).map_err(gen_err)
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |e: &dyn std::fmt::Display| TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(&e))
}

/// Why a kept leaf cannot be served as it is, or `None` when it can: it must chain to
/// `ca.pem`, hold the public key of `key.pem`, and be valid for every name.
fn leaf_problem(
    leaf: &CertificateDer<'_>,
    ca: &[CertificateDer<'static>],
    key: &rcgen::KeyPair,
    names: &[LeafName],
) -> Option<String> {
    use rcgen::PublicKeyData;
    let parsed = match rustls::server::ParsedCertificate::try_from(leaf) {
        Ok(p) => p,
        Err(e) => return Some(format!("the certificate does not parse ({e})")),
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        if roots.add(c.clone()).is_err() {
            return Some("ca.pem is not a usable CA certificate".into());
        }
    }
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    if let Err(e) = rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &[],
        UnixTime::now(),
        algs.all,
    ) {
        return Some(format!("it is not signed by ca.pem ({e})"));
    }
    if parsed.subject_public_key_info().as_ref() != key.subject_public_key_info().as_slice() {
        return Some("it does not match key.pem".into());
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|n| {
            n.server_name().map_or(true, |sn| {
                rustls::client::verify_server_name(&parsed, &sn).is_err()
            })
        })
        .map(|n| match n {
            LeafName::Dns(d) => d.clone(),
            LeafName::Ip(ip) => ip.to_string(),
        })
        .collect();
    (!missing.is_empty()).then(|| format!("it is not valid for {}", missing.join(", ")))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that readers see the
/// old file or the new one; `private` files are readable by the owner only.
fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| io_err(&tmp, e))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Creates `DATA/tls/{ca,ca-key,cert,key}.pem` unless they exist. The leaf (cert.pem holds
/// leaf then CA) is valid for `localhost`, `127.0.0.1`, `::1` and the requested `names`;
/// trust `ca.pem` in clients. A kept leaf that lacks a requested name (or no longer matches
/// `ca.pem` or `key.pem`) is re-issued with the same key under the same CA, so a CA clients
/// already trust stays valid; only when the CA key is missing (sets made before it was kept)
/// is a new CA created, with a warning.
pub fn ensure_self_signed(
    data_dir: &Path,
    names: &[String],
) -> Result<(PathBuf, PathBuf), TlsError> {
    let names = leaf_names(names)?;
    let (ca_path, cert_path, key_path) = self_signed_paths(data_dir);
    if !(cert_path.exists() && key_path.exists() && ca_path.exists()) {
        create_self_signed(data_dir, &names)?;
        return Ok((cert_path, key_path));
    }
    let key_pem = std::fs::read_to_string(&key_path).map_err(|e| io_err(&key_path, e))?;
    let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let ca = read_pem_certs(&ca_path)?;
    let leaf = read_pem_certs(&cert_path)?;
    let problem = match leaf.first() {
        Some(leaf) => leaf_problem(leaf, &ca, &key, &names),
        None => Some("cert.pem holds no certificate".into()),
    };
    let Some(problem) = problem else {
        return Ok((cert_path, key_path));
    };

    let ca_key_path = ca_key_path(data_dir);
    let ca_key = match std::fs::read_to_string(&ca_key_path) {
        Ok(pem) => rcgen::KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
            path: ca_key_path.display().to_string(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                cert = %cert_path.display(),
                "the kept certificate cannot be used ({problem}) and there is no CA key to re-issue it with: creating a new CA; trust the new {}",
                ca_path.display()
            );
            create_self_signed(data_dir, &names)?;
            return Ok((cert_path, key_path));
        }
        Err(e) => return Err(io_err(&ca_key_path, e)),
    };
    let issuer = rcgen::Issuer::new(ca_params()?, ca_key);
    let new_leaf = sign_leaf(&names, &key, &issuer)?;
    let new_der = new_leaf.der().clone();
    if let Some(still) = leaf_problem(&new_der, &ca, &key, &names) {
        return Err(TlsError::Generate(format!(
            "the re-issued certificate cannot be used: {still}; remove {} to start over",
            ca_path.parent().unwrap_or(data_dir).display()
        )));
    }
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(|e| io_err(&ca_path, e))?;
    write_atomic(
        &cert_path,
        format!("{}{}", new_leaf.pem(), ca_pem).as_bytes(),
        false,
    )?;
    tracing::info!(
        cert = %cert_path.display(),
        "re-issued the self-signed certificate under the same CA because {problem}"
    );
    Ok((cert_path, key_path))
}

/// A new CA and leaf in `DATA/tls/`; `cert.pem` is written last, so its presence means the
/// set is complete.
fn create_self_signed(data_dir: &Path, names: &[LeafName]) -> Result<(), TlsError> {
    use rcgen::KeyPair;
    let (ca_path, cert_path, key_path) = self_signed_paths(data_dir);
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let ca_params = ca_params()?;
    let ca = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().map_err(gen_err)?;
    let leaf = sign_leaf(names, &leaf_key, &issuer)?;

    let dir = ca_path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_atomic(&ca_key_path(data_dir), ca_key_pem.as_bytes(), true)?;
    write_atomic(&ca_path, ca.pem().as_bytes(), false)?;
    write_atomic(&key_path, leaf_key.serialize_pem().as_bytes(), true)?;
    write_atomic(
        &cert_path,
        format!("{}{}", leaf.pem(), ca.pem()).as_bytes(),
        false,
    )?;
    Ok(())
}

/// Builds the rustls server configuration (HTTP/1.1 over ALPN).
pub fn server_config(source: &TlsSource, data_dir: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert, key) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { names } => ensure_self_signed(data_dir, names)?,
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

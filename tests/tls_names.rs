//! `--tls self-signed --tls-names`: the generated leaf is valid for the extra names (checked in
//! the written cert.pem and by real TLS clients that trust only DATA/tls/ca.pem and reach the
//! server under those names), a kept leaf lacking a requested name is re-issued under the
//! same CA, and the README's recipe (Microsoft's host names routed to reportroot) works.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::{READ_ROLE, TENANT_A, TestServer};
use reportroot::server::{Config, Server};
use reportroot::tls::{TlsSource, self_signed_paths};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

const GRAPH_HOST: &str = "graph.microsoft.com";
const LOGIN_HOST: &str = "login.microsoftonline.com";

fn self_signed(names: &[&str]) -> impl FnOnce(&mut Config) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    move |c: &mut Config| c.tls = Some(TlsSource::SelfSigned { names })
}

fn addr(srv: &TestServer) -> SocketAddr {
    srv.base
        .trim_start_matches("https://")
        .parse()
        .expect("https://IP:PORT")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether the first certificate of cert.pem is valid for `name` (its SubjectAltName).
fn cert_valid_for(cert_pem: &[u8], name: &str) -> bool {
    let leaf = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .expect("a certificate")
        .expect("PEM");
    let parsed = rustls::server::ParsedCertificate::try_from(&leaf).expect("parses");
    let name = ServerName::try_from(name.to_string()).expect("a server name");
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

/// A client that trusts only `ca_pem` and reaches `addr` under each of `names`.
fn client_trusting(ca_pem: &[u8], names: &[&str], addr: SocketAddr) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA PEM"))
        .redirect(reqwest::redirect::Policy::none());
    for n in names {
        b = b.resolve(n, addr);
    }
    b.build().expect("client")
}

/// GET https://{name}:{port}/healthz; Ok(status) or the error's text.
async fn health(client: &reqwest::Client, name: &str, port: u16) -> Result<u16, String> {
    client
        .get(format!("https://{name}:{port}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn tls_names_are_in_the_certificate_and_served() {
    let srv = TestServer::start_with(self_signed(&[
        GRAPH_HOST,
        "Login.MicrosoftOnline.com.",
        "10.1.2.3",
    ]))
    .await;
    let (ca_path, cert_path, _) = self_signed_paths(srv.dir.path());
    let cert = read(&cert_path);
    for name in [
        GRAPH_HOST,
        LOGIN_HOST,
        "localhost",
        "127.0.0.1",
        "::1",
        "10.1.2.3",
    ] {
        assert!(cert_valid_for(&cert, name), "cert.pem is valid for {name}");
    }
    for name in ["example.org", "microsoft.com", "evil.graph.microsoft.com"] {
        assert!(
            !cert_valid_for(&cert, name),
            "cert.pem is not valid for {name}"
        );
    }

    let a = addr(&srv);
    let client = client_trusting(&read(&ca_path), &[GRAPH_HOST, LOGIN_HOST, "example.org"], a);
    for name in [GRAPH_HOST, LOGIN_HOST, "localhost", "127.0.0.1"] {
        assert_eq!(health(&client, name, a.port()).await, Ok(200), "{name}");
    }
    assert!(
        health(&client, "example.org", a.port()).await.is_err(),
        "a name not asked for fails the handshake"
    );
}

#[tokio::test]
async fn a_kept_certificate_lacking_a_name_is_reissued_under_the_same_ca() {
    let srv = TestServer::start_with(self_signed(&[])).await;
    let (ca_path, cert_path, key_path) = self_signed_paths(srv.dir.path());
    let (ca, cert, key) = (read(&ca_path), read(&cert_path), read(&key_path));
    assert!(!cert_valid_for(&cert, GRAPH_HOST));
    let dir = srv.stop().await;

    // Restarted with a name the kept leaf lacks: a new leaf, same CA, same key.
    let srv = TestServer::start_in(dir, self_signed(&[GRAPH_HOST])).await;
    let reissued = read(&cert_path);
    assert_ne!(reissued, cert, "the leaf is re-issued");
    assert!(cert_valid_for(&reissued, GRAPH_HOST));
    assert!(cert_valid_for(&reissued, "localhost"));
    assert_eq!(read(&ca_path), ca, "the CA is kept");
    assert_eq!(read(&key_path), key, "the leaf key is kept");
    // A client that trusted the CA before still connects, under the new name.
    let a = addr(&srv);
    let client = client_trusting(&ca, &[GRAPH_HOST], a);
    assert_eq!(health(&client, GRAPH_HOST, a.port()).await, Ok(200));
    let dir = srv.stop().await;

    // Names already in the leaf (or none asked for) keep it as it is.
    let mut dir = dir;
    for names in [
        &[][..],
        &[GRAPH_HOST][..],
        &["localhost", "GRAPH.microsoft.com"][..],
    ] {
        let srv = TestServer::start_in(dir, self_signed(names)).await;
        assert_eq!(read(&cert_path), reissued, "kept with {names:?}");
        dir = srv.stop().await;
    }
}

#[tokio::test]
async fn without_the_ca_key_a_new_ca_is_created_when_a_name_is_added() {
    // A set made before the CA key was kept: the leaf cannot be re-issued under that CA.
    let srv = TestServer::start_with(self_signed(&[])).await;
    let (ca_path, cert_path, _) = self_signed_paths(srv.dir.path());
    let old_ca = read(&ca_path);
    let dir = srv.stop().await;
    std::fs::remove_file(dir.path().join("tls/ca-key.pem")).unwrap();

    let srv = TestServer::start_in(dir, self_signed(&[GRAPH_HOST])).await;
    let new_ca = read(&ca_path);
    assert_ne!(new_ca, old_ca, "a new CA");
    assert!(cert_valid_for(&read(&cert_path), GRAPH_HOST));
    let a = addr(&srv);
    assert_eq!(
        health(
            &client_trusting(&new_ca, &[GRAPH_HOST], a),
            GRAPH_HOST,
            a.port()
        )
        .await,
        Ok(200)
    );
    assert!(
        health(
            &client_trusting(&old_ca, &[GRAPH_HOST], a),
            GRAPH_HOST,
            a.port()
        )
        .await
        .is_err(),
        "the old CA no longer vouches for the server"
    );
}

#[tokio::test]
async fn a_name_that_is_no_host_name_is_refused() {
    for bad in [
        "*.example.com",
        "exa mple.com",
        "https://graph.microsoft.com",
        "a..b",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().to_path_buf());
        config.listen = "127.0.0.1:0".parse().unwrap();
        self_signed(&[bad])(&mut config);
        let err = match Server::bind(config).await {
            Ok(_) => panic!("{bad:?} was accepted as a certificate name"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(bad), "the error names {bad:?}: {err}");
    }
}

/// The README's recipe: `--tls self-signed --tls-names graph.microsoft.com,login.microsoftonline.com
/// --public-url https://graph.microsoft.com`, the CA trusted and both names pointed at the
/// server, then a client with Microsoft's hosts hard-coded signs in and reads a report.
#[tokio::test]
async fn microsofts_hosts_routed_to_reportroot() {
    let public = format!("https://{GRAPH_HOST}");
    let srv = TestServer::start_with(|c| {
        c.public_url = Some(public.clone());
        self_signed(&[GRAPH_HOST, LOGIN_HOST])(c);
    })
    .await;
    // Port 443 is not ours to bind in a test: the client reaches the names at the test's port,
    // as it would at 443 through a hosts-file entry.
    let port = addr(&srv).port();
    let app = common::register_app(&srv, TENANT_A, "m365", &[READ_ROLE.to_string()]);
    let (ca_path, _, _) = self_signed_paths(srv.dir.path());
    let client = client_trusting(&read(&ca_path), &[GRAPH_HOST, LOGIN_HOST], addr(&srv));

    let form = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ])
    .unwrap();
    let resp = client
        .post(format!(
            "https://{LOGIN_HOST}:{port}/{TENANT_A}/oauth2/v2.0/token"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("token request over TLS under login.microsoftonline.com");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();

    let resp = client
        .get(format!(
            "https://{GRAPH_HOST}:{port}/v1.0/reports/getOffice365ActivationCounts"
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("report call over TLS under graph.microsoft.com");
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{public}/data/download/")),
        "{location}"
    );
    let at_port = location.replacen(&public, &format!("https://{GRAPH_HOST}:{port}"), 1);
    let dl = client.get(&at_port).send().await.unwrap();
    assert_eq!(dl.status().as_u16(), 200);
}

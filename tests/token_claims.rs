//! The claims of built-in tokens (those of Microsoft Entra v2 app-only and user tokens, which
//! tools such as the CLI for Microsoft 365 read after sign-in), and the audiences the token
//! endpoint issues and the report API accepts: Graph's, and the server's own URL for clients
//! that derive the scope from the Graph URL they are given.

mod common;
mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{GLOBAL_ADMIN, READ_ROLE, TENANT_A, TestServer};
use serde_json::{Value, json};
use support::{AC, expect_error, rpath};

const BIN: &str = env!("CARGO_BIN_EXE_reportroot");
const GRAPH: &str = "https://graph.microsoft.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The payload of a JWT, without verifying it (as a client reading its token does).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url payload"))
        .expect("JSON payload")
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_uti(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn str_claim<'a>(c: &'a Value, name: &str) -> &'a str {
    c[name]
        .as_str()
        .unwrap_or_else(|| panic!("claim {name} should be a string in {c}"))
}

/// The times: `iat` = `nbf` = now (give or take a few seconds), `exp` = `iat` + `ttl`.
fn check_times(c: &Value, ttl: u64) {
    let (iat, nbf, exp) = (
        c["iat"].as_u64().expect("iat"),
        c["nbf"].as_u64().expect("nbf"),
        c["exp"].as_u64().expect("exp"),
    );
    assert!(iat.abs_diff(now()) <= 5, "iat {iat} is now");
    assert_eq!(nbf, iat, "nbf");
    assert_eq!(exp, iat + ttl, "exp");
}

struct App<'a> {
    aud: &'a str,
    iss: String,
    client_id: &'a str,
    name: &'a str,
    roles: &'a [&'a str],
    ttl: u64,
}

/// Every claim of an Entra v2 app-only token.
fn check_app_claims(c: &Value, want: &App<'_>) {
    assert_eq!(str_claim(c, "aud"), want.aud, "aud");
    assert_eq!(str_claim(c, "iss"), want.iss, "iss");
    assert_eq!(str_claim(c, "idp"), want.iss, "idp is the issuer");
    check_times(c, want.ttl);
    assert_eq!(
        str_claim(c, "app_displayname"),
        want.name,
        "app_displayname"
    );
    assert_eq!(str_claim(c, "appid"), want.client_id, "appid");
    assert_eq!(str_claim(c, "azp"), want.client_id, "azp");
    assert_eq!(str_claim(c, "appidacr"), "1", "appidacr: a secret");
    assert_eq!(str_claim(c, "azpacr"), "1", "azpacr: a secret");
    assert_eq!(str_claim(c, "idtyp"), "app", "idtyp");
    let oid = str_claim(c, "oid");
    assert!(is_guid(oid), "oid {oid} is a GUID");
    assert_eq!(str_claim(c, "sub"), oid, "sub is the service principal");
    assert_ne!(
        oid, want.client_id,
        "oid is the service principal's, not the app's"
    );
    assert_eq!(str_claim(c, "tid"), TENANT_A, "tid");
    assert!(is_uti(str_claim(c, "uti")), "uti: {}", c["uti"]);
    assert_eq!(str_claim(c, "ver"), "2.0", "ver");
    assert_eq!(c["roles"], json!(want.roles), "roles");
    for delegated in ["scp", "wids", "upn", "name"] {
        assert!(
            c.get(delegated).is_none(),
            "an app token has no {delegated}"
        );
    }
}

/// Registers an app for tenant A where the server keeps them; returns (client id, secret).
fn register(srv: &TestServer, name: &str) -> (String, String) {
    let app = common::register_app(srv, TENANT_A, name, &[READ_ROLE.to_string()]);
    (app.client_id, app.client_secret)
}

async fn token_request(
    srv: &TestServer,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> reqwest::Response {
    let body = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ])
    .unwrap();
    srv.client()
        .post(srv.url(&format!("/{TENANT_A}/oauth2/v2.0/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request")
}

/// A token from the token endpoint for `scope` (asserting 200).
async fn issued(srv: &TestServer, client_id: &str, secret: &str, scope: &str) -> String {
    let resp = token_request(srv, client_id, secret, scope).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("token response JSON");
    assert_eq!(status, 200, "token for scope {scope}: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

async fn expect_invalid_resource(srv: &TestServer, client_id: &str, secret: &str, scope: &str) {
    let resp = token_request(srv, client_id, secret, scope).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error JSON");
    assert_eq!(status, 400, "scope {scope}: {body}");
    assert_eq!(body["error"], "invalid_resource", "scope {scope}: {body}");
}

async fn report_status(srv: &TestServer, token: &str) -> u16 {
    srv.get(&rpath("v1.0", AC), token).await.status().as_u16()
}

#[tokio::test]
async fn token_endpoint_tokens_carry_the_claims_of_an_entra_app_token() {
    let srv = TestServer::start().await;
    let (client_id, secret) = register(&srv, "Monitoring (prod)");
    let t1 = issued(&srv, &client_id, &secret, &format!("{GRAPH}/.default")).await;
    let c = payload(&t1);
    check_app_claims(
        &c,
        &App {
            aud: GRAPH,
            iss: format!("{}/{TENANT_A}/v2.0", srv.base),
            client_id: &client_id,
            name: "Monitoring (prod)",
            roles: &[READ_ROLE],
            ttl: 3599,
        },
    );
    // The service principal is stable per app; `uti` is new per token.
    let c2 = payload(&issued(&srv, &client_id, &secret, &format!("{GRAPH}/.default")).await);
    assert_eq!(c2["oid"], c["oid"], "oid is stable");
    assert_ne!(c2["uti"], c["uti"], "uti is per token");
    let (other_id, other_secret) = register(&srv, "other");
    let c3 = payload(&issued(&srv, &other_id, &other_secret, &format!("{GRAPH}/.default")).await);
    assert_eq!(c3["app_displayname"], "other");
    assert_ne!(
        c3["oid"], c["oid"],
        "another app, another service principal"
    );
    // Graph's app id as the resource gives a token for Graph's audience.
    let by_id = issued(
        &srv,
        &client_id,
        &secret,
        "00000003-0000-0000-c000-000000000000/.default",
    )
    .await;
    assert_eq!(payload(&by_id)["aud"], GRAPH);
    assert_eq!(report_status(&srv, &t1).await, 302);
}

#[tokio::test]
async fn minted_app_tokens_carry_the_claims_of_an_entra_app_token() {
    let srv = TestServer::start().await;
    let roles = vec![READ_ROLE.to_string()];
    let token = srv
        .authority
        .mint_app_named(
            TENANT_A,
            Some("11111111-2222-3333-4444-555555555555"),
            "nightly export",
            &roles,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    check_app_claims(
        &payload(&token),
        &App {
            aud: GRAPH,
            iss: srv.issuer(TENANT_A),
            client_id: "11111111-2222-3333-4444-555555555555",
            name: "nightly export",
            roles: &[READ_ROLE],
            ttl: 600,
        },
    );
    assert_eq!(report_status(&srv, &token).await, 302);
}

fn cli_token(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["token", "--tenant", TENANT_A, "--data"])
        .arg(dir)
        .args(args)
        .output()
        .expect("run reportroot token");
    assert!(
        out.status.success(),
        "reportroot token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn cli_app_tokens_name_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let client = "0f0f0f0f-1111-4222-8333-444444444444";
    let named = cli_token(
        dir.path(),
        &["--app", "--name", "Centreon", "--client-id", client],
    );
    let default = cli_token(
        dir.path(),
        &["--app", "--roles", "Reports.Read.All,User.Read.All"],
    );
    let srv = TestServer::start_in(dir, |_| {}).await;
    let iss = srv.issuer(TENANT_A);
    check_app_claims(
        &payload(&named),
        &App {
            aud: GRAPH,
            iss: iss.clone(),
            client_id: client,
            name: "Centreon",
            roles: &[READ_ROLE],
            ttl: 3600,
        },
    );
    let default_client = reportroot::auth::Authority::default_client_id(TENANT_A);
    check_app_claims(
        &payload(&default),
        &App {
            aud: GRAPH,
            iss,
            client_id: &default_client,
            name: "reportroot-cli",
            roles: &[READ_ROLE, "User.Read.All"],
            ttl: 3600,
        },
    );
    assert_eq!(report_status(&srv, &named).await, 302);
    assert_eq!(report_status(&srv, &default).await, 302);
}

#[tokio::test]
async fn cli_user_tokens_carry_the_claims_of_an_entra_user_token() {
    let dir = tempfile::tempdir().unwrap();
    let with_upn = cli_token(
        dir.path(),
        &[
            "--user",
            "--wids",
            GLOBAL_ADMIN,
            "--name",
            "Adele Vance",
            "--upn",
            "AdeleV@contoso.example",
            "--scope",
            "User.Read,Reports.Read.All",
        ],
    );
    let from_name = cli_token(
        dir.path(),
        &["--user", "--wids", GLOBAL_ADMIN, "--name", "Adele Vance"],
    );
    let default = cli_token(dir.path(), &["--user", "--wids", GLOBAL_ADMIN]);
    let srv = TestServer::start_in(dir, |_| {}).await;
    let client = reportroot::auth::Authority::default_client_id(TENANT_A);

    let c = payload(&with_upn);
    assert_eq!(str_claim(&c, "aud"), GRAPH);
    assert_eq!(str_claim(&c, "iss"), srv.issuer(TENANT_A));
    check_times(&c, 3600);
    assert_eq!(str_claim(&c, "name"), "Adele Vance");
    assert_eq!(str_claim(&c, "upn"), "AdeleV@contoso.example");
    assert_eq!(
        str_claim(&c, "preferred_username"),
        "AdeleV@contoso.example"
    );
    assert_eq!(str_claim(&c, "unique_name"), "AdeleV@contoso.example");
    assert_eq!(str_claim(&c, "scp"), "User.Read Reports.Read.All");
    assert_eq!(c["wids"], json!([GLOBAL_ADMIN]));
    assert_eq!(c["amr"], json!(["pwd"]));
    let oid = str_claim(&c, "oid");
    assert!(is_guid(oid), "oid {oid} is a GUID");
    let sub = str_claim(&c, "sub");
    assert!(
        sub.len() == 43 && sub != oid,
        "sub is a pairwise id, not the oid: {sub}"
    );
    assert_eq!(str_claim(&c, "idtyp"), "user");
    assert_eq!(str_claim(&c, "tid"), TENANT_A);
    assert!(is_uti(str_claim(&c, "uti")), "uti: {}", c["uti"]);
    assert_eq!(str_claim(&c, "ver"), "2.0");
    assert_eq!(str_claim(&c, "appid"), client);
    assert_eq!(str_claim(&c, "azp"), client);
    assert_eq!(str_claim(&c, "appidacr"), "0", "a public client");
    assert_eq!(str_claim(&c, "app_displayname"), "reportroot-cli");
    assert!(c.get("roles").is_none(), "a user token has no roles");

    let n = payload(&from_name);
    assert_eq!(str_claim(&n, "upn"), "adele.vance@reportroot.local");
    assert_ne!(n["oid"], c["oid"], "another UPN, another user");
    assert_ne!(n["uti"], c["uti"]);
    let d = payload(&default);
    assert_eq!(str_claim(&d, "name"), "reportroot admin");
    assert_eq!(str_claim(&d, "upn"), "reportroot.admin@reportroot.local");
    // The same user gets the same ids every time.
    let again = payload(&srv.user_token(TENANT_A, &[READ_ROLE], &[GLOBAL_ADMIN]));
    assert_eq!((&again["oid"], &again["sub"]), (&d["oid"], &d["sub"]));

    for token in [&with_upn, &from_name, &default] {
        assert_eq!(report_status(&srv, token).await, 302);
    }
}

#[tokio::test]
async fn the_servers_own_url_is_a_resource_without_a_public_url() {
    let srv = TestServer::start().await;
    let (client_id, secret) = register(&srv, "centreon");
    // As the Centreon plugins ask, given `--graph-endpoint http://127.0.0.1:PORT`.
    let own = issued(&srv, &client_id, &secret, &format!("{}/.default", srv.base)).await;
    let c = payload(&own);
    assert_eq!(str_claim(&c, "aud"), srv.base, "aud is the server's URL");
    assert_eq!(str_claim(&c, "app_displayname"), "centreon");
    assert_eq!(report_status(&srv, &own).await, 302, "accepted on the API");
    // Trailing slash and case of scheme and host do not matter; the token names the URL.
    let shouted = format!("{}//.default", srv.base.to_uppercase());
    let t = issued(&srv, &client_id, &secret, &shouted).await;
    assert_eq!(payload(&t)["aud"], json!(srv.base));
    // With MSAL's extra scopes.
    let t = issued(
        &srv,
        &client_id,
        &secret,
        &format!("openid {}/.default offline_access", srv.base),
    )
    .await;
    assert_eq!(report_status(&srv, &t).await, 302);

    // Any other host or port is not this server.
    let port: u16 = srv.base.rsplit(':').next().unwrap().parse().unwrap();
    for other in [
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}"),
        format!("{}.evil.example", srv.base),
        format!("http://localhost.evil.example:{port}"),
        "https://reports.example.com".to_string(),
        "api://reportroot".to_string(),
    ] {
        expect_invalid_resource(&srv, &client_id, &secret, &format!("{other}/.default")).await;
    }
}

#[tokio::test]
async fn the_public_url_is_a_resource_and_the_request_host_is_not() {
    let srv =
        TestServer::start_with(|c| c.public_url = Some("https://Reports.Example.com/".into()))
            .await;
    let (client_id, secret) = register(&srv, "centreon");
    let t = issued(
        &srv,
        &client_id,
        &secret,
        "https://reports.example.com/.default",
    )
    .await;
    let c = payload(&t);
    assert_eq!(str_claim(&c, "aud"), "https://Reports.Example.com");
    assert_eq!(
        str_claim(&c, "iss"),
        format!("https://Reports.Example.com/{TENANT_A}/v2.0")
    );
    assert_eq!(report_status(&srv, &t).await, 302, "accepted on the API");
    let t = issued(
        &srv,
        &client_id,
        &secret,
        "HTTPS://REPORTS.EXAMPLE.COM:443/.default",
    )
    .await;
    assert_eq!(report_status(&srv, &t).await, 302);
    // Graph's audience still works.
    let graph = issued(&srv, &client_id, &secret, &format!("{GRAPH}/.default")).await;
    assert_eq!(report_status(&srv, &graph).await, 302);
    // With a public URL set, the address the request came to is not a resource.
    expect_invalid_resource(&srv, &client_id, &secret, &format!("{}/.default", srv.base)).await;
}

#[tokio::test]
async fn tokens_for_another_audience_are_refused_on_the_api() {
    let srv = TestServer::start().await;
    let n = now();
    let claims = |aud: Value| {
        json!({
            "aud": aud, "iss": srv.issuer(TENANT_A), "iat": n, "nbf": n, "exp": n + 600,
            "tid": TENANT_A, "ver": "2.0", "idtyp": "app", "roles": [READ_ROLE],
            "appid": "11111111-2222-3333-4444-555555555555",
            "azp": "11111111-2222-3333-4444-555555555555",
        })
    };
    let port: u16 = srv.base.rsplit(':').next().unwrap().parse().unwrap();
    for aud in [
        json!(srv.base),
        json!(format!("{}/", srv.base.to_uppercase())),
        json!(["api://someone-else", srv.base]),
        json!(GRAPH),
    ] {
        let token = srv.sign_claims(&claims(aud.clone()));
        assert_eq!(report_status(&srv, &token).await, 302, "aud {aud}");
    }
    for aud in [
        json!(format!("http://127.0.0.1:{}", port.wrapping_add(1))),
        json!(format!("https://127.0.0.1:{port}")),
        json!(format!("{}.evil.example", srv.base)),
        json!(format!("{}/other", srv.base)),
        json!("https://reports.example.com"),
        json!("api://someone-else"),
        json!(["api://someone-else", "https://reports.example.com"]),
        json!([]),
        json!(null),
    ] {
        let token = srv.sign_claims(&claims(aud.clone()));
        let resp = srv.get(&rpath("v1.0", AC), &token).await;
        expect_error(
            resp,
            401,
            "InvalidAuthenticationToken",
            &format!("aud {aud}"),
        )
        .await;
    }
    let mut no_aud = claims(json!(GRAPH));
    no_aud.as_object_mut().unwrap().remove("aud");
    let resp = srv.get(&rpath("v1.0", AC), &srv.sign_claims(&no_aud)).await;
    expect_error(resp, 401, "InvalidAuthenticationToken", "no aud").await;
}

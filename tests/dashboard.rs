//! The browser dashboard's server side: the page with its Content-Security-Policy and cache
//! headers, the one-time sign-in code exchanged for an `HttpOnly`, `SameSite=Strict` session
//! cookie (single use, also across a restart; expiry; tampering), the cookie accepted by the
//! report endpoints only from the dashboard's own pages (cross-site uses refused), pasted
//! tokens, and sign-out.

mod common;
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{READ_ROLE, TENANT_A, TENANT_B, TestServer, WRITE_ROLE};
use reportroot::auth::signin;
use reportroot::model::TenantId;
use reportroot::server::Config;
use reportroot::tls::{TlsSource, self_signed_paths};
use serde_json::{Value, json};
use support::{activity, ingest_ok, license, refresh, user};

const SUC_JSON: &str =
    "/beta/reports/getOffice365ServicesUserCounts(period='D7')?$format=application/json";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn code_for(srv: &TestServer, tid: &str, expires: u64) -> String {
    let tid = TenantId::parse(tid).expect("tid");
    signin::issue(&srv.authority.link_signer(), &tid, expires)
}

/// POST /signin as the dashboard does (the X-Requested-With header, same origin).
async fn post_signin(srv: &TestServer, body: Value) -> reqwest::Response {
    srv.client()
        .post(srv.url("/signin"))
        .header("x-requested-with", "reportroot")
        .header("origin", &srv.base)
        .header("sec-fetch-site", "same-origin")
        .json(&body)
        .send()
        .await
        .expect("signin")
}

fn set_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("set-cookie")
        .expect("Set-Cookie")
        .to_str()
        .expect("ascii")
        .to_string()
}

/// The `name=value` part of a Set-Cookie header, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_string()
}

async fn signed_in_cookie(srv: &TestServer, tid: &str) -> String {
    let resp = post_signin(srv, json!({"code": code_for(srv, tid, now() + 600)})).await;
    assert_eq!(resp.status().as_u16(), 200);
    cookie_pair(&set_cookie(&resp))
}

async fn error_code(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.expect("Graph error envelope");
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

async fn seed(srv: &TestServer, tid: &str) {
    ingest_ok(
        srv,
        tid,
        &[
            user("u1"),
            user("u2"),
            license("u1", "exchange", "2026-01-01", None),
            license("u2", "exchange", "2026-01-01", None),
            activity("u1", "exchange", "2026-10-30"),
            refresh("2026-10-31"),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_csp_and_cache_headers() {
    let srv = TestServer::start().await;
    for path in ["/", "/signin"] {
        let resp = srv.client().get(srv.url(path)).send().await.expect("page");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let h = resp.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let body = resp.text().await.expect("html");
        assert!(body.contains("<script type=\"module\" src=\"/assets/app.js?v="));
        assert!(!body.contains("<script>"), "no inline script");
    }
    let js = srv
        .client()
        .get(srv.url("/assets/app.js?v=x"))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status().as_u16(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = js.headers()["etag"].to_str().expect("etag").to_string();
    let again = srv
        .client()
        .get(srv.url("/assets/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("js again");
    assert_eq!(again.status().as_u16(), 304);
    let css = srv
        .client()
        .get(srv.url("/assets/app.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let missing = srv
        .client()
        .get(srv.url("/assets/nope.js"))
        .send()
        .await
        .expect("404");
    let (status, code, _) = error_code(missing).await;
    assert_eq!((status, code.as_str()), (404, "ResourceNotFound"));
}

#[tokio::test]
async fn a_sign_in_code_sets_a_strict_http_only_cookie() {
    let srv = TestServer::start().await;
    let resp = post_signin(&srv, json!({"code": code_for(&srv, TENANT_A, now() + 600)})).await;
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = set_cookie(&resp);
    assert!(cookie.starts_with("reportroot_session=ey"), "{cookie}");
    for flag in ["; HttpOnly", "; SameSite=Strict", "; Path=/", "; Max-Age="] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let max_age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.parse().ok())
        .expect("Max-Age");
    assert!((3500..=3600).contains(&max_age), "a 1 h session: {max_age}");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["tenantId"], TENANT_A);
    assert_eq!(body["signedIn"], true);

    // The session token is a read-only app token of that tenant.
    let token = cookie_pair(&cookie)["reportroot_session=".len()..].to_string();
    let payload = token.split('.').nth(1).expect("jwt payload");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("claims");
    assert_eq!(claims["roles"], json!([READ_ROLE]));
    assert_eq!(claims["tid"], TENANT_A);
    assert_eq!(claims["app_displayname"], "reportroot dashboard");
}

#[tokio::test]
async fn the_cookie_is_secure_over_tls() {
    let srv = TestServer::start_with(|c: &mut Config| {
        c.tls = Some(TlsSource::SelfSigned { names: vec![] })
    })
    .await;
    let (ca, _, _) = self_signed_paths(srv.dir.path());
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(ca).expect("ca")).expect("pem"),
        )
        .build()
        .expect("client");
    let resp = client
        .post(srv.url("/signin"))
        .header("x-requested-with", "reportroot")
        .json(&json!({"code": code_for(&srv, TENANT_A, now() + 600)}))
        .send()
        .await
        .expect("signin");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        set_cookie(&resp).ends_with("; Secure"),
        "{}",
        set_cookie(&resp)
    );
}

#[tokio::test]
async fn a_code_works_once_and_not_after_it_expires() {
    let srv = TestServer::start().await;
    let code = code_for(&srv, TENANT_A, now() + 600);
    assert_eq!(
        post_signin(&srv, json!({ "code": code }))
            .await
            .status()
            .as_u16(),
        200
    );
    let (status, c, message) = error_code(post_signin(&srv, json!({ "code": code })).await).await;
    assert_eq!((status, c.as_str()), (401, "InvalidAuthenticationToken"));
    assert!(message.contains("already been used"), "{message}");

    // Still spent after a restart.
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let (status, _, message) = error_code(post_signin(&srv, json!({ "code": code })).await).await;
    assert_eq!(status, 401);
    assert!(message.contains("already been used"), "{message}");

    let expired = code_for(&srv, TENANT_A, now() - 1);
    let (status, _, message) =
        error_code(post_signin(&srv, json!({ "code": expired })).await).await;
    assert_eq!(status, 401);
    assert!(message.contains("expired"), "{message}");

    // A code signed with another key (under the server's key id, or another data dir's
    // key), or altered, is refused; no cookie is set.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = reportroot::auth::Authority::open(other.path()).expect("authority");
    let forged = signin::issue(
        &foreign.link_signer(),
        &TenantId::parse(TENANT_A).expect("tid"),
        now() + 600,
    );
    let impostor = signin::issue(
        &reportroot::auth::LinkKey {
            kid: srv.authority.link_signer().kid.clone(),
            secret: foreign.link_signer().secret.clone(),
        },
        &TenantId::parse(TENANT_A).expect("tid"),
        now() + 600,
    );
    let good = code_for(&srv, TENANT_B, now() + 600);
    let tampered = format!("{}x", good);
    for bad in [forged, impostor, tampered, "garbage".to_string()] {
        let resp = post_signin(&srv, json!({ "code": bad })).await;
        assert!(resp.headers().get("set-cookie").is_none());
        let (status, _, message) = error_code(resp).await;
        assert_eq!(status, 401);
        assert!(message.contains("not valid"), "{message}");
    }
    // The untampered code still works once.
    assert_eq!(
        post_signin(&srv, json!({ "code": good }))
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn the_cookie_reads_reports_from_the_dashboard_itself() {
    let srv = TestServer::start().await;
    seed(&srv, TENANT_A).await;
    let cookie = signed_in_cookie(&srv, TENANT_A).await;
    // As the page sends it: header, same origin.
    let resp = srv
        .client()
        .get(srv.url(SUC_JSON))
        .header("cookie", &cookie)
        .header("x-requested-with", "reportroot")
        .header("sec-fetch-site", "same-origin")
        .header("origin", &srv.base)
        .send()
        .await
        .expect("report");
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["value"][0]["exchangeActive"], 1);
    assert_eq!(v["value"][0]["exchangeInactive"], 1);
    // The CSV: the 302 to a signed link, which needs no credentials.
    let resp = srv
        .client()
        .get(srv.url("/v1.0/reports/getOffice365ServicesUserCounts(period='D7')"))
        .header("cookie", &cookie)
        .header("x-requested-with", "reportroot")
        .send()
        .await
        .expect("report");
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"]
        .to_str()
        .expect("loc")
        .to_string();
    let csv = srv.client().get(&location).send().await.expect("download");
    assert_eq!(csv.status().as_u16(), 200);
    assert!(String::from_utf8_lossy(&csv.bytes().await.expect("csv")).contains("2026-10-31,1,1,"));
    // The session is the tenant's own: the report is tenant A's, whatever else exists.
    seed(&srv, TENANT_B).await;
    let session: Value = srv
        .client()
        .get(srv.url("/session"))
        .header("cookie", &cookie)
        .header("x-requested-with", "reportroot")
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["tenantId"], TENANT_A);
    assert_eq!(session["signedIn"], true);
}

#[tokio::test]
async fn cross_site_requests_cannot_use_the_cookie() {
    let srv = TestServer::start().await;
    seed(&srv, TENANT_A).await;
    let cookie = signed_in_cookie(&srv, TENANT_A).await;
    let cases: [(&str, &[(&str, &str)]); 5] = [
        ("no X-Requested-With", &[]),
        (
            "foreign Origin",
            &[
                ("x-requested-with", "reportroot"),
                ("origin", "http://evil.example"),
            ],
        ),
        (
            "null Origin",
            &[("x-requested-with", "reportroot"), ("origin", "null")],
        ),
        (
            "Sec-Fetch-Site cross-site",
            &[
                ("x-requested-with", "reportroot"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        (
            "Sec-Fetch-Site same-site",
            &[
                ("x-requested-with", "reportroot"),
                ("sec-fetch-site", "same-site"),
            ],
        ),
    ];
    for (what, headers) in cases {
        let mut req = srv
            .client()
            .get(srv.url(SUC_JSON))
            .header("cookie", &cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (status, code, message) = error_code(req.send().await.expect("report")).await;
        assert_eq!(status, 403, "{what}");
        assert_eq!(code, "S2SUnauthorized", "{what}");
        assert!(message.contains("Request refused"), "{what}: {message}");
    }
    // A cross-site form post cannot start a session either.
    let resp = srv
        .client()
        .post(srv.url("/signin"))
        .header("origin", "http://evil.example")
        .json(&json!({"code": code_for(&srv, TENANT_A, now() + 600)}))
        .send()
        .await
        .expect("signin");
    assert_eq!(resp.status().as_u16(), 403);
    // A bearer token is unaffected by the rule (other clients send no such header).
    let resp = srv
        .client()
        .get(srv.url(SUC_JSON))
        .bearer_auth(srv.reader(TENANT_A))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("report");
    assert_eq!(resp.status().as_u16(), 200);
    // The session cannot ingest: ingest reads the Authorization header only.
    let resp = srv
        .client()
        .post(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/ingest")))
        .header("cookie", &cookie)
        .header("x-requested-with", "reportroot")
        .body("{\"type\":\"refresh\",\"date\":\"2026-11-01\"}\n")
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn a_pasted_token_signs_in_when_it_may_read_reports() {
    let srv = TestServer::start().await;
    let resp = post_signin(&srv, json!({"token": srv.reader(TENANT_B)})).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(set_cookie(&resp).contains("HttpOnly"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["tenantId"], TENANT_B);

    let (status, code, _) = error_code(
        post_signin(
            &srv,
            json!({"token": srv.app_token(TENANT_B, &[WRITE_ROLE])}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "S2SUnauthorized"));
    let (status, code, _) =
        error_code(post_signin(&srv, json!({"token": "not.a.token"})).await).await;
    assert_eq!((status, code.as_str()), (401, "InvalidAuthenticationToken"));
    let (status, code, _) = error_code(post_signin(&srv, json!({"nothing": 1})).await).await;
    assert_eq!((status, code.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn sign_out_clears_the_cookie_and_a_bad_cookie_is_a_401() {
    let srv = TestServer::start().await;
    let cookie = signed_in_cookie(&srv, TENANT_A).await;
    let resp = srv
        .client()
        .post(srv.url("/signout"))
        .header("cookie", &cookie)
        .header("x-requested-with", "reportroot")
        .send()
        .await
        .expect("signout");
    assert_eq!(resp.status().as_u16(), 200);
    let cleared = set_cookie(&resp);
    assert!(cleared.starts_with("reportroot_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0") && cleared.contains("HttpOnly"));
    // Without it the page is signed out.
    let v: Value = srv
        .client()
        .get(srv.url("/session"))
        .header("x-requested-with", "reportroot")
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(v["signedIn"], false);
    // A tampered or expired session token is refused with 401.
    let expired = srv.sign_claims(&json!({
        "aud": "https://graph.microsoft.com",
        "iss": srv.issuer(TENANT_A),
        "tid": TENANT_A,
        "roles": [READ_ROLE],
        "iat": now() - 7200,
        "nbf": now() - 7200,
        "exp": now() - 3600,
    }));
    for bad in [
        format!("{cookie}x"),
        format!("reportroot_session={expired}"),
    ] {
        let (status, code, message) = error_code(
            srv.client()
                .get(srv.url(SUC_JSON))
                .header("cookie", &bad)
                .header("x-requested-with", "reportroot")
                .send()
                .await
                .expect("report"),
        )
        .await;
        assert_eq!((status, code.as_str()), (401, "InvalidAuthenticationToken"));
        assert!(message.contains("Sign in again"), "{message}");
    }
}

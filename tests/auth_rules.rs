//! Every authentication / authorization rule, table-style, for the report calls and for ingest.

mod common;
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{
    GLOBAL_ADMIN, PERSONAL_TENANT, READ_ROLE, REPORTS_READER, TENANT_A, TENANT_B, TestServer,
    WRITE_ROLE,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;

const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1"; // User Administrator: not allowed

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims like the server's own app tokens (valid for `tid`, reader role).
fn app_claims(srv: &TestServer, tid: &str, roles: &[&str]) -> Value {
    let n = now();
    json!({
        "aud": "https://graph.microsoft.com",
        "iss": srv.issuer(tid),
        "iat": n,
        "nbf": n,
        "exp": n + 3600,
        "tid": tid,
        "ver": "2.0",
        "idtyp": "app",
        "appid": "11111111-2222-3333-4444-555555555555",
        "azp": "11111111-2222-3333-4444-555555555555",
        "oid": "66666666-7777-8888-9999-000000000000",
        "sub": "66666666-7777-8888-9999-000000000000",
        "roles": roles,
    })
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn server_kid(srv: &TestServer) -> String {
    jsonwebtoken::decode_header(srv.reader(TENANT_A))
        .expect("server token header")
        .kid
        .expect("server tokens carry a kid")
}

fn hs256_with_public_key(srv: &TestServer, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(server_kid(srv));
    let pem = srv.public_key_pem();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(pem.as_bytes())).unwrap()
}

fn signed_by_other_key(srv: &TestServer, claims: &Value) -> String {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(server_kid(srv));
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn alg_none(header: Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A valid token whose payload is swapped for another one, keeping the original signature.
fn tampered_payload(srv: &TestServer, tid: &str) -> String {
    let good = srv.app_token(tid, &["User.Read.All"]);
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!([READ_ROLE]);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}

enum Want {
    Ok,
    Err(u16, &'static str),
}

async fn check_report(srv: &TestServer, path: &str, name: &str, auth: Option<String>, want: &Want) {
    let mut req = srv.client().get(srv.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let ctx = format!("{name} on {path}");
    match want {
        Want::Ok => {
            let status = resp.status().as_u16();
            let text_or_loc = header(&resp, "location").unwrap_or_default();
            let body = resp.text().await.unwrap_or_default();
            let ok = if path.contains("$format=application/json") {
                200
            } else {
                302
            };
            assert_eq!(
                status, ok,
                "{ctx}: should be accepted ({text_or_loc} {body})"
            );
        }
        Want::Err(status, code) => {
            let err = expect_error(resp, *status, code, &ctx).await;
            assert!(
                !err.to_string().contains("Report Refresh Date"),
                "{ctx}: leaks data"
            );
        }
    }
}

#[tokio::test]
async fn report_auth_table() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    let a = |t: String| Some(format!("Bearer {t}"));
    let base = app_claims(&srv, TENANT_A, &[READ_ROLE]);
    let n = now();
    let kid = server_kid(&srv);

    const C401: Want = Want::Err(401, "InvalidAuthenticationToken");
    const C403: Want = Want::Err(403, "S2SUnauthorized");
    let table: Vec<(&str, Option<String>, Want)> = vec![
        // ---- accepted ----
        ("app reader", a(srv.reader(TENANT_A)), Want::Ok),
        (
            "app with several roles",
            a(srv.app_token(TENANT_A, &["User.Read.All", READ_ROLE])),
            Want::Ok,
        ),
        (
            "hand-built claims signed by the server",
            a(srv.sign_claims(&base)),
            Want::Ok,
        ),
        (
            "delegated global admin",
            a(srv.user_token(TENANT_A, &[READ_ROLE], &[GLOBAL_ADMIN])),
            Want::Ok,
        ),
        (
            "delegated, scope among others",
            a(srv.user_token(
                TENANT_A,
                &["User.Read", READ_ROLE, "openid"],
                &[REPORTS_READER],
            )),
            Want::Ok,
        ),
        (
            "delegated, admin role among others",
            a(srv.user_token(TENANT_A, &[READ_ROLE], &[USER_ADMIN, REPORTS_READER])),
            Want::Ok,
        ),
        (
            "expired 30 s ago (inside 60 s leeway)",
            a(srv.sign_claims(&with(base.clone(), "exp", json!(n - 30)))),
            Want::Ok,
        ),
        (
            "nbf 30 s ahead (inside 60 s leeway)",
            a(srv.sign_claims(&with(base.clone(), "nbf", json!(n + 30)))),
            Want::Ok,
        ),
        // ---- 401 ----
        ("no Authorization", None, C401),
        ("empty bearer", Some("Bearer ".into()), C401),
        ("basic auth", Some("Basic dXNlcjpwYXNz".into()), C401),
        ("token without scheme", Some(srv.reader(TENANT_A)), C401),
        ("not a JWT", a("not-a-jwt".into()), C401),
        ("three garbage parts", a("abc.def.ghi".into()), C401),
        (
            "expired 120 s ago",
            a(srv.sign_claims(&with(base.clone(), "exp", json!(n - 120)))),
            C401,
        ),
        (
            "expired long ago",
            a(srv.sign_claims(&with(
                with(base.clone(), "exp", json!(n - 7200)),
                "nbf",
                json!(n - 10800),
            ))),
            C401,
        ),
        (
            "nbf 120 s ahead",
            a(srv.sign_claims(&with(base.clone(), "nbf", json!(n + 120)))),
            C401,
        ),
        (
            "issuer of another tenant",
            a(srv.sign_claims(&with(base.clone(), "iss", json!(srv.issuer(TENANT_B))))),
            C401,
        ),
        (
            "foreign issuer",
            a(srv.sign_claims(&with(
                base.clone(),
                "iss",
                json!(format!("https://login.evil.example/{TENANT_A}/v2.0")),
            ))),
            C401,
        ),
        (
            "wrong audience",
            a(srv.sign_claims(&with(base.clone(), "aud", json!("api://someone-else")))),
            C401,
        ),
        (
            "signed by another RSA key",
            a(signed_by_other_key(&srv, &base)),
            C401,
        ),
        (
            "HS256 keyed with the public key PEM",
            a(hs256_with_public_key(&srv, &base)),
            C401,
        ),
        (
            "alg none",
            a(alg_none(json!({"alg":"none","typ":"JWT"}), &base)),
            C401,
        ),
        (
            "alg none with the server kid",
            a(alg_none(json!({"alg":"none","typ":"JWT","kid":kid}), &base)),
            C401,
        ),
        (
            "payload swapped under a valid signature",
            a(tampered_payload(&srv, TENANT_A)),
            C401,
        ),
        (
            "truncated signature",
            a({
                let t = srv.reader(TENANT_A);
                t[..t.len() - 6].to_string()
            }),
            C401,
        ),
        // ---- 403 ----
        ("app without roles", a(srv.app_token(TENANT_A, &[])), C403),
        (
            "app with other roles only",
            a(srv.app_token(TENANT_A, &["User.Read.All", "Reports.Read"])),
            C403,
        ),
        (
            "app with the writer role only",
            a(srv.app_token(TENANT_A, &[WRITE_ROLE])),
            C403,
        ),
        (
            "delegated without admin role",
            a(srv.user_token(TENANT_A, &[READ_ROLE], &[])),
            C403,
        ),
        (
            "delegated with a non-report admin role",
            a(srv.user_token(TENANT_A, &[READ_ROLE], &[USER_ADMIN])),
            C403,
        ),
        (
            "delegated admin without the scope",
            a(srv.user_token(TENANT_A, &["User.Read"], &[GLOBAL_ADMIN])),
            C403,
        ),
        (
            "delegated admin with a look-alike scope",
            a(srv.user_token(TENANT_A, &["Reports.Read.AllX"], &[GLOBAL_ADMIN])),
            C403,
        ),
        (
            "delegated admin with no scopes",
            a(srv.user_token(TENANT_A, &[], &[GLOBAL_ADMIN])),
            C403,
        ),
        (
            "personal account tenant (app)",
            a(srv.app_token(PERSONAL_TENANT, &[READ_ROLE])),
            C403,
        ),
        (
            "personal account tenant (delegated)",
            a(srv.user_token(PERSONAL_TENANT, &[READ_ROLE], &[GLOBAL_ADMIN])),
            C403,
        ),
    ];

    let paths = [
        rpath("v1.0", AUC),
        suc_path("beta", "D7"),
        format!("{}?$format=application/json", suc_path("beta", "D30")),
        rpath("beta", LEGACY),
    ];
    let legacy_beta = rpath("beta", LEGACY);
    for (name, auth, want) in &table {
        for path in &paths {
            // The beta legacy endpoint answers 200 JSON when accepted.
            if *path == legacy_beta
                && let Want::Ok = want
            {
                let mut req = srv.client().get(srv.url(path));
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 200, "{name} on {path}");
                continue;
            }
            check_report(&srv, path, name, auth.clone(), want).await;
        }
    }
}

#[tokio::test]
async fn each_report_admin_role_is_accepted() {
    let srv = TestServer::start().await;
    for wid in ADMIN_ROLES {
        let tok = srv.user_token(TENANT_A, &[READ_ROLE], &[wid]);
        let resp = srv.get(&rpath("v1.0", AC), &tok).await;
        assert_eq!(resp.status().as_u16(), 302, "admin role {wid}");
        let resp = srv.get(&suc_path("v1.0", "D7"), &tok).await;
        assert_eq!(resp.status().as_u16(), 302, "admin role {wid}");
    }
}

#[tokio::test]
async fn if_none_match_does_not_bypass_auth() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    let path = rpath("v1.0", AUC);
    let resp = srv.get(&path, &srv.reader(TENANT_A)).await;
    let etag = header(&resp, "etag").expect("etag");
    for (what, auth) in [
        ("no token", None),
        ("no role", Some(srv.app_token(TENANT_A, &[]))),
    ] {
        let mut req = srv
            .client()
            .get(srv.url(&path))
            .header("if-none-match", &etag);
        if let Some(t) = &auth {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let want = if auth.is_none() {
            (401, "InvalidAuthenticationToken")
        } else {
            (403, "S2SUnauthorized")
        };
        expect_error(resp, want.0, want.1, what).await;
    }
}

#[tokio::test]
async fn tenant_is_the_tokens_tid() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    // A reader of tenant B sees none of A's data.
    assert_bytes(
        &srv.download(TENANT_B, &rpath("v1.0", AUC)).await,
        &header_only(AUC_HEADER),
        "tenant B reading",
    );
    // A delegated admin of A sees A's data.
    let tok = srv.user_token(TENANT_A, &[READ_ROLE], &[GLOBAL_ADMIN]);
    let resp = srv.get(&rpath("v1.0", AUC), &tok).await;
    assert_eq!(resp.status().as_u16(), 302);
    let loc = header(&resp, "location").unwrap();
    let body = srv
        .client()
        .get(loc)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_bytes(&body, &fixture_auc(), "delegated admin of A");
}

async fn post_ingest(
    srv: &TestServer,
    tid: &str,
    auth: Option<String>,
    body: &str,
) -> reqwest::Response {
    let mut req = srv
        .client()
        .post(srv.url(&format!("/admin/v1/tenants/{tid}/ingest")))
        .header("content-type", "application/x-ndjson")
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn ingest_auth_table() {
    let srv = TestServer::start().await;
    let a = |t: String| Some(format!("Bearer {t}"));
    let body = ndjson(&[
        user("w1"),
        product("w1", "WRITE TEST", "2024-01-01", None),
        refresh("2024-01-02"),
    ]);
    let n = now();
    let wbase = app_claims(&srv, TENANT_A, &[WRITE_ROLE]);

    let refused: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        (
            "no token",
            TENANT_A,
            None,
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "garbage token",
            TENANT_A,
            a("x.y.z".into()),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "expired writer",
            TENANT_A,
            a(srv.sign_claims(&with(wbase.clone(), "exp", json!(n - 600)))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "writer signed by another key",
            TENANT_A,
            a(signed_by_other_key(&srv, &wbase)),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "writer HS256 with public key",
            TENANT_A,
            a(hs256_with_public_key(&srv, &wbase)),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "writer wrong audience",
            TENANT_A,
            a(srv.sign_claims(&with(wbase.clone(), "aud", json!("api://other")))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "reader token",
            TENANT_A,
            a(srv.reader(TENANT_A)),
            403,
            "S2SUnauthorized",
        ),
        (
            "no roles",
            TENANT_A,
            a(srv.app_token(TENANT_A, &[])),
            403,
            "S2SUnauthorized",
        ),
        (
            "writer of another tenant",
            TENANT_A,
            a(srv.writer(TENANT_B)),
            403,
            "S2SUnauthorized",
        ),
        (
            "writer of A into B",
            TENANT_B,
            a(srv.writer(TENANT_A)),
            403,
            "S2SUnauthorized",
        ),
        (
            "delegated token with the write scope",
            TENANT_A,
            a(srv.user_token(TENANT_A, &[WRITE_ROLE], &[GLOBAL_ADMIN])),
            403,
            "S2SUnauthorized",
        ),
        (
            "personal account tenant writer",
            PERSONAL_TENANT,
            a(srv.writer(PERSONAL_TENANT)),
            403,
            "S2SUnauthorized",
        ),
    ];
    for (what, tid, auth, status, code) in refused {
        let resp = post_ingest(&srv, tid, auth, &body).await;
        expect_error(resp, status, code, what).await;
    }
    // Nothing of the refused batches is stored, in either tenant.
    for tid in [TENANT_A, TENANT_B] {
        assert_bytes(
            &srv.download(tid, &rpath("v1.0", AUC)).await,
            &header_only(AUC_HEADER),
            &format!("{tid} after refused ingests"),
        );
    }

    // Accepted: the writer of the path's tenant, also alongside other roles.
    let resp = post_ingest(&srv, TENANT_A, a(srv.writer(TENANT_A)), &body).await;
    assert_eq!(resp.status().as_u16(), 200, "writer of A");
    let resp = post_ingest(
        &srv,
        TENANT_B,
        a(srv.app_token(TENANT_B, &[READ_ROLE, WRITE_ROLE])),
        &body,
    )
    .await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "writer of B with several roles"
    );
    for tid in [TENANT_A, TENANT_B] {
        assert_bytes(
            &srv.download(tid, &rpath("v1.0", AUC)).await,
            &csv(&[AUC_HEADER, "2024-01-02,WRITE TEST,1,0,0"]),
            &format!("{tid} after accepted ingest"),
        );
    }
}

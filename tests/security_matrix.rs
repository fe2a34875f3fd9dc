//! The security test matrix: one row per attack or mistake, each with the status and Graph
//! code it must get, and no data. Prints the matrix (`-- --nocapture`) for RELIABILITY.md.

mod common;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{
    GLOBAL_ADMIN, PERSONAL_TENANT, READ_ROLE, TENANT_A, TENANT_B, TestServer, WRITE_ROLE,
};
use serde_json::{Value, json};
use support::{AC, expect_error, header};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(srv: &TestServer, tid: &str) -> Value {
    json!({
        "aud": "https://graph.microsoft.com", "iss": srv.issuer(tid), "tid": tid,
        "iat": now(), "nbf": now(), "exp": now() + 3600,
        "azp": "matrix-app", "appid": "matrix-app", "roles": [READ_ROLE],
    })
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn hs256_with_public_key(srv: &TestServer, c: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(srv.public_key_pem().as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        c,
        &key,
    )
    .unwrap()
}

fn other_key_rs256(c: &Value) -> String {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        c,
        &enc,
    )
    .unwrap()
}

fn alg_none(c: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(c.to_string())
    )
}

fn tampered(srv: &TestServer) -> String {
    let good = srv.reader(TENANT_A);
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    payload["tid"] = json!(TENANT_B);
    format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(payload.to_string()),
        parts[2]
    )
}

/// Re-signs nothing: swaps the tenant inside a download link's payload.
fn moved_link(link: &str) -> String {
    let (base, token) = link.rsplit_once('/').unwrap();
    let (p, sig) = token.split_once('.').unwrap();
    let payload = String::from_utf8(B64.decode(p).unwrap())
        .unwrap()
        .replace(TENANT_A, TENANT_B);
    format!("{base}/{}.{sig}", B64.encode(payload))
}

#[tokio::test]
async fn security_matrix() {
    let srv = TestServer::start_with(|c| c.link_ttl = Duration::from_secs(1)).await;
    // Each tenant has one product type of its own.
    for (tid, product) in [(TENANT_A, "ONLY-IN-A"), (TENANT_B, "ONLY-IN-B")] {
        let body = format!(
            "{{\"type\":\"user\",\"id\":\"u1\",\"userPrincipalName\":\"u1@x\",\"displayName\":\"U\"}}\n\
             {{\"type\":\"productAssignment\",\"userId\":\"u1\",\"productType\":\"{product}\",\"assignedDate\":\"2024-01-01\"}}\n\
             {{\"type\":\"refresh\",\"date\":\"2024-02-01\"}}\n"
        );
        assert_eq!(srv.ingest(tid, &body).await.status(), 200);
    }
    let path = format!("/v1.0/reports/{AC}");
    let base = claims(&srv, TENANT_A);
    let token_rows: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 401, "InvalidAuthenticationToken"),
        (
            "garbage token",
            Some("not.a.jwt".into()),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "expired (exp 120 s ago)",
            Some(srv.sign_claims(&with(base.clone(), "exp", json!(now() - 120)))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "not yet valid (nbf in 120 s)",
            Some(srv.sign_claims(&with(base.clone(), "nbf", json!(now() + 120)))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "expired 30 s ago: within the 60 s skew",
            Some(srv.sign_claims(&with(base.clone(), "exp", json!(now() - 30)))),
            302,
            "",
        ),
        (
            "wrong issuer",
            Some(srv.sign_claims(&with(
                base.clone(),
                "iss",
                json!("https://evil.example/t/v2.0"),
            ))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "wrong audience",
            Some(srv.sign_claims(&with(
                base.clone(),
                "aud",
                json!("https://management.azure.com"),
            ))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "alg none",
            Some(alg_none(&base)),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "HS256 signed with the public key",
            Some(hs256_with_public_key(&srv, &base)),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "RS256 signed with another key",
            Some(other_key_rs256(&base)),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "tampered payload (tid swapped)",
            Some(tampered(&srv)),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "app token without Reports.Read.All",
            Some(srv.app_token(TENANT_A, &["User.Read.All"])),
            403,
            "S2SUnauthorized",
        ),
        (
            "delegated without the scope",
            Some(srv.user_token(TENANT_A, &["User.Read"], &[GLOBAL_ADMIN])),
            403,
            "S2SUnauthorized",
        ),
        (
            "delegated without an admin role",
            Some(srv.user_token(TENANT_A, &[READ_ROLE], &[])),
            403,
            "S2SUnauthorized",
        ),
        (
            "personal-account tenant",
            Some(srv.sign_claims(&claims(&srv, PERSONAL_TENANT))),
            403,
            "S2SUnauthorized",
        ),
    ];
    let mut table = vec![("row".to_string(), "status".to_string(), "code".to_string())];
    for (row, token, status, code) in token_rows {
        let mut req = srv.client().get(srv.url(&path));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        if status == 302 {
            assert_eq!(resp.status(), 302, "{row}");
        } else {
            expect_error(resp, status, code, row).await;
        }
        table.push((row.to_string(), status.to_string(), code.to_string()));
    }

    // Tenant A's token reads A's data only: the tenant is always the token's.
    let a_csv = String::from_utf8(srv.download(TENANT_A, &path).await).unwrap();
    assert!(
        a_csv.contains("ONLY-IN-A") && !a_csv.contains("ONLY-IN-B"),
        "{a_csv}"
    );
    table.push((
        "tenant A's token on tenant B's data: sees A's rows only".into(),
        "302".into(),
        "".into(),
    ));

    // Download links.
    let resp = srv.get(&path, &srv.reader(TENANT_A)).await;
    let link = header(&resp, "location").unwrap();
    let mut chars: Vec<char> = link.chars().collect();
    let last = chars.len() - 2;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    for (row, url) in [
        ("download link tampered (signature)", flipped),
        (
            "download link moved to another tenant's report",
            moved_link(&link),
        ),
        ("download link garbage", srv.url("/data/download/garbage")),
    ] {
        let resp = srv.client().get(&url).send().await.unwrap();
        let err = expect_error(resp, 403, "AccessDenied", row).await;
        assert!(!err.to_string().contains("ONLY-IN"), "{row}: no data");
        table.push((row.into(), "403".into(), "AccessDenied".into()));
    }
    assert_eq!(
        srv.client().get(&link).send().await.unwrap().status(),
        200,
        "the genuine link works"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let resp = srv.client().get(&link).send().await.unwrap();
    expect_error(resp, 403, "AccessDenied", "replayed after expiry").await;
    table.push((
        "download link replayed after expiry".into(),
        "403".into(),
        "AccessDenied".into(),
    ));

    // Ingest.
    let body = "{\"type\":\"refresh\",\"date\":\"2024-03-01\"}\n";
    for (row, token, tid) in [
        (
            "ingest with a reader token (no write role)",
            srv.reader(TENANT_A),
            TENANT_A,
        ),
        (
            "ingest with tenant A's writer token into tenant B",
            srv.writer(TENANT_A),
            TENANT_B,
        ),
        (
            "ingest with a delegated admin token",
            srv.user_token(TENANT_A, &[WRITE_ROLE, READ_ROLE], &[GLOBAL_ADMIN]),
            TENANT_A,
        ),
    ] {
        let resp = srv
            .client()
            .post(srv.url(&format!("/admin/v1/tenants/{tid}/ingest")))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(resp, 403, "S2SUnauthorized", row).await;
        table.push((row.into(), "403".into(), "S2SUnauthorized".into()));
    }
    // Nothing of the refused ingests landed: R is still 2024-02-01 in both tenants.
    for tid in [TENANT_A, TENANT_B] {
        let csv = String::from_utf8(srv.download(tid, &path).await).unwrap();
        assert!(csv.contains("\r\n2024-02-01,"), "{tid}: {csv}");
    }

    println!("| row | status | code |\n|---|---|---|");
    for (row, status, code) in table.iter().skip(1) {
        println!("| {row} | {status} | {code} |");
    }
    println!("{} rows", table.len() - 1);
}

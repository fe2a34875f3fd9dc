//! `--issuer` / `--jwks-file`: tokens of an external OpenID Connect issuer (here a key of the
//! test's own, standing in for Microsoft Entra ID) are accepted beside the built-in issuer,
//! and only with the key and algorithm its JWKS names.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{TENANT_A, TestServer};
use reportroot::auth::{ExternalIssuer, JwksSource};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::json;

const ISSUER: &str = "https://login.example.test/{tenantid}/v2.0";

fn sign(key_pem: &str, kid: &str, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test]
async fn external_issuer_tokens_are_accepted_with_their_own_keys_only() {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public = key.to_public_key();
    let jwks = json!({"keys": [{
        "kty": "RSA", "use": "sig", "kid": "ext-1", "alg": "RS256",
        "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be()),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let srv = TestServer::start_with(|c| {
        c.external_issuer = Some(ExternalIssuer {
            issuer: ISSUER.to_string(),
            jwks: JwksSource::File(jwks_path.clone()),
        })
    })
    .await;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER.replace("{tenantid}", TENANT_A), "aud": "https://graph.microsoft.com",
        "tid": TENANT_A, "roles": ["Reports.Read.All"], "azp": "entra-app", "iat": now, "nbf": now, "exp": now + 600,
    });
    let path = "/v1.0/reports/getOffice365ActivationCounts";
    let status = |token: String| {
        let srv = &srv;
        async move { srv.get(path, &token).await.status().as_u16() }
    };
    assert_eq!(
        status(sign(&pem, "ext-1", &claims)).await,
        302,
        "external token"
    );
    assert_eq!(
        status(srv.reader(TENANT_A)).await,
        302,
        "built-in tokens still work"
    );
    assert_eq!(
        status(sign(&pem, "ext-unknown", &claims)).await,
        401,
        "unknown kid"
    );
    let mut other_tenant = claims.clone();
    other_tenant["iss"] = json!(ISSUER.replace("{tenantid}", "someone-else"));
    assert_eq!(
        status(sign(&pem, "ext-1", &other_tenant)).await,
        401,
        "issuer must name the token's tid"
    );
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("ext-1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwks.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(status(hs).await, 401, "HS256 with the JWKS as secret");
    // The server's own URL is an audience for tokens of the built-in issuer only.
    let mut own_url = claims.clone();
    own_url["aud"] = json!(srv.base);
    assert_eq!(
        status(sign(&pem, "ext-1", &own_url)).await,
        401,
        "external token for the server's own URL"
    );
    let mut no_role = claims.clone();
    no_role["roles"] = json!([]);
    assert_eq!(
        status(sign(&pem, "ext-1", &no_role)).await,
        403,
        "external token without the role"
    );
}

//! Graph-style throttling (`--throttle`) and fault injection (`--chaos-rate`), end to end.

mod common;
mod support;

use std::time::Duration;

use common::{READ_ROLE, TENANT_A, TENANT_B, TestServer};
use reportroot::throttle::Limits;
use support::{AC, AUC, expect_error, header, suc_path};

fn limits(csv: u32, tenant: u32, json: u32) -> Limits {
    Limits {
        csv_per_app: Some(csv),
        csv_per_tenant: Some(tenant),
        json_per_app: Some(json),
    }
}

fn app(srv: &TestServer, tid: &str, client: &str) -> String {
    srv.authority
        .mint_app(
            tid,
            Some(client),
            &[READ_ROLE.to_string()],
            Duration::from_secs(600),
        )
        .unwrap()
}

async fn status(srv: &TestServer, path: &str, token: &str) -> u16 {
    srv.get(path, token).await.status().as_u16()
}

#[tokio::test]
async fn per_app_per_function_limit_with_retry_after() {
    let srv = TestServer::start_with(|c| c.throttle = limits(2, 100, 100)).await;
    let a = app(&srv, TENANT_A, "app-a");
    let ac = format!("/v1.0/reports/{AC}");
    assert_eq!(status(&srv, &ac, &a).await, 302);
    assert_eq!(status(&srv, &ac, &a).await, 302);
    let resp = srv.get(&ac, &a).await;
    let retry: u64 = header(&resp, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=600).contains(&retry), "Retry-After {retry}");
    expect_error(resp, 429, "TooManyRequests", "third call").await;

    // Periods of one function share a counter; other functions have their own.
    assert_eq!(status(&srv, &suc_path("v1.0", "D7"), &a).await, 302);
    assert_eq!(status(&srv, &suc_path("beta", "D30"), &a).await, 302);
    assert_eq!(status(&srv, &suc_path("v1.0", "D90"), &a).await, 429);
    assert_eq!(
        status(&srv, &format!("/v1.0/reports/{AUC}()"), &a).await,
        302
    );

    // Another app of the tenant, and the same app id in another tenant, are not affected.
    assert_eq!(status(&srv, &ac, &app(&srv, TENANT_A, "app-b")).await, 302);
    assert_eq!(status(&srv, &ac, &app(&srv, TENANT_B, "app-a")).await, 302);
}

#[tokio::test]
async fn downloads_and_refusals_do_not_count_and_tenant_limit_spans_apps() {
    let srv = TestServer::start_with(|c| c.throttle = limits(2, 3, 100)).await;
    let ac = format!("/v1.0/reports/{AC}");
    let a = app(&srv, TENANT_A, "app-a");
    let resp = srv.get(&ac, &a).await;
    let link = header(&resp, "location").unwrap();
    for _ in 0..10 {
        assert_eq!(srv.client().get(&link).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        status(&srv, &ac, &a).await,
        302,
        "downloads did not use up app-a's second call"
    );
    assert_eq!(status(&srv, &ac, &a).await, 429);
    assert_eq!(status(&srv, &ac, &a).await, 429);
    // The tenant allows 3: app-a used 2, so app-b gets one, then the tenant is full.
    let b = app(&srv, TENANT_A, "app-b");
    assert_eq!(
        status(&srv, &ac, &b).await,
        302,
        "app-a's 429s did not count"
    );
    assert_eq!(status(&srv, &ac, &b).await, 429);
    assert_eq!(status(&srv, &ac, &app(&srv, TENANT_A, "app-c")).await, 429);
}

#[tokio::test]
async fn json_calls_have_their_own_limit() {
    let srv = TestServer::start_with(|c| c.throttle = limits(1, 100, 2)).await;
    let a = app(&srv, TENANT_A, "app-a");
    let json = format!("/beta/reports/{AC}?$format=application/json");
    assert_eq!(status(&srv, &json, &a).await, 200);
    assert_eq!(status(&srv, &json, &a).await, 200);
    assert_eq!(status(&srv, &json, &a).await, 429);
    assert_eq!(
        status(&srv, &format!("/beta/reports/{AC}"), &a).await,
        302,
        "CSV counter untouched"
    );
    assert_eq!(status(&srv, &format!("/beta/reports/{AC}"), &a).await, 429);
}

#[tokio::test]
async fn graph_preset_allows_fourteen_csv_calls() {
    let srv = TestServer::start_with(|c| c.throttle = "graph".parse().unwrap()).await;
    let a = app(&srv, TENANT_A, "app-a");
    let ac = format!("/v1.0/reports/{AC}");
    for i in 0..14 {
        assert_eq!(status(&srv, &ac, &a).await, 302, "call {}", i + 1);
    }
    assert_eq!(status(&srv, &ac, &a).await, 429, "call 15");
}

#[tokio::test]
async fn throttling_is_off_by_default() {
    let srv = TestServer::start().await;
    let a = app(&srv, TENANT_A, "app-a");
    for _ in 0..30 {
        assert_eq!(status(&srv, &format!("/v1.0/reports/{AC}"), &a).await, 302);
    }
}

#[tokio::test]
async fn chaos_answers_in_graph_shape_with_retry_after() {
    let srv = TestServer::start_with(|c| {
        c.chaos = Some(reportroot::api::Chaos {
            rate: 1.0,
            codes: vec![503],
        })
    })
    .await;
    let token = srv.reader(TENANT_A);
    let resp = srv
        .client()
        .get(srv.url(&format!("/v1.0/reports/{AC}")))
        .bearer_auth(&token)
        .header("client-request-id", "my-retry-test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "client-request-id").as_deref(),
        Some("my-retry-test")
    );
    let retry: u64 = header(&resp, "retry-after")
        .expect("Retry-After on 503")
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry));
    let err = expect_error(resp, 503, "ServiceNotAvailable", "chaos 503").await;
    assert_eq!(err["innerError"]["client-request-id"], "my-retry-test");
    // Ingest and operations are never disturbed.
    assert_eq!(
        srv.ingest(TENANT_A, "{\"type\":\"refresh\",\"date\":\"2024-01-01\"}\n")
            .await
            .status(),
        200
    );
    assert_eq!(
        srv.client()
            .get(srv.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let srv = TestServer::start_with(|c| {
        c.chaos = Some(reportroot::api::Chaos {
            rate: 1.0,
            codes: vec![500],
        })
    })
    .await;
    let resp = srv
        .get(&format!("/v1.0/reports/{AC}"), &srv.reader(TENANT_A))
        .await;
    assert!(header(&resp, "retry-after").is_none());
    expect_error(resp, 500, "InternalServerError", "chaos 500").await;
}

#[tokio::test]
async fn chaos_rate_is_a_share() {
    let srv = TestServer::start_with(|c| {
        c.chaos = Some(reportroot::api::Chaos {
            rate: 0.5,
            codes: vec![429],
        })
    })
    .await;
    let token = srv.reader(TENANT_A);
    let mut faults = 0;
    for _ in 0..200 {
        if status(&srv, &format!("/v1.0/reports/{AC}"), &token).await == 429 {
            faults += 1;
        }
    }
    // Binomial(200, 0.5): outside 60..140 with probability below 1e-8.
    assert!((60..140).contains(&faults), "{faults} of 200");
}

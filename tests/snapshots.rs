//! Restarts read the snapshot written at shutdown, and never trust a stale or damaged one:
//! the store stays the source of truth.

mod common;

use common::{TENANT_A, TestServer};

const D7: &str = "/v1.0/reports/getOffice365ServicesUserCounts(period='D7')";

fn batch(first: usize, n: usize) -> String {
    let mut s = String::new();
    for i in first..first + n {
        s.push_str(&format!(
            "{{\"type\":\"user\",\"id\":\"u{i}\",\"userPrincipalName\":\"u{i}@x\",\"displayName\":\"U\"}}\n\
             {{\"type\":\"serviceLicense\",\"userId\":\"u{i}\",\"service\":\"teams\",\"assignedDate\":\"2024-01-01\"}}\n\
             {{\"type\":\"activity\",\"userId\":\"u{i}\",\"service\":\"teams\",\"date\":\"2024-03-01\"}}\n"
        ));
    }
    s
}

async fn teams_active(srv: &TestServer) -> String {
    let body = srv.download(TENANT_A, D7).await;
    let text = String::from_utf8(body).unwrap();
    let row = text.lines().nth(1).unwrap().to_string();
    row.split(',').nth(11).unwrap().to_string()
}

#[tokio::test]
async fn stale_or_damaged_snapshots_are_ignored() {
    let srv = TestServer::start().await;
    assert_eq!(srv.ingest(TENANT_A, &batch(0, 3)).await.status(), 200);
    let dir = srv.stop().await;
    let snap = dir
        .path()
        .join("snapshots")
        .join(format!("{TENANT_A}.snap"));
    let v1 = std::fs::read(&snap).expect("a snapshot is written at shutdown");

    // The snapshot is used and right.
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(teams_active(&srv).await, "3");
    assert_eq!(srv.ingest(TENANT_A, &batch(3, 2)).await.status(), 200);
    let dir = srv.stop().await;

    // Put the older snapshot back: its version no longer matches the store, so it is ignored.
    std::fs::write(&snap, &v1).unwrap();
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(teams_active(&srv).await, "5");
    let dir = srv.stop().await;

    // A damaged snapshot is ignored too.
    let mut bad = std::fs::read(&snap).unwrap();
    let mid = bad.len() / 2;
    bad.truncate(mid);
    std::fs::write(&snap, &bad).unwrap();
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(teams_active(&srv).await, "5");
}

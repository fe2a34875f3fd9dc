//! Limits on input: each refusal is a clear error (in Graph's envelope where the request
//! reached the application), nothing is stored, and the server keeps serving.

mod common;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TENANT_A, TestServer};
use support::expect_error;

fn users(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"type\":\"user\",\"id\":\"u{i}\",\"userPrincipalName\":\"u{i}@x\",\"displayName\":\"U\"}}\n"))
        .collect()
}

async fn refused(srv: &TestServer, body: Vec<u8>, status: u16, code: &str, needle: &str) {
    let resp = srv
        .client()
        .post(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/ingest")))
        .bearer_auth(srv.writer(TENANT_A))
        .body(body)
        .send()
        .await
        .unwrap();
    let err = expect_error(resp, status, code, needle).await;
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

async fn nothing_stored(srv: &TestServer) {
    // A user defined by a refused batch is unknown to a later one.
    let resp = srv
        .ingest(TENANT_A, "{\"type\":\"activity\",\"userId\":\"u0\",\"service\":\"teams\",\"date\":\"2024-01-01\"}\n")
        .await;
    assert_eq!(resp.status(), 400, "u0 must not exist");
}

#[tokio::test]
async fn body_line_and_record_limits() {
    let srv = TestServer::start_with(|c| {
        c.max_body_bytes = 2_000;
        c.ingest_limits.max_line_bytes = 200;
        c.ingest_limits.max_records = 5;
    })
    .await;
    refused(
        &srv,
        users(40).into_bytes(),
        413,
        "RequestEntityTooLarge",
        "2000 bytes",
    )
    .await;
    let mut long = users(1);
    long.push_str(&format!(
        "{{\"type\":\"user\",\"id\":\"{}\"}}\n",
        "x".repeat(300)
    ));
    refused(&srv, long.into_bytes(), 400, "BadRequest", "line 2:").await;
    refused(
        &srv,
        users(6).into_bytes(),
        400,
        "BadRequest",
        "more than 5 records",
    )
    .await;
    nothing_stored(&srv).await;
    assert_eq!(
        srv.ingest(TENANT_A, &users(5)).await.status(),
        200,
        "at the limits is fine"
    );
}

#[tokio::test]
async fn malformed_lines_are_refused_naming_the_line() {
    let srv = TestServer::start().await;
    let mut bad_utf8 = users(2).into_bytes();
    bad_utf8.extend_from_slice(b"{\"type\":\"user\",\"id\":\"\xff\xfe\"}\n");
    refused(&srv, bad_utf8, 400, "BadRequest", "line 3: invalid UTF-8").await;
    let deep = format!(
        "{}{{\"type\":\"refresh\",\"date\":\"2024-01-01\",\"x\":{}{}}}\n",
        users(1),
        "[".repeat(129),
        "]".repeat(129)
    );
    refused(
        &srv,
        deep.into_bytes(),
        400,
        "BadRequest",
        "line 2: invalid JSON: nested deeper than 128",
    )
    .await;
    let ok_depth = format!(
        "{{\"type\":\"refresh\",\"date\":\"2024-01-01\",\"x\":{}{}}}\n",
        "[".repeat(120),
        "]".repeat(120)
    );
    for (line, needle) in [
        ("[1,2]", "not a JSON object"),
        ("\"user\"", "not a JSON object"),
        ("5", "not a JSON object"),
        ("{\"type\":", "invalid JSON"),
    ] {
        let body = format!("{}{line}\n", users(1));
        refused(
            &srv,
            body.into_bytes(),
            400,
            "BadRequest",
            &format!("line 2: {needle}"),
        )
        .await;
    }
    nothing_stored(&srv).await;
    assert_eq!(
        srv.ingest(TENANT_A, &ok_depth).await.status(),
        200,
        "128 levels are fine"
    );
}

/// Sends raw bytes and returns what the server answered (until it closes or 3 s pass).
fn raw(addr: &str, parts: &[&[u8]], pause: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        let _ = s.write_all(p);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let srv = TestServer::start_with(|c| c.connection.max_header_bytes = 8 * 1024).await;
    let addr = srv.base.trim_start_matches("http://").to_string();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = tokio::task::spawn_blocking(move || raw(&addr, &[big.as_bytes()], Duration::ZERO))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(
        srv.client()
            .get(srv.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn slow_bodies_time_out_with_408_and_slow_heads_are_dropped() {
    let srv = TestServer::start_with(|c| {
        c.connection.request_timeout = Duration::from_millis(700);
        c.connection.header_timeout = Duration::from_millis(700);
    })
    .await;
    let addr = srv.base.trim_start_matches("http://").to_string();
    let token = srv.writer(TENANT_A);
    let head = format!(
        "POST /admin/v1/tenants/{TENANT_A}/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n{{\"type\":"
    );
    let a = addr.clone();
    let answer = tokio::task::spawn_blocking(move || raw(&a, &[head.as_bytes()], Duration::ZERO))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"RequestTimeout\""), "{answer}");

    let started = std::time::Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        raw(&addr, &[b"GET /healthz HTTP/1.1\r\nHo"], Duration::ZERO)
    })
    .await
    .unwrap();
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "the idle head was dropped by the server"
    );
}

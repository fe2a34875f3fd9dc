//! The report endpoints: every seed endpoint and URL form, the 302 + signed download, exact CSV
//! bytes for the hand-worked fixture (see tests/support/mod.rs for the derivation), beta JSON
//! shapes and content negotiation, ETag/304, link expiry and tampering, request ids.

mod common;
mod support;

use std::time::Duration;

use common::{TENANT_A, TestServer};
use serde_json::json;
use support::*;

async fn start_with_fixture() -> TestServer {
    let srv = TestServer::start().await;
    let answer = ingest_ok(&srv, TENANT_A, &fixture()).await;
    assert_eq!(answer["refreshDate"], json!("2024-03-31"));
    srv
}

fn location(resp: &reqwest::Response) -> String {
    header(resp, "location").expect("location header")
}

/// The report call for `path` (reader token of tenant A), asserting a 302; returns the response.
async fn redirect(srv: &TestServer, path: &str) -> reqwest::Response {
    let resp = srv.get(path, &srv.reader(TENANT_A)).await;
    let status = resp.status().as_u16();
    if status != 302 {
        let text = resp.text().await.unwrap_or_default();
        panic!("{path}: expected 302, got {status}: {text}");
    }
    resp
}

#[tokio::test]
async fn empty_tenant_reports_are_header_row_only() {
    let srv = TestServer::start().await;
    for v in ["v1.0", "beta"] {
        assert_bytes(
            &srv.download(TENANT_A, &rpath(v, AUC)).await,
            &header_only(AUC_HEADER),
            &format!("{v} {AUC}"),
        );
        assert_bytes(
            &srv.download(TENANT_A, &rpath(v, AC)).await,
            &header_only(AC_HEADER),
            &format!("{v} {AC}"),
        );
        for p in ["D7", "D30", "D90", "D180"] {
            assert_bytes(
                &srv.download(TENANT_A, &suc_path(v, p)).await,
                &header_only(SUC_HEADER),
                &format!("{v} {SUC} {p}"),
            );
        }
    }
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", LEGACY)).await,
        &header_only(LEGACY_HEADER),
        "v1.0 legacy",
    );
    for (path, entity) in [
        (rpath("beta", AUC), "office365ActivationsUserCounts"),
        (rpath("beta", AC), "office365ActivationCounts"),
        (suc_path("beta", "D7"), "office365ServicesUserCounts"),
    ] {
        let value = beta_json(&srv, TENANT_A, &path, entity).await;
        assert_eq!(value, json!([]), "{path}: no data yet");
    }
    let resp = srv.get(&rpath("beta", LEGACY), &srv.reader(TENANT_A)).await;
    let value = json_answer(&srv, resp, "office365ActivationsUserCounts", "beta legacy").await;
    assert_eq!(value, json!([]), "beta legacy: no data yet");

    // Users alone (no product held or activated, no refresh) still give the header row alone.
    ingest_ok(&srv, TENANT_A, &[user("lonely")]).await;
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &header_only(AUC_HEADER),
        "users only",
    );
}

#[tokio::test]
async fn fixture_csv_bytes_are_exact_on_v1_and_beta() {
    let srv = start_with_fixture().await;
    for v in ["v1.0", "beta"] {
        assert_bytes(
            &srv.download(TENANT_A, &rpath(v, AUC)).await,
            &fixture_auc(),
            &format!("{v} {AUC}"),
        );
        assert_bytes(
            &srv.download(TENANT_A, &rpath(v, AC)).await,
            &fixture_ac(),
            &format!("{v} {AC}"),
        );
        for p in ["D7", "D30", "D90", "D180"] {
            assert_bytes(
                &srv.download(TENANT_A, &suc_path(v, p)).await,
                &fixture_suc(p),
                &format!("{v} {SUC} {p}"),
            );
        }
    }
}

#[tokio::test]
async fn csv_framing_bom_crlf_and_quoting() {
    let srv = start_with_fixture().await;
    let body = srv.download(TENANT_A, &rpath("v1.0", AUC)).await;
    assert!(body.starts_with(BOM), "starts with the UTF-8 BOM");
    assert!(
        body[3..].starts_with(b"Report Refresh Date,"),
        "header right after the BOM"
    );
    assert!(body.ends_with(b"\r\n"), "last line ends with CRLF");
    assert!(!body.ends_with(b"\r\n\r\n"), "no empty trailing line");
    for (i, b) in body.iter().enumerate() {
        if *b == b'\n' {
            assert!(i > 0 && body[i - 1] == b'\r', "bare LF at byte {i}");
        }
        if *b == b'\r' {
            assert_eq!(body.get(i + 1), Some(&b'\n'), "bare CR at byte {i}");
        }
    }
    let text = String::from_utf8(body[3..].to_vec()).expect("UTF-8");
    assert!(
        text.contains("\"OFFICE 365, PRO PLUS\""),
        "comma field quoted"
    );
    assert!(text.contains("\"VISIO \"\"PLAN 2\"\"\""), "quotes doubled");
    assert!(
        !text.contains("FUTURE ONLY")
            && !text.contains("DELETED ONLY")
            && !text.contains("REMOVED PRODUCT"),
        "rows only for products held or actively activated by existing users: {text}"
    );
}

#[tokio::test]
async fn beta_json_shapes_for_every_report() {
    let srv = start_with_fixture().await;
    let value = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", AUC),
        "office365ActivationsUserCounts",
    )
    .await;
    assert_eq!(value, fixture_auc_json(), "ActivationsUserCounts JSON");
    let value = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", AC),
        "office365ActivationCounts",
    )
    .await;
    assert_eq!(value, fixture_ac_json(), "ActivationCounts JSON");
    for p in ["D7", "D30", "D90", "D180"] {
        let value = beta_json(
            &srv,
            TENANT_A,
            &suc_path("beta", p),
            "office365ServicesUserCounts",
        )
        .await;
        // Exact equality: counts must be JSON integers (not 2.0 or "2"), reportPeriod a string.
        assert_eq!(value, fixture_suc_json(p), "ServicesUserCounts {p} JSON");
    }
    // Other URL forms work with $format too.
    let value = beta_json(
        &srv,
        TENANT_A,
        &format!("/beta/reports/microsoft.graph.{SUC}(period=%27D30%27)"),
        "office365ServicesUserCounts",
    )
    .await;
    assert_eq!(value, fixture_suc_json("D30"));
    let value = beta_json(
        &srv,
        TENANT_A,
        &format!("/beta/reports/{AC}()"),
        "office365ActivationCounts",
    )
    .await;
    assert_eq!(value, fixture_ac_json());
}

#[tokio::test]
async fn beta_format_and_accept_negotiation() {
    let srv = start_with_fixture().await;
    let tok = srv.reader(TENANT_A);
    let path = suc_path("beta", "D7");

    // $format=text/csv -> 302 to the CSV
    let resp = redirect(&srv, &format!("{path}?$format=text/csv")).await;
    let dl = srv.client().get(location(&resp)).send().await.unwrap();
    assert_eq!(dl.status().as_u16(), 200);
    assert_bytes(
        &dl.bytes().await.unwrap(),
        &fixture_suc("D7"),
        "$format=text/csv",
    );

    // no $format, no Accept -> 302
    redirect(&srv, &path).await;

    // Accept: application/json only -> 200 JSON
    for p in [path.clone(), rpath("beta", AUC)] {
        let resp = srv
            .client()
            .get(srv.url(&p))
            .bearer_auth(&tok)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let entity = if p.contains(SUC) {
            "office365ServicesUserCounts"
        } else {
            "office365ActivationsUserCounts"
        };
        let value = json_answer(&srv, resp, entity, &format!("Accept json {p}")).await;
        if p.contains(SUC) {
            assert_eq!(value, fixture_suc_json("D7"));
        } else {
            assert_eq!(value, fixture_auc_json());
        }
    }

    // What the Python SDK sends -> 302
    let resp = srv
        .client()
        .get(srv.url(&path))
        .bearer_auth(&tok)
        .header("accept", "application/octet-stream, application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        302,
        "Accept: application/octet-stream, application/json must redirect"
    );
    let dl = srv.client().get(location(&resp)).send().await.unwrap();
    assert_bytes(&dl.bytes().await.unwrap(), &fixture_suc("D7"), "SDK accept");
}

#[tokio::test]
async fn every_url_form_reaches_the_same_report() {
    let srv = start_with_fixture().await;
    for v in ["v1.0", "beta"] {
        for (name, want) in [(AUC, fixture_auc()), (AC, fixture_ac())] {
            for form in [
                name.to_string(),
                format!("{name}()"),
                format!("microsoft.graph.{name}"),
                format!("microsoft.graph.{name}()"),
                format!("{name}/"),
                format!("{name}()/"),
            ] {
                let path = rpath(v, &form);
                assert_bytes(&srv.download(TENANT_A, &path).await, &want, &path);
            }
        }
        for p in ["D7", "D30", "D90", "D180"] {
            let want = fixture_suc(p);
            for form in [
                format!("{SUC}(period='{p}')"),
                format!("{SUC}(period=%27{p}%27)"),
                format!("microsoft.graph.{SUC}(period='{p}')"),
                format!("microsoft.graph.{SUC}(period=%27{p}%27)"),
                format!("{SUC}(period='{p}')/"),
            ] {
                let path = rpath(v, &form);
                assert_bytes(&srv.download(TENANT_A, &path).await, &want, &path);
            }
        }
    }
}

#[tokio::test]
async fn redirect_and_download_properties() {
    let srv = start_with_fixture().await;
    for path in [
        rpath("v1.0", AUC),
        rpath("beta", AC),
        suc_path("v1.0", "D30"),
        rpath("v1.0", LEGACY),
    ] {
        let resp = redirect(&srv, &path).await;
        let ct = header(&resp, "content-type").unwrap_or_default();
        assert!(
            ct.starts_with("text/plain"),
            "{path}: 302 content-type {ct:?}"
        );
        let loc = location(&resp);
        assert!(
            loc.starts_with(&format!("{}/", srv.base)),
            "{path}: Location {loc:?} must be an absolute URL on {}",
            srv.base
        );
        let etag = header(&resp, "etag").unwrap_or_else(|| panic!("{path}: ETag on the 302"));
        assert!(
            etag.len() >= 3 && etag.starts_with('"') && etag.ends_with('"'),
            "{path}: quoted ETag, got {etag:?}"
        );
        assert!(
            header(&resp, "request-id").is_some(),
            "{path}: request-id on 302"
        );
        assert!(header(&resp, "date").is_some(), "{path}: Date on 302");

        // The download needs no Authorization header.
        let dl = srv.client().get(&loc).send().await.unwrap();
        assert_eq!(dl.status().as_u16(), 200, "{path}: download");
        let ct = header(&dl, "content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/octet-stream"),
            "{path}: download content-type {ct:?}"
        );
        let etag = header(&dl, "etag").unwrap_or_else(|| panic!("{path}: ETag on the download"));
        assert!(
            etag.len() >= 3 && etag.starts_with('"') && etag.ends_with('"'),
            "{path}: quoted download ETag, got {etag:?}"
        );
        assert!(
            header(&dl, "request-id").is_some(),
            "{path}: request-id on download"
        );
        assert!(header(&dl, "date").is_some(), "{path}: Date on download");
        let body = dl.bytes().await.unwrap();
        assert!(body.starts_with(BOM), "{path}: BOM");

        // The link can be used again within its lifetime.
        let again = srv.client().get(&loc).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 200, "{path}: second download");
        assert_eq!(again.bytes().await.unwrap(), body, "{path}: same bytes");
    }
}

#[tokio::test]
async fn legacy_endpoints_v1_csv_and_beta_json() {
    let srv = start_with_fixture().await;
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", LEGACY)).await,
        &fixture_legacy(),
        "v1.0 legacy 4-column CSV",
    );
    let resp = srv.get(&rpath("beta", LEGACY), &srv.reader(TENANT_A)).await;
    let value = json_answer(&srv, resp, "office365ActivationsUserCounts", "beta legacy").await;
    assert_eq!(
        value,
        fixture_legacy_json(),
        "beta legacy JSON (seed 003 shape)"
    );
}

#[tokio::test]
async fn bad_period_and_unknown_function() {
    let srv = start_with_fixture().await;
    let tok = srv.reader(TENANT_A);
    for v in ["v1.0", "beta"] {
        for path in [
            suc_path(v, "D8"),
            suc_path(v, "D0"),
            suc_path(v, "D365"),
            suc_path(v, ""),
            rpath(v, &format!("{SUC}(period=%27D8%27)")),
            rpath(v, SUC),
            rpath(v, &format!("{SUC}()")),
        ] {
            let resp = srv.get(&path, &tok).await;
            expect_error(resp, 400, "InvalidArgument", &path).await;
        }
        for path in [
            rpath(v, "getOffice365Nonsense"),
            rpath(v, "getOffice365Nonsense()"),
            rpath(v, "microsoft.graph.getSomethingElse(period='D7')"),
        ] {
            let resp = srv.get(&path, &tok).await;
            let err = expect_error(resp, 400, "BadRequest", &path).await;
            let msg = err["message"].as_str().unwrap();
            assert!(
                msg.contains("Resource not found for the segment"),
                "{path}: message {msg:?}"
            );
        }
    }
    // beta JSON with a bad period is an error too, not JSON data.
    let resp = srv
        .get(
            &format!("{}?$format=application/json", suc_path("beta", "D8")),
            &tok,
        )
        .await;
    expect_error(resp, 400, "InvalidArgument", "beta json D8").await;
}

#[tokio::test]
async fn etag_if_none_match_and_change_after_new_data() {
    let srv = start_with_fixture().await;
    let tok = srv.reader(TENANT_A);
    let path = rpath("v1.0", AUC);

    let r1 = redirect(&srv, &path).await;
    let etag1 = header(&r1, "etag").expect("etag");
    let r2 = redirect(&srv, &path).await;
    assert_eq!(
        header(&r2, "etag").as_deref(),
        Some(etag1.as_str()),
        "stable ETag"
    );

    let with_inm = |etag: String| {
        let c = srv.client();
        let url = srv.url(&path);
        let tok = tok.clone();
        async move {
            c.get(url)
                .bearer_auth(tok)
                .header("if-none-match", etag)
                .send()
                .await
                .unwrap()
        }
    };

    let resp = with_inm(etag1.clone()).await;
    assert_eq!(resp.status().as_u16(), 304, "matching If-None-Match");
    assert!(header(&resp, "request-id").is_some(), "request-id on 304");
    assert!(header(&resp, "date").is_some(), "Date on 304");
    assert!(resp.bytes().await.unwrap().is_empty(), "304 has no body");

    let resp = with_inm("\"not-the-etag\"".to_string()).await;
    assert_eq!(resp.status().as_u16(), 302, "non-matching If-None-Match");

    // SUC has its own ETag and honours If-None-Match as well.
    let sp = suc_path("v1.0", "D7");
    let r = redirect(&srv, &sp).await;
    let sucetag = header(&r, "etag").expect("etag");
    let resp = srv
        .client()
        .get(srv.url(&sp))
        .bearer_auth(&tok)
        .header("if-none-match", &sucetag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304, "SUC If-None-Match");

    // New data that changes the report: u9 now holds "access runtime" (Assigned 1 -> 2).
    ingest_ok(&srv, TENANT_A, &[product("u9", P_A, "2024-03-01", None)]).await;
    let r3 = redirect(&srv, &path).await;
    let etag3 = header(&r3, "etag").expect("etag");
    assert_ne!(etag3, etag1, "ETag must change when the report changes");
    let resp = with_inm(etag1.clone()).await;
    assert_eq!(resp.status().as_u16(), 302, "old ETag no longer matches");
    let dl = srv.client().get(location(&resp)).send().await.unwrap();
    let body = dl.bytes().await.unwrap();
    assert_bytes(
        &body,
        &csv(&[
            AUC_HEADER,
            "2024-03-31,MICROSOFT 365 APPS FOR ENTERPRISE,3,2,1",
            "2024-03-31,\"OFFICE 365, PRO PLUS\",2,1,1",
            "2024-03-31,PROJECT CLIENT,0,0,0",
            "2024-03-31,\"VISIO \"\"PLAN 2\"\"\",1,1,1",
            "2024-03-31,access runtime,2,0,0",
        ]),
        "after new data",
    );
    let resp = with_inm(etag3.clone()).await;
    assert_eq!(resp.status().as_u16(), 304, "new ETag matches");
}

#[tokio::test]
async fn download_link_expires_after_link_ttl() {
    let srv = TestServer::start_with(|cfg| cfg.link_ttl = Duration::from_secs(1)).await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    let path = rpath("v1.0", AUC);
    let fresh = location(&redirect(&srv, &path).await);
    let dl = srv.client().get(&fresh).send().await.unwrap();
    assert_eq!(dl.status().as_u16(), 200, "fresh link works");
    let loc = location(&redirect(&srv, &path).await);

    tokio::time::sleep(Duration::from_millis(2100)).await;

    for l in [&loc, &fresh] {
        let resp = srv.client().get(l.as_str()).send().await.unwrap();
        let err = expect_error(resp, 403, "AccessDenied", "expired link").await;
        assert!(
            !err.to_string().contains("Report Refresh Date"),
            "no data in the refusal"
        );
    }
}

#[tokio::test]
async fn default_link_ttl_is_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = reportroot::server::Config::new(dir.path().to_path_buf());
    assert_eq!(cfg.link_ttl, Duration::from_secs(300));
}

/// Replaces the character at `i` with a different URL-safe character.
fn flip_at(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = if b[i] == b'A' { b'Q' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[tokio::test]
async fn tampered_and_garbage_links_are_denied() {
    let srv = start_with_fixture().await;
    let loc = location(&redirect(&srv, &rpath("v1.0", AUC)).await);
    let (dir, last) = loc.rsplit_once('/').expect("a path");
    assert!(last.len() > 8, "link token {last:?}");
    let mid = dir.len() + 1 + last.len() / 2;
    let mut variants = vec![
        ("flip middle of token", flip_at(&loc, mid)),
        ("flip near the end", flip_at(&loc, loc.len() - 3)),
        ("flip near the start of token", flip_at(&loc, dir.len() + 2)),
        ("truncated", loc[..loc.len() - 4].to_string()),
        ("extended", format!("{loc}AAAA")),
        ("garbage token", format!("{dir}/garbage")),
        ("garbage with dot", format!("{dir}/Z2FyYmFnZQ.c2ln")),
    ];
    // A token from another server instance (different secret) is also garbage here.
    let other = TestServer::start().await;
    ingest_ok(&other, TENANT_A, &fixture()).await;
    let other_loc = location(
        &other
            .get(&rpath("v1.0", AUC), &other.reader(TENANT_A))
            .await,
    );
    let (_, other_token) = other_loc.rsplit_once('/').unwrap();
    variants.push(("other server's token", format!("{dir}/{other_token}")));

    for (what, url) in variants {
        let resp = srv.client().get(&url).send().await.unwrap();
        let err = expect_error(resp, 403, "AccessDenied", what).await;
        assert!(
            !err.to_string().contains("Report Refresh Date"),
            "{what}: no data in the refusal"
        );
    }
    // The untouched link still works.
    let dl = srv.client().get(&loc).send().await.unwrap();
    assert_eq!(dl.status().as_u16(), 200);
    assert_bytes(&dl.bytes().await.unwrap(), &fixture_auc(), "untouched link");
}

#[tokio::test]
async fn request_id_client_request_id_and_date_on_every_answer() {
    let srv = start_with_fixture().await;
    let tok = srv.reader(TENANT_A);
    let c = srv.client();
    let crid = "5f1c0b0e-7d1a-4c55-9a55-0123456789ab";

    let r302 = c
        .get(srv.url(&rpath("v1.0", AUC)))
        .bearer_auth(&tok)
        .header("client-request-id", crid)
        .send()
        .await
        .unwrap();
    assert_eq!(r302.status().as_u16(), 302);
    let loc = location(&r302);
    let etag = header(&r302, "etag").unwrap();

    let mut answers: Vec<(&str, reqwest::Response)> = vec![("302", r302)];
    answers.push((
        "download",
        c.get(&loc)
            .header("client-request-id", crid)
            .send()
            .await
            .unwrap(),
    ));
    answers.push((
        "304",
        c.get(srv.url(&rpath("v1.0", AUC)))
            .bearer_auth(&tok)
            .header("if-none-match", &etag)
            .header("client-request-id", crid)
            .send()
            .await
            .unwrap(),
    ));
    answers.push((
        "beta json",
        c.get(srv.url(&format!(
            "{}?$format=application/json",
            suc_path("beta", "D7")
        )))
        .bearer_auth(&tok)
        .header("client-request-id", crid)
        .send()
        .await
        .unwrap(),
    ));
    answers.push((
        "ingest 200",
        c.post(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/ingest")))
            .bearer_auth(srv.writer(TENANT_A))
            .header("content-type", "application/x-ndjson")
            .header("client-request-id", crid)
            .body(ndjson(&[user("rid-user")]))
            .send()
            .await
            .unwrap(),
    ));
    let expected_status = [302, 200, 304, 200, 200];
    let mut seen = std::collections::HashSet::new();
    for ((what, resp), want) in answers.into_iter().zip(expected_status) {
        assert_eq!(resp.status().as_u16(), want, "{what}: status");
        let rid = header(&resp, "request-id").unwrap_or_else(|| panic!("{what}: request-id"));
        assert!(!rid.is_empty(), "{what}: empty request-id");
        assert!(seen.insert(rid.clone()), "{what}: request-id {rid} reused");
        assert_eq!(
            header(&resp, "client-request-id").as_deref(),
            Some(crid),
            "{what}: client-request-id echoed"
        );
        assert!(header(&resp, "date").is_some(), "{what}: Date header");
    }

    // Error answers: same headers, and the envelope carries the ids.
    let errors: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "400 bad period",
            c.get(srv.url(&suc_path("v1.0", "D8"))).bearer_auth(&tok),
            400,
            "InvalidArgument",
        ),
        (
            "400 unknown function",
            c.get(srv.url(&rpath("v1.0", "getNothing")))
                .bearer_auth(&tok),
            400,
            "BadRequest",
        ),
        (
            "401 no token",
            c.get(srv.url(&rpath("v1.0", AUC))),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            "403 no role",
            c.get(srv.url(&rpath("v1.0", AUC)))
                .bearer_auth(srv.app_token(TENANT_A, &[])),
            403,
            "S2SUnauthorized",
        ),
        (
            "403 bad link",
            c.get(format!("{}x", loc)),
            403,
            "AccessDenied",
        ),
        (
            "400 ingest",
            c.post(srv.url(&format!("/admin/v1/tenants/{TENANT_A}/ingest")))
                .bearer_auth(srv.writer(TENANT_A))
                .header("content-type", "application/x-ndjson")
                .body("{\"type\":\"refresh\"}\n"),
            400,
            "BadRequest",
        ),
    ];
    for (what, req, status, code) in errors {
        let resp = req.header("client-request-id", crid).send().await.unwrap();
        assert_eq!(
            header(&resp, "client-request-id").as_deref(),
            Some(crid),
            "{what}: client-request-id echoed"
        );
        let err = expect_error(resp, status, code, what).await;
        assert_eq!(
            err["innerError"]["client-request-id"],
            json!(crid),
            "{what}: innerError.client-request-id"
        );
    }

    // Without a client-request-id the answer still carries a request-id.
    let resp = c
        .get(srv.url(&rpath("v1.0", AUC)))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert!(header(&resp, "request-id").is_some());
}

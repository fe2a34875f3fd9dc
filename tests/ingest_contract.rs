//! The ingest contract: validation errors naming line and field, batch atomicity, upsert keys,
//! refresh-date rules, tenant isolation, and persistence across a restart.

mod common;
mod support;

use common::{TENANT_A, TENANT_B, TestServer};
use serde_json::{Value, json};
use support::*;

/// POSTs raw NDJSON with a writer token, expects a 400 `BadRequest` whose message starts with
/// `line {line}:` and (when given) names `'{field}'`.
async fn expect_bad_line(
    srv: &TestServer,
    tid: &str,
    body: &str,
    line: usize,
    field: Option<&str>,
    ctx: &str,
) {
    let resp = srv.ingest(tid, body).await;
    let err = expect_error(resp, 400, "BadRequest", ctx).await;
    let msg = err["message"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with(&format!("line {line}:")),
        "{ctx}: message should start with 'line {line}:', got {msg:?}"
    );
    if let Some(f) = field {
        assert!(
            msg.contains(&format!("'{f}'")),
            "{ctx}: message should name field '{f}', got {msg:?}"
        );
    }
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

#[tokio::test]
async fn validation_errors_name_line_and_field() {
    let srv = TestServer::start().await;
    let lic = license("v1", "teams", "2024-01-01", None);
    let prod = product("v1", "VALIDATION", "2024-01-01", None);
    let act = activation(
        "v1",
        "VALIDATION",
        "dev",
        "windows",
        "2024-01-01",
        None,
        false,
    );
    let actv = activity("v1", "teams", "2024-01-01");
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "user missing id",
            without(user("x"), "id").to_string(),
            Some("id"),
        ),
        (
            "user id a number",
            with(user("x"), "id", json!(5)).to_string(),
            Some("id"),
        ),
        (
            "user missing userPrincipalName",
            without(user("x"), "userPrincipalName").to_string(),
            Some("userPrincipalName"),
        ),
        (
            "user bad deletedDate",
            with(user("x"), "deletedDate", json!("yesterday")).to_string(),
            Some("deletedDate"),
        ),
        (
            "license unknown service",
            with(lic.clone(), "service", json!("email")).to_string(),
            Some("service"),
        ),
        (
            "license removed before assigned",
            license("v1", "teams", "2024-02-02", Some("2024-02-01")).to_string(),
            Some("removedDate"),
        ),
        (
            "license impossible assignedDate",
            with(lic.clone(), "assignedDate", json!("2024-13-01")).to_string(),
            Some("assignedDate"),
        ),
        (
            "license missing assignedDate",
            without(lic.clone(), "assignedDate").to_string(),
            Some("assignedDate"),
        ),
        (
            "product missing productType",
            without(prod.clone(), "productType").to_string(),
            Some("productType"),
        ),
        (
            "product impossible removedDate",
            with(prod.clone(), "removedDate", json!("2024-02-30")).to_string(),
            Some("removedDate"),
        ),
        (
            "activation unknown platform",
            with(act.clone(), "platform", json!("linux")).to_string(),
            Some("platform"),
        ),
        (
            "activation sharedComputer not a boolean",
            with(act.clone(), "sharedComputer", json!("yes")).to_string(),
            Some("sharedComputer"),
        ),
        (
            "activation missing deviceId",
            without(act.clone(), "deviceId").to_string(),
            Some("deviceId"),
        ),
        (
            "activation US-style activatedDate",
            with(act.clone(), "activatedDate", json!("01/02/2024")).to_string(),
            Some("activatedDate"),
        ),
        (
            "activity unknown service",
            with(actv.clone(), "service", json!("email")).to_string(),
            Some("service"),
        ),
        (
            "activity bad date",
            with(actv.clone(), "date", json!("2024/01/05")).to_string(),
            Some("date"),
        ),
        (
            "refresh without date",
            json!({"type":"refresh"}).to_string(),
            Some("date"),
        ),
        (
            "userId never defined",
            product("ghost", "VALIDATION", "2024-01-01", None).to_string(),
            Some("userId"),
        ),
        (
            "activity of an undefined user",
            activity("ghost", "teams", "2024-01-01").to_string(),
            Some("userId"),
        ),
        (
            "unknown record type",
            json!({"type":"group","id":"g"}).to_string(),
            Some("type"),
        ),
        ("invalid JSON", "{\"type\":\"user\",".to_string(), None),
    ];
    for (what, bad, field) in cases {
        // line 1 defines v1; line 2 is bad; line 3 is fine.
        let body = format!("{}\n{}\n{}\n", user("v1"), bad, refresh("2024-01-02"));
        expect_bad_line(&srv, TENANT_A, &body, 2, field, what).await;
    }
    // A user defined only *later* in the batch does not count.
    let body = ndjson(&[
        user("v1"),
        user("v2"),
        product("v3", "VALIDATION", "2024-01-01", None),
        user("v3"),
    ]);
    expect_bad_line(
        &srv,
        TENANT_A,
        &body,
        3,
        Some("userId"),
        "forward reference",
    )
    .await;

    // None of those batches stored anything: v1 is still unknown, there is no refresh date.
    let body = ndjson(&[product("v1", "VALIDATION", "2024-01-01", None)]);
    expect_bad_line(
        &srv,
        TENANT_A,
        &body,
        1,
        Some("userId"),
        "v1 was never stored",
    )
    .await;
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &header_only(SUC_HEADER),
        "no refresh date stored",
    );
}

#[tokio::test]
async fn bad_line_5_of_10_stores_nothing() {
    let srv = TestServer::start().await;
    let mut batch = vec![
        user("a1"),                                                             // 1
        user("a2"),                                                             // 2
        product("a1", "ATOMIC", "2024-01-01", None),                            // 3
        license("a1", "exchange", "2024-01-01", None),                          // 4
        activity("a1", "email", "2024-03-01"),                                  // 5 (bad)
        activity("a1", "exchange", "2024-03-01"),                               // 6
        activation("a1", "ATOMIC", "k1", "windows", "2024-01-01", None, false), // 7
        product("a2", "ATOMIC", "2024-01-01", None),                            // 8
        license("a2", "teams", "2024-01-01", None),                             // 9
        refresh("2024-03-01"),                                                  // 10
    ];
    expect_bad_line(
        &srv,
        TENANT_A,
        &ndjson(&batch),
        5,
        Some("service"),
        "line 5 of 10",
    )
    .await;

    for path in [rpath("v1.0", AUC), rpath("v1.0", AC)] {
        let want = if path.ends_with(AUC) {
            AUC_HEADER
        } else {
            AC_HEADER
        };
        assert_bytes(
            &srv.download(TENANT_A, &path).await,
            &header_only(want),
            &path,
        );
    }
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &header_only(SUC_HEADER),
        "SUC after the failed batch",
    );
    let v = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", AUC),
        "office365ActivationsUserCounts",
    )
    .await;
    assert_eq!(v, json!([]));
    // Users of lines 1-2 were not stored either.
    expect_bad_line(
        &srv,
        TENANT_A,
        &ndjson(&[product("a1", "ATOMIC", "2024-01-01", None)]),
        1,
        Some("userId"),
        "a1 not stored",
    )
    .await;

    // The corrected batch goes in whole.
    batch[4] = activity("a1", "exchange", "2024-02-28");
    let answer = ingest_ok(&srv, TENANT_A, &batch).await;
    assert_eq!(answer, json!({"ingested": 10, "refreshDate": "2024-03-01"}));
    // ATOMIC: holders a1,a2 = 2; activated a1 (k1) = 1; shared 0.
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &csv(&[AUC_HEADER, "2024-03-01,ATOMIC,2,1,0"]),
        "AUC after the corrected batch",
    );
    // exchange: a1 licensed+active 1/0; teams: a2 licensed, no activity 0/1; O365 {a1,a2}: 1/1.
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &csv(&[SUC_HEADER, "2024-03-01,1,0,0,0,0,0,0,0,0,0,0,1,1,1,7"]),
        "SUC after the corrected batch",
    );

    // A failing batch on top of existing data changes nothing either.
    let before_auc = srv.download(TENANT_A, &rpath("v1.0", AUC)).await;
    let before_suc = srv.download(TENANT_A, &suc_path("v1.0", "D7")).await;
    let body = ndjson(&[
        user("a3"),
        product("a3", "ATOMIC", "2024-01-01", None),
        product("a1", "ATOMIC", "2024-01-01", Some("2024-01-15")),
        refresh("2024-04-30"),
        license("a3", "yammer", "2024-01-01", None),
        activation("a3", "ATOMIC", "k2", "beos", "2024-01-01", None, false),
    ]);
    expect_bad_line(&srv, TENANT_A, &body, 6, Some("platform"), "bad line 6").await;
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &before_auc,
        "AUC unchanged",
    );
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &before_suc,
        "SUC unchanged (refresh date too)",
    );
}

#[tokio::test]
async fn answer_counts_unknown_fields_and_null_refresh() {
    let srv = TestServer::start().await;
    let answer = ingest_ok(&srv, TENANT_A, &[user("n1"), user("n2")]).await;
    assert_eq!(answer, json!({"ingested": 2, "refreshDate": null}));

    let extra_user = with(
        with(user("n3"), "department", json!("Sales")),
        "manager",
        json!({"id": "boss", "tags": [1, 2, {"x": null}]}),
    );
    let extra_product = with(
        product("n3", "EXTRA FIELDS", "2024-01-01", None),
        "skuId",
        json!("c7df2760-2c81-4ef7-b578-5b5392b571df"),
    );
    let extra_refresh = with(refresh("2024-02-01"), "note", json!(true));
    let answer = ingest_ok(&srv, TENANT_A, &[extra_user, extra_product, extra_refresh]).await;
    assert_eq!(answer, json!({"ingested": 3, "refreshDate": "2024-02-01"}));
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &csv(&[AUC_HEADER, "2024-02-01,EXTRA FIELDS,1,0,0"]),
        "unknown fields ignored",
    );
    // A later batch without a refresh record reports the current R.
    let answer = ingest_ok(&srv, TENANT_A, &[user("n4")]).await;
    assert_eq!(answer, json!({"ingested": 1, "refreshDate": "2024-02-01"}));
}

#[tokio::test]
async fn later_records_replace_earlier_ones_by_key() {
    let srv = TestServer::start().await;
    // Batch 1 (same-batch replacements):
    //   x2's PX assignment is re-sent with a removal 02-01 -> not held.
    //   x1's activation dev1 is re-sent as windows+shared (was mac) -> 1 windows, shared.
    //   dev2 is a different key -> a second activation (ios).
    //   x2's exchange license re-sent with removal -> not licensed.
    //   x1's exchange activity sent three times -> counts once.
    ingest_ok(
        &srv,
        TENANT_A,
        &[
            user("x1"),
            user("x2"),
            user("x3"),
            product("x1", "PX", "2024-01-01", None),
            product("x2", "PX", "2024-01-01", None),
            product("x2", "PX", "2024-01-01", Some("2024-02-01")),
            activation("x1", "PX", "dev1", "mac", "2024-01-01", None, false),
            activation("x1", "PX", "dev1", "windows", "2024-01-01", None, true),
            activation("x1", "PX", "dev2", "ios", "2024-01-01", None, false),
            license("x1", "exchange", "2024-01-01", None),
            license("x2", "exchange", "2024-01-01", None),
            license("x2", "exchange", "2024-01-01", Some("2024-02-01")),
            license("x3", "exchange", "2024-01-01", None),
            activity("x1", "exchange", "2024-03-01"),
            activity("x1", "exchange", "2024-03-01"),
            activity("x1", "exchange", "2024-03-01"),
            refresh("2024-03-01"),
        ],
    )
    .await;
    // PX: holders {x1} = 1, activated 1, shared (dev1) 1.
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &csv(&[AUC_HEADER, "2024-03-01,PX,1,1,1"]),
        "AUC batch 1",
    );
    // PX: dev1 windows, dev2 ios.
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AC)).await,
        &csv(&[AC_HEADER, "2024-03-01,PX,1,0,0,1,0"]),
        "AC batch 1",
    );
    // exchange licensed {x1,x3}, active {x1}: 1/1 (not 3 active); O365 1/1.
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &csv(&[SUC_HEADER, "2024-03-01,1,1,0,0,0,0,0,0,0,0,0,0,1,1,7"]),
        "SUC batch 1",
    );

    // Batch 2 (replacements across batches):
    //   x3 re-sent as deleted 01-15 -> gone.
    //   x2's PX re-sent without removal -> held again.
    //   dev2 re-sent deactivated 02-01 -> inactive.
    //   the same activity again -> still counts once.
    ingest_ok(
        &srv,
        TENANT_A,
        &[
            user_deleted("x3", "2024-01-15"),
            product("x2", "PX", "2024-01-01", None),
            activation(
                "x1",
                "PX",
                "dev2",
                "ios",
                "2024-01-01",
                Some("2024-02-01"),
                false,
            ),
            activity("x1", "exchange", "2024-03-01"),
        ],
    )
    .await;
    // PX: holders {x1,x2} = 2, activated {x1} = 1, shared 1.
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &csv(&[AUC_HEADER, "2024-03-01,PX,2,1,1"]),
        "AUC batch 2",
    );
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AC)).await,
        &csv(&[AC_HEADER, "2024-03-01,PX,1,0,0,0,0"]),
        "AC batch 2",
    );
    // exchange licensed {x1} (x2 removed, x3 gone): 1/0; O365 1/0.
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &csv(&[SUC_HEADER, "2024-03-01,1,0,0,0,0,0,0,0,0,0,0,0,1,0,7"]),
        "SUC batch 2",
    );

    // Batch 3: x3 restored (deletedDate null); its exchange license was kept -> 1/1 again.
    ingest_ok(&srv, TENANT_A, &[user("x3")]).await;
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &csv(&[SUC_HEADER, "2024-03-01,1,1,0,0,0,0,0,0,0,0,0,0,1,1,7"]),
        "SUC batch 3",
    );
}

#[tokio::test]
async fn refresh_date_rules() {
    let srv = TestServer::start().await;

    // Tenant A: no refresh record -> R is the latest activity date ingested.
    let answer = ingest_ok(
        &srv,
        TENANT_A,
        &[
            user("r1"),
            license("r1", "exchange", "2024-01-01", None),
            activity("r1", "exchange", "2024-02-12"),
            activity("r1", "exchange", "2024-02-10"),
        ],
    )
    .await;
    assert_eq!(answer["refreshDate"], json!("2024-02-12"));
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &csv(&[SUC_HEADER, "2024-02-12,1,0,0,0,0,0,0,0,0,0,0,0,1,0,7"]),
        "implicit R",
    );
    let answer = ingest_ok(&srv, TENANT_A, &[activity("r1", "exchange", "2024-02-20")]).await;
    assert_eq!(
        answer["refreshDate"],
        json!("2024-02-20"),
        "R follows the latest activity"
    );
    // An older activity does not move R back.
    let answer = ingest_ok(&srv, TENANT_A, &[activity("r1", "exchange", "2024-01-20")]).await;
    assert_eq!(answer["refreshDate"], json!("2024-02-20"));

    // Tenant B: explicit refresh records.
    let answer = ingest_ok(
        &srv,
        TENANT_B,
        &[
            user("s1"),
            license("s1", "teams", "2024-01-01", None),
            activity("s1", "teams", "2024-06-01"),
            refresh("2024-05-10"),
        ],
    )
    .await;
    assert_eq!(
        answer["refreshDate"],
        json!("2024-05-10"),
        "first refresh may set any date"
    );
    let answer = ingest_ok(&srv, TENANT_B, &[refresh("2024-05-10")]).await;
    assert_eq!(
        answer["refreshDate"],
        json!("2024-05-10"),
        "same date again is fine"
    );
    let answer = ingest_ok(&srv, TENANT_B, &[refresh("2024-05-12")]).await;
    assert_eq!(
        answer["refreshDate"],
        json!("2024-05-12"),
        "later date moves R"
    );

    // An earlier refresh is a bad line, and the batch stores nothing.
    let body = ndjson(&[user("s9"), refresh("2024-05-11")]);
    expect_bad_line(&srv, TENANT_B, &body, 2, Some("date"), "refresh before R").await;
    // In line order: line 1 raises R to 05-13, line 2 (05-12) is then earlier.
    let body = ndjson(&[refresh("2024-05-13"), refresh("2024-05-12")]);
    expect_bad_line(
        &srv,
        TENANT_B,
        &body,
        2,
        Some("date"),
        "refresh order in batch",
    )
    .await;
    // R unchanged by either refused batch; s9 not stored.
    let answer = ingest_ok(&srv, TENANT_B, &[user("s2")]).await;
    assert_eq!(answer["refreshDate"], json!("2024-05-12"));
    expect_bad_line(
        &srv,
        TENANT_B,
        &ndjson(&[license("s9", "teams", "2024-01-01", None)]),
        1,
        Some("userId"),
        "s9 not stored",
    )
    .await;

    // With an explicit R, activity after R neither moves R nor counts.
    let answer = ingest_ok(&srv, TENANT_B, &[activity("s1", "teams", "2024-06-02")]).await;
    assert_eq!(answer["refreshDate"], json!("2024-05-12"));
    // teams: s1 licensed, activity only after R -> 0/1; O365 0/1.
    assert_bytes(
        &srv.download(TENANT_B, &suc_path("v1.0", "D30")).await,
        &csv(&[SUC_HEADER, "2024-05-12,0,0,0,0,0,0,0,0,0,0,0,1,0,1,30"]),
        "explicit R",
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    // Tenant B reuses the user id "u1" for its own user.
    let answer = ingest_ok(
        &srv,
        TENANT_B,
        &[
            user("u1"),
            product("u1", "B ONLY PRODUCT", "2024-05-01", None),
            activation(
                "u1",
                "B ONLY PRODUCT",
                "bdev",
                "mac",
                "2024-05-02",
                None,
                true,
            ),
            license("u1", "teams", "2024-05-01", None),
            activity("u1", "teams", "2024-05-05"),
            refresh("2024-05-05"),
        ],
    )
    .await;
    assert_eq!(answer["refreshDate"], json!("2024-05-05"));

    assert_bytes(
        &srv.download(TENANT_B, &rpath("v1.0", AUC)).await,
        &csv(&[AUC_HEADER, "2024-05-05,B ONLY PRODUCT,1,1,1"]),
        "B AUC",
    );
    assert_bytes(
        &srv.download(TENANT_B, &rpath("v1.0", AC)).await,
        &csv(&[AC_HEADER, "2024-05-05,B ONLY PRODUCT,0,1,0,0,0"]),
        "B AC",
    );
    assert_bytes(
        &srv.download(TENANT_B, &suc_path("v1.0", "D7")).await,
        &csv(&[SUC_HEADER, "2024-05-05,0,0,0,0,0,0,0,0,0,0,1,0,1,0,7"]),
        "B SUC",
    );
    let v = beta_json(
        &srv,
        TENANT_B,
        &rpath("beta", AUC),
        "office365ActivationsUserCounts",
    )
    .await;
    assert_eq!(
        v,
        json!([{"reportRefreshDate":"2024-05-05","productType":"B ONLY PRODUCT","assigned":1,"activated":1,"sharedComputerActivation":1}])
    );

    // A is untouched by B.
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &fixture_auc(),
        "A AUC",
    );
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AC)).await,
        &fixture_ac(),
        "A AC",
    );
    assert_bytes(
        &srv.download(TENANT_A, &suc_path("v1.0", "D7")).await,
        &fixture_suc("D7"),
        "A SUC",
    );

    // Users of A do not exist in B.
    expect_bad_line(
        &srv,
        TENANT_B,
        &ndjson(&[product("u2", "B ONLY PRODUCT", "2024-05-01", None)]),
        1,
        Some("userId"),
        "A's user in B",
    )
    .await;
    // B's R is B's own: a refresh before A's R is fine for B only if not before B's R.
    expect_bad_line(
        &srv,
        TENANT_B,
        &ndjson(&[refresh("2024-04-01")]),
        1,
        Some("date"),
        "B's R is 2024-05-05",
    )
    .await;
    let answer = ingest_ok(&srv, TENANT_A, &[refresh("2024-04-01")]).await;
    assert_eq!(
        answer["refreshDate"],
        json!("2024-04-01"),
        "A's R is independent"
    );
}

#[tokio::test]
async fn data_survives_a_restart() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    ingest_ok(
        &srv,
        TENANT_B,
        &[
            user("b1"),
            product("b1", "B PROD", "2024-01-01", None),
            refresh("2024-01-02"),
        ],
    )
    .await;
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &fixture_auc(),
        "before",
    );

    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;

    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &fixture_auc(),
        "AUC after restart",
    );
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AC)).await,
        &fixture_ac(),
        "AC after restart",
    );
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", LEGACY)).await,
        &fixture_legacy(),
        "legacy after restart",
    );
    for p in ["D7", "D30", "D90", "D180"] {
        assert_bytes(
            &srv.download(TENANT_A, &suc_path("v1.0", p)).await,
            &fixture_suc(p),
            &format!("SUC {p} after restart"),
        );
    }
    assert_bytes(
        &srv.download(TENANT_B, &rpath("v1.0", AUC)).await,
        &csv(&[AUC_HEADER, "2024-01-02,B PROD,1,0,0"]),
        "B after restart",
    );
    // Users and R persisted: referencing u9 works, R is reported, an earlier refresh is refused.
    let answer = ingest_ok(&srv, TENANT_A, &[product("u9", P_A, "2024-03-01", None)]).await;
    assert_eq!(answer["refreshDate"], json!("2024-03-31"));
    expect_bad_line(
        &srv,
        TENANT_A,
        &ndjson(&[refresh("2024-03-30")]),
        1,
        Some("date"),
        "R persisted",
    )
    .await;
    assert_bytes(
        &srv.download(TENANT_A, &rpath("v1.0", AUC)).await,
        &csv(&[
            AUC_HEADER,
            "2024-03-31,MICROSOFT 365 APPS FOR ENTERPRISE,3,2,1",
            "2024-03-31,\"OFFICE 365, PRO PLUS\",2,1,1",
            "2024-03-31,PROJECT CLIENT,0,0,0",
            "2024-03-31,\"VISIO \"\"PLAN 2\"\"\",1,1,1",
            "2024-03-31,access runtime,2,0,0",
        ]),
        "after restart and new data",
    );

    // And a second restart keeps the post-restart ingest too.
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let body = srv.download(TENANT_A, &rpath("v1.0", AUC)).await;
    assert!(
        String::from_utf8_lossy(&body).contains("access runtime,2,0,0"),
        "second restart: {}",
        show(&body)
    );
}

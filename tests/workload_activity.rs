//! Email, OneDrive and SharePoint activity from `activityCounts` facts: the ten functions on a
//! hand-worked fixture, the ingest rules of the new record, and agreement with the core
//! reports (a non-zero counter is activity in the service).

mod common;
mod support;

use common::{TENANT_A, TestServer};
use serde_json::{Value, json};
use support::*;

fn counts(user: &str, workload: &str, date: &str, values: &[(&str, u64)]) -> Value {
    let mut v = json!({"type":"activityCounts","userId":user,"workload":workload,"date":date});
    for (k, n) in values {
        v[*k] = json!(n);
    }
    v
}

fn email(user: &str, date: &str, v: [u64; 5]) -> Value {
    counts(
        user,
        "exchange",
        date,
        &[
            ("send", v[0]),
            ("receive", v[1]),
            ("read", v[2]),
            ("meetingCreated", v[3]),
            ("meetingInteracted", v[4]),
        ],
    )
}

/// R = 2024-03-31. w3 is deleted on 2024-03-30 (listed as deleted in the period's detail,
/// left out of the daily reports); w4 holds no license but uses SharePoint.
fn fixture() -> Vec<Value> {
    vec![
        user("w1"),
        user("w2"),
        user_deleted("w3", "2024-03-30"),
        user("w4"),
        license("w1", "exchange", "2023-01-01", None),
        license("w1", "oneDrive", "2023-01-01", None),
        license("w2", "exchange", "2023-01-01", None),
        license("w3", "exchange", "2023-01-01", None),
        product("w1", "E5", "2023-01-01", None),
        email("w1", "2024-03-31", [2, 10, 5, 1, 0]),
        email("w1", "2024-03-30", [1, 3, 0, 0, 2]),
        // The same key again: this one replaces the line above.
        email("w1", "2024-03-30", [4, 3, 1, 0, 2]),
        email("w1", "2024-04-01", [50, 50, 50, 50, 50]),
        email("w2", "2024-03-25", [0, 7, 7, 0, 0]),
        email("w2", "2024-03-24", [9, 9, 9, 9, 9]),
        // All zero: a counted day, but no activity.
        email("w2", "2024-03-29", [0, 0, 0, 0, 0]),
        email("w3", "2024-03-31", [5, 5, 5, 0, 0]),
        counts(
            "w4",
            "sharePoint",
            "2024-03-31",
            &[
                ("viewedOrEdited", 3),
                ("sharedInternally", 1),
                ("visitedPages", 12),
            ],
        ),
        counts(
            "w1",
            "oneDrive",
            "2024-03-28",
            &[
                ("viewedOrEdited", 2),
                ("synced", 5),
                ("sharedExternally", 1),
            ],
        ),
        refresh("2024-03-31"),
    ]
}

async fn server() -> TestServer {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    set_concealed(&srv, TENANT_A, false).await;
    srv
}

/// The D7 rows of a daily report: `rows` for the days given, zeros elsewhere.
fn daily(header: &str, width: usize, rows: &[(&str, &str)]) -> Vec<u8> {
    let mut lines = vec![header.to_string()];
    for i in 0..7 {
        let day = format!("2024-03-{}", 31 - i);
        let values = rows
            .iter()
            .find(|(d, _)| *d == day)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| vec!["0"; width].join(","));
        lines.push(format!("2024-03-31,{values},{day},7"));
    }
    csv(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test]
async fn the_ten_functions_match_the_hand_worked_fixture() {
    let srv = server().await;
    let get = |f: &str| rpath("v1.0", &format!("{f}(period='D7')"));
    let email_h = "Report Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period";
    let file_h = "Report Refresh Date,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "getEmailActivityCounts",
            daily(
                email_h,
                5,
                &[
                    ("2024-03-31", "2,10,5,1,0"),
                    ("2024-03-30", "4,3,1,0,2"),
                    ("2024-03-25", "0,7,7,0,0"),
                ],
            ),
        ),
        (
            "getEmailActivityUserCounts",
            daily(
                email_h,
                5,
                &[
                    ("2024-03-31", "1,1,1,1,0"),
                    ("2024-03-30", "1,1,1,0,1"),
                    ("2024-03-25", "0,1,1,0,0"),
                ],
            ),
        ),
        (
            "getOneDriveActivityFileCounts",
            daily(file_h, 4, &[("2024-03-28", "2,5,0,1")]),
        ),
        (
            "getOneDriveActivityUserCounts",
            daily(file_h, 4, &[("2024-03-28", "1,1,0,1")]),
        ),
        (
            "getSharePointActivityFileCounts",
            daily(file_h, 4, &[("2024-03-31", "3,0,1,0")]),
        ),
        (
            "getSharePointActivityPages",
            daily(
                "Report Refresh Date,Visited Page Count,Report Date,Report Period",
                1,
                &[("2024-03-31", "12")],
            ),
        ),
        (
            "getSharePointActivityUserCounts",
            daily(
                "Report Refresh Date,Visited Page,Viewed Or Edited,Synced,Shared Internally,Shared Externally,Report Date,Report Period",
                5,
                &[("2024-03-31", "1,1,0,1,0")],
            ),
        ),
        (
            "getEmailActivityUserDetail",
            csv(&[
                "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,Send Count,Receive Count,Read Count,Meeting Created Count,Meeting Interacted Count,Assigned Products,Report Period",
                "2024-03-31,w1@contoso.example,User w1,False,,2024-03-31,6,13,6,1,2,E5,7",
                "2024-03-31,w2@contoso.example,User w2,False,,2024-03-25,0,7,7,0,0,,7",
                "2024-03-31,w3@contoso.example,User w3,True,2024-03-30,2024-03-31,5,5,5,0,0,,7",
            ]),
        ),
        (
            "getOneDriveActivityUserDetail",
            csv(&[
                "Report Refresh Date,User Principal Name,Is Deleted,Deleted Date,Last Activity Date,Viewed Or Edited File Count,Synced File Count,Shared Internally File Count,Shared Externally File Count,Assigned Products,Report Period",
                "2024-03-31,w1@contoso.example,False,,2024-03-28,2,5,0,1,E5,7",
            ]),
        ),
        (
            "getSharePointActivityUserDetail",
            csv(&[
                "Report Refresh Date,User Principal Name,Is Deleted,Deleted Date,Last Activity Date,Viewed Or Edited File Count,Synced File Count,Shared Internally File Count,Shared Externally File Count,Visited Page Count,Assigned Products,Report Period",
                "2024-03-31,w4@contoso.example,False,,2024-03-31,3,0,1,0,12,,7",
            ]),
        ),
    ];
    for (f, want) in &cases {
        assert_bytes(&srv.download(TENANT_A, &get(f)).await, want, f);
    }
    // D30 reaches w2's 2024-03-24.
    let d30 = srv
        .download(
            TENANT_A,
            &rpath("v1.0", "getEmailActivityUserDetail(period='D30')"),
        )
        .await;
    assert!(
        String::from_utf8_lossy(&d30).contains(
            "2024-03-31,w2@contoso.example,User w2,False,,2024-03-25,9,16,16,9,9,,30\r\n"
        )
    );
    // date=: the single day, Report Period 1.
    let one = srv
        .download(
            TENANT_A,
            &rpath("v1.0", "getEmailActivityUserDetail(date=2024-03-30)"),
        )
        .await;
    assert_bytes(
        &one,
        &csv(&[
            "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,Send Count,Receive Count,Read Count,Meeting Created Count,Meeting Interacted Count,Assigned Products,Report Period",
            "2024-03-30,w1@contoso.example,User w1,False,,2024-03-30,4,3,1,0,2,E5,1",
            "2024-03-30,w2@contoso.example,User w2,False,,2024-03-25,0,0,0,0,0,,1",
            "2024-03-30,w3@contoso.example,User w3,True,2024-03-30,,0,0,0,0,0,,1",
        ]),
        "date=2024-03-30",
    );
    let resp = srv
        .get(
            &rpath("v1.0", "getSharePointActivityUserDetail(date=2024-03-03)"),
            &srv.reader(TENANT_A),
        )
        .await;
    expect_error(resp, 400, "InvalidArgument", "R-28").await;
    // JSON names on beta.
    let v = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", "getEmailActivityUserDetail(period='D7')"),
        "emailActivityUserDetail",
    )
    .await;
    assert_eq!(v[0]["sendCount"], json!(6));
    assert_eq!(v[0]["assignedProducts"], json!(["E5"]));
    assert_eq!(v[0]["reportPeriod"], json!("7"));
    let v = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", "getSharePointActivityPages(period='D7')"),
        "sharePointActivityPages",
    )
    .await;
    assert_eq!(
        v[0],
        json!({"reportRefreshDate":"2024-03-31","visitedPageCount":12,"reportDate":"2024-03-31","reportPeriod":"7"})
    );
}

#[tokio::test]
async fn counters_are_activity_for_the_core_reports() {
    let srv = server().await;
    // Exchange D7: w1 and w2 licensed and active (w2's all-zero day is no activity; w3 is
    // gone); SharePoint: w4 active but unlicensed; OneDrive: w1.
    let got = srv.download(TENANT_A, &suc_path("v1.0", "D7")).await;
    assert_bytes(
        &got,
        &csv(&[SUC_HEADER, "2024-03-31,2,0,1,0,0,0,0,0,0,0,0,0,2,0,7"]),
        "services D7",
    );
    let detail = srv
        .download(
            TENANT_A,
            &rpath("v1.0", "getOffice365ActiveUserDetail(period='D7')"),
        )
        .await;
    let text = String::from_utf8_lossy(&detail);
    let w4 = text.lines().find(|l| l.contains("w4@")).expect("w4 listed");
    assert_eq!(
        w4.split(',').nth(13),
        Some("2024-03-31"),
        "SharePoint Last Activity Date from counters: {w4}"
    );
}

#[tokio::test]
async fn bad_counter_lines_reject_the_whole_batch() {
    let srv = TestServer::start().await;
    for (bad, field) in [
        (
            json!({"type":"activityCounts","userId":"x","workload":"teams","date":"2024-03-31"}),
            "workload",
        ),
        (
            json!({"type":"activityCounts","userId":"x","workload":"oneDrive","date":"2024-03-31","send":1}),
            "send",
        ),
        (
            json!({"type":"activityCounts","userId":"x","workload":"exchange","date":"2024-03-31","send":-1}),
            "send",
        ),
        (
            json!({"type":"activityCounts","userId":"x","workload":"exchange","date":"2024-03-31","read":"3"}),
            "read",
        ),
        (
            json!({"type":"activityCounts","userId":"x","workload":"exchange","date":"2024-03-31","read":1.5}),
            "read",
        ),
        (
            json!({"type":"activityCounts","userId":"x","workload":"exchange","date":"2024-03-31","read":4294967296u64}),
            "read",
        ),
        (
            json!({"type":"activityCounts","userId":"nobody","workload":"exchange","date":"2024-03-31"}),
            "userId",
        ),
        (
            json!({"type":"activityCounts","userId":"x","workload":"exchange"}),
            "date",
        ),
    ] {
        let body = ndjson(&[
            user("x"),
            email("x", "2024-03-30", [1, 1, 1, 1, 1]),
            bad.clone(),
        ]);
        let resp = srv.ingest(TENANT_A, &body).await;
        let err = expect_error(resp, 400, "BadRequest", &bad.to_string()).await;
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains("line 3") && msg.contains(&format!("'{field}'")),
            "{bad}: {msg}"
        );
    }
    // Nothing of the refused batches was kept.
    let got = srv
        .download(
            TENANT_A,
            &rpath("v1.0", "getEmailActivityCounts(period='D7')"),
        )
        .await;
    assert_bytes(
        &got,
        &header_only(
            "Report Refresh Date,Send,Receive,Read,Meeting Created,Meeting Interacted,Report Date,Report Period",
        ),
        "no data",
    );
}

#[tokio::test]
async fn counters_survive_a_restart() {
    let srv = server().await;
    let path = rpath("v1.0", "getEmailActivityUserDetail(period='D30')");
    let before = srv.download(TENANT_A, &path).await;
    let dir = srv.stop().await;
    // Once from the snapshot, once from the store alone.
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_bytes(
        &srv.download(TENANT_A, &path).await,
        &before,
        "after restart",
    );
    let dir = srv.stop().await;
    // PostgreSQL-backed servers keep no snapshot files: they always load from the store.
    if !common::postgres_mode() {
        std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    }
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_bytes(
        &srv.download(TENANT_A, &path).await,
        &before,
        "after restart without snapshots",
    );
}

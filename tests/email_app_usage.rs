//! Outlook email app usage from `emailClients` facts: the four functions on a hand-worked
//! fixture, and the ingest rules of the new record.

mod common;
mod support;

use common::{TENANT_A, TestServer};
use serde_json::{Value, json};
use support::*;

fn clients(user: &str, date: &str, apps: &[&str], version: Option<&str>) -> Value {
    json!({"type":"emailClients","userId":user,"date":date,"clients":apps,"outlookVersion":version})
}

/// R = 2024-03-31; e3 is deleted on 2024-03-30 (listed in the detail, not counted).
fn fixture() -> Vec<Value> {
    vec![
        user("e1"),
        user("e2"),
        user_deleted("e3", "2024-03-30"),
        license("e1", "exchange", "2023-01-01", None),
        clients(
            "e1",
            "2024-03-31",
            &["outlookForWindows", "outlookForWeb"],
            Some("2016"),
        ),
        clients("e1", "2024-03-30", &["outlookForMobile"], None),
        // The same key again: replaces the line above.
        clients(
            "e1",
            "2024-03-30",
            &["outlookForMobile", "smtpApp"],
            Some("M365"),
        ),
        clients("e2", "2024-03-25", &["imap4App"], Some("2019")),
        clients("e2", "2024-03-24", &["pop3App"], None),
        clients("e3", "2024-03-31", &["outlookForWindows"], Some("2007")),
        activity("e1", "exchange", "2024-03-31"),
        refresh("2024-03-31"),
    ]
}

const APPS: &str = "Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For Mobile,Other For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App";

#[tokio::test]
async fn the_four_functions_match_the_hand_worked_fixture() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    set_concealed(&srv, TENANT_A, false).await;
    let get = |f: &str, p: &str| rpath("v1.0", &format!("{f}(period='{p}')"));
    let h = format!("Report Refresh Date,{APPS},Report Period");
    assert_bytes(
        &srv.download(TENANT_A, &get("getEmailAppUsageAppsUserCounts", "D7"))
            .await,
        &csv(&[&h, "2024-03-31,0,0,1,1,0,1,0,1,1,7"]),
        "apps D7",
    );
    assert_bytes(
        &srv.download(TENANT_A, &get("getEmailAppUsageAppsUserCounts", "D30"))
            .await,
        &csv(&[&h, "2024-03-31,0,0,1,1,0,1,1,1,1,30"]),
        "apps D30",
    );
    let h = format!("Report Refresh Date,{APPS},Report Date,Report Period");
    let zero = "0,0,0,0,0,0,0,0,0";
    let mut lines = vec![h.clone()];
    for (day, v) in [
        ("31", "0,0,1,0,0,1,0,0,0"),
        ("30", "0,0,0,1,0,0,0,0,1"),
        ("29", zero),
        ("28", zero),
        ("27", zero),
        ("26", zero),
        ("25", "0,0,0,0,0,0,0,1,0"),
    ] {
        lines.push(format!("2024-03-31,{v},2024-03-{day},7"));
    }
    assert_bytes(
        &srv.download(TENANT_A, &get("getEmailAppUsageUserCounts", "D7"))
            .await,
        &csv(&lines.iter().map(String::as_str).collect::<Vec<_>>()),
        "daily",
    );
    assert_bytes(
        &srv.download(TENANT_A, &get("getEmailAppUsageVersionsUserCounts", "D7"))
            .await,
        &csv(&[
            "Report Refresh Date,Outlook 2016,Outlook 2013,Outlook 2010,Outlook 2007,Undetermined,Report Period,Outlook M365,Outlook 2019",
            "2024-03-31,1,0,0,0,0,7,1,1",
        ]),
        "versions",
    );
    let h = format!(
        "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,{APPS},Report Period"
    );
    assert_bytes(
        &srv.download(TENANT_A, &get("getEmailAppUsageUserDetail", "D7"))
            .await,
        &csv(&[
            &h,
            "2024-03-31,e1@contoso.example,User e1,False,,2024-03-31,,,Yes,Yes,,Yes,,,Yes,7",
            "2024-03-31,e2@contoso.example,User e2,False,,,,,,,,,,Yes,,7",
            "2024-03-31,e3@contoso.example,User e3,True,2024-03-30,,,,Yes,,,,,,,7",
        ]),
        "detail",
    );
    let v = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", "getEmailAppUsageVersionsUserCounts(period='D7')"),
        "emailAppUsageVersionsUserCounts",
    )
    .await;
    assert_eq!(
        v[0],
        json!({"reportRefreshDate":"2024-03-31","outlook2016":1,"outlook2013":0,"outlook2010":0,"outlook2007":0,"undetermined":0,"reportPeriod":"7","outlookM365":1,"outlook2019":1})
    );
    let dir = srv.stop().await;
    // PostgreSQL-backed servers keep no snapshot files: they always load from the store.
    if !common::postgres_mode() {
        std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    }
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_bytes(
        &srv.download(TENANT_A, &get("getEmailAppUsageAppsUserCounts", "D7"))
            .await,
        &csv(&[
            &format!("Report Refresh Date,{APPS},Report Period"),
            "2024-03-31,0,0,1,1,0,1,0,1,1,7",
        ]),
        "after restart",
    );
}

#[tokio::test]
async fn bad_client_lines_reject_the_whole_batch() {
    let srv = TestServer::start().await;
    for (bad, field) in [
        (
            clients("x", "2024-03-01", &["thunderbird"], None),
            "clients",
        ),
        (
            clients("x", "2024-03-01", &["outlookForWeb"], Some("2003")),
            "outlookVersion",
        ),
        (
            json!({"type":"emailClients","userId":"x","date":"2024-03-01","clients":"outlookForWeb"}),
            "clients",
        ),
        (
            json!({"type":"emailClients","userId":"x","date":"2024-03-01"}),
            "clients",
        ),
        (clients("nobody", "2024-03-01", &[], None), "userId"),
    ] {
        let body = ndjson(&[
            user("x"),
            clients("x", "2024-03-02", &["smtpApp"], None),
            bad.clone(),
        ]);
        let err = expect_error(
            srv.ingest(TENANT_A, &body).await,
            400,
            "BadRequest",
            &bad.to_string(),
        )
        .await;
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains("line 3") && msg.contains(&format!("'{field}'")),
            "{bad}: {msg}"
        );
    }
}

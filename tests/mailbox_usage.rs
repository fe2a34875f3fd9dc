//! Outlook mailbox usage from `mailbox` and `mailboxDay` facts: the four functions on a
//! hand-worked fixture, and the ingest rules of the new records.

mod common;
mod support;

use common::{TENANT_A, TestServer};
use serde_json::{Value, json};
use support::*;

fn mailbox(user: &str, created: &str, kind: &str, archive: bool) -> Value {
    json!({"type":"mailbox","userId":user,"createdDate":created,"deletedDate":null,"recipientType":kind,
           "issueWarningQuota":100,"prohibitSendQuota":200,"prohibitSendReceiveQuota":300,"deletedItemQuota":50,"hasArchive":archive})
}

fn day(user: &str, date: &str, items: u64, storage: u64, deleted: u64, deleted_size: u64) -> Value {
    json!({"type":"mailboxDay","userId":user,"date":date,"itemCount":items,"storageUsed":storage,"deletedItemCount":deleted,"deletedItemSize":deleted_size})
}

/// R = 2024-03-31. m2's mailbox is created inside D7; m3's user is deleted on 2024-03-29;
/// m5's mailbox is created after R; m4 has no mailbox. Quotas: warn 100, send 200, send and
/// receive 300.
fn fixture() -> Vec<Value> {
    vec![
        user("m1"),
        user("m2"),
        user_deleted("m3", "2024-03-29"),
        user("m4"),
        user("m5"),
        mailbox("m1", "2023-01-01", "user", true),
        mailbox("m2", "2024-03-28", "shared", false),
        mailbox("m3", "2023-01-01", "user", false),
        mailbox("m5", "2024-04-02", "user", false),
        day("m1", "2024-03-20", 9, 90, 1, 5),
        day("m1", "2024-03-30", 15, 150, 2, 10),
        day("m1", "2024-04-01", 99, 999, 9, 99),
        day("m2", "2024-03-29", 3, 310, 0, 0),
        // Exactly at the warning quota: Warning Issued.
        day("m3", "2024-03-25", 5, 100, 1, 1),
        activity("m1", "exchange", "2024-03-31"),
        activity("m2", "exchange", "2024-03-29"),
        activity("m3", "exchange", "2024-03-27"),
        refresh("2024-03-31"),
    ]
}

fn daily(header: &str, rows: &[&str]) -> Vec<u8> {
    let mut lines = vec![header.to_string()];
    for (i, values) in rows.iter().enumerate() {
        lines.push(format!("2024-03-31,{values},2024-03-{},7", 31 - i));
    }
    csv(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test]
async fn the_four_functions_match_the_hand_worked_fixture() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    set_concealed(&srv, TENANT_A, false).await;
    let get = |f: &str| rpath("v1.0", &format!("{f}(period='D7')"));
    let detail = csv(&[
        "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Created Date,Last Activity Date,Item Count,Storage Used (Byte),Issue Warning Quota (Byte),Prohibit Send Quota (Byte),Prohibit Send/Receive Quota (Byte),Deleted Item Count,Deleted Item Size (Byte),Deleted Item Quota (Byte),Has Archive,Report Period",
        "2024-03-31,m1@contoso.example,User m1,False,,2023-01-01,2024-03-31,15,150,100,200,300,2,10,50,True,7",
        "2024-03-31,m2@contoso.example,User m2,False,,2024-03-28,2024-03-29,3,310,100,200,300,0,0,50,False,7",
        "2024-03-31,m3@contoso.example,User m3,True,2024-03-29,2023-01-01,2024-03-27,5,100,100,200,300,1,1,50,False,7",
    ]);
    assert_bytes(
        &srv.download(TENANT_A, &get("getMailboxUsageDetail")).await,
        &detail,
        "detail",
    );
    let counts = daily(
        "Report Refresh Date,Total,Active,Report Date,Report Period",
        &["2,1", "2,0", "2,1", "3,0", "2,1", "2,0", "2,0"],
    );
    assert_bytes(
        &srv.download(TENANT_A, &get("getMailboxUsageMailboxCounts"))
            .await,
        &counts,
        "counts",
    );
    let quota = daily(
        "Report Refresh Date,Under Limit,Warning Issued,Send Prohibited,Send/Receive Prohibited,Indeterminate,Report Date,Report Period",
        &[
            "0,1,0,1,0",
            "0,1,0,1,0",
            "1,0,0,1,0",
            "1,1,0,0,1",
            "1,1,0,0,0",
            "1,1,0,0,0",
            "1,1,0,0,0",
        ],
    );
    assert_bytes(
        &srv.download(TENANT_A, &get("getMailboxUsageQuotaStatusMailboxCounts"))
            .await,
        &quota,
        "quota",
    );
    let storage = daily(
        "Report Refresh Date,Storage Used (Byte),Report Date,Report Period",
        &["460", "460", "400", "190", "190", "190", "190"],
    );
    assert_bytes(
        &srv.download(TENANT_A, &get("getMailboxUsageStorage")).await,
        &storage,
        "storage",
    );
    // Beta JSON names (note deletedItemQuota without InBytes, as Graph has it).
    let v = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", "getMailboxUsageDetail(period='D7')"),
        "mailboxUsageDetail",
    )
    .await;
    assert_eq!(v[0]["storageUsedInBytes"], json!(150));
    assert_eq!(v[0]["deletedItemQuota"], json!(50));
    assert_eq!(v[0]["hasArchive"], json!(true));
    // No date= for mailbox usage.
    let resp = srv
        .get(
            &rpath("v1.0", "getMailboxUsageDetail(date=2024-03-31)"),
            &srv.reader(TENANT_A),
        )
        .await;
    expect_error(resp, 400, "BadRequest", "date= on mailbox usage").await;
    // Survives a restart without snapshots (from the store's rows).
    let dir = srv.stop().await;
    // PostgreSQL-backed servers keep no snapshot files: they always load from the store.
    if !common::postgres_mode() {
        std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    }
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_bytes(
        &srv.download(TENANT_A, &get("getMailboxUsageQuotaStatusMailboxCounts"))
            .await,
        &quota,
        "quota after restart",
    );
}

#[tokio::test]
async fn bad_mailbox_lines_reject_the_whole_batch() {
    let srv = TestServer::start().await;
    let mut bad_deleted = mailbox("x", "2024-03-01", "user", false);
    bad_deleted["deletedDate"] = json!("2024-02-01");
    let mut no_quota = mailbox("x", "2024-03-01", "user", false);
    no_quota
        .as_object_mut()
        .unwrap()
        .remove("prohibitSendQuota");
    let mut bad_archive = mailbox("x", "2024-03-01", "user", false);
    bad_archive["hasArchive"] = json!("yes");
    let mut negative = day("x", "2024-03-02", 1, 1, 1, 1);
    negative["storageUsed"] = json!(-5);
    for (bad, field) in [
        (mailbox("x", "2024-03-01", "group", false), "recipientType"),
        (bad_deleted, "deletedDate"),
        (no_quota, "prohibitSendQuota"),
        (bad_archive, "hasArchive"),
        (negative, "storageUsed"),
        (day("nobody", "2024-03-02", 1, 1, 1, 1), "userId"),
    ] {
        let body = ndjson(&[user("x"), day("x", "2024-03-01", 1, 1, 1, 1), bad.clone()]);
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

//! OneDrive and SharePoint usage from `site` and `siteDay` facts: the nine functions on a
//! hand-worked fixture, and the ingest rules of the new records.

mod common;
mod support;

use common::{TENANT_A, TestServer};
use serde_json::{Value, json};
use support::*;

fn site(
    id: &str,
    kind: &str,
    owner: Option<&str>,
    template: &str,
    created: &str,
    deleted: Option<&str>,
) -> Value {
    json!({"type":"site","id":id,"kind":kind,"url":format!("https://x/{id}"),"ownerId":owner,"rootWebTemplate":template,"createdDate":created,"deletedDate":deleted})
}

/// A site's state: file count, active files, page views, visited pages, storage used and
/// allocated.
fn sday(id: &str, date: &str, v: [u64; 6]) -> Value {
    json!({"type":"siteDay","siteId":id,"date":date,"fileCount":v[0],"activeFileCount":v[1],"pageViewCount":v[2],"visitedPageCount":v[3],"storageUsed":v[4],"storageAllocated":v[5]})
}

/// R = 2024-03-31. od2 is deleted inside D7, sp2 long before it (inside D90); sp1 is
/// created inside D7; sp2 has no owner.
fn fixture() -> Vec<Value> {
    vec![
        user("s1"),
        user("s2"),
        site("od1", "oneDrive", Some("s1"), "SPSPERS", "2023-01-01", None),
        site(
            "od2",
            "oneDrive",
            Some("s2"),
            "SPSPERS",
            "2023-01-01",
            Some("2024-03-29"),
        ),
        site(
            "sp1",
            "sharePoint",
            Some("s1"),
            "GROUP#0",
            "2024-03-27",
            None,
        ),
        site(
            "sp2",
            "sharePoint",
            None,
            "STS#3",
            "2023-01-01",
            Some("2024-02-01"),
        ),
        sday("od1", "2024-03-20", [10, 2, 0, 0, 1000, 5000]),
        sday("od1", "2024-03-30", [12, 3, 0, 0, 1200, 5000]),
        sday("od1", "2024-03-31", [12, 0, 0, 0, 1200, 5000]),
        sday("od2", "2024-03-26", [4, 1, 0, 0, 400, 5000]),
        sday("sp1", "2024-03-28", [5, 0, 10, 4, 500, 9000]),
        sday("sp1", "2024-03-31", [6, 1, 0, 0, 600, 9000]),
        sday("sp2", "2024-01-15", [7, 7, 7, 7, 700, 9000]),
        refresh("2024-03-31"),
    ]
}

fn daily(header: &str, rows: &[&str]) -> Vec<u8> {
    let mut lines = vec![header.to_string()];
    for (i, values) in rows.iter().enumerate() {
        lines.push(format!("2024-03-31,All,{values},2024-03-{},7", 31 - i));
    }
    csv(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test]
async fn the_nine_functions_match_the_hand_worked_fixture() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    set_concealed(&srv, TENANT_A, false).await;
    let get = |f: &str| rpath("v1.0", &format!("{f}(period='D7')"));
    let totals = "Report Refresh Date,Site Type,Total,Active,Report Date,Report Period";
    let storage = "Report Refresh Date,Site Type,Storage Used (Byte),Report Date,Report Period";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "getOneDriveUsageAccountDetail",
            csv(&[
                "Report Refresh Date,Site URL,Owner Display Name,Is Deleted,Last Activity Date,File Count,Active File Count,Storage Used (Byte),Storage Allocated (Byte),Owner Principal Name,Report Period",
                "2024-03-31,https://x/od1,User s1,False,2024-03-30,12,3,1200,5000,s1@contoso.example,7",
                "2024-03-31,https://x/od2,User s2,True,2024-03-26,4,1,400,5000,s2@contoso.example,7",
            ]),
        ),
        (
            "getOneDriveUsageAccountCounts",
            daily(totals, &["1,0", "1,1", "1,0", "2,0", "2,0", "2,1", "2,0"]),
        ),
        (
            "getOneDriveUsageFileCounts",
            daily(
                totals,
                &["12,0", "12,3", "10,0", "14,0", "14,0", "14,1", "10,0"],
            ),
        ),
        (
            "getOneDriveUsageStorage",
            daily(
                storage,
                &["1200", "1200", "1000", "1400", "1400", "1400", "1000"],
            ),
        ),
        (
            "getSharePointSiteUsageDetail",
            csv(&[
                "Report Refresh Date,Site Id,Site URL,Owner Display Name,Is Deleted,Last Activity Date,File Count,Active File Count,Page View Count,Visited Page Count,Storage Used (Byte),Storage Allocated (Byte),Root Web Template,Owner Principal Name,Report Period",
                "2024-03-31,sp1,https://x/sp1,User s1,False,2024-03-31,6,1,10,4,600,9000,GROUP#0,s1@contoso.example,7",
            ]),
        ),
        (
            "getSharePointSiteUsageSiteCounts",
            daily(totals, &["1,1", "1,0", "1,0", "1,1", "1,0", "0,0", "0,0"]),
        ),
        (
            "getSharePointSiteUsageFileCounts",
            daily(totals, &["6,1", "5,0", "5,0", "5,0", "0,0", "0,0", "0,0"]),
        ),
        (
            "getSharePointSiteUsagePages",
            daily(
                "Report Refresh Date,Site Type,Page View Count,Report Date,Report Period",
                &["0", "0", "0", "10", "0", "0", "0"],
            ),
        ),
        (
            "getSharePointSiteUsageStorage",
            daily(storage, &["600", "500", "500", "500", "0", "0", "0"]),
        ),
    ];
    for (f, want) in &cases {
        assert_bytes(&srv.download(TENANT_A, &get(f)).await, want, f);
    }
    let d90 = srv
        .download(
            TENANT_A,
            &rpath("v1.0", "getSharePointSiteUsageDetail(period='D90')"),
        )
        .await;
    assert!(
        String::from_utf8_lossy(&d90).contains(
            "2024-03-31,sp2,https://x/sp2,,True,2024-01-15,7,7,7,7,700,9000,STS#3,,90\r\n"
        ),
        "{}",
        show(&d90)
    );
    // Owner names are concealed like user names.
    set_concealed(&srv, TENANT_A, true).await;
    let v = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", "getOneDriveUsageAccountDetail(period='D7')"),
        "oneDriveUsageAccountDetail",
    )
    .await;
    let owner = v[0]["ownerPrincipalName"].as_str().unwrap();
    assert_eq!(owner.len(), 32);
    assert_eq!(v[0]["ownerDisplayName"], json!(owner));
    assert_eq!(v[0]["storageUsedInBytes"], json!(1200));
    // Survives a restart without snapshots.
    let dir = srv.stop().await;
    // PostgreSQL-backed servers keep no snapshot files: they always load from the store.
    if !common::postgres_mode() {
        std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    }
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_bytes(
        &srv.download(TENANT_A, &get("getOneDriveUsageFileCounts"))
            .await,
        &cases[2].1,
        "after restart",
    );
}

#[tokio::test]
async fn bad_site_lines_reject_the_whole_batch() {
    let srv = TestServer::start().await;
    let mut no_owner = site("x1", "oneDrive", None, "SPSPERS", "2024-01-01", None);
    no_owner["ownerId"] = Value::Null;
    for (bad, field) in [
        (
            site("x1", "teams", Some("s1"), "T", "2024-01-01", None),
            "kind",
        ),
        (no_owner, "ownerId"),
        (
            site("x1", "oneDrive", Some("nobody"), "T", "2024-01-01", None),
            "userId",
        ),
        (
            site(
                "x1",
                "sharePoint",
                None,
                "T",
                "2024-01-01",
                Some("2023-01-01"),
            ),
            "deletedDate",
        ),
        (sday("unknown", "2024-03-01", [1, 1, 1, 1, 1, 1]), "siteId"),
    ] {
        let body = ndjson(&[
            user("s1"),
            site("ok", "sharePoint", None, "T", "2024-01-01", None),
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

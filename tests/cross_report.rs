//! Cross-report invariants on a generated tenant: every report is computed from the same raw
//! facts, so the counts reports must equal what the detail reports list, user by user.
//! Names stay concealed (the default): the digests must also agree between reports.

mod common;
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{TENANT_A, TestServer};
use reportroot::generate;
use reportroot::model::Day;
use serde_json::Value;
use support::*;

const SERVICES: [&str; 6] = [
    "exchange",
    "oneDrive",
    "sharePoint",
    "skypeForBusiness",
    "yammer",
    "teams",
];

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// A report's CSV as rows of fields (BOM and header dropped).
async fn csv_rows(srv: &TestServer, path: &str) -> Vec<Vec<String>> {
    let bytes = srv.download(TENANT_A, path).await;
    assert!(bytes.starts_with(BOM));
    let mut rdr = csv::Reader::from_reader(&bytes[3..]);
    rdr.records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Every JSON entry of a detail report, following `@odata.nextLink`.
async fn all_entries(srv: &TestServer, path: &str) -> Vec<Value> {
    let mut url = srv.url(&format!("{path}?$format=application/json&$top=1000"));
    let mut out = Vec::new();
    loop {
        let body: Value = srv
            .client()
            .get(&url)
            .bearer_auth(srv.reader(TENANT_A))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(body["value"].as_array().expect("value").iter().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => return out,
        }
    }
}

#[tokio::test]
async fn counts_reports_equal_what_the_detail_reports_list() {
    let srv = TestServer::start().await;
    let opts = generate::Options {
        users: 2500,
        days: 200,
        seed: 11,
        end: Day::parse("2026-10-31").unwrap(),
        single_date: false,
        usage: true,
    };
    let mut nd = Vec::new();
    generate::write_tenant(&opts, &mut nd, |_| {}).unwrap();
    let resp = srv
        .ingest(TENANT_A, std::str::from_utf8(&nd).unwrap())
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let r = Day::parse("2026-10-31").unwrap();

    let mut deleted_seen = 0;
    for (period, n) in [("D7", 7), ("D30", 30), ("D90", 90), ("D180", 180)] {
        let start = r.minus(n - 1).to_string();
        let detail = all_entries(
            &srv,
            &rpath(
                "beta",
                &format!("getOffice365ActiveUserDetail(period='{period}')"),
            ),
        )
        .await;
        let existing: Vec<&Value> = detail
            .iter()
            .filter(|e| e["isDeleted"] == Value::Bool(false))
            .collect();
        deleted_seen += detail.len() - existing.len();
        for e in detail
            .iter()
            .filter(|e| e["isDeleted"] == Value::Bool(true))
        {
            let d = e["deletedDate"].as_str().expect("deleted date");
            assert!(
                d >= start.as_str() && d <= "2026-10-31",
                "{period}: deleted within the period: {d}"
            );
        }
        let active = |e: &Value, s: &str| {
            e[format!("has{}License", cap(s))] == Value::Bool(true)
                && e[format!("{s}LastActivityDate")]
                    .as_str()
                    .is_some_and(|d| d >= start.as_str())
        };
        let services = csv_rows(&srv, &suc_path("v1.0", period)).await;
        assert_eq!(services.len(), 1);
        let row = &services[0];
        for (i, s) in SERVICES.iter().enumerate() {
            let licensed = existing
                .iter()
                .filter(|e| e[format!("has{}License", cap(s))] == Value::Bool(true))
                .count();
            let act = existing.iter().filter(|e| active(e, s)).count();
            assert_eq!(row[1 + 2 * i], act.to_string(), "{period} {s} active");
            assert_eq!(
                row[2 + 2 * i],
                (licensed - act).to_string(),
                "{period} {s} inactive"
            );
        }
        let any_licensed = existing
            .iter()
            .filter(|e| {
                SERVICES
                    .iter()
                    .any(|s| e[format!("has{}License", cap(s))] == Value::Bool(true))
            })
            .count();
        let any_active = existing
            .iter()
            .filter(|e| SERVICES.iter().any(|s| active(e, s)))
            .count();
        assert_eq!(
            row[13],
            any_active.to_string(),
            "{period} Office 365 active"
        );
        assert_eq!(
            row[14],
            (any_licensed - any_active).to_string(),
            "{period} Office 365 inactive"
        );

        // The daily trend: one row per day; on R each service counts the licensed users whose
        // last activity is R; no day exceeds the period's distinct active users.
        let daily = csv_rows(
            &srv,
            &rpath(
                "v1.0",
                &format!("getOffice365ActiveUserCounts(period='{period}')"),
            ),
        )
        .await;
        assert_eq!(daily.len(), n as usize, "{period}: a row per day");
        assert_eq!(daily[0][8], "2026-10-31");
        for (i, s) in SERVICES.iter().enumerate() {
            let on_r = existing
                .iter()
                .filter(|e| {
                    e[format!("has{}License", cap(s))] == Value::Bool(true)
                        && e[format!("{s}LastActivityDate")] == "2026-10-31"
                })
                .count();
            assert_eq!(daily[0][2 + i], on_r.to_string(), "{period} {s} on R");
            for d in &daily {
                let v: usize = d[2 + i].parse().unwrap();
                assert!(
                    v <= row[1 + 2 * i].parse().unwrap(),
                    "{period} {s} {}: a day cannot exceed the period",
                    d[8]
                );
            }
        }
        // Workload activity: the detail's sums over existing users equal the daily sums over
        // the period, and its Last Activity Date is ActiveUserDetail's for that service.
        for (detail_fn, daily_fn, service, first_counter, counters, sum_col) in [
            (
                "getEmailActivityUserDetail",
                "getEmailActivityCounts",
                "exchange",
                6,
                5,
                1,
            ),
            (
                "getOneDriveActivityUserDetail",
                "getOneDriveActivityFileCounts",
                "oneDrive",
                5,
                4,
                1,
            ),
            (
                "getSharePointActivityUserDetail",
                "getSharePointActivityFileCounts",
                "sharePoint",
                5,
                4,
                1,
            ),
        ] {
            let rows = csv_rows(
                &srv,
                &rpath("v1.0", &format!("{detail_fn}(period='{period}')")),
            )
            .await;
            let days = csv_rows(
                &srv,
                &rpath("v1.0", &format!("{daily_fn}(period='{period}')")),
            )
            .await;
            assert_eq!(days.len(), n as usize);
            let deleted_col = if detail_fn.starts_with("getEmail") {
                3
            } else {
                2
            };
            for k in 0..counters {
                let detail_sum: u64 = rows
                    .iter()
                    .filter(|r| r[deleted_col] == "False")
                    .map(|r| r[first_counter + k].parse::<u64>().unwrap())
                    .sum();
                let daily_sum: u64 = days
                    .iter()
                    .map(|r| r[sum_col + k].parse::<u64>().unwrap())
                    .sum();
                assert_eq!(detail_sum, daily_sum, "{period} {detail_fn} counter {k}");
            }
            assert!(
                rows.iter().any(|r| r[first_counter] != "0"),
                "{detail_fn} has data"
            );
            let last_by_user: HashMap<&str, &str> = detail
                .iter()
                .map(|e| {
                    (
                        e["userPrincipalName"].as_str().unwrap(),
                        e[format!("{service}LastActivityDate")]
                            .as_str()
                            .unwrap_or(""),
                    )
                })
                .collect();
            for r in &rows {
                assert_eq!(
                    last_by_user.get(r[1].as_str()).copied(),
                    Some(r[first_counter - 1].as_str()),
                    "{period} {detail_fn} last activity of {}",
                    r[1]
                );
            }
        }
        // Mailboxes: each day's quota statuses add up to the day's total; the storage series'
        // day R equals the detail's storage over the mailboxes existing on R; the detail's
        // Last Activity Date is ActiveUserDetail's Exchange one.
        let counts = csv_rows(
            &srv,
            &rpath(
                "v1.0",
                &format!("getMailboxUsageMailboxCounts(period='{period}')"),
            ),
        )
        .await;
        let quota = csv_rows(
            &srv,
            &rpath(
                "v1.0",
                &format!("getMailboxUsageQuotaStatusMailboxCounts(period='{period}')"),
            ),
        )
        .await;
        let storage = csv_rows(
            &srv,
            &rpath(
                "v1.0",
                &format!("getMailboxUsageStorage(period='{period}')"),
            ),
        )
        .await;
        let mailboxes = csv_rows(
            &srv,
            &rpath("v1.0", &format!("getMailboxUsageDetail(period='{period}')")),
        )
        .await;
        assert_eq!(
            (counts.len(), quota.len(), storage.len()),
            (n as usize, n as usize, n as usize)
        );
        for (c, q) in counts.iter().zip(&quota) {
            let sum: u64 = q[1..6].iter().map(|x| x.parse::<u64>().unwrap()).sum();
            assert_eq!(
                c[1],
                sum.to_string(),
                "{period} {}: statuses add up to the total",
                c[3]
            );
            assert!(c[2].parse::<u64>().unwrap() <= c[1].parse().unwrap());
        }
        let live: Vec<&Vec<String>> = mailboxes.iter().filter(|r| r[3] == "False").collect();
        assert_eq!(
            counts[0][1],
            live.len().to_string(),
            "{period}: mailboxes existing on R"
        );
        let used: u64 = live.iter().map(|r| r[8].parse::<u64>().unwrap()).sum();
        assert_eq!(storage[0][1], used.to_string(), "{period}: storage on R");
        let exchange_last: HashMap<&str, &str> = detail
            .iter()
            .map(|e| {
                (
                    e["userPrincipalName"].as_str().unwrap(),
                    e["exchangeLastActivityDate"].as_str().unwrap_or(""),
                )
            })
            .collect();
        for r in &mailboxes {
            if let Some(l) = exchange_last.get(r[1].as_str()) {
                assert_eq!(
                    *l,
                    r[6].as_str(),
                    "{period}: mailbox last activity of {}",
                    r[1]
                );
            }
        }
        assert!(
            quota.iter().any(|q| q[2] != "0" || q[4] != "0"),
            "{period}: some mailboxes near or over quota"
        );
        // Sites: the day-R totals equal the detail's sites existing on R.
        for (detail_fn, counts_fn, storage_fn, deleted_col, used_col) in [
            (
                "getOneDriveUsageAccountDetail",
                "getOneDriveUsageAccountCounts",
                "getOneDriveUsageStorage",
                3,
                7,
            ),
            (
                "getSharePointSiteUsageDetail",
                "getSharePointSiteUsageSiteCounts",
                "getSharePointSiteUsageStorage",
                4,
                10,
            ),
        ] {
            let rows = csv_rows(
                &srv,
                &rpath("v1.0", &format!("{detail_fn}(period='{period}')")),
            )
            .await;
            let live: Vec<&Vec<String>> =
                rows.iter().filter(|r| r[deleted_col] == "False").collect();
            assert!(!live.is_empty(), "{detail_fn} has sites");
            let counts = csv_rows(
                &srv,
                &rpath("v1.0", &format!("{counts_fn}(period='{period}')")),
            )
            .await;
            let storage = csv_rows(
                &srv,
                &rpath("v1.0", &format!("{storage_fn}(period='{period}')")),
            )
            .await;
            assert_eq!(counts.len(), n as usize);
            assert_eq!(
                counts[0][2],
                live.len().to_string(),
                "{period} {counts_fn} total on R"
            );
            let used: u64 = live
                .iter()
                .map(|r| r[used_col].parse::<u64>().unwrap())
                .sum();
            assert_eq!(
                storage[0][2],
                used.to_string(),
                "{period} {storage_fn} on R"
            );
        }
        if period == "D7" {
            // Activations: Assigned = holders listed by ActiveUserDetail; Activated/Shared from
            // ActivationsUserDetail; ActivationCounts = the detail rows' platform sums.
            let aud = csv_rows(&srv, &rpath("v1.0", "getOffice365ActivationsUserDetail")).await;
            let auc = csv_rows(&srv, &rpath("v1.0", "getOffice365ActivationsUserCounts")).await;
            let ac = csv_rows(&srv, &rpath("v1.0", "getOffice365ActivationCounts")).await;
            let mut per_user: HashMap<(&str, &str), &Vec<String>> = HashMap::new();
            for row in &aud {
                per_user.insert((row[1].as_str(), row[3].as_str()), row);
            }
            let products: BTreeMap<&str, ()> = aud.iter().map(|r| (r[3].as_str(), ())).collect();
            let auc_products: Vec<&str> = auc.iter().map(|r| r[1].as_str()).collect();
            assert_eq!(
                auc_products,
                products.keys().copied().collect::<Vec<_>>(),
                "product rows agree"
            );
            let ids: HashSet<&str> = existing
                .iter()
                .map(|e| e["userPrincipalName"].as_str().unwrap())
                .collect();
            assert!(
                aud.iter().all(|r| ids.contains(r[1].as_str())),
                "concealed names agree between reports"
            );
            for row in &auc {
                let p = row[1].as_str();
                let holders: Vec<&str> = existing
                    .iter()
                    .filter(|e| {
                        e["assignedProducts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|x| x == p)
                    })
                    .map(|e| e["userPrincipalName"].as_str().unwrap())
                    .collect();
                let activated: Vec<&&Vec<String>> = holders
                    .iter()
                    .filter_map(|u| per_user.get(&(*u, p)))
                    .filter(|r| !r[4].is_empty())
                    .collect();
                let shared = activated.iter().filter(|r| r[10] == "True").count();
                assert_eq!(row[2], holders.len().to_string(), "{p} assigned");
                assert_eq!(row[3], activated.len().to_string(), "{p} activated");
                assert_eq!(row[4], shared.to_string(), "{p} shared");
            }
            for row in &ac {
                let p = row[1].as_str();
                let sum = |col: usize| {
                    aud.iter()
                        .filter(|r| r[3] == p)
                        .map(|r| r[col].parse::<u64>().unwrap())
                        .sum::<u64>()
                        .to_string()
                };
                // AC: Windows,Mac,Android,iOS,W10M; AUD: Windows,Mac,W10M,iOS,Android.
                assert_eq!(
                    row[2..7],
                    [sum(5), sum(6), sum(9), sum(8), sum(7)],
                    "{p} platforms"
                );
            }
        }
    }
    assert!(
        deleted_seen > 0,
        "the generated tenant lists deleted users in some period"
    );
}

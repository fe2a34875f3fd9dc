//! The Office 365 report families whole: ActivationsUserDetail, ActiveUserCounts and
//! ActiveUserDetail on the hand-worked fixture (tests/support), `date=` edges, JSON = CSV,
//! paging, concealed names, report settings, the detail-role rule and `$metadata`.

mod common;
mod support;

use std::collections::HashSet;

use common::{GLOBAL_ADMIN, READ_ROLE, REPORTS_READER, TENANT_A, TestServer};
use serde_json::{Value, json};
use support::*;

const AUD: &str = "getOffice365ActivationsUserDetail";
const AUCOUNTS: &str = "getOffice365ActiveUserCounts";
const AUDETAIL: &str = "getOffice365ActiveUserDetail";
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const SUMMARY_READER: &str = "75934031-6c7e-415a-99d7-48dbd49e875e";

const AUD_HEADER: &str = "Report Refresh Date,User Principal Name,Display Name,Product Type,Last Activated Date,Windows,Mac,Windows 10 Mobile,iOS,Android,Activated On Shared Computer";
const AUCOUNTS_HEADER: &str = "Report Refresh Date,Office 365,Exchange,OneDrive,SharePoint,Skype For Business,Yammer,Teams,Report Date,Report Period";
const AUDETAIL_HEADER: &str = "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Has Exchange License,Has OneDrive License,Has SharePoint License,Has Skype For Business License,Has Yammer License,Has Teams License,Exchange Last Activity Date,OneDrive Last Activity Date,SharePoint Last Activity Date,Skype For Business Last Activity Date,Yammer Last Activity Date,Teams Last Activity Date,Exchange License Assign Date,OneDrive License Assign Date,SharePoint License Assign Date,Skype For Business License Assign Date,Yammer License Assign Date,Teams License Assign Date,Assigned Products";

/// One CSV record from fields, quoted as RFC 4180 needs.
fn rec(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\r', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn settings_token(srv: &TestServer) -> String {
    srv.app_token(TENANT_A, &["ReportSettings.ReadWrite.All"])
}

async fn fixture_server() -> TestServer {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &fixture()).await;
    srv
}

fn u(n: u32) -> (String, String) {
    (format!("u{n}@contoso.example"), format!("User u{n}"))
}

/// ActivationsUserDetail on the fixture, as worked out in tests/support's comments.
fn expected_aud() -> Vec<u8> {
    let rows: Vec<(u32, &str, &str, [&str; 5], &str)> = vec![
        (1, P_M, "2024-02-01", ["1", "0", "0", "1", "0"], "False"),
        (1, P_O, "", ["0", "0", "0", "0", "0"], "False"),
        (2, P_M, "2024-01-02", ["1", "0", "0", "0", "0"], "False"),
        (2, P_O, "2024-03-01", ["1", "0", "1", "0", "0"], "True"),
        (4, P_M, "2024-03-31", ["1", "0", "0", "0", "1"], "True"),
        (5, P_M, "", ["0", "0", "0", "0", "0"], "False"),
        (5, P_P, "2024-02-01", ["1", "1", "0", "0", "0"], "True"),
        (5, P_A, "", ["0", "0", "0", "0", "0"], "False"),
        (7, P_M, "2024-03-01", ["1", "0", "0", "0", "0"], "False"),
        (7, P_V, "2024-03-02", ["0", "0", "0", "1", "0"], "True"),
        (8, P_O, "2024-03-01", ["0", "1", "0", "0", "0"], "False"),
    ];
    let mut lines = vec![AUD_HEADER.to_string()];
    for (n, p, last, plat, shared) in rows {
        let (upn, dn) = u(n);
        let mut f = vec!["2024-03-31", &upn, &dn, p, last];
        f.extend(plat);
        f.push(shared);
        lines.push(rec(&f));
    }
    csv(&lines.iter().map(String::as_str).collect::<Vec<_>>())
}

/// ActiveUserDetail rows on the fixture as of R (2024-03-31); `with_u3` for periods that
/// reach back to u3's deletion (2024-03-15).
fn expected_audetail(with_u3: bool) -> Vec<String> {
    // deleted?, deleted date, has[6], last[6], assign[6], products
    type Row = (
        u32,
        &'static str,
        &'static str,
        [&'static str; 6],
        [&'static str; 6],
        [&'static str; 6],
        String,
    );
    let t = "True";
    let f = "False";
    let y = "2023-01-01";
    let rows: Vec<Row> = vec![
        (
            1,
            f,
            "",
            [t, f, f, f, t, t],
            [
                "2024-03-31",
                "2024-03-31",
                "2024-03-30",
                "",
                "2024-03-31",
                "2024-03-27",
            ],
            [y, "", "", "", "2024-03-31", y],
            format!("{P_M}+{P_O}"),
        ),
        (
            2,
            f,
            "",
            [t, t, f, f, f, t],
            ["2024-03-25", "", "", "", "", "2023-10-03"],
            [y, y, "", "", "", y],
            P_O.to_string(),
        ),
        (
            3,
            t,
            "2024-03-15",
            [t, f, f, f, f, t],
            ["2024-03-31", "", "", "", "", "2024-03-29"],
            [y, "", "", "", "", y],
            format!("DELETED ONLY+{P_M}"),
        ),
        (
            4,
            f,
            "",
            [t, f, f, t, f, f],
            ["2024-03-24", "", "", "2024-01-02", "", ""],
            [y, "", "", y, "", ""],
            P_M.to_string(),
        ),
        (
            5,
            f,
            "",
            [t, t, f, f, f, f],
            ["2024-03-02", "2024-03-28", "", "", "", "2024-03-31"],
            [y, y, "", "", "", ""],
            format!("{P_M}+{P_A}"),
        ),
        (
            6,
            t,
            "2024-03-31",
            [t, f, f, f, f, f],
            ["2024-03-30", "", "", "", "", ""],
            [y, "", "", "", "", ""],
            P_M.to_string(),
        ),
        (
            7,
            f,
            "",
            [t, f, f, t, f, f],
            ["2024-03-01", "", "", "2023-10-04", "", ""],
            [y, "", "", y, "", ""],
            P_V.to_string(),
        ),
        (
            8,
            f,
            "",
            [f, f, f, f, t, f],
            ["2024-03-30", "", "", "", "2024-01-01", ""],
            ["", "", "", "", y, ""],
            String::new(),
        ),
        (
            9,
            f,
            "",
            [f, f, f, f, f, f],
            ["2024-03-31", "", "2024-03-30", "", "", ""],
            ["", "", "", "", "", ""],
            String::new(),
        ),
    ];
    rows.into_iter()
        .filter(|r| with_u3 || r.0 != 3)
        .map(|(n, del, deld, has, last, assign, products)| {
            let (upn, dn) = u(n);
            let mut fields = vec!["2024-03-31", &upn, &dn, del, deld];
            fields.extend(has);
            fields.extend(last);
            fields.extend(assign);
            fields.push(&products);
            rec(&fields)
        })
        .collect()
}

#[tokio::test]
async fn activations_user_detail_matches_the_hand_worked_fixture() {
    let srv = fixture_server().await;
    set_concealed(&srv, TENANT_A, false).await;
    for path in [
        rpath("v1.0", AUD),
        rpath("v1.0", &format!("{AUD}()")),
        rpath("beta", &format!("microsoft.graph.{AUD}()")),
    ] {
        let got = srv.download(TENANT_A, &path).await;
        assert_bytes(&got, &expected_aud(), &path);
    }
    // JSON: one entry per user, products nested, same numbers as the CSV.
    let value = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", AUD),
        "office365ActivationsUserDetail",
    )
    .await;
    let entries = value.as_array().expect("array");
    assert_eq!(entries.len(), 6, "users u1,u2,u4,u5,u7,u8: {value}");
    assert_eq!(
        entries[1],
        json!({
            "reportRefreshDate": "2024-03-31",
            "userPrincipalName": "u2@contoso.example",
            "displayName": "User u2",
            "userActivationCounts": [
                {"productType": P_M, "lastActivatedDate": "2024-01-02", "windows": 1, "mac": 0, "windows10Mobile": 0, "ios": 0, "android": 0, "activatedOnSharedComputer": false},
                {"productType": P_O, "lastActivatedDate": "2024-03-01", "windows": 1, "mac": 0, "windows10Mobile": 1, "ios": 0, "android": 0, "activatedOnSharedComputer": true},
            ]
        })
    );
    assert_eq!(
        entries[0]["userActivationCounts"][1]["lastActivatedDate"],
        Value::Null
    );
}

#[tokio::test]
async fn active_user_counts_gives_one_row_per_day_newest_first() {
    let srv = fixture_server().await;
    let d7 = [
        "2024-03-31,1,1,0,0,0,1,0,2024-03-31,7",
        "2024-03-31,0,0,0,0,0,0,0,2024-03-30,7",
        "2024-03-31,0,0,0,0,0,0,0,2024-03-29,7",
        "2024-03-31,1,0,1,0,0,0,0,2024-03-28,7",
        "2024-03-31,1,0,0,0,0,0,1,2024-03-27,7",
        "2024-03-31,1,0,0,0,0,0,1,2024-03-26,7",
        "2024-03-31,1,1,0,0,0,0,0,2024-03-25,7",
    ];
    let mut want = vec![AUCOUNTS_HEADER];
    want.extend(d7);
    for form in [
        "(period='D7')",
        "(period='d7')",
        "(period=D7)",
        "(period=%27D7%27)",
    ] {
        let got = srv
            .download(TENANT_A, &rpath("v1.0", &format!("{AUCOUNTS}{form}")))
            .await;
        assert_bytes(&got, &csv(&want), form);
    }
    for (period, n, checks) in [
        (
            "D30",
            30,
            vec![
                ("2024-03-24", "2024-03-31,1,1,0,0,0,0,0,2024-03-24,30"),
                ("2024-03-02", "2024-03-31,1,1,0,0,0,0,0,2024-03-02,30"),
            ],
        ),
        (
            "D90",
            90,
            vec![
                ("2024-03-01", "2024-03-31,1,1,0,0,0,0,0,2024-03-01,90"),
                ("2024-01-02", "2024-03-31,1,0,0,0,1,0,0,2024-01-02,90"),
            ],
        ),
        (
            "D180",
            180,
            vec![
                ("2024-01-01", "2024-03-31,2,0,0,0,1,1,0,2024-01-01,180"),
                ("2023-10-04", "2024-03-31,1,0,0,0,1,0,0,2023-10-04,180"),
            ],
        ),
    ] {
        let got = srv
            .download(
                TENANT_A,
                &rpath("v1.0", &format!("{AUCOUNTS}(period='{period}')")),
            )
            .await;
        let text = String::from_utf8(got[3..].to_vec()).expect("utf8");
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), n + 1, "{period}: rows");
        for (day, line) in checks {
            assert!(lines.contains(&line), "{period}: {day} should read {line}");
        }
        let dates: Vec<&str> = lines[1..]
            .iter()
            .map(|l| &l[l.len() - 10 - period.len()..l.len() - period.len() - 1])
            .collect();
        let mut sorted = dates.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(dates, sorted, "{period}: Report Date descending");
    }
    let json = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", &format!("{AUCOUNTS}(period='D7')")),
        "office365ActiveUserCounts",
    )
    .await;
    assert_eq!(
        json[0],
        json!({"reportRefreshDate":"2024-03-31","office365":1,"exchange":1,"oneDrive":0,"sharePoint":0,"skypeForBusiness":0,"yammer":1,"teams":0,"reportDate":"2024-03-31","reportPeriod":"7"})
    );
    assert_eq!(json.as_array().map(Vec::len), Some(7));
}

#[tokio::test]
async fn active_user_detail_matches_the_fixture_for_every_period() {
    let srv = fixture_server().await;
    set_concealed(&srv, TENANT_A, false).await;
    for (period, with_u3) in [("D7", false), ("D30", true), ("D90", true), ("D180", true)] {
        let mut want = vec![AUDETAIL_HEADER.to_string()];
        want.extend(expected_audetail(with_u3));
        let got = srv
            .download(
                TENANT_A,
                &rpath("v1.0", &format!("{AUDETAIL}(period='{period}')")),
            )
            .await;
        assert_bytes(
            &got,
            &csv(&want.iter().map(String::as_str).collect::<Vec<_>>()),
            period,
        );
    }
    // JSON: booleans, nulls for missing dates, products as an array.
    let value = beta_json(
        &srv,
        TENANT_A,
        &rpath("beta", &format!("{AUDETAIL}(period='D7')")),
        "office365ActiveUserDetail",
    )
    .await;
    let u1 = &value[0];
    assert_eq!(u1["userPrincipalName"], json!("u1@contoso.example"));
    assert_eq!(u1["isDeleted"], json!(false));
    assert_eq!(u1["deletedDate"], Value::Null);
    assert_eq!(u1["hasYammerLicense"], json!(true));
    assert_eq!(u1["skypeForBusinessLastActivityDate"], Value::Null);
    assert_eq!(u1["teamsLastActivityDate"], json!("2024-03-27"));
    assert_eq!(u1["assignedProducts"], json!([P_M, P_O]));
    let u6 = value
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["userPrincipalName"] == json!("u6@contoso.example"))
        .expect("u6 listed as deleted");
    assert_eq!(u6["isDeleted"], json!(true));
    assert_eq!(u6["deletedDate"], json!("2024-03-31"));
}

#[tokio::test]
async fn active_user_detail_by_date_reaches_back_27_days_only() {
    let srv = fixture_server().await;
    set_concealed(&srv, TENANT_A, false).await;
    // R itself: deleted users listed are those deleted on that day (u6).
    let got = srv
        .download(
            TENANT_A,
            &rpath("v1.0", &format!("{AUDETAIL}(date=2024-03-31)")),
        )
        .await;
    let mut want = vec![AUDETAIL_HEADER.to_string()];
    want.extend(expected_audetail(false));
    assert_bytes(
        &got,
        &csv(&want.iter().map(String::as_str).collect::<Vec<_>>()),
        "date=R",
    );
    // every user existed then (u3 was deleted later); d takes R's place.
    for form in ["(date=2024-03-04)", "(date='2024-03-04')"] {
        let got = srv
            .download(TENANT_A, &rpath("v1.0", &format!("{AUDETAIL}{form}")))
            .await;
        let text = String::from_utf8(got[3..].to_vec()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 10, "{form}: header + 9 users\n{text}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with("2024-03-04,")),
            "{text}"
        );
        let (upn, dn) = u(1);
        assert_eq!(
            lines[1],
            rec(&[
                "2024-03-04",
                &upn,
                &dn,
                "False",
                "",
                "True",
                "False",
                "False",
                "False",
                "False",
                "True",
                "",
                "",
                "",
                "",
                "",
                "",
                "2023-01-01",
                "",
                "",
                "",
                "",
                "2023-01-01",
                &format!("{P_M}+{P_O}")
            ])
        );
        let (upn, dn) = u(3);
        assert_eq!(
            lines[3],
            rec(&[
                "2024-03-04",
                &upn,
                &dn,
                "False",
                "",
                "True",
                "False",
                "False",
                "False",
                "False",
                "True",
                "",
                "",
                "",
                "",
                "",
                "",
                "2023-01-01",
                "",
                "",
                "",
                "",
                "2023-01-01",
                &format!("DELETED ONLY+{P_M}")
            ])
        );
    }
    for bad in ["2024-03-03", "2024-04-01", "2023-01-01"] {
        let resp = srv
            .get(
                &rpath("v1.0", &format!("{AUDETAIL}(date={bad})")),
                &srv.reader(TENANT_A),
            )
            .await;
        let err = expect_error(resp, 400, "InvalidArgument", bad).await;
        assert_eq!(
            err["message"],
            json!(format!(
                "Invalid date value specified: {bad}. Only support data for the past 28 days."
            ))
        );
    }
    for bad in [
        "(date=2024-13-01)",
        "(date=yesterday)",
        "",
        "()",
        "(period='D7',date=2024-03-31)",
    ] {
        let resp = srv
            .get(
                &rpath("v1.0", &format!("{AUDETAIL}{bad}")),
                &srv.reader(TENANT_A),
            )
            .await;
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
    }
}

#[tokio::test]
async fn json_equals_csv_for_every_new_function() {
    let srv = fixture_server().await;
    for concealed in [false, true] {
        set_concealed(&srv, TENANT_A, concealed).await;
        for seg in [
            AUD.to_string(),
            format!("{AUDETAIL}(period='D30')"),
            format!("{AUDETAIL}(date=2024-03-20)"),
            format!("{AUCOUNTS}(period='D30')"),
        ] {
            let csv_bytes = srv.download(TENANT_A, &rpath("v1.0", &seg)).await;
            let mut rdr = csv::Reader::from_reader(&csv_bytes[3..]);
            let headers = rdr.headers().unwrap().clone();
            let csv_rows: Vec<Vec<String>> = rdr
                .records()
                .map(|r| r.unwrap().iter().map(str::to_string).collect())
                .collect();
            let resp = srv
                .get(
                    &format!("{}?$format=application/json&$top=1000", rpath("v1.0", &seg)),
                    &srv.reader(TENANT_A),
                )
                .await;
            assert_eq!(resp.status().as_u16(), 200, "{seg}");
            let body: Value = resp.json().await.unwrap();
            // Flatten JSON entries back into CSV-shaped rows.
            let mut json_rows = Vec::new();
            for e in body["value"].as_array().unwrap() {
                let flat = |v: &Value| match v {
                    Value::Null => String::new(),
                    Value::Bool(true) => "True".into(),
                    Value::Bool(false) => "False".into(),
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                        .join("+"),
                    other => other.to_string(),
                };
                let m = e.as_object().unwrap();
                if let Some(nested) = m.get("userActivationCounts") {
                    for n in nested.as_array().unwrap() {
                        let mut row: Vec<String> =
                            ["reportRefreshDate", "userPrincipalName", "displayName"]
                                .iter()
                                .map(|k| flat(&m[*k]))
                                .collect();
                        row.extend(n.as_object().unwrap().values().map(flat));
                        json_rows.push(row);
                    }
                } else {
                    json_rows.push(m.values().map(flat).collect());
                }
            }
            assert_eq!(
                json_rows, csv_rows,
                "{seg} concealed={concealed} (columns {headers:?})"
            );
        }
    }
}

#[tokio::test]
async fn concealed_names_are_keyed_digests_shared_by_every_report() {
    let srv = fixture_server().await;
    // Default on, as in Graph.
    let resp = srv
        .get("/v1.0/admin/reportSettings", &settings_token(&srv))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["displayConcealedNames"], json!(true));
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#admin/reportSettings/$entity")
    );

    let names = |bytes: &[u8]| -> Vec<(String, String)> {
        let mut rdr = csv::Reader::from_reader(&bytes[3..]);
        rdr.records()
            .map(|r| {
                let r = r.unwrap();
                (r[1].to_string(), r[2].to_string())
            })
            .collect()
    };
    let a = names(
        &srv.download(
            TENANT_A,
            &rpath("v1.0", &format!("{AUDETAIL}(period='D7')")),
        )
        .await,
    );
    let b = names(&srv.download(TENANT_A, &rpath("v1.0", AUD)).await);
    let is_digest = |s: &str| {
        s.len() == 32
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
    };
    for (upn, dn) in a.iter().chain(&b) {
        assert!(is_digest(upn), "{upn}");
        assert_eq!(upn, dn, "both columns carry the same digest");
    }
    let a_set: HashSet<_> = a.iter().map(|x| x.0.clone()).collect();
    assert_eq!(a_set.len(), a.len(), "one digest per user");
    assert!(
        b.iter().all(|x| a_set.contains(&x.0)),
        "the same user gets the same digest in both reports"
    );
    // Not a plain hash of the id or the name.
    use sha2::Digest;
    for plain in ["u1", "u1@contoso.example"] {
        let h: String = sha2::Sha256::digest(plain.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert!(!a_set.contains(&h));
    }
    // Off: real names; the setting survives a restart.
    set_concealed(&srv, TENANT_A, false).await;
    let off = names(
        &srv.download(
            TENANT_A,
            &rpath("v1.0", &format!("{AUDETAIL}(period='D7')")),
        )
        .await,
    );
    assert_eq!(off[0], u(1));
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let again = names(
        &srv.download(
            TENANT_A,
            &rpath("v1.0", &format!("{AUDETAIL}(period='D7')")),
        )
        .await,
    );
    assert_eq!(again, off);
}

#[tokio::test]
async fn report_settings_need_their_own_permissions() {
    let srv = fixture_server().await;
    let path = "/beta/admin/reportSettings";
    let reader = srv.app_token(TENANT_A, &["ReportSettings.Read.All"]);
    let resp = srv.get(path, &reader).await;
    assert_eq!(resp.status().as_u16(), 200);
    let patch = |tok: String, body: Value| {
        let c = srv.client();
        let url = srv.url(path);
        async move {
            c.patch(url)
                .bearer_auth(tok)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    expect_error(
        patch(reader.clone(), json!({"displayConcealedNames": false})).await,
        403,
        "S2SUnauthorized",
        "read-only app",
    )
    .await;
    expect_error(
        srv.get(path, &srv.reader(TENANT_A)).await,
        403,
        "S2SUnauthorized",
        "Reports.Read.All alone",
    )
    .await;
    expect_error(
        srv.get(path, "garbage").await,
        401,
        "InvalidAuthenticationToken",
        "bad token",
    )
    .await;
    let rw = settings_token(&srv);
    expect_error(
        patch(rw.clone(), json!({"displayConcealedNames": "no"})).await,
        400,
        "BadRequest",
        "not a bool",
    )
    .await;
    expect_error(
        patch(rw.clone(), json!({"somethingElse": true})).await,
        400,
        "BadRequest",
        "unknown property",
    )
    .await;
    expect_error(
        patch(rw.clone(), json!([1])).await,
        400,
        "BadRequest",
        "not an object",
    )
    .await;
    // Delegated: reading with a reports admin role, changing only as Global Administrator.
    let reports_reader = srv.user_token(
        TENANT_A,
        &["ReportSettings.ReadWrite.All"],
        &[REPORTS_READER],
    );
    assert_eq!(srv.get(path, &reports_reader).await.status().as_u16(), 200);
    expect_error(
        patch(reports_reader, json!({"displayConcealedNames": false})).await,
        403,
        "S2SUnauthorized",
        "delegated non-GA",
    )
    .await;
    let ga = srv.user_token(TENANT_A, &["ReportSettings.ReadWrite.All"], &[GLOBAL_ADMIN]);
    assert_eq!(
        patch(ga, json!({"displayConcealedNames": false}))
            .await
            .status()
            .as_u16(),
        204
    );
    let body: Value = srv.get(path, &rw).await.json().await.unwrap();
    assert_eq!(body["displayConcealedNames"], json!(false));
}

#[tokio::test]
async fn summary_only_roles_get_counts_but_not_detail() {
    let srv = fixture_server().await;
    for role in [GLOBAL_READER, SUMMARY_READER] {
        let tok = srv.user_token(TENANT_A, &[READ_ROLE], &[role]);
        for seg in [
            AC.to_string(),
            format!("{SUC}(period='D7')"),
            format!("{AUCOUNTS}(period='D7')"),
        ] {
            assert_eq!(
                srv.get(&rpath("v1.0", &seg), &tok).await.status().as_u16(),
                302,
                "{role} {seg}"
            );
        }
        for seg in [
            AUD.to_string(),
            format!("{AUDETAIL}(period='D7')"),
            format!("{AUDETAIL}(date=2024-03-31)"),
        ] {
            expect_error(
                srv.get(&rpath("v1.0", &seg), &tok).await,
                403,
                "S2SUnauthorized",
                &seg,
            )
            .await;
        }
    }
    for role in ADMIN_ROLES
        .iter()
        .filter(|r| ![GLOBAL_READER, SUMMARY_READER].contains(r))
    {
        let tok = srv.user_token(TENANT_A, &[READ_ROLE], &[role]);
        assert_eq!(
            srv.get(&rpath("v1.0", AUD), &tok).await.status().as_u16(),
            302,
            "{role}"
        );
    }
    // A summary-only role beside a detail role is enough.
    let tok = srv.user_token(TENANT_A, &[READ_ROLE], &[GLOBAL_READER, REPORTS_READER]);
    assert_eq!(
        srv.get(&rpath("v1.0", AUD), &tok).await.status().as_u16(),
        302
    );
}

/// A tenant of `n` users each with one activity, for paging.
fn many_users(n: usize) -> Vec<Value> {
    let mut v = Vec::new();
    for i in 0..n {
        let id = format!("p{i:04}");
        v.push(user(&id));
        v.push(license(&id, "exchange", "2024-01-01", None));
        v.push(activity(&id, "exchange", "2024-03-31"));
    }
    v
}

async fn walk(srv: &TestServer, first: &str) -> Result<Vec<Value>, (u16, Value)> {
    let mut url = srv.url(first);
    let mut all = Vec::new();
    loop {
        let resp = srv
            .client()
            .get(&url)
            .bearer_auth(srv.reader(TENANT_A))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        if status != 200 {
            return Err((status, body));
        }
        let page = body["value"].as_array().unwrap();
        assert!(page.len() <= 200);
        all.extend(page.iter().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return Ok(all),
        }
    }
}

#[tokio::test]
async fn paging_walks_every_user_once_and_refuses_stale_tokens() {
    let srv = TestServer::start().await;
    ingest_ok(&srv, TENANT_A, &many_users(1000)).await;
    set_concealed(&srv, TENANT_A, false).await;
    for seg in [format!("{AUDETAIL}(period='D7')"), AUD.to_string()] {
        let path = format!("{}?$format=application/json", rpath("beta", &seg));
        let all = walk(&srv, &path).await;
        if seg == AUD {
            assert_eq!(all.map(|v| v.len()).ok(), Some(0), "nobody holds a product");
            continue;
        }
        let all = all.expect("walk");
        let names: Vec<&str> = all
            .iter()
            .map(|e| e["userPrincipalName"].as_str().unwrap())
            .collect();
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(names.len(), 1000, "every user");
        assert_eq!(unique.len(), 1000, "no user twice");
    }
    // Pages of 200 by default; $top sets the size; the last page has no nextLink.
    let base = format!(
        "{}?$format=application/json",
        rpath("beta", &format!("{AUDETAIL}(period='D7')"))
    );
    let body: Value = srv
        .get(&base, &srv.reader(TENANT_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 200);
    let next = body["@odata.nextLink"]
        .as_str()
        .expect("nextLink")
        .to_string();
    assert!(next.starts_with(&srv.base), "absolute: {next}");
    let body: Value = srv
        .get(&format!("{base}&$top=999"), &srv.reader(TENANT_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 999);
    let body: Value = srv
        .get(&format!("{base}&$top=1000"), &srv.reader(TENANT_A))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1000);
    assert!(body.get("@odata.nextLink").is_none());
    for bad in [
        "$top=0",
        "$top=1001",
        "$top=ten",
        "$skipToken=garbage",
        "$skiptoken=abc.def",
    ] {
        expect_error(
            srv.get(&format!("{base}&{bad}"), &srv.reader(TENANT_A))
                .await,
            400,
            "BadRequest",
            bad,
        )
        .await;
    }
    // A token of another call is refused.
    let other = next
        .replace("period%3D%27D7%27", "period%3D%27D30%27")
        .replace("period='D7'", "period='D30'");
    if other != next {
        expect_error(
            srv.client()
                .get(&other)
                .bearer_auth(srv.reader(TENANT_A))
                .send()
                .await
                .unwrap(),
            400,
            "BadRequest",
            "token of D7 on D30",
        )
        .await;
    }
    // After a data change the old token is refused, not silently shifted.
    ingest_ok(
        &srv,
        TENANT_A,
        &[activity("p0001", "exchange", "2024-03-30")],
    )
    .await;
    let resp = srv
        .client()
        .get(&next)
        .bearer_auth(srv.reader(TENANT_A))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "BadRequest", "stale token").await;
    // CSV is never paged.
    let bytes = srv
        .download(
            TENANT_A,
            &rpath("v1.0", &format!("{AUDETAIL}(period='D7')")),
        )
        .await;
    assert_eq!(
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        1001
    );
}

#[tokio::test]
async fn v1_answers_csv_whatever_accept_says_and_json_on_request() {
    let srv = fixture_server().await;
    let path = rpath("v1.0", &format!("{AUDETAIL}(period='D7')"));
    let resp = srv
        .client()
        .get(srv.url(&path))
        .bearer_auth(srv.reader(TENANT_A))
        .header("accept", "application/json;odata.metadata=none")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        302,
        "v1.0 with a JSON Accept still redirects to CSV"
    );
    for f in [
        "application/json",
        "application%2fjson",
        "application%2Fjson",
    ] {
        let resp = srv
            .get(&format!("{path}?$format={f}"), &srv.reader(TENANT_A))
            .await;
        assert_eq!(resp.status().as_u16(), 200, "{f}");
    }
}

#[tokio::test]
async fn a_tenant_without_data_answers_header_rows() {
    let srv = TestServer::start().await;
    for (seg, header) in [
        (AUD.to_string(), AUD_HEADER),
        (format!("{AUCOUNTS}(period='D7')"), AUCOUNTS_HEADER),
        (format!("{AUDETAIL}(period='D7')"), AUDETAIL_HEADER),
        (format!("{AUDETAIL}(date=2024-03-31)"), AUDETAIL_HEADER),
    ] {
        let got = srv.download(TENANT_A, &rpath("v1.0", &seg)).await;
        assert_bytes(&got, &header_only(header), &seg);
    }
}

#[tokio::test]
async fn detail_downloads_keep_etags_and_links_across_ingests() {
    let srv = fixture_server().await;
    let path = rpath("v1.0", &format!("{AUDETAIL}(period='D7')"));
    let resp = srv.get(&path, &srv.reader(TENANT_A)).await;
    assert_eq!(resp.status().as_u16(), 302);
    let etag = header(&resp, "etag").unwrap();
    let location = header(&resp, "location").unwrap();
    let again = srv
        .client()
        .get(srv.url(&path))
        .bearer_auth(srv.reader(TENANT_A))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let first = srv.client().get(&location).send().await.unwrap();
    assert_eq!(header(&first, "etag"), Some(etag.clone()));
    let first = first.bytes().await.unwrap();
    // New data: a new version, while the old link still serves the old bytes.
    ingest_ok(&srv, TENANT_A, &[activity("u9", "teams", "2024-03-31")]).await;
    let resp = srv.get(&path, &srv.reader(TENANT_A)).await;
    assert_ne!(header(&resp, "etag").unwrap(), etag);
    let old = srv
        .client()
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(old, first);
}

#[tokio::test]
async fn metadata_declares_every_function_without_a_token() {
    let srv = TestServer::start().await;
    for v in ["v1.0", "beta"] {
        let resp = srv
            .client()
            .get(srv.url(&format!("/{v}/$metadata")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(
            header(&resp, "content-type")
                .unwrap()
                .starts_with("application/xml")
        );
        let text = resp.text().await.unwrap();
        for f in [AUC, AC, SUC, AUD, AUCOUNTS, AUDETAIL] {
            assert!(
                text.contains(&format!(
                    "<Function Name=\"{f}\" IsBound=\"true\" IsComposable=\"true\">"
                )),
                "{f}"
            );
        }
        assert!(text.contains("<Parameter Name=\"date\" Type=\"Edm.Date\""));
        assert!(text.contains("<Parameter Name=\"bindingParameter\" Type=\"graph.reportRoot\""));
        assert!(text.contains("<ReturnType Type=\"Edm.Stream\""));
        assert!(text.contains("<Property Name=\"userActivationCounts\" Type=\"Collection(graph.userActivationCounts)\" />"));
    }
}

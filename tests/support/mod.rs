//! Shared helpers for the integration tests (record builders, CSV/envelope assertions) and the
//! big hand-worked fixture whose expected report numbers are derived in the comments below.
//!
//! Ingest lines use the `"type"` discriminator: `{"type":"user","id":...}`.
#![allow(dead_code)]

use serde_json::{Value, json};

use crate::common::TestServer;

pub const BOM: &[u8] = b"\xEF\xBB\xBF";

pub const AUC: &str = "getOffice365ActivationsUserCounts";
pub const AC: &str = "getOffice365ActivationCounts";
pub const SUC: &str = "getOffice365ServicesUserCounts";
pub const LEGACY: &str = "Office365ActivationsUserCounts";

pub const AUC_HEADER: &str =
    "Report Refresh Date,Product Type,Assigned,Activated,Shared Computer Activation";
pub const AC_HEADER: &str =
    "Report Refresh Date,Product Type,Windows,Mac,Android,iOS,Windows 10 Mobile";
pub const SUC_HEADER: &str = "Report Refresh Date,Exchange Active,Exchange Inactive,OneDrive Active,OneDrive Inactive,SharePoint Active,SharePoint Inactive,Skype For Business Active,Skype For Business Inactive,Yammer Active,Yammer Inactive,Teams Active,Teams Inactive,Office 365 Active,Office 365 Inactive,Report Period";
pub const LEGACY_HEADER: &str = "Report Refresh Date,Product Type,Assigned,Activated";

/// The admin role template ids graph-facts.md lists as allowed to read usage reports.
pub const ADMIN_ROLES: [&str; 9] = [
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de", // Exchange Administrator
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c", // SharePoint Administrator
    "75941009-915a-4869-abe7-691bff18279e", // Skype for Business Administrator
    "69091246-20e8-4a56-aa4d-066075b2a7a8", // Teams Administrator
    "baf37b3a-610e-45da-9e62-d9d1e5e8914b", // Teams Communications Administrator
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451", // Global Reader
    "75934031-6c7e-415a-99d7-48dbd49e875e", // Usage Summary Reports Reader
    "4a5d8f65-41da-4de4-8968-e035b65339cf", // Reports Reader
];

/// `/{version}/reports/{segment}`
pub fn rpath(version: &str, segment: &str) -> String {
    format!("/{version}/reports/{segment}")
}

/// `/{version}/reports/getOffice365ServicesUserCounts(period='{p}')`
pub fn suc_path(version: &str, period: &str) -> String {
    format!("/{version}/reports/{SUC}(period='{period}')")
}

/// The exact bytes of a downloaded report: BOM, then every line terminated by CRLF.
pub fn csv(lines: &[&str]) -> Vec<u8> {
    let mut out = BOM.to_vec();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Shows bytes with line ends made visible, for assertion messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('\u{feff}', "<BOM>")
        .replace('\r', "\\r")
        .replace('\n', "\\n\n")
}

pub fn assert_bytes(got: &[u8], want: &[u8], ctx: &str) {
    assert!(
        got == want,
        "{ctx}: body differs\n--- got ---\n{}\n--- want ---\n{}",
        show(got),
        show(want)
    );
}

// ---------------------------------------------------------------------------------------------
// Record builders
// ---------------------------------------------------------------------------------------------

pub fn user(id: &str) -> Value {
    json!({"type":"user","id":id,"userPrincipalName":format!("{id}@contoso.example"),"displayName":format!("User {id}"),"deletedDate":null})
}

pub fn user_deleted(id: &str, deleted: &str) -> Value {
    json!({"type":"user","id":id,"userPrincipalName":format!("{id}@contoso.example"),"displayName":format!("User {id}"),"deletedDate":deleted})
}

pub fn license(user: &str, service: &str, assigned: &str, removed: Option<&str>) -> Value {
    json!({"type":"serviceLicense","userId":user,"service":service,"assignedDate":assigned,"removedDate":removed})
}

pub fn product(user: &str, product_type: &str, assigned: &str, removed: Option<&str>) -> Value {
    json!({"type":"productAssignment","userId":user,"productType":product_type,"assignedDate":assigned,"removedDate":removed})
}

pub fn activation(
    user: &str,
    product_type: &str,
    device: &str,
    platform: &str,
    activated: &str,
    deactivated: Option<&str>,
    shared: bool,
) -> Value {
    json!({"type":"activation","userId":user,"productType":product_type,"deviceId":device,"platform":platform,
           "activatedDate":activated,"deactivatedDate":deactivated,"sharedComputer":shared})
}

pub fn activity(user: &str, service: &str, date: &str) -> Value {
    json!({"type":"activity","userId":user,"service":service,"date":date})
}

pub fn refresh(date: &str) -> Value {
    json!({"type":"refresh","date":date})
}

/// One JSON object per line, each line ended by `\n`.
pub fn ndjson(records: &[Value]) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&serde_json::to_string(r).expect("json"));
        s.push('\n');
    }
    s
}

/// Turns concealed names on or off for `tid` (`PATCH /v1.0/admin/reportSettings`, 204).
pub async fn set_concealed(srv: &TestServer, tid: &str, on: bool) {
    let resp = srv
        .client()
        .patch(srv.url("/v1.0/admin/reportSettings"))
        .bearer_auth(srv.app_token(tid, &["ReportSettings.ReadWrite.All"]))
        .json(&json!({ "displayConcealedNames": on }))
        .send()
        .await
        .expect("patch reportSettings");
    assert_eq!(resp.status().as_u16(), 204, "PATCH reportSettings");
}

/// Ingests `records` for `tid`, asserts 200 and the `ingested` count, returns the JSON answer.
pub async fn ingest_ok(srv: &TestServer, tid: &str, records: &[Value]) -> Value {
    let resp = srv.ingest(tid, &ndjson(records)).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("ingest body");
    assert_eq!(status, 200, "ingest should succeed, body: {text}");
    let body: Value = serde_json::from_str(&text).expect("ingest answer is JSON");
    assert_eq!(
        body["ingested"],
        json!(records.len()),
        "ingested count in {text}"
    );
    body
}

pub fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_string())
}

/// Asserts a Graph error envelope with `status` and `code`; returns the `error` object.
/// Also checks the `request-id` header, the `Date` header, and that innerError carries the
/// same request id, a date, and the client-request-id key.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str, ctx: &str) -> Value {
    let got_status = resp.status().as_u16();
    let ct = header(&resp, "content-type").unwrap_or_default();
    let rid = header(&resp, "request-id");
    let date = header(&resp, "date");
    let text = resp.text().await.expect("error body");
    assert_eq!(got_status, status, "{ctx}: status (body: {text})");
    assert!(
        ct.starts_with("application/json"),
        "{ctx}: error content-type should be JSON, got {ct:?}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{ctx}: error body is not JSON ({e}): {text}"));
    let err = &body["error"];
    assert_eq!(err["code"], json!(code), "{ctx}: error code in {text}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{ctx}: error.message should be a non-empty string: {text}"
    );
    let inner = &err["innerError"];
    assert!(
        inner["date"].as_str().is_some_and(|d| !d.is_empty()),
        "{ctx}: innerError.date missing: {text}"
    );
    let rid = rid.unwrap_or_else(|| panic!("{ctx}: request-id header missing"));
    assert!(!rid.is_empty(), "{ctx}: empty request-id header");
    assert_eq!(
        inner["request-id"],
        json!(rid),
        "{ctx}: innerError.request-id should equal the request-id header: {text}"
    );
    assert!(
        inner.get("client-request-id").is_some(),
        "{ctx}: innerError.client-request-id missing: {text}"
    );
    assert!(date.is_some(), "{ctx}: Date header missing");
    err.clone()
}

/// The canonical data-less CSV for each report: BOM + header row + CRLF.
pub fn header_only(header: &str) -> Vec<u8> {
    csv(&[header])
}

// ---------------------------------------------------------------------------------------------
// The hand-worked fixture (tenant A). Report Refresh Date R = 2024-03-31 (set by a refresh
// record). Windows: D7 = 2024-03-25..31 (R-6..R), D30 = 03-02..31 (R-29..R),
// D90 = 2024-01-02..03-31 (R-89..R), D180 = 2023-10-04..2024-03-31 (R-179..R).
//
// Users (existence as of R: deletedDate null or after R):
//   u1 alice  exists
//   u2 bob    exists
//   u3 carol  deleted 2024-03-15 (before R)      -> gone, everything of hers ignored
//   u4 dave   deleted 2024-04-10 (after R)       -> EXISTS
//   u5 erin   exists
//   u6 frank  deleted 2024-03-31 (= R)           -> gone (must be *after* R to exist)
//   u7 grace  exists
//   u8 heidi  exists
//   u9 ivan   exists, no licenses, no products
//
// Product types (sorted by byte order: 'M' < 'O' < 'P' < 'V' < 'a'):
//   M = "MICROSOFT 365 APPS FOR ENTERPRISE"
//   O = "OFFICE 365, PRO PLUS"          (comma -> quoted in CSV)
//   P = "PROJECT CLIENT"                (activated but never assigned)
//   V = "VISIO \"PLAN 2\""              (quotes -> quoted and doubled in CSV)
//   a = "access runtime"                (lower case: sorts last in byte order)
//   FUTURE ONLY      (only a future-dated assignment -> no row)
//   DELETED ONLY     (only deleted users hold/activate it -> no row)
//   REMOVED PRODUCT  (assignment removed, activation deactivated -> no row)
//
// Product assignments (held: assigned <= R and (removed null or > R)):
//   u1 M 2024-01-01..       held
//   u2 M 2024-01-01..03-10  removed before R -> not held
//   u4 M 2024-02-01..04-05  removal after R -> held (u4 exists)
//   u5 M 2024-03-31..       assigned on R -> held
//   u3 M, u6 M              users gone -> ignored
//   u7 M 2024-04-02..       future-dated -> not held
//   u1 O 2024-01-01..       held
//   u2 O 2024-01-01..       held
//   u8 O 2024-02-01..03-31  removed on R -> not held
//   u7 V 2024-03-01..       held
//   u5 a 2024-01-01..       held
//   u8 FUTURE ONLY 2024-05-01..          not held
//   u3 DELETED ONLY 2024-01-01..         user gone
//   u2 REMOVED PRODUCT 2024-01-01..02-01 not held
//
// Activations (active: activated <= R and (deactivated null or > R)); only existing users:
//   A1  u1 M d1  windows  01-05..            active
//   A2  u1 M d2  mac      01-06..03-20       deactivated
//   A3  u1 M d3  ios      02-01..            active
//   A4  u4 M d4  windows  02-02..04-03 SHARED active (deactivation after R)
//   A5  u5 M d5  android  04-01..            future -> not active
//   A6  u2 M d6  windows  01-02..            active (u2 does not hold M)
//   A7  u3 M d7  windows                     user gone
//   A8  u6 M d8  mac                         user gone
//   A9  u7 M d9  windows  03-01..            active (u7's assignment is future)
//   A10 u1 M d10 windows10Mobile 03-01..03-31 deactivated on R -> not active
//   A11 u4 M d11 android  03-31..            activated on R -> active
//   B1  u2 O e1  windows10Mobile 03-01.. SHARED active
//   B2  u2 O e2  windows  03-01..            active
//   B3  u8 O e3  mac      03-01..            active (u8 no longer holds O)
//   B4  u1 O e4  windows  01-01..02-01 SHARED deactivated
//   C1  u5 P f1  windows  02-01..     SHARED active
//   C2  u5 P f2  mac      02-01..            active
//   C3  u3 P f3  ios                         user gone
//   D1  u7 V g1  ios      03-02..     SHARED active
//   D2  u2 V g2  android  01-01..03-31       deactivated on R
//   E1  u6 DELETED ONLY h1 windows           user gone
//   E2  u2 REMOVED PRODUCT h2 windows 01-01..02-15 deactivated
//
// ActivationsUserCounts (Assigned = holders; Activated = holders with an active activation of
// it; Shared = activated holders with an active shared one):
//   M: holders {u1,u4,u5}=3; activated u1(A1,A3), u4(A4,A11); u5 only future A5 -> 2;
//      shared u4(A4) -> 1                                    => 3,2,1
//   O: holders {u1,u2}=2; activated u2(B1,B2); u1 only B4 (deactivated) -> 1; shared u2(B1) => 2,1,1
//   P: no holders                                            => 0,0,0
//   V: holders {u7}; D1 active & shared                      => 1,1,1
//   a: holders {u5}; no activations                          => 1,0,0
// ActivationCounts (active activations of existing users, per platform W,Mac,And,iOS,W10M):
//   M: A1 W, A3 iOS, A4 W, A6 W, A9 W, A11 And               => 4,0,1,1,0
//   O: B1 W10M, B2 W, B3 Mac                                 => 1,1,0,0,1
//   P: C1 W, C2 Mac                                          => 1,1,0,0,0
//   V: D1 iOS                                                => 0,0,0,1,0
//   a: none                                                  => 0,0,0,0,0
//
// Service licenses (held as of R) and activity:
//   exchange: u1,u2,u4,u5,u7 held (all 2023-01-01..); u8 removed 03-20; u3,u6 gone.
//             activity u1 03-31, u2 03-25 (R-6), u4 03-24 (R-7), u5 03-02 (R-29), u7 03-01 (R-30),
//             u8 03-30 (license removed -> ignored), u3 03-31, u6 03-30 (gone), u9 03-31 (unlicensed)
//             D7 {u1,u2}=2/3   D30 {u1,u2,u4,u5}=4/1   D90 5/0   D180 5/0
//   oneDrive: u1 assigned 04-01 (future, not held); u2 held (removed 04-15, after R); u5 held.
//             activity u1 03-31 (not licensed), u2 04-01 (after R: outside every window), u5 03-28
//             every period 1/1
//   sharePoint: nobody licensed; activity u1 03-30, u9 03-30 ignored -> 0/0
//   skypeForBusiness: u4, u7 held. activity u4 01-02 (R-89) and 01-01 (R-90), u7 2023-10-04 (R-179)
//             D7 0/2   D30 0/2   D90 {u4}=1/1   D180 {u4,u7}=2/0
//   yammer:   u8 held (2023-01-01..), u1 assigned 03-31 (= R, held).
//             activity u1 03-31, u8 2024-01-01 (R-90)
//             D7 1/1   D30 1/1   D90 1/1   D180 2/0
//   teams:    u1, u2 held; u5 removed 03-31 (= R, not held); u3 gone.
//             activity u1 03-26 (twice), 03-27; u2 2023-10-03 (R-180); u5 03-31 (unlicensed); u3 03-29
//             every period 1/1
//   Office 365: licensed = {u1,u2,u4,u5,u7,u8} = 6 (u9 holds nothing)
//             D7:   u1 (ex), u2 (ex), u5 (oneDrive 03-28)                 -> 3/3
//             D30:  + u4 (ex 03-24)                                        -> 4/2
//             D90:  + u7 (ex 03-01)                                        -> 5/1
//             D180: + u8 (yammer 01-01; its exchange activity is unlicensed) -> 6/0
// ---------------------------------------------------------------------------------------------

pub const P_M: &str = "MICROSOFT 365 APPS FOR ENTERPRISE";
pub const P_O: &str = "OFFICE 365, PRO PLUS";
pub const P_P: &str = "PROJECT CLIENT";
pub const P_V: &str = "VISIO \"PLAN 2\"";
pub const P_A: &str = "access runtime";

pub fn fixture() -> Vec<Value> {
    vec![
        user("u1"),
        user("u2"),
        user_deleted("u3", "2024-03-15"),
        user_deleted("u4", "2024-04-10"),
        user("u5"),
        user_deleted("u6", "2024-03-31"),
        user("u7"),
        user("u8"),
        user("u9"),
        // product assignments
        product("u1", P_M, "2024-01-01", None),
        product("u2", P_M, "2024-01-01", Some("2024-03-10")),
        product("u4", P_M, "2024-02-01", Some("2024-04-05")),
        product("u5", P_M, "2024-03-31", None),
        product("u3", P_M, "2024-01-01", None),
        product("u6", P_M, "2024-01-01", None),
        product("u7", P_M, "2024-04-02", None),
        product("u1", P_O, "2024-01-01", None),
        product("u2", P_O, "2024-01-01", None),
        product("u8", P_O, "2024-02-01", Some("2024-03-31")),
        product("u7", P_V, "2024-03-01", None),
        product("u5", P_A, "2024-01-01", None),
        product("u8", "FUTURE ONLY", "2024-05-01", None),
        product("u3", "DELETED ONLY", "2024-01-01", None),
        product("u2", "REMOVED PRODUCT", "2024-01-01", Some("2024-02-01")),
        // activations
        activation("u1", P_M, "d1", "windows", "2024-01-05", None, false),
        activation(
            "u1",
            P_M,
            "d2",
            "mac",
            "2024-01-06",
            Some("2024-03-20"),
            false,
        ),
        activation("u1", P_M, "d3", "ios", "2024-02-01", None, false),
        activation(
            "u4",
            P_M,
            "d4",
            "windows",
            "2024-02-02",
            Some("2024-04-03"),
            true,
        ),
        activation("u5", P_M, "d5", "android", "2024-04-01", None, false),
        activation("u2", P_M, "d6", "windows", "2024-01-02", None, false),
        activation("u3", P_M, "d7", "windows", "2024-01-02", None, false),
        activation("u6", P_M, "d8", "mac", "2024-01-02", None, false),
        activation("u7", P_M, "d9", "windows", "2024-03-01", None, false),
        activation(
            "u1",
            P_M,
            "d10",
            "windows10Mobile",
            "2024-03-01",
            Some("2024-03-31"),
            false,
        ),
        activation("u4", P_M, "d11", "android", "2024-03-31", None, false),
        activation("u2", P_O, "e1", "windows10Mobile", "2024-03-01", None, true),
        activation("u2", P_O, "e2", "windows", "2024-03-01", None, false),
        activation("u8", P_O, "e3", "mac", "2024-03-01", None, false),
        activation(
            "u1",
            P_O,
            "e4",
            "windows",
            "2024-01-01",
            Some("2024-02-01"),
            true,
        ),
        activation("u5", P_P, "f1", "windows", "2024-02-01", None, true),
        activation("u5", P_P, "f2", "mac", "2024-02-01", None, false),
        activation("u3", P_P, "f3", "ios", "2024-02-01", None, false),
        activation("u7", P_V, "g1", "ios", "2024-03-02", None, true),
        activation(
            "u2",
            P_V,
            "g2",
            "android",
            "2024-01-01",
            Some("2024-03-31"),
            false,
        ),
        activation(
            "u6",
            "DELETED ONLY",
            "h1",
            "windows",
            "2024-01-01",
            None,
            false,
        ),
        activation(
            "u2",
            "REMOVED PRODUCT",
            "h2",
            "windows",
            "2024-01-01",
            Some("2024-02-15"),
            false,
        ),
        // service licenses
        license("u1", "exchange", "2023-01-01", None),
        license("u2", "exchange", "2023-01-01", None),
        license("u4", "exchange", "2023-01-01", None),
        license("u5", "exchange", "2023-01-01", None),
        license("u7", "exchange", "2023-01-01", None),
        license("u8", "exchange", "2023-01-01", Some("2024-03-20")),
        license("u3", "exchange", "2023-01-01", None),
        license("u6", "exchange", "2023-01-01", None),
        license("u1", "oneDrive", "2024-04-01", None),
        license("u2", "oneDrive", "2023-01-01", Some("2024-04-15")),
        license("u5", "oneDrive", "2023-01-01", None),
        license("u4", "skypeForBusiness", "2023-01-01", None),
        license("u7", "skypeForBusiness", "2023-01-01", None),
        license("u8", "yammer", "2023-01-01", None),
        license("u1", "yammer", "2024-03-31", None),
        license("u1", "teams", "2023-01-01", None),
        license("u2", "teams", "2023-01-01", None),
        license("u5", "teams", "2023-01-01", Some("2024-03-31")),
        license("u3", "teams", "2023-01-01", None),
        // activity
        activity("u1", "exchange", "2024-03-31"),
        activity("u2", "exchange", "2024-03-25"),
        activity("u4", "exchange", "2024-03-24"),
        activity("u5", "exchange", "2024-03-02"),
        activity("u7", "exchange", "2024-03-01"),
        activity("u8", "exchange", "2024-03-30"),
        activity("u3", "exchange", "2024-03-31"),
        activity("u6", "exchange", "2024-03-30"),
        activity("u9", "exchange", "2024-03-31"),
        activity("u1", "oneDrive", "2024-03-31"),
        activity("u2", "oneDrive", "2024-04-01"),
        activity("u5", "oneDrive", "2024-03-28"),
        activity("u1", "sharePoint", "2024-03-30"),
        activity("u9", "sharePoint", "2024-03-30"),
        activity("u4", "skypeForBusiness", "2024-01-02"),
        activity("u4", "skypeForBusiness", "2024-01-01"),
        activity("u7", "skypeForBusiness", "2023-10-04"),
        activity("u1", "yammer", "2024-03-31"),
        activity("u8", "yammer", "2024-01-01"),
        activity("u1", "teams", "2024-03-26"),
        activity("u1", "teams", "2024-03-26"),
        activity("u1", "teams", "2024-03-27"),
        activity("u2", "teams", "2023-10-03"),
        activity("u5", "teams", "2024-03-31"),
        activity("u3", "teams", "2024-03-29"),
        refresh("2024-03-31"),
    ]
}

pub fn fixture_auc() -> Vec<u8> {
    csv(&[
        AUC_HEADER,
        "2024-03-31,MICROSOFT 365 APPS FOR ENTERPRISE,3,2,1",
        "2024-03-31,\"OFFICE 365, PRO PLUS\",2,1,1",
        "2024-03-31,PROJECT CLIENT,0,0,0",
        "2024-03-31,\"VISIO \"\"PLAN 2\"\"\",1,1,1",
        "2024-03-31,access runtime,1,0,0",
    ])
}

pub fn fixture_legacy() -> Vec<u8> {
    csv(&[
        LEGACY_HEADER,
        "2024-03-31,MICROSOFT 365 APPS FOR ENTERPRISE,3,2",
        "2024-03-31,\"OFFICE 365, PRO PLUS\",2,1",
        "2024-03-31,PROJECT CLIENT,0,0",
        "2024-03-31,\"VISIO \"\"PLAN 2\"\"\",1,1",
        "2024-03-31,access runtime,1,0",
    ])
}

pub fn fixture_ac() -> Vec<u8> {
    csv(&[
        AC_HEADER,
        "2024-03-31,MICROSOFT 365 APPS FOR ENTERPRISE,4,0,1,1,0",
        "2024-03-31,\"OFFICE 365, PRO PLUS\",1,1,0,0,1",
        "2024-03-31,PROJECT CLIENT,1,1,0,0,0",
        "2024-03-31,\"VISIO \"\"PLAN 2\"\"\",0,0,0,1,0",
        "2024-03-31,access runtime,0,0,0,0,0",
    ])
}

/// ServicesUserCounts for `period` ("D7", "D30", "D90", "D180").
pub fn fixture_suc(period: &str) -> Vec<u8> {
    let row = match period {
        //             Ex    OD    SP    SfB   Yam   Teams O365  period
        "D7" => "2024-03-31,2,3,1,1,0,0,0,2,1,1,1,1,3,3,7",
        "D30" => "2024-03-31,4,1,1,1,0,0,0,2,1,1,1,1,4,2,30",
        "D90" => "2024-03-31,5,0,1,1,0,0,1,1,1,1,1,1,5,1,90",
        "D180" => "2024-03-31,5,0,1,1,0,0,2,0,2,0,1,1,6,0,180",
        other => panic!("no fixture for {other}"),
    };
    csv(&[SUC_HEADER, row])
}

pub fn fixture_auc_json() -> Value {
    let r = |p: &str, a: i64, b: i64, c: i64| json!({"reportRefreshDate":"2024-03-31","productType":p,"assigned":a,"activated":b,"sharedComputerActivation":c});
    json!([
        r(P_M, 3, 2, 1),
        r(P_O, 2, 1, 1),
        r(P_P, 0, 0, 0),
        r(P_V, 1, 1, 1),
        r(P_A, 1, 0, 0)
    ])
}

pub fn fixture_legacy_json() -> Value {
    let r = |p: &str, a: i64, b: i64| json!({"reportRefreshDate":"2024-03-31","productType":p,"assigned":a,"activated":b});
    json!([
        r(P_M, 3, 2),
        r(P_O, 2, 1),
        r(P_P, 0, 0),
        r(P_V, 1, 1),
        r(P_A, 1, 0)
    ])
}

pub fn fixture_ac_json() -> Value {
    let r = |p: &str, w: i64, m: i64, a: i64, i: i64, w10: i64| json!({"reportRefreshDate":"2024-03-31","productType":p,"windows":w,"mac":m,"android":a,"ios":i,"windows10Mobile":w10});
    json!([
        r(P_M, 4, 0, 1, 1, 0),
        r(P_O, 1, 1, 0, 0, 1),
        r(P_P, 1, 1, 0, 0, 0),
        r(P_V, 0, 0, 0, 1, 0),
        r(P_A, 0, 0, 0, 0, 0)
    ])
}

pub fn fixture_suc_json(period: &str) -> Value {
    let (v, n): ([i64; 14], &str) = match period {
        "D7" => ([2, 3, 1, 1, 0, 0, 0, 2, 1, 1, 1, 1, 3, 3], "7"),
        "D30" => ([4, 1, 1, 1, 0, 0, 0, 2, 1, 1, 1, 1, 4, 2], "30"),
        "D90" => ([5, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 5, 1], "90"),
        "D180" => ([5, 0, 1, 1, 0, 0, 2, 0, 2, 0, 1, 1, 6, 0], "180"),
        other => panic!("no fixture for {other}"),
    };
    json!([{
        "reportRefreshDate": "2024-03-31",
        "exchangeActive": v[0], "exchangeInactive": v[1],
        "oneDriveActive": v[2], "oneDriveInactive": v[3],
        "sharePointActive": v[4], "sharePointInactive": v[5],
        "skypeForBusinessActive": v[6], "skypeForBusinessInactive": v[7],
        "yammerActive": v[8], "yammerInactive": v[9],
        "teamsActive": v[10], "teamsInactive": v[11],
        "office365Active": v[12], "office365Inactive": v[13],
        "reportPeriod": n,
    }])
}

/// GETs a beta report with `$format=application/json` and a reader token; asserts a 200 JSON
/// answer with the expected `@odata.context` entity name; returns `value`.
pub async fn beta_json(srv: &TestServer, tid: &str, path: &str, entity: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{path}{sep}$format=application/json");
    let resp = srv.get(&url, &srv.reader(tid)).await;
    json_answer(srv, resp, entity, &url).await
}

/// Checks a 200 JSON report answer and returns its `value`.
pub async fn json_answer(
    srv: &TestServer,
    resp: reqwest::Response,
    entity: &str,
    ctx: &str,
) -> Value {
    let status = resp.status().as_u16();
    let ct = header(&resp, "content-type").unwrap_or_default();
    let text = resp.text().await.expect("json body");
    assert_eq!(status, 200, "{ctx}: status (body: {text})");
    assert!(
        ct.starts_with("application/json"),
        "{ctx}: content-type {ct:?}"
    );
    let body: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(
        body["@odata.context"],
        json!(format!(
            "{}/beta/$metadata#Collection(microsoft.graph.{entity})",
            srv.base
        )),
        "{ctx}: @odata.context"
    );
    assert!(
        body["value"].is_array(),
        "{ctx}: value should be an array: {text}"
    );
    body["value"].clone()
}

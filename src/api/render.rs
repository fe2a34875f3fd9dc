//! Graph's wire formats for computed reports: CSV (UTF-8 BOM, RFC 4180, CRLF) and the beta
//! JSON collections. Only the API layer knows these shapes.

use serde_json::{Value, json};

use super::odata::Function;
use crate::model::Day;
use crate::reports::{
    ActivationCountsRow, ActivationsUserCountsRow, Report, ServicesUserCountsRow,
};

/// A computed report, whatever its function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Computed {
    ActivationsUserCounts(Report<ActivationsUserCountsRow>),
    ActivationCounts(Report<ActivationCountsRow>),
    ServicesUserCounts(Report<ServicesUserCountsRow>),
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

const SERVICES_HEADER: [&str; 16] = [
    "Report Refresh Date",
    "Exchange Active",
    "Exchange Inactive",
    "OneDrive Active",
    "OneDrive Inactive",
    "SharePoint Active",
    "SharePoint Inactive",
    "Skype For Business Active",
    "Skype For Business Inactive",
    "Yammer Active",
    "Yammer Inactive",
    "Teams Active",
    "Teams Inactive",
    "Office 365 Active",
    "Office 365 Inactive",
    "Report Period",
];
const SERVICES_JSON: [&str; 7] = [
    "exchange",
    "oneDrive",
    "sharePoint",
    "skypeForBusiness",
    "yammer",
    "teams",
    "office365",
];

fn date(d: Option<Day>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// Renders the CSV file a download serves: BOM, header row, data rows, CRLF after each.
pub fn csv(function: Function, report: &Computed) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(BOM.to_vec());
    // Writing to a Vec cannot fail; the csv crate only reports I/O errors of its sink.
    let mut row = |fields: &[&str]| {
        let _ = w.write_record(fields);
    };
    match report {
        Computed::ActivationsUserCounts(r) => {
            let legacy = function == Function::LegacyActivationsUserCounts;
            let header: &[&str] = if legacy {
                &[
                    "Report Refresh Date",
                    "Product Type",
                    "Assigned",
                    "Activated",
                ]
            } else {
                &[
                    "Report Refresh Date",
                    "Product Type",
                    "Assigned",
                    "Activated",
                    "Shared Computer Activation",
                ]
            };
            row(header);
            let d = date(r.refresh_date);
            for x in &r.rows {
                let (a, b, c) = (
                    x.assigned.to_string(),
                    x.activated.to_string(),
                    x.shared_computer_activation.to_string(),
                );
                if legacy {
                    row(&[&d, &x.product_type, &a, &b]);
                } else {
                    row(&[&d, &x.product_type, &a, &b, &c]);
                }
            }
        }
        Computed::ActivationCounts(r) => {
            row(&[
                "Report Refresh Date",
                "Product Type",
                "Windows",
                "Mac",
                "Android",
                "iOS",
                "Windows 10 Mobile",
            ]);
            let d = date(r.refresh_date);
            for x in &r.rows {
                let n: Vec<String> = x.platforms.iter().map(u64::to_string).collect();
                row(&[&d, &x.product_type, &n[0], &n[1], &n[2], &n[3], &n[4]]);
            }
        }
        Computed::ServicesUserCounts(r) => {
            row(&SERVICES_HEADER);
            let d = date(r.refresh_date);
            for x in &r.rows {
                let mut fields = vec![d.clone()];
                for i in 0..7 {
                    fields.push(x.active[i].to_string());
                    fields.push(x.inactive[i].to_string());
                }
                fields.push(x.period_days.to_string());
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                row(&refs);
            }
        }
    }
    w.into_inner().unwrap_or_default()
}

/// The OData type name of a function's rows.
fn entity(function: Function, report: &Computed) -> &'static str {
    match (function, report) {
        (_, Computed::ActivationCounts(_)) => "office365ActivationCounts",
        (_, Computed::ServicesUserCounts(_)) => "office365ServicesUserCounts",
        (_, Computed::ActivationsUserCounts(_)) => "office365ActivationsUserCounts",
    }
}

/// Renders the JSON collection: `@odata.context` (`{base}/{version}/$metadata#Collection(...)`)
/// and `value`.
pub fn json(function: Function, report: &Computed, base: &str, version: &str) -> Value {
    let value: Vec<Value> = match report {
        Computed::ActivationsUserCounts(r) => r
            .rows
            .iter()
            .map(|x| {
                let mut v = json!({
                    "reportRefreshDate": date(r.refresh_date),
                    "productType": x.product_type,
                    "assigned": x.assigned,
                    "activated": x.activated,
                });
                if function != Function::LegacyActivationsUserCounts {
                    v["sharedComputerActivation"] = json!(x.shared_computer_activation);
                }
                v
            })
            .collect(),
        Computed::ActivationCounts(r) => r
            .rows
            .iter()
            .map(|x| {
                json!({
                    "reportRefreshDate": date(r.refresh_date),
                    "productType": x.product_type,
                    "windows": x.platforms[0],
                    "mac": x.platforms[1],
                    "android": x.platforms[2],
                    "ios": x.platforms[3],
                    "windows10Mobile": x.platforms[4],
                })
            })
            .collect(),
        Computed::ServicesUserCounts(r) => r
            .rows
            .iter()
            .map(|x| {
                let mut m = serde_json::Map::new();
                m.insert("reportRefreshDate".into(), json!(date(r.refresh_date)));
                for (i, name) in SERVICES_JSON.iter().enumerate() {
                    m.insert(format!("{name}Active"), json!(x.active[i]));
                    m.insert(format!("{name}Inactive"), json!(x.inactive[i]));
                }
                m.insert("reportPeriod".into(), json!(x.period_days.to_string()));
                Value::Object(m)
            })
            .collect(),
    };
    json!({
        "@odata.context": format!("{base}/{version}/$metadata#Collection(microsoft.graph.{})", entity(function, report)),
        "value": value,
    })
}

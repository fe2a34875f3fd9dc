//! Parsing of the OData function segment of a report URL, in every form real clients send:
//! `getX`, `getX()`, `microsoft.graph.getX(...)`, `period='D7'`, `period=%27D7%27`,
//! `period=D7`, `period='d7'`, `date=2026-11-01` (quoted or not), a trailing `/`, and the
//! 2017 legacy names without `get`. Functions are looked up in the report catalogue.

use percent_encoding::percent_decode_str;

use crate::model::Day;
use crate::reports::{Args, Call, Params, Period, ReportId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ODataError {
    /// Unknown function or malformed segment: Graph's "Resource not found for the segment".
    #[error("Resource not found for the segment '{0}'.")]
    UnknownSegment(String),
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    InvalidArgument(String),
}

const PERIODS: &str = "Supported values are D7, D30, D90 and D180.";

/// Parses the raw (still percent-encoded) path after `/reports/`.
pub fn parse_report_segment(raw: &str) -> Result<Call, ODataError> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ODataError::Syntax("The request URL is not valid UTF-8.".into()))?;
    let seg = decoded.strip_suffix('/').unwrap_or(&decoded);
    let (name_part, args) = match seg.find('(') {
        Some(open) => {
            let Some(inner) = seg[open + 1..].strip_suffix(')') else {
                return Err(ODataError::UnknownSegment(seg.to_string()));
            };
            (&seg[..open], Some(inner))
        }
        None => (seg, None),
    };
    let name = strip_prefix_ci(name_part, "microsoft.graph.").unwrap_or(name_part);
    let report = ReportId::lookup(name)
        .filter(|_| !name.contains('/'))
        .ok_or_else(|| ODataError::UnknownSegment(name_part.to_string()))?;
    let def = report.def();

    let mut parsed = Args::None;
    for (key, value) in args.map(split_args).transpose()?.unwrap_or_default() {
        let is_period = key.eq_ignore_ascii_case("period");
        let is_date = key.eq_ignore_ascii_case("date");
        let allowed = match def.params {
            Params::None => false,
            Params::Period => is_period,
            Params::PeriodOrDate => is_period || is_date,
        };
        if !allowed {
            return Err(ODataError::Syntax(format!(
                "The parameter '{key}' is not defined for the function '{}'.",
                def.name
            )));
        }
        if parsed != Args::None {
            return Err(ODataError::Syntax(format!(
                "The function '{}' takes one of period or date, once.",
                def.name
            )));
        }
        parsed = if is_period {
            Args::Period(Period::parse(&value).ok_or_else(|| {
                ODataError::InvalidArgument(format!(
                    "Invalid value '{value}' for the parameter 'period'. {PERIODS}"
                ))
            })?)
        } else {
            Args::Date(Day::parse(&value).map_err(|_| {
                ODataError::InvalidArgument(format!(
                    "Invalid date value specified: {value}. Use the format yyyy-MM-dd."
                ))
            })?)
        };
    }
    if parsed == Args::None {
        match def.params {
            Params::None => {}
            Params::Period => {
                return Err(ODataError::InvalidArgument(format!(
                    "The parameter 'period' is required. {PERIODS}"
                )));
            }
            Params::PeriodOrDate => {
                return Err(ODataError::InvalidArgument(format!(
                    "The parameter 'period' or 'date' is required. {PERIODS} A date is yyyy-MM-dd within the last 28 days."
                )));
            }
        }
    }
    Ok(Call {
        report,
        args: parsed,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// Splits `a='x',b=y` into pairs; single-quoted values may contain `,` and `''` for a quote.
fn split_args(inner: &str) -> Result<Vec<(String, String)>, ODataError> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            ODataError::Syntax(format!("Malformed function parameters: '{inner}'."))
        })?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, remainder) = if let Some(q) = after.strip_prefix('\'') {
            let mut value = String::new();
            let mut chars = q.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        value.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    value.push(c);
                }
            }
            let end = end.ok_or_else(|| {
                ODataError::Syntax(format!("Unterminated string literal in '{inner}'."))
            })?;
            (value, &q[end..])
        } else {
            let stop = after.find(',').unwrap_or(after.len());
            (after[..stop].trim().to_string(), &after[stop..])
        };
        if key.is_empty() {
            return Err(ODataError::Syntax(format!(
                "Malformed function parameters: '{inner}'."
            )));
        }
        out.push((key, value));
        let remainder = remainder.trim_start();
        rest = match remainder.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if remainder.is_empty() => remainder,
            None => {
                return Err(ODataError::Syntax(format!(
                    "Malformed function parameters: '{inner}'."
                )));
            }
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Call {
        parse_report_segment(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn id(name: &str) -> ReportId {
        ReportId::lookup(name).unwrap()
    }

    #[test]
    fn every_client_form_parses() {
        for s in [
            "getOffice365ActivationsUserCounts",
            "getOffice365ActivationsUserCounts()",
            "getOffice365ActivationsUserCounts/",
            "microsoft.graph.getOffice365ActivationsUserCounts()",
            "GETOFFICE365ACTIVATIONSUSERCOUNTS",
        ] {
            assert_eq!(ok(s).report, id("getOffice365ActivationsUserCounts"), "{s}");
        }
        for s in [
            "getOffice365ServicesUserCounts(period='D7')",
            "getOffice365ServicesUserCounts(period=%27D7%27)",
            "getOffice365ServicesUserCounts(period=D7)",
            "microsoft.graph.getOffice365ServicesUserCounts(period='D7')/",
            "getOffice365ServicesUserCounts(period%3D%27D7%27)",
            "getOffice365ServicesUserCounts( period = 'd7' )",
            "getOffice365ServicesUserCounts(period='d7')",
        ] {
            assert_eq!(
                ok(s),
                Call {
                    report: id("getOffice365ServicesUserCounts"),
                    args: Args::Period(Period::D7)
                },
                "{s}"
            );
        }
        let d = Day::parse("2026-11-02").unwrap();
        for s in [
            "getOffice365ActiveUserDetail(date=2026-11-02)",
            "getOffice365ActiveUserDetail(date='2026-11-02')",
            "getOffice365ActiveUserDetail(date=%272026-11-02%27)",
            "microsoft.graph.getOffice365ActiveUserDetail(Date=2026-11-02)",
        ] {
            assert_eq!(ok(s).args, Args::Date(d), "{s}");
        }
        assert_eq!(
            ok("Office365ActivationsUserCounts").report,
            id("Office365ActivationsUserCounts")
        );
    }

    #[test]
    fn errors_are_classified() {
        assert!(
            matches!(parse_report_segment("getFoo()"), Err(ODataError::UnknownSegment(s)) if s == "getFoo")
        );
        assert!(matches!(
            parse_report_segment("getOffice365ServicesUserCounts(period='D8')"),
            Err(ODataError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ServicesUserCounts"),
            Err(ODataError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ActiveUserDetail"),
            Err(ODataError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ActiveUserDetail(date=2026-13-01)"),
            Err(ODataError::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ActiveUserDetail(date=2026-11-01,period='D7')"),
            Err(ODataError::Syntax(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ServicesUserCounts(date=2026-11-01)"),
            Err(ODataError::Syntax(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ServicesUserCounts(period='D7"),
            Err(ODataError::UnknownSegment(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ServicesUserCounts(period='D7)"),
            Err(ODataError::Syntax(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ActivationCounts(period='D7')"),
            Err(ODataError::Syntax(_))
        ));
        assert!(matches!(
            parse_report_segment("getOffice365ActivationCounts/content"),
            Err(ODataError::UnknownSegment(_))
        ));
        assert!(parse_report_segment("%ff").is_err());
    }
}

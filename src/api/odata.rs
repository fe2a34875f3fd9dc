//! Parsing of the OData function segment of a report URL, in every form real clients send:
//! `getX`, `getX()`, `microsoft.graph.getX(...)`, `period='D7'`, `period=%27D7%27`, `period=D7`,
//! a trailing `/`, and the 2017 legacy names without `get`.

use percent_encoding::percent_decode_str;

use crate::reports::Period;

/// The report functions reportroot serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    ActivationsUserCounts,
    ActivationCounts,
    ServicesUserCounts,
    /// `/reports/Office365ActivationsUserCounts` (2017): 4-column CSV on v1.0, JSON on beta.
    LegacyActivationsUserCounts,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::ActivationsUserCounts => "getOffice365ActivationsUserCounts",
            Function::ActivationCounts => "getOffice365ActivationCounts",
            Function::ServicesUserCounts => "getOffice365ServicesUserCounts",
            Function::LegacyActivationsUserCounts => "Office365ActivationsUserCounts",
        }
    }

    fn lookup(name: &str) -> Option<Function> {
        [
            Function::ActivationsUserCounts,
            Function::ActivationCounts,
            Function::ServicesUserCounts,
            Function::LegacyActivationsUserCounts,
        ]
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    fn takes_period(self) -> bool {
        self == Function::ServicesUserCounts
    }
}

/// A parsed report call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportCall {
    pub function: Function,
    pub period: Option<Period>,
}

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

/// Parses the raw (still percent-encoded) path after `/reports/`.
pub fn parse_report_segment(raw: &str) -> Result<ReportCall, ODataError> {
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
    let function = Function::lookup(name)
        .filter(|_| !name.contains('/'))
        .ok_or_else(|| ODataError::UnknownSegment(name_part.to_string()))?;

    let mut period = None;
    for arg in args.map(split_args).transpose()?.unwrap_or_default() {
        let (key, value) = arg;
        if !key.eq_ignore_ascii_case("period") || !function.takes_period() {
            return Err(ODataError::Syntax(format!(
                "The parameter '{key}' is not defined for the function '{}'.",
                function.name()
            )));
        }
        if period.is_some() {
            return Err(ODataError::Syntax(
                "The parameter 'period' is given twice.".into(),
            ));
        }
        period = Some(Period::parse(&value).ok_or_else(|| {
            ODataError::InvalidArgument(format!(
                "Invalid value '{value}' for the parameter 'period'. Supported values are D7, D30, D90 and D180."
            ))
        })?);
    }
    if function.takes_period() && period.is_none() {
        return Err(ODataError::InvalidArgument(
            "The parameter 'period' is required. Supported values are D7, D30, D90 and D180."
                .into(),
        ));
    }
    Ok(ReportCall { function, period })
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

    fn ok(s: &str) -> ReportCall {
        parse_report_segment(s).unwrap_or_else(|e| panic!("{s}: {e}"))
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
            assert_eq!(ok(s).function, Function::ActivationsUserCounts, "{s}");
        }
        for s in [
            "getOffice365ServicesUserCounts(period='D7')",
            "getOffice365ServicesUserCounts(period=%27D7%27)",
            "getOffice365ServicesUserCounts(period=D7)",
            "microsoft.graph.getOffice365ServicesUserCounts(period='D7')/",
            "getOffice365ServicesUserCounts(period%3D%27D7%27)",
            "getOffice365ServicesUserCounts( period = 'd7' )",
        ] {
            assert_eq!(
                ok(s),
                ReportCall {
                    function: Function::ServicesUserCounts,
                    period: Some(Period::D7)
                },
                "{s}"
            );
        }
        assert_eq!(
            ok("Office365ActivationsUserCounts").function,
            Function::LegacyActivationsUserCounts
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

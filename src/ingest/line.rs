//! Parsing of one NDJSON line into a [`Record`], with errors that name the field.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::IngestError;
use crate::model::{
    Activation, Day, EMAIL_APPS, MAX_COUNTERS, Mailbox, MailboxState, OUTLOOK_VERSIONS, Platform,
    RecipientType, Record, Service, Site, SiteKind, SiteState, Span, Workload,
};

/// Any JSON value, borrowed where possible, remembering only what the contract needs.
#[derive(Debug)]
enum Val<'a> {
    Null,
    Bool(bool),
    Str(Cow<'a, str>),
    Array(Vec<Val<'a>>),
    /// A non-negative integer.
    Num(u64),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Val<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Val::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Val::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Val::Bool(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Val::Other("a number"))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Val::Num(v))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Val::Other("a number"))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Val::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Val::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Val::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Val<'a>>()? {
                    out.push(v);
                }
                Ok(Val::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Val::Other("an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Val<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Str(_) => "a string",
            Val::Array(_) => "an array",
            Val::Num(_) => "a number",
            Val::Other(k) => k,
        }
    }
}

/// The union of every record type's fields. Unknown fields are ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Val<'a>>,
    #[serde(borrow)]
    id: Option<Val<'a>>,
    #[serde(borrow)]
    user_principal_name: Option<Val<'a>>,
    #[serde(borrow)]
    display_name: Option<Val<'a>>,
    #[serde(borrow)]
    deleted_date: Option<Val<'a>>,
    #[serde(borrow)]
    user_id: Option<Val<'a>>,
    #[serde(borrow)]
    service: Option<Val<'a>>,
    #[serde(borrow)]
    assigned_date: Option<Val<'a>>,
    #[serde(borrow)]
    removed_date: Option<Val<'a>>,
    #[serde(borrow)]
    product_type: Option<Val<'a>>,
    #[serde(borrow)]
    device_id: Option<Val<'a>>,
    #[serde(borrow)]
    platform: Option<Val<'a>>,
    #[serde(borrow)]
    activated_date: Option<Val<'a>>,
    #[serde(borrow)]
    deactivated_date: Option<Val<'a>>,
    #[serde(borrow)]
    shared_computer: Option<Val<'a>>,
    #[serde(borrow)]
    date: Option<Val<'a>>,
    #[serde(borrow)]
    dates: Option<Val<'a>>,
    #[serde(borrow)]
    workload: Option<Val<'a>>,
    #[serde(borrow)]
    send: Option<Val<'a>>,
    #[serde(borrow)]
    receive: Option<Val<'a>>,
    #[serde(borrow)]
    read: Option<Val<'a>>,
    #[serde(borrow)]
    meeting_created: Option<Val<'a>>,
    #[serde(borrow)]
    meeting_interacted: Option<Val<'a>>,
    #[serde(borrow)]
    viewed_or_edited: Option<Val<'a>>,
    #[serde(borrow)]
    synced: Option<Val<'a>>,
    #[serde(borrow)]
    shared_internally: Option<Val<'a>>,
    #[serde(borrow)]
    shared_externally: Option<Val<'a>>,
    #[serde(borrow)]
    visited_pages: Option<Val<'a>>,
    #[serde(borrow)]
    created_date: Option<Val<'a>>,
    #[serde(borrow)]
    recipient_type: Option<Val<'a>>,
    #[serde(borrow)]
    issue_warning_quota: Option<Val<'a>>,
    #[serde(borrow)]
    prohibit_send_quota: Option<Val<'a>>,
    #[serde(borrow)]
    prohibit_send_receive_quota: Option<Val<'a>>,
    #[serde(borrow)]
    deleted_item_quota: Option<Val<'a>>,
    #[serde(borrow)]
    has_archive: Option<Val<'a>>,
    #[serde(borrow)]
    item_count: Option<Val<'a>>,
    #[serde(borrow)]
    storage_used: Option<Val<'a>>,
    #[serde(borrow)]
    deleted_item_count: Option<Val<'a>>,
    #[serde(borrow)]
    deleted_item_size: Option<Val<'a>>,
    #[serde(rename = "kind", borrow)]
    site_kind: Option<Val<'a>>,
    #[serde(borrow)]
    url: Option<Val<'a>>,
    #[serde(borrow)]
    owner_id: Option<Val<'a>>,
    #[serde(borrow)]
    root_web_template: Option<Val<'a>>,
    #[serde(borrow)]
    site_id: Option<Val<'a>>,
    #[serde(borrow)]
    file_count: Option<Val<'a>>,
    #[serde(borrow)]
    active_file_count: Option<Val<'a>>,
    #[serde(borrow)]
    page_view_count: Option<Val<'a>>,
    #[serde(borrow)]
    visited_page_count: Option<Val<'a>>,
    #[serde(borrow)]
    storage_allocated: Option<Val<'a>>,
    #[serde(borrow)]
    clients: Option<Val<'a>>,
    #[serde(borrow)]
    outlook_version: Option<Val<'a>>,
}

struct Ctx {
    line: usize,
}

/// Refused in every string: PostgreSQL's `TEXT` cannot hold it (and no directory name or id
/// carries it), so both stores accept exactly the same batches.
const NUL: &str = "must not contain the NUL character (\\u0000)";

impl Ctx {
    fn err(&self, field: &'static str, message: impl Into<String>) -> IngestError {
        IngestError::Field {
            line: self.line,
            field,
            message: message.into(),
        }
    }

    fn string(&self, field: &'static str, v: Option<Val<'_>>) -> Result<String, IngestError> {
        match v {
            Some(Val::Str(s)) if s.contains('\0') => Err(self.err(field, NUL)),
            Some(Val::Str(s)) if !s.is_empty() => Ok(s.into_owned()),
            Some(Val::Str(_)) => Err(self.err(field, "must not be empty")),
            None => Err(self.err(field, "is required")),
            Some(other) => {
                Err(self.err(field, format!("expected a string, found {}", other.kind())))
            }
        }
    }

    /// A string that may be empty (names).
    fn text(&self, field: &'static str, v: Option<Val<'_>>) -> Result<String, IngestError> {
        match v {
            Some(Val::Str(s)) if s.contains('\0') => Err(self.err(field, NUL)),
            Some(Val::Str(s)) => Ok(s.into_owned()),
            None => Err(self.err(field, "is required")),
            Some(other) => {
                Err(self.err(field, format!("expected a string, found {}", other.kind())))
            }
        }
    }

    fn day(&self, field: &'static str, v: Option<Val<'_>>) -> Result<Day, IngestError> {
        match v {
            Some(Val::Str(s)) => Day::parse(&s).map_err(|e| self.err(field, e.to_string())),
            None => Err(self.err(field, "is required")),
            Some(other) => Err(self.err(
                field,
                format!("expected a date (yyyy-MM-dd), found {}", other.kind()),
            )),
        }
    }

    /// A nullable date: absent and `null` both mean none.
    fn opt_day(&self, field: &'static str, v: Option<Val<'_>>) -> Result<Option<Day>, IngestError> {
        match v {
            None | Some(Val::Null) => Ok(None),
            other => self.day(field, other).map(Some),
        }
    }

    fn boolean(&self, field: &'static str, v: Option<Val<'_>>) -> Result<bool, IngestError> {
        match v {
            Some(Val::Bool(b)) => Ok(b),
            None => Err(self.err(field, "is required")),
            Some(other) => Err(self.err(
                field,
                format!("expected true or false, found {}", other.kind()),
            )),
        }
    }

    /// A required whole number ≥ 0.
    fn count(&self, field: &'static str, v: Option<Val<'_>>) -> Result<u64, IngestError> {
        match v {
            Some(Val::Num(n)) => Ok(n),
            None => Err(self.err(field, "is required")),
            Some(other) => Err(self.err(
                field,
                format!("expected a whole number ≥ 0, found {}", other.kind()),
            )),
        }
    }

    fn service(&self, v: Option<Val<'_>>) -> Result<Service, IngestError> {
        let s = self.string("service", v)?;
        Service::parse(&s).ok_or_else(|| {
            self.err(
                "service",
                format!("unknown service '{s}' (expected one of {})", Service::NAMES),
            )
        })
    }

    fn span(
        &self,
        start_field: &'static str,
        start: Option<Val<'_>>,
        end_field: &'static str,
        end: Option<Val<'_>>,
    ) -> Result<Span, IngestError> {
        Ok(Span {
            start: self.day(start_field, start)?,
            end: self.opt_day(end_field, end)?,
        })
    }
}

/// Deepest accepted nesting of arrays and objects in a line.
pub const MAX_DEPTH: usize = 128;

/// Whether arrays/objects nest deeper than `max` (brackets inside strings don't count).
/// serde_json limits the depth of what it builds, but not of unknown fields it skips.
fn nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Reads the lines of a bulk file in the exact shape the contract documents and
/// `reportroot export`/`generate` write: keys in the documented order, no whitespace
/// inside, printable ASCII strings without escapes. Such lines are almost all of a bulk
/// file, and the general path spends most of its time building a generic value per field
/// (per date, for `activity` lines). Every method returns `None` at the first byte that
/// differs from that shape, and the line then goes through the general path, which gives
/// the same record for every line the fast path reads and the precise error for every
/// line it does not (`the_fast_path_agrees_with_the_general_parser`).
struct Fast<'a> {
    rest: &'a [u8],
}

impl<'a> Fast<'a> {
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.rest = self.rest.strip_prefix(lit)?;
        Some(())
    }

    /// A string's content up to its closing quote (consumed): printable ASCII, no escape.
    fn text(&mut self) -> Option<&'a str> {
        let end = memchr::memchr(b'"', self.rest)?;
        let (s, rest) = self.rest.split_at(end);
        if !s.iter().all(|c| (0x20..0x7f).contains(c) && *c != b'\\') {
            return None;
        }
        self.rest = &rest[1..];
        std::str::from_utf8(s).ok()
    }

    /// A non-empty string (the contract's required strings).
    fn string(&mut self) -> Option<&'a str> {
        self.text().filter(|s| !s.is_empty())
    }

    /// `"yyyy-MM-dd"`.
    fn day(&mut self) -> Option<Day> {
        let [b'"', date @ .., b'"'] = self.rest.get(..12)? else {
            return None;
        };
        let day = Day::from_iso_bytes(date)?;
        self.rest = &self.rest[12..];
        Some(day)
    }

    /// `null` or `"yyyy-MM-dd"`.
    fn opt_day(&mut self) -> Option<Option<Day>> {
        if self.lit(b"null").is_some() {
            return Some(None);
        }
        self.day().map(Some)
    }

    /// `{start}"yyyy-MM-dd"{end}null` or `…{end}"yyyy-MM-dd"`: a span's two dates, each
    /// after its key literal (`{start}` ends with the colon, as does `{end}`).
    fn span(&mut self, start: &[u8], end: &[u8]) -> Option<Span> {
        self.lit(start)?;
        let from = self.day()?;
        self.lit(end)?;
        Some(Span {
            start: from,
            end: self.opt_day()?,
        })
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|()| false)
        }
    }

    /// The closing brace, and nothing after it.
    fn end(&self) -> Option<()> {
        (self.rest == b"}").then_some(())
    }
}

/// The fast path for one trimmed line (see [`Fast`]); `None` means "use the general path".
fn fast_path(line: &[u8]) -> Option<Record> {
    let mut f = Fast { rest: line };
    f.lit(br#"{"type":""#)?;
    match f.rest.get(..4)? {
        b"acti" if f.lit(br#"activity","userId":""#).is_some() => {
            let user_id = f.string()?.to_string();
            f.lit(br#","service":""#)?;
            let service = Service::parse(f.string()?)?;
            f.lit(br#","dates":["#)?;
            let mut dates = Vec::with_capacity(f.rest.len() / 13 + 1);
            loop {
                dates.push(f.day()?);
                if f.lit(b",").is_none() {
                    break;
                }
            }
            f.lit(b"]")?;
            f.end()?;
            Some(Record::ActivityDates {
                user_id,
                service,
                dates,
            })
        }
        b"serv" => {
            f.lit(br#"serviceLicense","userId":""#)?;
            let user_id = f.string()?.to_string();
            f.lit(br#","service":""#)?;
            let service = Service::parse(f.string()?)?;
            let span = f.span(br#","assignedDate":"#, br#","removedDate":"#)?;
            f.end()?;
            // A removal before the assignment is refused by the general path.
            if span.end.is_some_and(|e| e < span.start) {
                return None;
            }
            Some(Record::ServiceLicense {
                user_id,
                service,
                span,
            })
        }
        b"user" => {
            f.lit(br#"user","id":""#)?;
            let id = f.string()?.to_string();
            f.lit(br#","userPrincipalName":""#)?;
            let user_principal_name = f.string()?.to_string();
            f.lit(br#","displayName":""#)?;
            let display_name = f.text()?.to_string();
            f.lit(br#","deletedDate":"#)?;
            let deleted = f.opt_day()?;
            f.end()?;
            Some(Record::User {
                id,
                user_principal_name,
                display_name,
                deleted,
            })
        }
        b"prod" => {
            f.lit(br#"productAssignment","userId":""#)?;
            let user_id = f.string()?.to_string();
            f.lit(br#","productType":""#)?;
            let product_type = f.string()?.to_string();
            let span = f.span(br#","assignedDate":"#, br#","removedDate":"#)?;
            f.end()?;
            Some(Record::ProductAssignment {
                user_id,
                product_type,
                span,
            })
        }
        b"acti" => {
            f.lit(br#"activation","userId":""#)?;
            let user_id = f.string()?.to_string();
            f.lit(br#","productType":""#)?;
            let product_type = f.string()?.to_string();
            f.lit(br#","deviceId":""#)?;
            let device_id = f.string()?.to_string();
            f.lit(br#","platform":""#)?;
            let platform = Platform::parse(f.string()?)?;
            let active = f.span(br#","activatedDate":"#, br#","deactivatedDate":"#)?;
            f.lit(br#","sharedComputer":"#)?;
            let shared_computer = f.boolean()?;
            f.end()?;
            Some(Record::Activation {
                user_id,
                activation: Activation {
                    product_type,
                    device_id,
                    platform,
                    active,
                    shared_computer,
                },
            })
        }
        _ => None,
    }
}

/// Parses one line (without its line end). Returns `None` for a blank line.
pub fn parse_line(line: usize, raw: &[u8]) -> Result<Option<Record>, IngestError> {
    if let Some(record) = fast_path(raw.trim_ascii()) {
        return Ok(Some(record));
    }
    parse_general(line, raw)
}

/// [`parse_line`] for any line, through serde_json.
fn parse_general(line: usize, raw: &[u8]) -> Result<Option<Record>, IngestError> {
    let line_err = |message: String| IngestError::Line { line, message };
    let text = std::str::from_utf8(raw).map_err(|e| {
        line_err(format!(
            "invalid UTF-8 at byte {} of the line",
            e.valid_up_to()
        ))
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !trimmed.starts_with('{') {
        return Err(line_err("not a JSON object".to_string()));
    }
    if nesting_exceeds(trimmed.as_bytes(), MAX_DEPTH) {
        return Err(line_err(format!(
            "invalid JSON: nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let f: Fields<'_> =
        serde_json::from_str(trimmed).map_err(|e| line_err(format!("invalid JSON: {e}")))?;
    let cx = Ctx { line };
    let kind = cx.string("type", f.kind)?;
    let record = match kind.as_str() {
        "user" => Record::User {
            id: cx.string("id", f.id)?,
            user_principal_name: cx.string("userPrincipalName", f.user_principal_name)?,
            display_name: cx.text("displayName", f.display_name)?,
            deleted: cx.opt_day("deletedDate", f.deleted_date)?,
        },
        "serviceLicense" => {
            let user_id = cx.string("userId", f.user_id)?;
            let service = cx.service(f.service)?;
            let span = cx.span(
                "assignedDate",
                f.assigned_date,
                "removedDate",
                f.removed_date,
            )?;
            if span.end.is_some_and(|e| e < span.start) {
                return Err(cx.err("removedDate", "must not be before assignedDate"));
            }
            Record::ServiceLicense {
                user_id,
                service,
                span,
            }
        }
        "productAssignment" => Record::ProductAssignment {
            user_id: cx.string("userId", f.user_id)?,
            product_type: cx.string("productType", f.product_type)?,
            span: cx.span(
                "assignedDate",
                f.assigned_date,
                "removedDate",
                f.removed_date,
            )?,
        },
        "activation" => {
            let user_id = cx.string("userId", f.user_id)?;
            let product_type = cx.string("productType", f.product_type)?;
            let device_id = cx.string("deviceId", f.device_id)?;
            let platform_s = cx.string("platform", f.platform)?;
            let platform = Platform::parse(&platform_s).ok_or_else(|| {
                cx.err(
                    "platform",
                    format!(
                        "unknown platform '{platform_s}' (expected one of {})",
                        Platform::NAMES
                    ),
                )
            })?;
            let active = cx.span(
                "activatedDate",
                f.activated_date,
                "deactivatedDate",
                f.deactivated_date,
            )?;
            let shared_computer = cx.boolean("sharedComputer", f.shared_computer)?;
            Record::Activation {
                user_id,
                activation: Activation {
                    product_type,
                    device_id,
                    platform,
                    active,
                    shared_computer,
                },
            }
        }
        "activity" => {
            let user_id = cx.string("userId", f.user_id)?;
            let service = cx.service(f.service)?;
            match (f.date, f.dates) {
                (Some(_), Some(_)) => {
                    return Err(cx.err("dates", "give either 'date' or 'dates', not both"));
                }
                (None, Some(Val::Array(items))) => {
                    let mut dates = Vec::with_capacity(items.len());
                    for item in items {
                        dates.push(cx.day("dates", Some(item))?);
                    }
                    Record::ActivityDates {
                        user_id,
                        service,
                        dates,
                    }
                }
                (None, Some(other)) => {
                    return Err(cx.err(
                        "dates",
                        format!("expected an array of dates, found {}", other.kind()),
                    ));
                }
                (date, None) => Record::Activity {
                    user_id,
                    service,
                    date: cx.day("date", date)?,
                },
            }
        }
        "activityCounts" => {
            let user_id = cx.string("userId", f.user_id)?;
            let w = cx.string("workload", f.workload)?;
            let workload = Workload::parse(&w).ok_or_else(|| {
                cx.err(
                    "workload",
                    format!(
                        "unknown workload '{w}' (expected one of {})",
                        Workload::NAMES
                    ),
                )
            })?;
            let date = cx.day("date", f.date)?;
            let all: [(&'static str, Option<Val<'_>>); 10] = [
                ("send", f.send),
                ("receive", f.receive),
                ("read", f.read),
                ("meetingCreated", f.meeting_created),
                ("meetingInteracted", f.meeting_interacted),
                ("viewedOrEdited", f.viewed_or_edited),
                ("synced", f.synced),
                ("sharedInternally", f.shared_internally),
                ("sharedExternally", f.shared_externally),
                ("visitedPages", f.visited_pages),
            ];
            let mut counts = [0u32; MAX_COUNTERS];
            for (name, v) in all {
                let slot = workload.counters().iter().position(|c| *c == name);
                match (slot, v) {
                    (_, None | Some(Val::Null)) => {}
                    (None, Some(_)) => {
                        return Err(cx.err(
                            name,
                            format!(
                                "not a counter of workload '{w}' (its counters: {})",
                                workload.counters().join(", ")
                            ),
                        ));
                    }
                    (Some(i), Some(Val::Num(n))) => {
                        counts[i] = u32::try_from(n)
                            .map_err(|_| cx.err(name, format!("{n} is larger than 4294967295")))?;
                    }
                    (Some(_), Some(other)) => {
                        return Err(cx.err(
                            name,
                            format!("expected a whole number ≥ 0, found {}", other.kind()),
                        ));
                    }
                }
            }
            Record::ActivityCounts {
                user_id,
                workload,
                date,
                counts,
            }
        }
        "mailbox" => {
            let user_id = cx.string("userId", f.user_id)?;
            let created = cx.day("createdDate", f.created_date)?;
            let deleted = cx.opt_day("deletedDate", f.deleted_date)?;
            if deleted.is_some_and(|d| d < created) {
                return Err(cx.err("deletedDate", "must not be before createdDate"));
            }
            let rt = cx.string("recipientType", f.recipient_type)?;
            let recipient_type = RecipientType::parse(&rt).ok_or_else(|| {
                cx.err(
                    "recipientType",
                    format!(
                        "unknown recipient type '{rt}' (expected one of {})",
                        RecipientType::NAMES
                    ),
                )
            })?;
            Record::Mailbox {
                user_id,
                mailbox: Mailbox {
                    created,
                    deleted,
                    recipient_type,
                    issue_warning_quota: cx.count("issueWarningQuota", f.issue_warning_quota)?,
                    prohibit_send_quota: cx.count("prohibitSendQuota", f.prohibit_send_quota)?,
                    prohibit_send_receive_quota: cx
                        .count("prohibitSendReceiveQuota", f.prohibit_send_receive_quota)?,
                    deleted_item_quota: cx.count("deletedItemQuota", f.deleted_item_quota)?,
                    has_archive: cx.boolean("hasArchive", f.has_archive)?,
                },
            }
        }
        "mailboxDay" => Record::MailboxDay {
            user_id: cx.string("userId", f.user_id)?,
            date: cx.day("date", f.date)?,
            state: MailboxState {
                item_count: cx.count("itemCount", f.item_count)?,
                storage_used: cx.count("storageUsed", f.storage_used)?,
                deleted_item_count: cx.count("deletedItemCount", f.deleted_item_count)?,
                deleted_item_size: cx.count("deletedItemSize", f.deleted_item_size)?,
            },
        },
        "site" => {
            let id = cx.string("id", f.id)?;
            let k = cx.string("kind", f.site_kind)?;
            let kind = SiteKind::parse(&k).ok_or_else(|| {
                cx.err(
                    "kind",
                    format!("unknown site kind '{k}' (expected oneDrive or sharePoint)"),
                )
            })?;
            let owner = match f.owner_id {
                None | Some(Val::Null) if kind == SiteKind::OneDrive => {
                    return Err(cx.err("ownerId", "is required for a OneDrive account"));
                }
                None | Some(Val::Null) => None,
                v => Some(cx.string("ownerId", v)?),
            };
            let created = cx.day("createdDate", f.created_date)?;
            let deleted = cx.opt_day("deletedDate", f.deleted_date)?;
            if deleted.is_some_and(|d| d < created) {
                return Err(cx.err("deletedDate", "must not be before createdDate"));
            }
            Record::Site {
                site: Site {
                    id,
                    kind,
                    url: cx.string("url", f.url)?,
                    owner,
                    root_web_template: cx.text("rootWebTemplate", f.root_web_template)?,
                    created,
                    deleted,
                },
            }
        }
        "siteDay" => Record::SiteDay {
            site_id: cx.string("siteId", f.site_id)?,
            date: cx.day("date", f.date)?,
            state: SiteState {
                file_count: cx.count("fileCount", f.file_count)?,
                active_file_count: cx.count("activeFileCount", f.active_file_count)?,
                page_view_count: cx.count("pageViewCount", f.page_view_count)?,
                visited_page_count: cx.count("visitedPageCount", f.visited_page_count)?,
                storage_used: cx.count("storageUsed", f.storage_used)?,
                storage_allocated: cx.count("storageAllocated", f.storage_allocated)?,
            },
        },
        "emailClients" => {
            let user_id = cx.string("userId", f.user_id)?;
            let date = cx.day("date", f.date)?;
            let mut apps = 0u16;
            match f.clients {
                Some(Val::Array(items)) => {
                    for item in items {
                        let name = cx.string("clients", Some(item))?;
                        let bit = EMAIL_APPS.iter().position(|a| *a == name).ok_or_else(|| {
                            cx.err(
                                "clients",
                                format!(
                                    "unknown email client '{name}' (expected any of {})",
                                    EMAIL_APPS.join(", ")
                                ),
                            )
                        })?;
                        apps |= 1 << bit;
                    }
                }
                None => return Err(cx.err("clients", "is required")),
                Some(other) => {
                    return Err(cx.err(
                        "clients",
                        format!("expected an array of client names, found {}", other.kind()),
                    ));
                }
            }
            let outlook_version = match f.outlook_version {
                None | Some(Val::Null) => None,
                v => {
                    let name = cx.string("outlookVersion", v)?;
                    Some(
                        OUTLOOK_VERSIONS
                            .iter()
                            .position(|x| *x == name)
                            .ok_or_else(|| {
                                cx.err(
                                    "outlookVersion",
                                    format!(
                                        "unknown Outlook version '{name}' (expected one of {})",
                                        OUTLOOK_VERSIONS.join(", ")
                                    ),
                                )
                            })? as u8,
                    )
                }
            };
            Record::EmailClients {
                user_id,
                date,
                apps,
                outlook_version,
            }
        }
        "refresh" => Record::Refresh {
            date: cx.day("date", f.date)?,
        },
        other => {
            return Err(cx.err(
                "type",
                format!(
                    "unknown record type '{other}' (expected one of user, serviceLicense, productAssignment, activation, activity, activityCounts, mailbox, mailboxDay, site, siteDay, emailClients, refresh)"
                ),
            ));
        }
    };
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path never disagrees with the general one: on valid lines, and on every
    /// one-byte change, deletion and truncation of them, it either declines or gives the
    /// record the general path gives.
    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        let bases: [&[u8]; 11] = [
            br#"{"type":"activity","userId":"a2637d13-d171-4278-8adf-a8a3fbe8379b","service":"exchange","dates":["2026-08-17","2026-08-19","2024-02-29"]}"#,
            br#"{"type":"activity","userId":"u1","service":"teams","dates":["2026-01-01"]}"#,
            br#"  {"type":"activity","userId":"x y","service":"skypeForBusiness","dates":["1999-12-31","2000-01-01"]}	"#,
            br#"{"type":"activity","userId":"u","service":"oneDrive","dates":["2026-02-28","2026-02-28"]}"#,
            br#"{"type":"user","id":"a2637d13-d171-4278-8adf-a8a3fbe8379b","userPrincipalName":"user0@contoso.onmicrosoft.com","displayName":"Ben Novak","deletedDate":null}"#,
            br#"{"type":"user","id":"u2","userPrincipalName":"b@x","displayName":"","deletedDate":"2026-03-01"}"#,
            br#"{"type":"serviceLicense","userId":"u1","service":"oneDrive","assignedDate":"2026-02-06","removedDate":"2026-08-06"}"#,
            br#"{"type":"serviceLicense","userId":"u1","service":"yammer","assignedDate":"2026-02-06","removedDate":null}"#,
            br#"{"type":"productAssignment","userId":"u1","productType":"MICROSOFT 365 APPS FOR ENTERPRISE","assignedDate":"2025-11-16","removedDate":null}"#,
            br#"{"type":"activation","userId":"u1","productType":"MICROSOFT 365 APPS FOR ENTERPRISE","deviceId":"dev-0-0","platform":"windows","activatedDate":"2026-02-05","deactivatedDate":null,"sharedComputer":false}"#,
            br#"{"type":"activation","userId":"u1","productType":"P","deviceId":"d","platform":"ios","activatedDate":"2026-02-05","deactivatedDate":"2026-01-01","sharedComputer":true}"#,
        ];
        let bytes: &[u8] = b"\"\\,]}[ 0129-aZnulltrue\x00\x7f\xc3:{";
        let mut checked = 0usize;
        let mut check = |line: &[u8]| {
            if let Some(fast) = fast_path(line.trim_ascii()) {
                checked += 1;
                assert_eq!(
                    parse_general(1, line),
                    Ok(Some(fast)),
                    "{}",
                    String::from_utf8_lossy(line)
                );
            }
        };
        for base in bases {
            assert!(fast_path(base.trim_ascii()).is_some());
            for i in 0..base.len() {
                for b in bytes {
                    let mut m = base.to_vec();
                    m[i] = *b;
                    check(&m);
                    let mut m = base.to_vec();
                    m.insert(i, *b);
                    check(&m);
                }
                let mut m = base.to_vec();
                m.remove(i);
                check(&m);
                check(&base[..i]);
            }
        }
        assert!(checked > 100, "the fast path took only {checked} variants");
        // What it must leave to the general path, which refuses or reads them differently.
        for declined in [
            &br#"{"type":"activity","userId":"","service":"teams","dates":["2026-01-01"]}"#[..],
            br#"{"type":"activity","userId":"u\u0000","service":"teams","dates":["2026-01-01"]}"#,
            br#"{"type":"activity","userId":"u","service":"teams","dates":[]}"#,
            br#"{"type":"activity","userId":"u","service":"teams","dates":["2026-02-30"]}"#,
            br#"{"type":"activity","userId":"u","service":"Teams","dates":["2026-01-01"]}"#,
            br#"{"type":"activity","userId":"u","service":"teams","dates":["2026-01-01"],"date":"2026-01-01"}"#,
            br#"{"type":"activity","userId":"u","service":"teams","dates":["2026-01-01"]}x"#,
            br#"{"type":"serviceLicense","userId":"u1","service":"yammer","assignedDate":"2026-02-06","removedDate":"2026-02-05"}"#,
            br#"{"type":"user","id":"u2","userPrincipalName":"","displayName":"B","deletedDate":null}"#,
            br#"{"type":"user","id":"u2","userPrincipalName":"b@x","displayName":"Zo\u00eb","deletedDate":null}"#,
            br#"{"type":"activation","userId":"u1","productType":"P","deviceId":"d","platform":"linux","activatedDate":"2026-02-05","deactivatedDate":null,"sharedComputer":true}"#,
            br#"{"type":"activation","userId":"u1","productType":"P","deviceId":"d","platform":"ios","activatedDate":"2026-02-05","deactivatedDate":null,"sharedComputer":1}"#,
        ] {
            assert_eq!(fast_path(declined), None);
        }
    }

    fn err(s: &str) -> String {
        parse_line(3, s.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_type_and_ignores_unknown_fields() {
        let r = parse_line(
            1,
            br#"{"type":"user","id":"u1","userPrincipalName":"a@x","displayName":"A","deletedDate":null,"extra":[1,{"a":2}]}"#,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(r, Record::User { deleted: None, .. }));
        let r = parse_line(
            1,
            br#"{"type":"activity","userId":"u1","service":"teams","dates":["2024-01-01","2024-01-02"]}"#,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(r, Record::ActivityDates { ref dates, .. } if dates.len() == 2));
        assert_eq!(parse_line(1, b"   ").unwrap(), None);
    }

    #[test]
    fn errors_name_the_line_and_field() {
        assert_eq!(
            err(r#"{"type":"activity","userId":"u1","service":"email","date":"2024-01-01"}"#),
            "line 3: field 'service': unknown service 'email' (expected one of exchange, oneDrive, sharePoint, skypeForBusiness, yammer, teams)"
        );
        assert!(err(r#"{"type":"serviceLicense","userId":"u","service":"teams","assignedDate":"2024-02-02","removedDate":"2024-02-01"}"#).contains("field 'removedDate'"));
        assert!(err(r#"{"type":"activation","userId":"u","productType":"P","deviceId":"d","platform":"windows","activatedDate":"2024-01-01","sharedComputer":"yes"}"#).contains("field 'sharedComputer'"));
        assert!(
            err(r#"{"type":"user","id":5}"#)
                .contains("field 'id': expected a string, found a number")
        );
        assert!(err(r#"["user"]"#).contains("not a JSON object"));
        // NUL in any string (PostgreSQL cannot store it): refused, naming the field.
        assert!(
            err(r#"{"type":"user","id":"u1","userPrincipalName":"a@x","displayName":"A\u0000B"}"#)
                .contains("field 'displayName': must not contain the NUL character")
        );
        assert!(
            err(r#"{"type":"user","id":"u\u0000","userPrincipalName":"a@x","displayName":"A"}"#)
                .contains("field 'id'")
        );
        assert!(err("{\"type\":\"user\"").contains("invalid JSON"));
        assert!(
            parse_line(3, b"{\"type\":\"us\xffer\"}")
                .unwrap_err()
                .to_string()
                .contains("invalid UTF-8")
        );
        let deep = format!(
            "{{\"type\":\"refresh\",\"x\":{}{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(err(&deep).contains("invalid JSON"));
    }
}

//! The domain vocabulary shared by every layer: tenant ids, calendar days, services,
//! platforms and the ingest records. No I/O, no HTTP, no SQL here.

mod day;
mod period;
mod record;

pub use day::{Day, DayParseError};
pub use period::Period;
pub use record::{
    Activation, EMAIL_APPS, MAX_COUNTERS, Mailbox, MailboxState, OUTLOOK_VERSIONS, Platform,
    RecipientType, Record, Service, Site, SiteKind, SiteState, Span, Workload,
};

/// A tenant id as it appears in tokens (`tid`) and URLs. Compared case-insensitively by
/// normalising to lower case on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Accepts 1–128 characters of `[A-Za-z0-9._-]` (GUIDs and domain-like ids), lower-cased.
    pub fn parse(s: &str) -> Option<TenantId> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        ok.then(|| TenantId(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

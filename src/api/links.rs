//! Pre-authenticated download links: an HMAC-SHA256 over tenant, report, parameters, content
//! version (the entity tag) and expiry, with the secret kept in the data dir.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{Day, TenantId};
use crate::reports::{Args, Call, Period, ReportId};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub tenant: TenantId,
    pub call: Call,
    /// Whether user names in the report are concealed (part of what the link names).
    pub concealed: bool,
    pub etag: String,
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("The download link is not valid.")]
    Invalid,
    #[error("The download link has expired. Request the report again for a new link.")]
    Expired,
}

/// The arguments as a link field: `-`, `D7`, or `2026-11-02` for `date=`.
pub(super) fn args_code(a: Args) -> String {
    match a {
        Args::None => "-".into(),
        Args::Period(p) => p.as_str().into(),
        Args::Date(d) => d.to_string(),
    }
}

pub(super) fn args_from(code: &str) -> Option<Args> {
    if code == "-" {
        return Some(Args::None);
    }
    if let Some(p) = Period::parse(code) {
        return Some(Args::Period(p));
    }
    Day::parse(code).ok().map(Args::Date)
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Encodes and signs a link token (URL-safe).
pub fn sign(secret: &[u8], link: &Link) -> String {
    let payload = format!(
        "2|{}|{}|{}|{}|{}|{}",
        link.tenant,
        link.call.def().name,
        args_code(link.call.args),
        u8::from(link.concealed),
        link.etag.trim_matches('"'),
        link.expires
    );
    let mut m = mac(secret);
    m.update(payload.as_bytes());
    let sig = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// Checks a link token's signature and expiry (`now` in Unix seconds).
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<Link, LinkError> {
    let (p, s) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| LinkError::Invalid)?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| LinkError::Invalid)?;
    let mut m = mac(secret);
    m.update(&payload);
    m.verify_slice(&sig).map_err(|_| LinkError::Invalid)?;
    let payload = String::from_utf8(payload).map_err(|_| LinkError::Invalid)?;
    let parts: Vec<&str> = payload.split('|').collect();
    let [version, tenant, function, period, concealed, etag, expires] = parts[..] else {
        return Err(LinkError::Invalid);
    };
    if version != "2" {
        return Err(LinkError::Invalid);
    }
    let link = Link {
        tenant: TenantId::parse(tenant).ok_or(LinkError::Invalid)?,
        call: Call {
            report: ReportId::lookup(function).ok_or(LinkError::Invalid)?,
            args: args_from(period).ok_or(LinkError::Invalid)?,
        },
        concealed: concealed == "1",
        etag: format!("\"{etag}\""),
        expires: expires.parse().map_err(|_| LinkError::Invalid)?,
    };
    if link.expires < now {
        return Err(LinkError::Expired);
    }
    Ok(link)
}

/// Where the next JSON page of a detail report starts, bound to the tenant, call, name
/// concealment and data version it was issued for (a token from before a data change is
/// refused rather than skipping or repeating rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipToken {
    pub tenant: TenantId,
    pub call: Call,
    pub concealed: bool,
    pub version: u64,
    pub refresh: Option<Day>,
    pub from: u32,
}

fn sealed(secret: &[u8], payload: &str) -> String {
    let mut m = mac(secret);
    m.update(b"skip|");
    m.update(payload.as_bytes());
    let sig = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(&sig[..16])
    )
}

/// Encodes and signs a `$skipToken`.
pub fn sign_skip(secret: &[u8], t: &SkipToken) -> String {
    let payload = format!(
        "1|{}|{}|{}|{}|{}|{}|{}",
        t.tenant,
        t.call.def().name,
        args_code(t.call.args),
        u8::from(t.concealed),
        t.version,
        t.refresh.map_or("-".to_string(), |d| d.to_string()),
        t.from
    );
    sealed(secret, &payload)
}

/// Checks a `$skipToken`'s signature and decodes it; `None` if it is not one of ours.
pub fn verify_skip(secret: &[u8], token: &str) -> Option<SkipToken> {
    let (p, sig) = token.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    if sig.len() != 16 {
        return None;
    }
    let mut m = mac(secret);
    m.update(b"skip|");
    m.update(payload.as_bytes());
    // Constant-time comparison of the 16 signature bytes.
    m.verify_truncated_left(&sig).ok()?;
    let parts: Vec<&str> = payload.split('|').collect();
    let [
        "1",
        tenant,
        function,
        args,
        concealed,
        version,
        refresh,
        from,
    ] = parts[..]
    else {
        return None;
    };
    Some(SkipToken {
        tenant: TenantId::parse(tenant)?,
        call: Call {
            report: ReportId::lookup(function)?,
            args: args_from(args)?,
        },
        concealed: concealed == "1",
        version: version.parse().ok()?,
        refresh: match refresh {
            "-" => None,
            d => Some(Day::parse(d).ok()?),
        },
        from: from.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_refuses_tampering() {
        let link = Link {
            tenant: TenantId::parse("t1").unwrap(),
            call: Call {
                report: ReportId::lookup("getOffice365ServicesUserCounts").unwrap(),
                args: Args::Period(Period::D30),
            },
            concealed: false,
            etag: "\"abc\"".into(),
            expires: 100,
        };
        let t = sign(b"k", &link);
        assert_eq!(verify(b"k", &t, 100), Ok(link.clone()));
        assert_eq!(verify(b"k", &t, 101), Err(LinkError::Expired));
        assert_eq!(verify(b"other", &t, 0), Err(LinkError::Invalid));
        let (p, s) = t.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(p).unwrap())
                .unwrap()
                .replace("|t1|", "|t2|"),
        );
        assert_eq!(
            verify(b"k", &format!("{forged}.{s}"), 0),
            Err(LinkError::Invalid)
        );
        assert_eq!(verify(b"k", "garbage", 0), Err(LinkError::Invalid));
    }
}

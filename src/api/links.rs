//! Pre-authenticated download links: an HMAC-SHA256 over tenant, report, parameters, content
//! version (the entity tag) and expiry, with the secret kept in the data dir.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::odata::{Function, ReportCall};
use crate::model::TenantId;
use crate::reports::Period;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub tenant: TenantId,
    pub call: ReportCall,
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

fn function_code(f: Function) -> &'static str {
    match f {
        Function::ActivationsUserCounts => "au",
        Function::ActivationCounts => "ac",
        Function::ServicesUserCounts => "su",
        Function::LegacyActivationsUserCounts => "lau",
    }
}

fn function_from(code: &str) -> Option<Function> {
    Some(match code {
        "au" => Function::ActivationsUserCounts,
        "ac" => Function::ActivationCounts,
        "su" => Function::ServicesUserCounts,
        "lau" => Function::LegacyActivationsUserCounts,
        _ => return None,
    })
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Encodes and signs a link token (URL-safe).
pub fn sign(secret: &[u8], link: &Link) -> String {
    let payload = format!(
        "1|{}|{}|{}|{}|{}",
        link.tenant,
        function_code(link.call.function),
        link.call.period.map_or("-", Period::as_str),
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
    let [version, tenant, function, period, etag, expires] = parts[..] else {
        return Err(LinkError::Invalid);
    };
    if version != "1" {
        return Err(LinkError::Invalid);
    }
    let link = Link {
        tenant: TenantId::parse(tenant).ok_or(LinkError::Invalid)?,
        call: ReportCall {
            function: function_from(function).ok_or(LinkError::Invalid)?,
            period: match period {
                "-" => None,
                p => Some(Period::parse(p).ok_or(LinkError::Invalid)?),
            },
        },
        etag: format!("\"{etag}\""),
        expires: expires.parse().map_err(|_| LinkError::Invalid)?,
    };
    if link.expires < now {
        return Err(LinkError::Expired);
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_refuses_tampering() {
        let link = Link {
            tenant: TenantId::parse("t1").unwrap(),
            call: ReportCall {
                function: Function::ServicesUserCounts,
                period: Some(Period::D30),
            },
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

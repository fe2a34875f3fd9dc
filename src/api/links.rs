//! Pre-authenticated download links: an HMAC-SHA256 over tenant, report, parameters, content
//! version (the entity tag) and expiry, under a link key of the key ring (`auth::keys`),
//! whose short key id the link carries so that any node picks the key it was signed with.
//! Links (payload version 2) and `$skiptoken`s (version 1) from before key ids carry none:
//! they are verified with the key imported from the old `keys/link-secret`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::LinkKey;
use crate::model::{Day, TenantId};
use crate::reports::{Args, Call, Period, ReportId};

pub use crate::auth::LinkKeyLookup as KeyLookup;

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
    /// Signed with a key this node does not know (or no longer accepts): worth a reload of
    /// the key ring before refusing.
    #[error("The download link is not valid.")]
    UnknownKey,
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

/// Encodes and signs a link token (URL-safe), with the key's id in it.
pub fn sign(key: &LinkKey, link: &Link) -> String {
    let payload = format!(
        "3|{}|{}|{}|{}|{}|{}|{}",
        key.kid,
        link.tenant,
        link.call.def().name,
        args_code(link.call.args),
        u8::from(link.concealed),
        link.etag.trim_matches('"'),
        link.expires
    );
    let mut m = mac(&key.secret);
    m.update(payload.as_bytes());
    let sig = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// The key id a payload names (`None` in the `legacy` form, which carries none) and the
/// fields after it; `None` for any other version.
fn split_kid<'a>(
    parts: &'a [&'a str],
    legacy: &str,
    current: &str,
) -> Option<(Option<&'a str>, &'a [&'a str])> {
    match parts.split_first() {
        Some((v, rest)) if *v == legacy => Some((None, rest)),
        Some((v, rest)) if *v == current => {
            let (kid, rest) = rest.split_first()?;
            Some((Some(*kid), rest))
        }
        _ => None,
    }
}

/// Checks a link token's signature (with the key its id names) and expiry (`now` in Unix
/// seconds).
pub fn verify(token: &str, now: u64, keys: KeyLookup<'_>) -> Result<Link, LinkError> {
    let (p, s) = token.split_once('.').ok_or(LinkError::Invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| LinkError::Invalid)?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| LinkError::Invalid)?;
    let text = std::str::from_utf8(&payload).map_err(|_| LinkError::Invalid)?;
    let parts: Vec<&str> = text.split('|').collect();
    let (kid, fields) = split_kid(&parts, "2", "3").ok_or(LinkError::Invalid)?;
    let key = keys(kid).ok_or(LinkError::UnknownKey)?;
    let mut m = mac(&key.secret);
    m.update(&payload);
    m.verify_slice(&sig).map_err(|_| LinkError::Invalid)?;
    let [tenant, function, period, concealed, etag, expires] = fields[..] else {
        return Err(LinkError::Invalid);
    };
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

/// Encodes and signs a `$skipToken`, with the key's id in it.
pub fn sign_skip(key: &LinkKey, t: &SkipToken) -> String {
    let payload = format!(
        "2|{}|{}|{}|{}|{}|{}|{}|{}",
        key.kid,
        t.tenant,
        t.call.def().name,
        args_code(t.call.args),
        u8::from(t.concealed),
        t.version,
        t.refresh.map_or("-".to_string(), |d| d.to_string()),
        t.from
    );
    sealed(&key.secret, &payload)
}

/// Checks a `$skipToken`'s signature (with the key its id names) and decodes it;
/// `Err(Invalid)` if it is not one of ours.
pub fn verify_skip(token: &str, keys: KeyLookup<'_>) -> Result<SkipToken, LinkError> {
    let parsed = (|| {
        let (p, sig) = token.split_once('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        (sig.len() == 16).then_some((payload, sig))
    })();
    let (payload, sig) = parsed.ok_or(LinkError::Invalid)?;
    let parts: Vec<&str> = payload.split('|').collect();
    let (kid, fields) = split_kid(&parts, "1", "2").ok_or(LinkError::Invalid)?;
    let key = keys(kid).ok_or(LinkError::UnknownKey)?;
    let mut m = mac(&key.secret);
    m.update(b"skip|");
    m.update(payload.as_bytes());
    // Constant-time comparison of the 16 signature bytes.
    m.verify_truncated_left(&sig)
        .map_err(|_| LinkError::Invalid)?;
    decode_skip(fields).ok_or(LinkError::Invalid)
}

fn decode_skip(fields: &[&str]) -> Option<SkipToken> {
    let [tenant, function, args, concealed, version, refresh, from] = fields[..] else {
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

/// Runs `check` with the link keys this node knows; if it names a key id the node does not
/// know, once more after a reload of the key ring (at most one a second): another node or
/// the CLI may have rotated the keys.
pub(crate) async fn with_reload<T, E>(
    authority: &crate::auth::Authority,
    unknown: impl Fn(&E) -> bool,
    check: impl Fn(KeyLookup<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let lookup = |kid: Option<&str>| authority.link_key(kid);
    match check(&lookup) {
        Err(e) if unknown(&e) => {
            let a = authority.clone();
            let _ = tokio::task::spawn_blocking(move || a.reload_for_unknown_key()).await;
            check(&lookup)
        }
        r => r,
    }
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
        let k = key("abc", b"k");
        let t = sign(&k, &link);
        let only = |kid: Option<&str>| (kid == Some("abc")).then(|| k.clone());
        assert_eq!(verify(&t, 100, &only), Ok(link.clone()));
        assert_eq!(verify(&t, 101, &only), Err(LinkError::Expired));
        let other = key("abc", b"other");
        assert_eq!(
            verify(&t, 0, &|_| Some(other.clone())),
            Err(LinkError::Invalid)
        );
        assert_eq!(verify(&t, 0, &|_| None), Err(LinkError::UnknownKey));
        let (p, s) = t.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(p).unwrap())
                .unwrap()
                .replace("|t1|", "|t2|"),
        );
        assert_eq!(
            verify(&format!("{forged}.{s}"), 0, &only),
            Err(LinkError::Invalid)
        );
        assert_eq!(verify("garbage", 0, &only), Err(LinkError::Invalid));
    }

    fn key(kid: &str, secret: &[u8]) -> std::sync::Arc<LinkKey> {
        std::sync::Arc::new(LinkKey {
            kid: kid.into(),
            secret: secret.to_vec(),
        })
    }

    /// A link and a `$skiptoken` of the form minted before key ids (versions 2 and 1, no
    /// key id) still verify, with the legacy key (asked for with `None`).
    #[test]
    fn links_without_a_key_id_verify_with_the_legacy_key() {
        let secret = b"legacy secret";
        let payload = "2|t1|getOffice365ServicesUserCounts|D30|0|abc|100";
        let mut m = mac(secret);
        m.update(payload.as_bytes());
        let old = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        );
        let legacy = key("0", secret);
        let lookup = |kid: Option<&str>| kid.is_none().then(|| legacy.clone());
        let link = verify(&old, 50, &lookup).expect("a legacy link verifies");
        assert_eq!(link.etag, "\"abc\"");
        let skip = sealed(secret, "1|t1|getOffice365ActiveUserDetail|D7|1|5|-|200");
        assert_eq!(
            verify_skip(&skip, &lookup).expect("legacy skiptoken").from,
            200
        );
        // With a key id, the legacy key is not asked for.
        assert_eq!(
            verify(&sign(&key("new", secret), &link), 50, &lookup),
            Err(LinkError::UnknownKey)
        );
    }
}

//! One-time sign-in codes for the dashboard (the `…/signin#code=…` links that `serve`,
//! `demo` and `reportroot signin-link` print).
//!
//! A code is self-contained: `base64url("s2|kid|tid|expires|nonce") . base64url(HMAC)`,
//! keyed by a key derived from a link key of the key ring (the one `kid` names; codes of the
//! form `s1|tid|expires|nonce`, from before key ids, use the key imported from the old
//! `keys/link-secret`), so the CLI can issue one for a running server without talking to
//! it. Codes live minutes, so they rotate with the link keys. Single use is enforced by the server: [`UsedCodes`] keeps
//! the nonce of every redeemed, unexpired code in memory and appends it to
//! `DATA/signin-used`, which is read back at start-up, so a code stays spent across restarts.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{LinkKey, LinkKeyLookup};
use crate::model::TenantId;

type HmacSha256 = Hmac<Sha256>;

/// The file of redeemed codes' nonces, one `nonce expires` per line.
pub const USED_FILE: &str = "signin-used";
/// Lifetime of a sign-in link unless told otherwise.
pub const DEFAULT_CODE_TTL_SECS: u64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigninError {
    #[error(
        "This sign-in link is not valid. Ask the operator for a new one (reportroot signin-link)."
    )]
    Invalid,
    #[error(
        "This sign-in link has expired. Ask the operator for a new one (reportroot signin-link)."
    )]
    Expired,
    #[error(
        "This sign-in link has already been used. Each link works once; ask the operator for a new one (reportroot signin-link)."
    )]
    Used,
    #[error("recording a used sign-in code failed: {0}")]
    Io(String),
}

/// What a verified code grants: a session for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub tenant: TenantId,
    /// Unix seconds.
    pub expires: u64,
    /// 16 random bytes, hex.
    pub nonce: String,
}

fn mac(link_secret: &[u8]) -> HmacSha256 {
    // The code key is derived, so a code can never be mistaken for a download link.
    let mut k = <HmacSha256 as Mac>::new_from_slice(link_secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    k.update(b"signin-code|v1");
    let key = k.finalize().into_bytes();
    <HmacSha256 as Mac>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// A new code for `tenant`, valid until `expires` (Unix seconds), signed with `key`.
pub fn issue(key: &LinkKey, tenant: &TenantId, expires: u64) -> String {
    let mut nonce = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let payload = format!("s2|{}|{tenant}|{expires}|{nonce}", key.kid);
    let mut m = mac(&key.secret);
    m.update(payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

/// Checks a code's signature (with the key its id names, found by `keys`) and expiry (`now`
/// in Unix seconds); says nothing of reuse.
pub fn verify(keys: LinkKeyLookup<'_>, code: &str, now: u64) -> Result<Code, SigninError> {
    if code.len() > 512 {
        return Err(SigninError::Invalid);
    }
    let (p, s) = code.trim().split_once('.').ok_or(SigninError::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| SigninError::Invalid)?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| SigninError::Invalid)?;
    let text = std::str::from_utf8(&payload).map_err(|_| SigninError::Invalid)?;
    let parts: Vec<&str> = text.split('|').collect();
    let (kid, tenant, expires, nonce) = match parts[..] {
        ["s1", tenant, expires, nonce] => (None, tenant, expires, nonce),
        ["s2", kid, tenant, expires, nonce] => (Some(kid), tenant, expires, nonce),
        _ => return Err(SigninError::Invalid),
    };
    let key = keys(kid).ok_or(SigninError::Invalid)?;
    let mut m = mac(&key.secret);
    m.update(&payload);
    m.verify_slice(&sig).map_err(|_| SigninError::Invalid)?;
    let code = Code {
        tenant: TenantId::parse(tenant).ok_or(SigninError::Invalid)?,
        expires: expires.parse().map_err(|_| SigninError::Invalid)?,
        nonce: nonce.to_string(),
    };
    if code.expires < now {
        return Err(SigninError::Expired);
    }
    Ok(code)
}

/// The nonces of redeemed codes until they expire, kept in memory and in `DATA/signin-used`.
pub struct UsedCodes {
    path: PathBuf,
    used: Mutex<HashMap<String, u64>>,
}

impl UsedCodes {
    /// Reads the used-code file of `data_dir` (missing = none used), dropping expired entries.
    pub fn open(data_dir: &Path, now: u64) -> UsedCodes {
        let path = data_dir.join(USED_FILE);
        let mut used = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some((nonce, exp)) = line.split_once(' ')
                    && let Ok(exp) = exp.trim().parse::<u64>()
                    && exp >= now
                {
                    used.insert(nonce.to_string(), exp);
                }
            }
            // Compact: only unexpired entries stay. Written beside and renamed over, so a
            // crash mid-write never loses the record of a redeemed, still valid code.
            let kept: String = used.iter().map(|(n, e)| format!("{n} {e}\n")).collect();
            let tmp = path.with_extension("tmp");
            let compacted = std::fs::File::create(&tmp)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, kept.as_bytes())?;
                    f.sync_all()
                })
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = compacted {
                tracing::warn!(error = %e, path = %path.display(), "compacting used sign-in codes failed");
            }
        }
        UsedCodes {
            path,
            used: Mutex::new(used),
        }
    }

    /// Verifies `code` and marks it used: the first call for a code succeeds, every later
    /// one fails with [`SigninError::Used`], also after a restart.
    pub fn redeem(
        &self,
        keys: LinkKeyLookup<'_>,
        code: &str,
        now: u64,
    ) -> Result<Code, SigninError> {
        let code = verify(keys, code, now)?;
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, exp| *exp >= now);
        if used.contains_key(&code.nonce) {
            return Err(SigninError::Used);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| SigninError::Io(e.to_string()))?;
        f.write_all(format!("{} {}\n", code.nonce, code.expires).as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| SigninError::Io(e.to_string()))?;
        used.insert(code.nonce.clone(), code.expires);
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key(secret: &[u8]) -> std::sync::Arc<LinkKey> {
        std::sync::Arc::new(LinkKey {
            kid: "k1".into(),
            secret: secret.to_vec(),
        })
    }

    /// The test key by its id.
    fn keys(kid: Option<&str>) -> Option<std::sync::Arc<LinkKey>> {
        (kid == Some("k1")).then(|| key(SECRET))
    }

    fn tid() -> TenantId {
        TenantId::parse("8a3c8d6e-1111-4a4a-9a9a-aaaaaaaaaaaa").expect("tid")
    }

    #[test]
    fn a_code_verifies_until_it_expires() {
        let code = issue(&key(SECRET), &tid(), 1000);
        assert_eq!(verify(&keys, &code, 1000).map(|c| c.tenant), Ok(tid()));
        assert_eq!(verify(&keys, &code, 1001), Err(SigninError::Expired));
        assert_eq!(
            verify(&|_| Some(key(b"another secret")), &code, 10),
            Err(SigninError::Invalid)
        );
        assert_eq!(verify(&|_| None, &code, 10), Err(SigninError::Invalid));
    }

    #[test]
    fn tampered_or_garbage_codes_are_invalid() {
        let code = issue(&key(SECRET), &tid(), 1000);
        let (p, s) = code.split_once('.').expect("dot");
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("utf8");
        let forged = URL_SAFE_NO_PAD.encode(payload.replace("|1000|", "|9999|"));
        assert_eq!(
            verify(&keys, &format!("{forged}.{s}"), 10),
            Err(SigninError::Invalid)
        );
        for bad in ["", ".", "abc", "a.b", &"x".repeat(600)] {
            assert_eq!(verify(&keys, bad, 10), Err(SigninError::Invalid), "{bad}");
        }
    }

    #[test]
    fn a_code_is_redeemed_once_also_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let code = issue(&key(SECRET), &tid(), 1000);
        let used = UsedCodes::open(dir.path(), 10);
        assert!(used.redeem(&keys, &code, 10).is_ok());
        assert_eq!(used.redeem(&keys, &code, 11), Err(SigninError::Used));
        let reopened = UsedCodes::open(dir.path(), 12);
        assert_eq!(reopened.redeem(&keys, &code, 12), Err(SigninError::Used));
        // Expired entries are dropped at open; the code itself is expired by then too.
        let later = UsedCodes::open(dir.path(), 2000);
        assert_eq!(later.used.lock().map(|u| u.len()).unwrap_or(9), 0);
        assert_eq!(later.redeem(&keys, &code, 2000), Err(SigninError::Expired));
    }

    /// A code of the form from before key ids (`s1`, no key id) verifies with the legacy key.
    #[test]
    fn a_code_without_a_key_id_verifies_with_the_legacy_key() {
        let payload = "s1|8a3c8d6e-1111-4a4a-9a9a-aaaaaaaaaaaa|1000|00ff";
        let mut m = mac(SECRET);
        m.update(payload.as_bytes());
        let code = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        );
        let legacy = |kid: Option<&str>| kid.is_none().then(|| key(SECRET));
        assert_eq!(verify(&legacy, &code, 10).map(|c| c.tenant), Ok(tid()));
        assert_eq!(verify(&keys, &code, 10), Err(SigninError::Invalid));
    }
}

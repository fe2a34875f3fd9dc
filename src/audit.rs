//! The audit trail's hash chain: how an entry's hash is computed from its fields and the
//! previous entry's hash, and how a chain is verified. Pure: the store appends and reads
//! entries ([`crate::store::Store::audit`]), the API and the CLI show them.
//!
//! Each tenant has its own chain (seq 1, 2, 3, …). An entry's hash is SHA-256 over the
//! previous hash, the seq and every stored field, each length-prefixed, so changing any
//! field, removing or reordering entries breaks the chain at that point. Truncating the
//! tail cannot be seen from the chain alone: every appended entry's seq and hash are also
//! logged (`audit entry appended`), and `reportroot audit --verify` prints the head, so a
//! copy kept elsewhere (shipped logs, a ticket) pins it.
//!
//! Erasure entries name the user by [`erasure_digest`], a keyed digest of the user id: who
//! knows the id (the person, or whoever asked for the erasure) can find the entry with
//! `reportroot audit --erased ID`; the trail alone reveals neither id nor name.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::store::{AuditEntry, AuditRecord};

/// The hash of an entry with these fields.
pub fn entry_hash(tenant: &str, seq: u64, prev: &[u8; 32], r: &AuditRecord) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"reportroot-audit-v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(r.at_ms.to_be_bytes());
    for field in [
        tenant,
        &r.app_id,
        &r.object_id,
        &r.actor_name,
        &r.action,
        &r.target,
        &r.details,
        &r.request_id,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "tenant {tenant}: entry {seq} follows entry {after} (an entry is missing or out of order)"
    )]
    Gap {
        tenant: String,
        after: u64,
        seq: u64,
    },
    #[error("tenant {tenant}: entry {seq} does not name the previous entry's hash")]
    Link { tenant: String, seq: u64 },
    #[error("tenant {tenant}: entry {seq} was altered (its hash does not match its fields)")]
    Altered { tenant: String, seq: u64 },
}

/// Verifies entries read in order (tenant by tenant, seq ascending, from seq 1). Returns
/// each tenant's head (last seq and hash) on success.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<Vec<(String, u64, [u8; 32])>, ChainBreak> {
    let mut heads: Vec<(String, u64, [u8; 32])> = Vec::new();
    for e in entries {
        let (last_seq, last_hash) = match heads.last() {
            Some((t, s, h)) if *t == e.tenant => (*s, *h),
            _ => (0, [0u8; 32]),
        };
        if e.seq != last_seq + 1 {
            return Err(ChainBreak::Gap {
                tenant: e.tenant.clone(),
                after: last_seq,
                seq: e.seq,
            });
        }
        if e.prev != last_hash {
            return Err(ChainBreak::Link {
                tenant: e.tenant.clone(),
                seq: e.seq,
            });
        }
        if entry_hash(&e.tenant, e.seq, &e.prev, &e.record) != e.hash {
            return Err(ChainBreak::Altered {
                tenant: e.tenant.clone(),
                seq: e.seq,
            });
        }
        match heads.last_mut() {
            Some(head) if head.0 == e.tenant => *head = (e.tenant.clone(), e.seq, e.hash),
            _ => heads.push((e.tenant.clone(), e.seq, e.hash)),
        }
    }
    Ok(heads)
}

/// The keyed digest naming an erased user in the trail: HMAC-SHA256 of the user id under a
/// per-tenant key derived from the key ring's digest secret (never rotated, so the digest
/// stays findable), as lower-case hex.
pub fn erasure_digest(digest_secret: &[u8], tenant: &str, user_id: &str) -> String {
    let mut k = <Hmac<Sha256> as Mac>::new_from_slice(digest_secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    k.update(b"erasure|");
    k.update(tenant.as_bytes());
    let key = k.finalize().into_bytes();
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(user_id.as_bytes());
    hex(&m.finalize().into_bytes())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A record made by the operator on the machine (the CLI).
pub fn operator(action: &str, target: &str, details: String) -> AuditRecord {
    AuditRecord {
        at_ms: now_ms(),
        app_id: String::new(),
        object_id: String::new(),
        actor_name: "operator (reportroot CLI)".into(),
        action: action.into(),
        target: target.into(),
        details,
        request_id: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let record = AuditRecord {
                    at_ms: seq as i64,
                    action: "ingest".into(),
                    details: format!("{{\"records\":{seq}}}"),
                    ..AuditRecord::default()
                };
                let hash = entry_hash("t", seq, &prev, &record);
                let e = AuditEntry {
                    tenant: "t".into(),
                    seq,
                    record,
                    prev,
                    hash,
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_any_change_is_found() {
        let c = chain(5);
        assert_eq!(verify(&c).map(|h| h[0].1), Ok(5));
        let mut altered = c.clone();
        altered[2].record.details = "{\"records\":99}".into();
        assert!(matches!(
            verify(&altered),
            Err(ChainBreak::Altered { seq: 3, .. })
        ));
        let mut removed = c.clone();
        removed.remove(1);
        assert!(matches!(
            verify(&removed),
            Err(ChainBreak::Gap { seq: 3, .. })
        ));
        // Rehashing an altered entry breaks the next link instead.
        let mut rehashed = c.clone();
        rehashed[2].record.action = "other".into();
        rehashed[2].hash = entry_hash("t", 3, &rehashed[2].prev, &rehashed[2].record);
        assert!(matches!(
            verify(&rehashed),
            Err(ChainBreak::Link { seq: 4, .. })
        ));
    }

    #[test]
    fn erasure_digest_is_keyed_per_tenant() {
        let a = erasure_digest(b"secret", "t1", "user");
        assert_eq!(a, erasure_digest(b"secret", "t1", "user"));
        assert_ne!(a, erasure_digest(b"secret", "t2", "user"));
        assert_ne!(a, erasure_digest(b"other", "t1", "user"));
        assert_eq!(a.len(), 64);
    }
}

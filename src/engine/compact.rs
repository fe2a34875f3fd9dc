//! Compact in-memory forms, so a million-user tenant fits in a few hundred bytes per user:
//! [`Held`] (a validity span in 8 bytes), [`UserIndex`] (GUID user ids as 16-byte keys) and
//! [`device_key`] (device ids as 64-bit hashes).

use std::collections::HashMap;

use crate::model::{Day, Span};

/// `[start, end)` as two day numbers; `start == NONE` means "not held at all" and
/// `end == NONE` means "no end".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub(super) start: i32,
    pub(super) end: i32,
}

const NONE: i32 = i32::MAX;

impl Held {
    pub const ABSENT: Held = Held {
        start: NONE,
        end: NONE,
    };

    pub fn from_span(s: Span) -> Held {
        Held {
            start: s.start.0,
            end: s.end.map_or(NONE, |d| d.0),
        }
    }

    /// Held on day `d`: started on or before it and not ended on or before it.
    pub fn holds_on(self, d: Day) -> bool {
        self.start <= d.0 && d.0 < self.end
    }
}

impl Default for Held {
    fn default() -> Self {
        Held::ABSENT
    }
}

/// A deletion date, or none, in 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted(pub(super) i32);

impl Deleted {
    pub fn new(d: Option<Day>) -> Deleted {
        Deleted(d.map_or(NONE, |d| d.0))
    }

    /// Not deleted, or deleted after `r`.
    pub fn exists_on(self, r: Day) -> bool {
        self.0 > r.0
    }
}

impl Default for Deleted {
    fn default() -> Self {
        Deleted(NONE)
    }
}

/// FNV-1a, 64-bit: a stable hash of a device id. Two devices of one user and product would
/// have to collide in 64 bits to be mistaken for each other.
pub fn device_key(device_id: &str) -> u64 {
    device_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Parses a lower-case canonical GUID (`8-4-4-4-12` hex digits). Upper-case or other forms
/// are different strings to the ingest contract, so they stay strings.
fn guid(id: &str) -> Option<u128> {
    let b = id.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

/// User id → ordinal. GUID ids (the usual case) cost 16 bytes of key, others their string.
#[derive(Debug, Default)]
pub struct UserIndex {
    // foldhash: several times cheaper than SipHash on 16-byte keys (a lookup per ingested
    // line), and still seeded per process, so ids chosen by a client cannot be aimed at
    // one bucket ahead of time.
    guids: HashMap<u128, u32, foldhash::fast::RandomState>,
    others: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
}

impl UserIndex {
    pub fn guids(&self) -> impl Iterator<Item = (u128, u32)> + '_ {
        self.guids.iter().map(|(k, v)| (*k, *v))
    }

    pub fn others(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.others.iter().map(|(k, v)| (&**k, *v))
    }

    /// Makes room for `n` more GUID keys at once (no rehash-and-free while loading).
    pub fn reserve_guids(&mut self, n: usize) {
        self.guids.reserve(n);
    }

    pub fn insert_guid(&mut self, g: u128, ord: u32) {
        self.guids.insert(g, ord);
    }

    pub fn len(&self) -> usize {
        self.guids.len() + self.others.len()
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        match guid(id) {
            Some(g) => self.guids.get(&g).copied(),
            None => self.others.get(id).copied(),
        }
    }

    pub fn insert(&mut self, id: &str, ord: u32) {
        match guid(id) {
            Some(g) => {
                self.guids.insert(g, ord);
            }
            None => {
                self.others.insert(id.into(), ord);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_keys_keep_distinct_ids_apart() {
        let mut ix = UserIndex::default();
        ix.insert("8a3c8d6e-1111-4a4a-9a9a-aaaaaaaaaaaa", 1);
        ix.insert("8A3C8D6E-1111-4A4A-9A9A-AAAAAAAAAAAA", 2);
        ix.insert("u1", 3);
        assert_eq!(ix.get("8a3c8d6e-1111-4a4a-9a9a-aaaaaaaaaaaa"), Some(1));
        assert_eq!(ix.get("8A3C8D6E-1111-4A4A-9A9A-AAAAAAAAAAAA"), Some(2));
        assert_eq!(ix.get("u1"), Some(3));
        assert_eq!(ix.get("8a3c8d6e-1111-4a4a-9a9a-aaaaaaaaaaab"), None);
    }

    #[test]
    fn held_and_deleted_follow_the_contract() {
        let d = |s| Day::parse(s).unwrap();
        let h = Held::from_span(Span {
            start: d("2024-01-02"),
            end: Some(d("2024-01-05")),
        });
        assert!(
            !h.holds_on(d("2024-01-01"))
                && h.holds_on(d("2024-01-02"))
                && h.holds_on(d("2024-01-04"))
        );
        assert!(!h.holds_on(d("2024-01-05")));
        assert!(
            Held::from_span(Span {
                start: d("2024-01-02"),
                end: None
            })
            .holds_on(d("2999-01-01"))
        );
        assert!(!Held::ABSENT.holds_on(d("2024-01-01")));
        assert!(Deleted::new(None).exists_on(d("2024-01-01")));
        assert!(!Deleted::new(Some(d("2024-01-01"))).exists_on(d("2024-01-01")));
        assert!(Deleted::new(Some(d("2024-01-02"))).exists_on(d("2024-01-01")));
    }
}

//! Compact in-memory forms, so a million-user tenant fits in a few hundred bytes per user:
//! [`Held`] (a validity span in 8 bytes), [`UserIndex`] (GUID user ids as 16-byte keys) and
//! [`device_key`] (device ids as 64-bit hashes) and [`Names`] (user names in one arena).

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

    /// The first day held, unless absent.
    pub fn start(self) -> Option<Day> {
        (self.start != NONE).then_some(Day(self.start))
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

    /// The deletion date, if any.
    pub fn date(self) -> Option<Day> {
        (self.0 != NONE).then_some(Day(self.0))
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

    /// Approximate heap bytes (table slots of key, value and control byte; other ids' text).
    pub fn heap_bytes(&self) -> usize {
        self.guids.capacity() * 21
            + self.others.capacity() * 25
            + self.others.keys().map(|k| k.len()).sum::<usize>()
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

/// The id, principal name and display name of every user ordinal, in one byte arena (a few
/// bytes of overhead per user instead of three heap strings). A changed name is appended
/// and the old bytes become garbage; the arena compacts itself once garbage outweighs the
/// live names, so a daily re-sent directory does not grow it.
#[derive(Debug, Default)]
pub struct Names {
    bytes: Vec<u8>,
    spans: Vec<NameSpan>,
    live: usize,
}

impl Names {
    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * std::mem::size_of::<NameSpan>()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct NameSpan {
    off: usize,
    id: u32,
    upn: u32,
    display: u32,
}

impl NameSpan {
    fn len(&self) -> usize {
        self.id as usize + self.upn as usize + self.display as usize
    }
}

impl Names {
    /// Sets the names of `ord` (ordinals are dense: `ord` is at most one past the last).
    pub fn set(&mut self, ord: u32, id: &str, upn: &str, display: &str) {
        let i = ord as usize;
        if i >= self.spans.len() {
            self.spans.resize(i + 1, NameSpan::default());
        }
        if self.get(ord) == (id, upn, display) {
            return;
        }
        let old = self.spans[i].len();
        let span = NameSpan {
            off: self.bytes.len(),
            id: id.len() as u32,
            upn: upn.len() as u32,
            display: display.len() as u32,
        };
        self.bytes.extend_from_slice(id.as_bytes());
        self.bytes.extend_from_slice(upn.as_bytes());
        self.bytes.extend_from_slice(display.as_bytes());
        self.live = self.live - old + span.len();
        self.spans[i] = span;
        if self.bytes.len() > 2 * self.live + (1 << 20) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let mut bytes = Vec::with_capacity(self.live);
        for s in &mut self.spans {
            let len = s.len();
            bytes.extend_from_slice(&self.bytes[s.off..s.off + len]);
            s.off = bytes.len() - len;
        }
        self.bytes = bytes;
    }

    /// `(id, user principal name, display name)`; empty strings for an unknown ordinal.
    pub fn get(&self, ord: u32) -> (&str, &str, &str) {
        let Some(s) = self.spans.get(ord as usize) else {
            return ("", "", "");
        };
        let text = |from: usize, len: u32| {
            self.bytes
                .get(from..from + len as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("")
        };
        let (a, b) = (s.off, s.off + s.id as usize);
        let c = b + s.upn as usize;
        (text(a, s.id), text(b, s.upn), text(c, s.display))
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
    fn names_survive_updates_and_compaction() {
        let mut n = Names::default();
        n.set(0, "a", "a@x", "A");
        n.set(1, "b", "b@x", "");
        for i in 0..200_000 {
            n.set(0, "a", &format!("a{i}@x"), "A");
        }
        assert_eq!(n.get(0), ("a", "a199999@x", "A"));
        assert_eq!(n.get(1), ("b", "b@x", ""));
        assert_eq!(n.get(2), ("", "", ""));
        assert!(n.bytes.len() < 4 << 20, "compacted: {}", n.bytes.len());
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

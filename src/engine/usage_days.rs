//! Per-day series of the mailbox and site facts (mailboxes existing, active, by quota status,
//! their storage; sites existing, active, files, active files, page views, storage) for the
//! 180 days up to R, kept as batches apply, so that the daily mailbox, OneDrive and
//! SharePoint usage reports read one entry per day instead of walking every mailbox or site.
//!
//! A batch retracts the old contribution of each mailbox or site it changes (from the
//! earliest day the change can affect), applies, then adds the new one; days R brings into
//! the window are computed for every mailbox and site. The definitions of "exists", "active"
//! and the quota status live here, once, and the detail reports use them too.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use super::state::{MailboxFacts, SiteFacts, TenantState};
use crate::model::{Day, Mailbox, MailboxState, Service, Site, SiteKind, SiteState};
use crate::store::Changeset;

/// Days kept: the longest period.
const WINDOW: i32 = 180;

/// Per day: total, active, the five quota statuses (QuotaStatusMailboxCounts' column order),
/// storage used.
pub type MailboxDay = [u64; 8];
/// Per day: total, active, files, active files, page views, storage used.
pub type SiteDay = [u64; 6];

/// The earlier of a mailbox's and its user's deletion dates.
pub fn mailbox_deleted(m: &Mailbox, user_deleted: Option<Day>) -> Option<Day> {
    match (m.deleted, user_deleted) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When the mailbox of user `ord` stops existing: its own or its user's deletion date.
pub fn mailbox_gone(state: &TenantState, ord: u32, m: &Mailbox) -> Option<Day> {
    let user = state
        .users()
        .get(ord as usize)
        .and_then(|u| u.deleted.date());
    mailbox_deleted(m, user)
}

/// A mailbox exists on `d` if created on or before it and not deleted (`deleted`: the
/// mailbox's or its user's, see [`mailbox_deleted`]) on or before it.
pub fn mailbox_exists_on(m: &Mailbox, deleted: Option<Day>, d: Day) -> bool {
    m.created <= d && deleted.is_none_or(|x| x > d)
}

/// Quota status as Graph names it, by storage used against the quotas (all zero, or no
/// state yet: indeterminate), as an index into QuotaStatusMailboxCounts' columns.
pub fn quota_status(m: &Mailbox, s: Option<&MailboxState>) -> usize {
    let Some(s) = s else { return 4 };
    if m.issue_warning_quota == 0
        && m.prohibit_send_quota == 0
        && m.prohibit_send_receive_quota == 0
    {
        return 4;
    }
    let over = |q: u64| q > 0 && s.storage_used >= q;
    if over(m.prohibit_send_receive_quota) {
        3
    } else if over(m.prohibit_send_quota) {
        2
    } else if over(m.issue_warning_quota) {
        1
    } else {
        0
    }
}

/// A site exists on `d` if created on or before it and not deleted on or before it.
pub fn site_exists_on(s: &Site, d: Day) -> bool {
    s.created <= d && s.deleted.is_none_or(|x| x > d)
}

/// A site is active on a day if its state dated that day has active files (or, for
/// SharePoint, page views).
pub fn site_active(kind: SiteKind, st: &SiteState) -> bool {
    st.active_file_count > 0 || (kind == SiteKind::SharePoint && st.page_view_count > 0)
}

/// Adds (or with `neg`, removes) `x` to `t` column by column.
fn add<const N: usize>(t: &mut [u64; N], x: &[u64; N], neg: bool) {
    for (a, b) in t.iter_mut().zip(x) {
        *a = if neg {
            a.wrapping_sub(*b)
        } else {
            a.wrapping_add(*b)
        };
    }
}

/// The Exchange activity bitmaps of the days `first ..`, by offset (a lookup per mailbox
/// and day must not walk a map).
struct DayActivity<'a> {
    first: Day,
    days: Vec<Option<&'a RoaringBitmap>>,
}

impl<'a> DayActivity<'a> {
    fn new(state: &'a TenantState, first: Day, last: Day) -> DayActivity<'a> {
        let activity = state.activity(Service::Exchange);
        let n = (last.0 - first.0 + 1).max(0) as usize;
        DayActivity {
            first,
            days: (0..n)
                .map(|i| activity.get(&first.plus(i as i32)))
                .collect(),
        }
    }

    fn contains(&self, d: Day, ord: u32) -> bool {
        usize::try_from(d.0 - self.first.0)
            .ok()
            .and_then(|i| self.days.get(i).copied().flatten())
            .is_some_and(|b| b.contains(ord))
    }
}

/// One mailbox's contribution to each day of `from ..= to`.
fn mailbox_days(
    state: &TenantState,
    ord: u32,
    f: &MailboxFacts,
    (from, to): (Day, Day),
    activity: &DayActivity,
    mut each: impl FnMut(Day, &MailboxDay),
) {
    let Some(m) = &f.mailbox else { return };
    let del = mailbox_gone(state, ord, m);
    let mut next = f.days.partition_point(|x| x.0 < from);
    let mut current = next.checked_sub(1).map(|i| &f.days[i].1);
    let mut d = from;
    while d <= to {
        while next < f.days.len() && f.days[next].0 <= d {
            current = Some(&f.days[next].1);
            next += 1;
        }
        if mailbox_exists_on(m, del, d) {
            let mut x = [0u64; 8];
            x[0] = 1;
            x[1] = u64::from(activity.contains(d, ord));
            x[2 + quota_status(m, current)] = 1;
            x[7] = current.map_or(0, |s| s.storage_used);
            each(d, &x);
        }
        d = d.plus(1);
    }
}

/// One site's contribution to each day of `from ..= to`.
fn site_days(f: &SiteFacts, from: Day, to: Day, mut each: impl FnMut(SiteKind, Day, &SiteDay)) {
    let Some(site) = &f.site else { return };
    let mut next = f.days.partition_point(|x| x.0 < from);
    let mut current = next.checked_sub(1).map(|i| &f.days[i]);
    let mut d = from;
    while d <= to {
        while next < f.days.len() && f.days[next].0 <= d {
            current = Some(&f.days[next]);
            next += 1;
        }
        if site_exists_on(site, d) {
            let mut x = [1, 0, 0, 0, 0, 0];
            if let Some((day, st)) = current {
                let today = *day == d;
                x[1] = u64::from(today && site_active(site.kind, st));
                x[2] = st.file_count;
                x[3] = if today { st.active_file_count } else { 0 };
                x[4] = if today { st.page_view_count } else { 0 };
                x[5] = st.storage_used;
            }
            each(site.kind, d, &x);
        }
        d = d.plus(1);
    }
}

/// What a batch changes, by mailbox (user ordinal) and site ordinal: the earliest day whose
/// contribution can change.
#[derive(Debug, Default)]
pub struct Touched {
    mailboxes: HashMap<u32, Day>,
    sites: HashMap<u32, Day>,
    /// Per day, users newly active in Exchange (for the mailboxes' Active column).
    exchange: Vec<(Day, RoaringBitmap)>,
}

fn earliest(m: &mut HashMap<u32, Day>, k: u32, d: Day) {
    m.entry(k).and_modify(|x| *x = (*x).min(d)).or_insert(d);
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageDays {
    /// The R the window ends on (none: no window yet).
    pub(super) r: Option<Day>,
    pub(super) mailboxes: BTreeMap<Day, MailboxDay>,
    pub(super) sites: [BTreeMap<Day, SiteDay>; 2],
}

impl UsageDays {
    /// The mailboxes' totals on `d` (zeros outside the window).
    pub fn mailboxes(&self, d: Day) -> MailboxDay {
        self.mailboxes.get(&d).copied().unwrap_or_default()
    }

    /// The sites' totals of `kind` on `d` (zeros outside the window).
    pub fn sites(&self, kind: SiteKind, d: Day) -> SiteDay {
        self.sites[kind as usize]
            .get(&d)
            .copied()
            .unwrap_or_default()
    }

    fn first(&self) -> Option<Day> {
        self.r.map(|r| r.minus(WINDOW - 1))
    }

    /// Before `c` is applied to `state`: what it changes, with the old contributions of the
    /// changed mailboxes and sites removed.
    pub fn retract(&mut self, state: &TenantState, c: &Changeset) -> Touched {
        let mut t = Touched::default();
        let Some(r) = self.r else { return t };
        let first = r.minus(WINDOW - 1);
        for m in &c.mailboxes {
            earliest(&mut t.mailboxes, m.ord, first);
        }
        for m in &c.mailbox_days {
            earliest(&mut t.mailboxes, m.ord, m.day);
        }
        for u in &c.users {
            let old = state
                .users()
                .get(u.ord as usize)
                .and_then(|x| x.deleted.date());
            if old != u.deleted && state.mailboxes().contains_key(&u.ord) {
                earliest(&mut t.mailboxes, u.ord, first);
            }
        }
        for s in &c.sites {
            earliest(&mut t.sites, s.ord, first);
        }
        for s in &c.site_days {
            earliest(&mut t.sites, s.ord, s.day);
        }
        for a in &c.activity {
            if a.service == Service::Exchange && a.day >= first && a.day <= r {
                let mut new = a.users.clone();
                if let Some(old) = state.activity(Service::Exchange).get(&a.day) {
                    new -= old;
                }
                t.exchange.push((a.day, new));
            }
        }
        let activity = DayActivity::new(state, first, r);
        for (ord, from) in &t.mailboxes {
            if let Some(f) = state.mailboxes().get(ord) {
                mailbox_days(
                    state,
                    *ord,
                    f,
                    ((*from).max(first), r),
                    &activity,
                    |d, x| {
                        add(self.mailboxes.entry(d).or_default(), x, true);
                    },
                );
            }
        }
        for (ord, from) in &t.sites {
            if let Some(f) = state.sites().get(*ord as usize) {
                site_days(f, (*from).max(first), r, |k, d, x| {
                    add(self.sites[k as usize].entry(d).or_default(), x, true);
                });
            }
        }
        t
    }

    /// After the batch is applied: the window moved to the state's R (new days computed for
    /// every mailbox and site), and the changed ones' new contributions added.
    pub fn restore(&mut self, state: &TenantState, t: Touched) {
        let old = self.r;
        let Some(r) = state.refresh_date() else {
            *self = UsageDays::default();
            return;
        };
        let first = r.minus(WINDOW - 1);
        // Days already in the window and still in it (their totals are kept and corrected).
        let kept = match old {
            Some(o) if o <= r && o >= first => o,
            _ => {
                // First R, R moved back, or a whole window ahead.
                self.rebuild(state);
                return;
            }
        };
        self.r = Some(r);
        self.mailboxes = self.mailboxes.split_off(&first);
        for s in &mut self.sites {
            *s = s.split_off(&first);
        }
        // The days R brought in, for everything.
        if kept < r {
            self.compute(state, kept.plus(1), r);
        }
        let activity = DayActivity::new(state, first, kept);
        for (ord, from) in &t.mailboxes {
            if let Some(f) = state.mailboxes().get(ord) {
                mailbox_days(
                    state,
                    *ord,
                    f,
                    ((*from).max(first), kept),
                    &activity,
                    |d, x| {
                        add(self.mailboxes.entry(d).or_default(), x, false);
                    },
                );
            }
        }
        for (ord, from) in &t.sites {
            if let Some(f) = state.sites().get(*ord as usize) {
                site_days(f, (*from).max(first), kept, |k, d, x| {
                    add(self.sites[k as usize].entry(d).or_default(), x, false);
                });
            }
        }
        // Newly active users whose (unchanged) mailbox exists that day.
        for (d, users) in &t.exchange {
            if *d < first || *d > kept {
                continue;
            }
            let active = &mut self.mailboxes.entry(*d).or_default()[1];
            for ord in users {
                // A changed mailbox's days from its change on were recomputed above.
                if t.mailboxes.get(&ord).is_some_and(|from| d >= from) {
                    continue;
                }
                let Some(m) = state.mailboxes().get(&ord).and_then(|f| f.mailbox.as_ref()) else {
                    continue;
                };
                if mailbox_exists_on(m, mailbox_gone(state, ord, m), *d) {
                    *active += 1;
                }
            }
        }
    }

    /// Recomputes the whole window for the state's R.
    pub fn rebuild(&mut self, state: &TenantState) {
        *self = UsageDays {
            r: state.refresh_date(),
            ..UsageDays::default()
        };
        if let (Some(first), Some(r)) = (self.first(), self.r) {
            self.compute(state, first, r);
        }
    }

    /// Adds every mailbox's and site's contribution to the days `from ..= to` (which hold
    /// nothing yet), summed in flat buffers first.
    fn compute(&mut self, state: &TenantState, from: Day, to: Day) {
        let n = (to.0 - from.0 + 1).max(0) as usize;
        let at = |d: Day| (d.0 - from.0) as usize;
        let activity = DayActivity::new(state, from, to);
        let mut mailboxes = vec![[0u64; 8]; n];
        for (ord, f) in state.mailboxes() {
            mailbox_days(state, *ord, f, (from, to), &activity, |d, x| {
                add(&mut mailboxes[at(d)], x, false);
            });
        }
        let mut sites = [vec![[0u64; 6]; n], vec![[0u64; 6]; n]];
        for f in state.sites() {
            site_days(f, from, to, |k, d, x| {
                add(&mut sites[k as usize][at(d)], x, false);
            });
        }
        for i in 0..n {
            let d = from.plus(i as i32);
            add(self.mailboxes.entry(d).or_default(), &mailboxes[i], false);
            for (k, s) in sites.iter().enumerate() {
                add(self.sites[k].entry(d).or_default(), &s[i], false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::ingest::{Limits, parse_batch};
    use crate::model::TenantId;

    fn apply(state: &mut TenantState, lines: &[String]) {
        let text = lines.join("\n");
        let batch = parse_batch(text.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{e}: {text}"));
        let c = state.plan(&batch).unwrap_or_else(|e| panic!("{e}"));
        state.apply(c);
    }

    /// After every batch (new and changed mailboxes and sites, their states, deletions of
    /// them and of users, activity, R moving a little or a lot), the incrementally kept
    /// series equal a rebuild from scratch.
    #[test]
    fn incremental_series_match_a_rebuild() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut state = TenantState::empty(TenantId::parse("t").expect("tenant id"));
        let base = Day::parse("2026-01-01").unwrap_or_else(|e| panic!("{e}"));
        let users: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"type":"user","id":"u{i}","userPrincipalName":"u{i}@x","displayName":"U{i}"}}"#))
            .collect();
        apply(&mut state, &users);
        let mut r = base.plus(20);
        let mut defined = std::collections::BTreeSet::new();
        let date = |d: Day| d.to_string();
        for round in 0..150 {
            let mut lines = Vec::new();
            for _ in 0..rng.gen_range(1..40) {
                let u = rng.gen_range(0..8);
                let s = rng.gen_range(0..30);
                let day = base.plus(rng.gen_range(0..260));
                let created = base.plus(rng.gen_range(0..200));
                let deleted = if rng.gen_bool(0.2) {
                    format!("\"{}\"", date(created.plus(rng.gen_range(0..60))))
                } else {
                    "null".into()
                };
                let q = rng.gen_range(0..3) * 100;
                lines.push(match rng.gen_range(0..7) {
                    0 => format!(
                        r#"{{"type":"mailbox","userId":"u{u}","createdDate":"{}","deletedDate":{deleted},"recipientType":"user","issueWarningQuota":{q},"prohibitSendQuota":{},"prohibitSendReceiveQuota":{},"deletedItemQuota":0,"hasArchive":false}}"#,
                        date(created),
                        q * 2,
                        q * 3
                    ),
                    1 => format!(
                        r#"{{"type":"mailboxDay","userId":"u{u}","date":"{}","itemCount":3,"storageUsed":{},"deletedItemCount":0,"deletedItemSize":0}}"#,
                        date(day),
                        rng.gen_range(0..1000)
                    ),
                    2 => format!(
                        r#"{{"type":"site","id":"s{s}","kind":"{}","url":"https://x/s{s}","ownerId":"u{u}","rootWebTemplate":"Team Site","createdDate":"{}","deletedDate":{deleted}}}"#,
                        if s % 2 == 0 { "oneDrive" } else { "sharePoint" },
                        date(created)
                    ),
                    3 => format!(
                        r#"{{"type":"site","id":"s{s}","kind":"sharePoint","url":"https://x/s{s}","ownerId":null,"rootWebTemplate":"Team Site","createdDate":"{}","deletedDate":null}}"#,
                        date(created)
                    ),
                    4 => format!(
                        r#"{{"type":"activity","userId":"u{u}","service":"exchange","date":"{}"}}"#,
                        date(day)
                    ),
                    5 => format!(
                        r#"{{"type":"user","id":"u{u}","userPrincipalName":"u{u}@x","displayName":"U","deletedDate":{deleted}}}"#
                    ),
                    _ => format!(
                        r#"{{"type":"siteDay","siteId":"s{s}","date":"{}","fileCount":{},"activeFileCount":{},"pageViewCount":{},"visitedPageCount":1,"storageUsed":{},"storageAllocated":9}}"#,
                        date(day),
                        rng.gen_range(0..50),
                        rng.gen_range(0..3),
                        rng.gen_range(0..3),
                        rng.gen_range(0..900)
                    ),
                });
            }
            // A siteDay needs its site defined in an earlier batch.
            lines.retain(|l| {
                !l.contains(r#""type":"siteDay""#)
                    || defined
                        .iter()
                        .any(|s| l.contains(&format!(r#""siteId":"s{s}""#)))
            });
            for l in &lines {
                if let Some(rest) = l.strip_prefix(r#"{"type":"site","id":"s"#) {
                    let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    defined.insert(n);
                }
            }
            if round % 5 == 2 {
                r = r.plus(if round % 15 == 2 {
                    200
                } else {
                    rng.gen_range(0..9)
                });
                lines.push(format!(r#"{{"type":"refresh","date":"{}"}}"#, date(r)));
            }
            apply(&mut state, &lines);
            let mut whole = UsageDays::default();
            whole.rebuild(&state);
            let got = state.usage_days();
            for (d, x) in &whole.mailboxes {
                assert_eq!(
                    got.mailboxes.get(d),
                    Some(x),
                    "round {round}: mailboxes on {d}"
                );
            }
            for k in 0..2 {
                for (d, x) in &whole.sites[k] {
                    assert_eq!(
                        got.sites[k].get(d),
                        Some(x),
                        "round {round}: sites {k} on {d}"
                    );
                }
            }
            assert_eq!(got, &whole, "round {round}");
        }
    }
}

//! Per-day totals of the workload activity counters, kept as batches are applied, so that the
//! daily reports (EmailActivityCounts, ...UserCounts, SharePointActivityPages) read one entry
//! per day instead of summing every user's counters at request time.
//!
//! The reports count users existing on R only. The totals therefore leave out a set of
//! excluded users (those not existing on R) and are corrected, user by user, when that set
//! changes (a deletion, a restore, R moving); a change touching many users rebuilds them whole.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::state::UserState;
use crate::model::{Day, MAX_COUNTERS};
use crate::store::CounterBlock;

/// One day's totals over the counted users: per counter, the sum and the users with it
/// non-zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub sums: [u64; MAX_COUNTERS],
    pub users: [u64; MAX_COUNTERS],
}

impl DayTotals {
    fn add(&mut self, v: &[u32; MAX_COUNTERS]) {
        for ((s, u), x) in self.sums.iter_mut().zip(&mut self.users).zip(v) {
            *s += u64::from(*x);
            *u += u64::from(*x > 0);
        }
    }

    fn sub(&mut self, v: &[u32; MAX_COUNTERS]) {
        for ((s, u), x) in self.sums.iter_mut().zip(&mut self.users).zip(v) {
            *s -= u64::from(*x);
            *u -= u64::from(*x > 0);
        }
    }
}

/// The totals of the three workloads ([`crate::model::Workload::index`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterTotals {
    /// Users whose counters are left out: those not existing on R when last reconciled.
    pub(super) excluded: RoaringBitmap,
    pub(super) days: [BTreeMap<Day, DayTotals>; 3],
}

/// A dense membership test for the excluded users (one bit per ordinal).
struct Dense(Vec<u64>);

impl Dense {
    fn of(set: &RoaringBitmap) -> Dense {
        let n = set.max().map_or(0, |m| m as usize / 64 + 1);
        let mut words = vec![0u64; n];
        for o in set {
            words[o as usize / 64] |= 1 << (o % 64);
        }
        Dense(words)
    }

    fn contains(&self, o: u32) -> bool {
        self.0
            .get(o as usize / 64)
            .is_some_and(|w| w & (1 << (o % 64)) != 0)
    }
}

impl CounterTotals {
    /// The users not existing on R (as of the last reconcile: the state's R).
    pub fn excluded(&self) -> &RoaringBitmap {
        &self.excluded
    }

    /// The totals of `workload` on `day` (none: no counters that day).
    pub fn get(&self, workload: usize, day: Day) -> Option<&DayTotals> {
        self.days[workload].get(&day)
    }

    /// The totals of a day block, leaving out the excluded users.
    fn total(block: &CounterBlock, dense: &Dense) -> DayTotals {
        let mut t = DayTotals::default();
        for (o, v) in block.ords.iter().zip(&block.values) {
            if !dense.contains(*o) {
                t.add(v);
            }
        }
        t
    }

    /// A day block of `workload` was stored (replacing the day's previous block).
    pub fn set_block(&mut self, workload: usize, day: Day, block: &CounterBlock) {
        let dense = Dense::of(&self.excluded);
        self.days[workload].insert(day, Self::total(block, &dense));
    }

    /// The users not existing on `r` (none without an R).
    fn excluded_on(users: &[UserState], r: Option<Day>) -> RoaringBitmap {
        let Some(r) = r else {
            return RoaringBitmap::new();
        };
        users
            .iter()
            .enumerate()
            .filter(|(_, u)| !u.exists_on(r))
            .map(|(o, _)| o as u32)
            .collect()
    }

    /// Brings the excluded set to the users not existing on `r` and corrects the totals for
    /// the users that entered or left it. Whether the set changed.
    pub fn reconcile(
        &mut self,
        users: &[UserState],
        r: Option<Day>,
        counters: &[BTreeMap<Day, CounterBlock>; 3],
    ) -> bool {
        let now = Self::excluded_on(users, r);
        if now == self.excluded {
            return false;
        }
        let entering = &now - &self.excluded;
        let leaving = &self.excluded - &now;
        let changed = entering.len() + leaving.len();
        let blocks: u64 = counters.iter().map(|d| d.len() as u64).sum();
        let entries: u64 = counters
            .iter()
            .flat_map(|d| d.values())
            .map(|b| b.ords.len() as u64)
            .sum();
        self.excluded = now;
        // A binary search per changed user and block, or one pass over every entry.
        if changed.saturating_mul(blocks).saturating_mul(24) > entries {
            self.recompute(counters);
            return true;
        }
        for (w, days) in counters.iter().enumerate() {
            for (day, block) in days {
                let Some(t) = self.days[w].get_mut(day) else {
                    continue;
                };
                for o in &entering {
                    if let Ok(i) = block.ords.binary_search(&o) {
                        t.sub(&block.values[i]);
                    }
                }
                for o in &leaving {
                    if let Ok(i) = block.ords.binary_search(&o) {
                        t.add(&block.values[i]);
                    }
                }
            }
        }
        true
    }

    /// Recomputes the excluded set and every day's totals from scratch.
    /// Forgets the totals of days before `before` (retention).
    pub fn drop_before(&mut self, before: Day) {
        for days in &mut self.days {
            *days = days.split_off(&before);
        }
    }

    pub fn rebuild(
        &mut self,
        users: &[UserState],
        r: Option<Day>,
        counters: &[BTreeMap<Day, CounterBlock>; 3],
    ) {
        self.excluded = Self::excluded_on(users, r);
        self.recompute(counters);
    }

    fn recompute(&mut self, counters: &[BTreeMap<Day, CounterBlock>; 3]) {
        let dense = Dense::of(&self.excluded);
        for (w, days) in counters.iter().enumerate() {
            self.days[w] = days
                .iter()
                .map(|(d, b)| (*d, Self::total(b, &dense)))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::compact::Deleted;

    fn block(entries: &[(u32, u32)]) -> CounterBlock {
        CounterBlock {
            ords: entries.iter().map(|e| e.0).collect(),
            values: entries.iter().map(|e| [e.1, 0, 0, 0, 0]).collect(),
        }
    }

    fn naive(users: &[UserState], r: Day, b: &CounterBlock) -> DayTotals {
        let mut t = DayTotals::default();
        for (o, v) in b.ords.iter().zip(&b.values) {
            if users[*o as usize].exists_on(r) {
                t.add(v);
            }
        }
        t
    }

    /// Incremental corrections (few users change) and whole rebuilds (many change) both
    /// equal the totals computed from scratch.
    #[test]
    fn totals_follow_deletions_and_r() {
        let d = |s: &str| Day::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let mut users = vec![UserState::default(); 400];
        let mut counters: [BTreeMap<Day, CounterBlock>; 3] = Default::default();
        let mut t = CounterTotals::default();
        for k in 0..10 {
            let day = d("2026-03-01").plus(k);
            let b = block(
                &(0..400u32)
                    .filter(|o| !(o + k as u32).is_multiple_of(3))
                    .map(|o| (o, o % 7 + k as u32 % 2))
                    .collect::<Vec<_>>(),
            );
            t.set_block(0, day, &b);
            counters[0].insert(day, b);
        }
        let check = |t: &CounterTotals, users: &[UserState], r: Day| {
            for (day, b) in &counters[0] {
                assert_eq!(t.get(0, *day), Some(&naive(users, r, b)), "{day:?}");
            }
        };
        for (step, (deleted, r)) in [
            (vec![5u32], "2026-03-10"),
            (vec![6, 7], "2026-03-10"),
            ((0..200).collect(), "2026-03-10"),
            (vec![], "2026-03-10"),
            ((100..110).collect(), "2026-03-05"),
        ]
        .into_iter()
        .enumerate()
        {
            for u in users.iter_mut() {
                u.deleted = Deleted::new(None);
            }
            for o in deleted {
                users[o as usize].deleted = Deleted::new(Some(d("2026-03-04").plus(step as i32)));
            }
            t.reconcile(&users, Some(d(r)), &counters);
            check(&t, &users, d(r));
            let mut whole = CounterTotals::default();
            whole.rebuild(&users, Some(d(r)), &counters);
            check(&whole, &users, d(r));
        }
    }
}

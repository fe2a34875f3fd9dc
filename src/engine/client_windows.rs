//! The email app usage summaries kept as batches apply: per period, the users of each email
//! client and Outlook version on some day of the period's window ending on R (the unions
//! AppsUserCounts and VersionsUserCounts count), and per day the users of each signal who
//! exist on R (EmailAppUsageUserCounts), so none of them unions 180 days of bitmaps per call.
//!
//! A batch that only adds users to days ORs them into the windows; one that removes a user
//! from a day (a later record replacing an earlier one), or moves R, rebuilds them.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::model::{Day, Period};
use crate::store::CLIENT_SIGNALS;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientWindows {
    /// The R the windows end on.
    pub(super) r: Option<Day>,
    /// Per period ([`Period::index`]), per signal: the users with it in the window.
    pub(super) unions: Vec<Vec<RoaringBitmap>>,
    /// Per day: per signal, the users with it that day who exist on R.
    pub(super) day_counts: BTreeMap<Day, Vec<u64>>,
}

/// What a batch did to the per-day client bitmaps.
#[derive(Debug, Default)]
pub struct ClientChange {
    pub days: Vec<Day>,
    /// Some user lost a signal on some day.
    pub shrunk: bool,
}

impl ClientWindows {
    /// Per signal, the users with it on some day of `p`'s window ending on R.
    pub fn window(&self, p: Period) -> Option<&[RoaringBitmap]> {
        self.unions.get(p.index()).map(Vec::as_slice)
    }

    /// Per signal, the users with it on `d` who exist on R (none: no client data that day).
    pub fn day(&self, d: Day) -> Option<&[u64]> {
        self.day_counts.get(&d).map(Vec::as_slice)
    }

    fn count(signals: &[RoaringBitmap], excluded: &RoaringBitmap) -> Vec<u64> {
        signals
            .iter()
            .map(|b| b.len() - b.intersection_len(excluded))
            .collect()
    }

    /// Recomputes everything from the per-day bitmaps (after a snapshot load).
    pub fn rebuild(
        &mut self,
        clients: &BTreeMap<Day, Vec<RoaringBitmap>>,
        r: Option<Day>,
        excluded: &RoaringBitmap,
    ) {
        *self = ClientWindows::default();
        let all = ClientChange {
            days: Vec::new(),
            shrunk: true,
        };
        self.update(clients, r, excluded, true, &all);
    }

    /// Brings the summaries up to date after a batch: `excluded` are the users not existing
    /// on R, `excluded_changed` whether that set changed in the batch.
    pub fn update(
        &mut self,
        clients: &BTreeMap<Day, Vec<RoaringBitmap>>,
        r: Option<Day>,
        excluded: &RoaringBitmap,
        excluded_changed: bool,
        change: &ClientChange,
    ) {
        if excluded_changed {
            self.day_counts = clients
                .iter()
                .map(|(d, s)| (*d, Self::count(s, excluded)))
                .collect();
        } else {
            for d in &change.days {
                if let Some(s) = clients.get(d) {
                    self.day_counts.insert(*d, Self::count(s, excluded));
                }
            }
        }
        if r != self.r || change.shrunk {
            self.r = r;
            self.unions = match r {
                Some(r) => Period::ALL
                    .iter()
                    .map(|p| {
                        let mut u = vec![RoaringBitmap::new(); CLIENT_SIGNALS];
                        for (_, s) in clients.range(r.minus(p.days() - 1)..=r) {
                            for (a, b) in u.iter_mut().zip(s) {
                                *a |= b;
                            }
                        }
                        u
                    })
                    .collect(),
                None => Vec::new(),
            };
            return;
        }
        let Some(r) = r else { return };
        for d in &change.days {
            let Some(s) = clients.get(d) else { continue };
            for p in Period::ALL {
                if *d <= r && *d > r.minus(p.days()) {
                    for (a, b) in self.unions[p.index()].iter_mut().zip(s) {
                        *a |= b;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::engine::TenantState;
    use crate::ingest::{Limits, parse_batch};
    use crate::model::TenantId;

    /// After every batch (clients added, replaced by fewer, users deleted, R moving), the
    /// kept summaries equal ones rebuilt from scratch.
    #[test]
    fn kept_summaries_match_a_rebuild() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut state = TenantState::empty(TenantId::parse("t").expect("tenant id"));
        let base = Day::parse("2026-01-01").expect("day");
        let apply = |state: &mut TenantState, lines: &[String]| {
            let text = lines.join("\n");
            let batch = parse_batch(text.as_bytes(), &Limits::default()).expect("batch");
            let c = state.plan(&batch).expect("plan");
            state.apply(c);
        };
        let users: Vec<String> = (0..30)
            .map(|i| format!(r#"{{"type":"user","id":"u{i}","userPrincipalName":"u{i}@x","displayName":"U"}}"#))
            .collect();
        apply(&mut state, &users);
        let apps = [
            "mailForMac",
            "outlookForWeb",
            "pop3App",
            "outlookForWindows",
        ];
        let mut r = base.plus(30);
        for round in 0..100 {
            let mut lines = Vec::new();
            for _ in 0..rng.gen_range(1..30) {
                let u = rng.gen_range(0..30);
                let day = base.plus(rng.gen_range(0..250));
                lines.push(if rng.gen_bool(0.1) {
                    let del = if rng.gen_bool(0.5) {
                        format!("\"{}\"", base.plus(rng.gen_range(0..250)))
                    } else {
                        "null".into()
                    };
                    format!(r#"{{"type":"user","id":"u{u}","userPrincipalName":"u{u}@x","displayName":"U","deletedDate":{del}}}"#)
                } else {
                    let n = rng.gen_range(0..3);
                    let list: Vec<String> = (0..n)
                        .map(|_| format!("\"{}\"", apps[rng.gen_range(0..apps.len())]))
                        .collect();
                    let version = if rng.gen_bool(0.5) { "\"2016\"" } else { "null" };
                    format!(
                        r#"{{"type":"emailClients","userId":"u{u}","date":"{day}","clients":[{}],"outlookVersion":{version}}}"#,
                        list.join(",")
                    )
                });
            }
            if round % 6 == 3 {
                r = r.plus(rng.gen_range(0..20));
                lines.push(format!(r#"{{"type":"refresh","date":"{r}"}}"#));
            }
            apply(&mut state, &lines);
            let mut whole = ClientWindows::default();
            whole.rebuild(
                state.email_clients(),
                state.refresh_date(),
                state.not_existing_on_r(),
            );
            assert_eq!(state.client_windows(), &whole, "round {round}");
        }
    }
}

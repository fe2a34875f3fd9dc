//! Erasure of one user (`DELETE /admin/v1/tenants/{tid}/users/{id}`): the tenant as it would
//! be had the user never been ingested. Users are dense ordinals in first-ingested order, so
//! removing one renumbers every later user (and their bits in each day's bitmaps and
//! counters) down by one, exactly as an ingest without the user would have numbered them.
//!
//! What goes with the user: the directory entry, licenses, product assignments,
//! activations, mailbox and its daily states, activity, counters, email-client signals, and
//! the user's OneDrive account (a OneDrive site is the person's: its URL carries their
//! name). A SharePoint site the user owned stays, the organisation's, with no owner.
//!
//! Pure: [`Erasure::chunk`] maps the store's chunks of the tenant ([`crate::store::Store::load`])
//! to the chunks of the tenant without the user; the registry stores them in one
//! transaction ([`crate::store::Store::rewrite_tenant`]) and builds the new state from them.

use roaring::RoaringBitmap;

use super::TenantState;
use crate::model::SiteKind;
use crate::store::{Changeset, TenantMeta};

/// The plan of one erasure: the user's ordinal and the site ordinals going with them.
#[derive(Debug, Clone)]
pub struct Erasure {
    user: u32,
    /// Ascending.
    sites: Vec<u32>,
}

impl Erasure {
    /// The erasure of `user_id`, or `None` if the tenant holds no such user.
    pub fn plan(state: &TenantState, user_id: &str) -> Option<Erasure> {
        let user = state.ordinal(user_id)?;
        let sites = state
            .sites()
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.owner == Some(user)
                    && f.site
                        .as_ref()
                        .is_some_and(|s| s.kind == SiteKind::OneDrive)
            })
            .map(|(i, _)| i as u32)
            .collect();
        Some(Erasure { user, sites })
    }

    /// How many sites go with the user (their OneDrive accounts).
    pub fn sites_removed(&self) -> usize {
        self.sites.len()
    }

    /// A user ordinal after the erasure (`None`: the erased user).
    fn user_ord(&self, o: u32) -> Option<u32> {
        match o.cmp(&self.user) {
            std::cmp::Ordering::Less => Some(o),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(o - 1),
        }
    }

    /// A site ordinal after the erasure (`None`: a site going with the user).
    fn site_ord(&self, o: u32) -> Option<u32> {
        match self.sites.binary_search(&o) {
            Ok(_) => None,
            Err(below) => Some(o - below as u32),
        }
    }

    /// A bitmap of user ordinals after the erasure (the mapping is monotonic).
    fn bitmap(&self, b: &RoaringBitmap) -> RoaringBitmap {
        if b.max().is_none_or(|m| m < self.user) {
            return b.clone();
        }
        RoaringBitmap::from_sorted_iter(b.iter().filter_map(|o| self.user_ord(o)))
            .unwrap_or_else(|_| unreachable!("a monotonic map of a sorted sequence is sorted"))
    }

    /// One chunk of the stored tenant, without the user, renumbered. Days left with no one
    /// are dropped (an ingest without the user would never have written them).
    pub fn chunk(&self, mut c: Changeset) -> Changeset {
        let u = |o: &mut u32| -> bool {
            match self.user_ord(*o) {
                Some(n) => {
                    *o = n;
                    true
                }
                None => false,
            }
        };
        c.users.retain_mut(|r| u(&mut r.ord));
        c.licenses.retain_mut(|r| u(&mut r.ord));
        c.products.retain_mut(|r| u(&mut r.ord));
        c.activations.retain_mut(|r| u(&mut r.ord));
        c.mailboxes.retain_mut(|r| u(&mut r.ord));
        c.mailbox_days.retain_mut(|r| u(&mut r.ord));
        c.sites.retain_mut(|r| {
            let Some(n) = self.site_ord(r.ord) else {
                return false;
            };
            r.ord = n;
            match r.owner {
                Some(o) if o == self.user => {
                    r.owner = None;
                    r.site.owner = None;
                }
                Some(o) => r.owner = self.user_ord(o),
                None => {}
            }
            true
        });
        c.site_days.retain_mut(|r| match self.site_ord(r.ord) {
            Some(n) => {
                r.ord = n;
                true
            }
            None => false,
        });
        for a in &mut c.activity {
            a.users = self.bitmap(&a.users);
        }
        c.activity.retain(|a| !a.users.is_empty());
        for x in &mut c.counters {
            let b = &mut x.block;
            if let Ok(i) = b.ords.binary_search(&self.user) {
                b.ords.remove(i);
                b.values.remove(i);
            }
            for o in &mut b.ords {
                if *o > self.user {
                    *o -= 1;
                }
            }
        }
        c.counters.retain(|x| !x.block.ords.is_empty());
        for x in &mut c.clients {
            for s in &mut x.signals {
                *s = self.bitmap(s);
            }
        }
        c.clients
            .retain(|x| x.signals.iter().any(|s| !s.is_empty()));
        c
    }

    /// The tenant's scalars after the erasure: the latest activity date is what remains
    /// (the user may have been the only one active on the last day), the version moves on.
    pub fn meta(before: TenantMeta, chunks: &[Changeset]) -> TenantMeta {
        let max_activity = chunks
            .iter()
            .flat_map(|c| c.activity.iter().map(|a| a.day))
            .max();
        TenantMeta {
            explicit_refresh: before.explicit_refresh,
            max_activity,
            version: before.version + 1,
        }
    }
}

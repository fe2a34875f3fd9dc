//! One tenant's state, and how a batch is planned against it and applied to it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;

use super::client_windows::{ClientChange, ClientWindows};
use super::compact::{Deleted, Held, Names, UserIndex, device_key};
use super::totals::{CounterTotals, DayTotals};
use super::usage_days::UsageDays;
use crate::ingest::{IngestError, Numbered};
use crate::model::{
    Day, EMAIL_APPS, MAX_COUNTERS, Mailbox, MailboxState, Period, Platform, Record, Service, Site,
    SiteState, TenantId, Workload,
};
use crate::store::{
    ActivationRow, ActivityDay, CLIENT_SIGNALS, Changeset, ClientDay, CounterBlock, CounterDay,
    LicenseRow, MailboxDayRow, MailboxRow, ProductRow, Rows, SiteDayRow, SiteRow, TenantMeta,
    UserRow,
};

/// What the reports need of one user, compactly: about 84 bytes plus 12 per product and 24
/// per device (names live apart, in [`TenantState::names`]).
#[derive(Debug, Clone, Default)]
pub struct UserState {
    pub deleted: Deleted,
    /// Indexed by [`Service::index`].
    pub licenses: [Held; 6],
    /// (product index, assignment), at most one per product. Boxed slices: exact size.
    pub products: Box<[(u32, Held)]>,
    pub activations: Box<[ActivationState]>,
}

impl UserState {
    /// A user exists on `r` if not deleted, or deleted after `r`.
    pub fn exists_on(&self, r: Day) -> bool {
        self.deleted.exists_on(r)
    }
}

/// A user's mailbox (none until a `mailbox` record arrives) and its states by day, days
/// ascending; a state holds until the next one.
#[derive(Debug, Clone, Default)]
pub struct MailboxFacts {
    pub mailbox: Option<Mailbox>,
    pub days: Vec<(Day, MailboxState)>,
}

impl MailboxFacts {
    /// The state as of `d`: the latest one dated on or before it.
    pub fn state_on(&self, d: Day) -> Option<&MailboxState> {
        let i = self.days.partition_point(|x| x.0 <= d);
        i.checked_sub(1).map(|i| &self.days[i].1)
    }
}

/// A site (none until its `site` record) with its owner's user ordinal and its states by
/// day, days ascending; a state holds until the next one.
#[derive(Debug, Clone, Default)]
pub struct SiteFacts {
    pub site: Option<Site>,
    pub owner: Option<u32>,
    pub days: Vec<(Day, SiteState)>,
}

impl SiteFacts {
    /// The state as of `d`: the latest one dated on or before it.
    pub fn state_on(&self, d: Day) -> Option<&SiteState> {
        let i = self.days.partition_point(|x| x.0 <= d);
        i.checked_sub(1).map(|i| &self.days[i].1)
    }
}

#[derive(Debug, Clone)]
pub struct ActivationState {
    pub product: u32,
    pub platform: Platform,
    pub shared_computer: bool,
    pub active: Held,
    /// [`device_key`] of the device id.
    pub device: u64,
}

/// Replaces the element `same` finds, or appends `new`, in a boxed slice.
fn upsert<T>(items: &mut Box<[T]>, new: T, same: impl Fn(&T) -> bool) {
    if let Some(slot) = items.iter_mut().find(|x| same(x)) {
        *slot = new;
        return;
    }
    let mut v = std::mem::take(items).into_vec();
    v.reserve_exact(1);
    v.push(new);
    *items = v.into_boxed_slice();
}

/// A cheap hasher for `(Service, Day)` keys while planning a batch (millions of lookups per
/// bulk file). Fibonacci hashing of a packed 64-bit key; the key space is small and dense,
/// so there is nothing for an attacker to collide that a linear scan would not also cost.
#[derive(Default)]
struct DayKeyHasher(u64);

impl std::hash::Hasher for DayKeyHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).rotate_left(5);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.0 = self.0.rotate_left(8) ^ u64::from(n);
    }
    fn write_i32(&mut self, n: i32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n as u32);
    }
    fn write_isize(&mut self, n: isize) {
        self.0 = self.0.rotate_left(16) ^ n as u64;
    }
}

type DayKeyMap<V> = HashMap<(Service, Day), V, std::hash::BuildHasherDefault<DayKeyHasher>>;

/// The users a batch makes active per service and day, gathered cheaply: each signal is
/// pushed to a plain list, and a block's lists are folded into the day's bitmap once per
/// block ([`ActiveDelta::fold`]). A `RoaringBitmap::insert` per signal was a quarter of the
/// planner's time on a bulk load (a container search per insert); a block's list is
/// usually sorted already (a user's lines come together and new users get rising
/// ordinals), so the fold is a check, a dedup and an append.
#[derive(Default)]
struct ActiveDelta {
    days: DayKeyMap<RoaringBitmap>,
    /// The lists, one per (service, day) seen, and where each key's list is.
    pending: Vec<((Service, Day), Vec<u32>)>,
    slots: DayKeyMap<u32>,
    /// A direct-mapped cache in front of `slots` (index: service and the day's low bits;
    /// value: slot + 1, 0 for none), checked against the slot's key: a hash lookup per
    /// signal was a tenth of the planner's time, and a bulk load's days repeat in runs.
    cache: Vec<u32>,
}

const DELTA_CACHE_DAYS: usize = 512;

impl ActiveDelta {
    fn insert(&mut self, key: (Service, Day), ord: u32) {
        if self.cache.is_empty() {
            self.cache = vec![0; 6 * DELTA_CACHE_DAYS];
        }
        let at = key.0 as usize * DELTA_CACHE_DAYS + (key.1.0 as usize & (DELTA_CACHE_DAYS - 1));
        let cached = self.cache[at];
        if cached != 0
            && let Some((k, list)) = self.pending.get_mut(cached as usize - 1)
            && *k == key
        {
            list.push(ord);
            return;
        }
        let next = self.pending.len() as u32;
        let slot = *self.slots.entry(key).or_insert(next);
        if slot == next {
            self.pending.push((key, Vec::new()));
        }
        self.cache[at] = slot + 1;
        if let Some((_, list)) = self.pending.get_mut(slot as usize) {
            list.push(ord);
        }
    }

    /// Moves the pending lists into the bitmaps (their memory is kept for the next block).
    fn fold(&mut self) {
        for (key, list) in self.pending.iter_mut() {
            if list.is_empty() {
                continue;
            }
            if !list.is_sorted() {
                list.sort_unstable();
            }
            list.dedup();
            let users = self.days.entry(*key).or_default();
            let appended = match users.max() {
                Some(max) if list[0] <= max => None,
                _ => users.append(list.iter().copied()).ok(),
            };
            if appended.is_none() {
                // Sorted and deduplicated just above, so this cannot fail; if it did, the
                // slow path inserts one by one.
                match RoaringBitmap::from_sorted_iter(list.iter().copied()) {
                    Ok(b) => *users |= b,
                    Err(_) => users.extend(list.iter().copied()),
                }
            }
            list.clear();
        }
    }

    fn into_days(mut self) -> DayKeyMap<RoaringBitmap> {
        self.fold();
        self.days
    }
}

/// Users active in each service over each period ending on R, kept up to date as activity
/// arrives (an OR of the new day's bitmap) and rebuilt only when R moves.
#[derive(Debug, Default)]
struct Windows {
    r: Option<Day>,
    /// `[service][period]`.
    unions: [[RoaringBitmap; 4]; 6],
}

/// Users existing and licensed on R, per service (index 6: for any service).
pub type Licensed = [RoaringBitmap; 7];

#[derive(Debug)]
pub struct TenantState {
    pub(super) tenant: TenantId,
    pub(super) users: Vec<UserState>,
    pub(super) index: UserIndex,
    pub(super) names: Names,
    pub(super) products: Vec<String>,
    pub(super) product_index: HashMap<String, u32>,
    pub(super) activity: [BTreeMap<Day, RoaringBitmap>; 6],
    /// Per workload ([`Workload::index`]) and day, the users' activity counters.
    pub(super) counters: [BTreeMap<Day, CounterBlock>; 3],
    /// Per workload and day, the counters' totals over the users existing on R.
    pub(super) totals: CounterTotals,
    /// Per day, the users of each email client and Outlook version ([`CLIENT_SIGNALS`]).
    pub(super) clients: BTreeMap<Day, Vec<RoaringBitmap>>,
    /// The email app usage summaries over `clients`.
    pub(super) client_windows: ClientWindows,
    /// Per user ordinal with mailbox facts: the mailbox and its daily states.
    pub(super) mailboxes: BTreeMap<u32, MailboxFacts>,
    /// Sites (OneDrive accounts and SharePoint sites) by site ordinal, and id → ordinal.
    pub(super) sites: Vec<SiteFacts>,
    pub(super) site_index: HashMap<String, u32>,
    /// Per day of the 180 up to R, the mailbox and site totals.
    pub(super) usage_days: UsageDays,
    pub(super) meta: TenantMeta,
    /// The first day retention kept (`None`: nothing was ever pruned); set from the store on
    /// load and by [`TenantState::prune`]'s caller.
    pub(super) retained_from: Option<Day>,
    /// Bumped when users, licenses, products or activations change (activity alone does not).
    directory_version: u64,
    windows: Windows,
    /// Licensed sets for (directory version, R), computed on first use.
    licensed: Mutex<Option<(u64, Day, Arc<Licensed>)>>,
}

impl TenantState {
    pub fn empty(tenant: TenantId) -> TenantState {
        TenantState {
            tenant,
            users: Vec::new(),
            index: UserIndex::default(),
            names: Names::default(),
            products: Vec::new(),
            product_index: HashMap::new(),
            activity: Default::default(),
            counters: Default::default(),
            totals: CounterTotals::default(),
            clients: BTreeMap::new(),
            client_windows: ClientWindows::default(),
            mailboxes: BTreeMap::new(),
            sites: Vec::new(),
            site_index: HashMap::new(),
            usage_days: UsageDays::default(),
            meta: TenantMeta::default(),
            retained_from: None,
            directory_version: 0,
            windows: Windows::default(),
            licensed: Mutex::new(None),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Bumped by every accepted batch; caches key on it.
    pub fn version(&self) -> u64 {
        self.meta.version
    }

    /// The Report Refresh Date R: the latest `refresh` record's date, else the latest activity
    /// date, else none (no data yet).
    pub fn refresh_date(&self) -> Option<Day> {
        self.meta.explicit_refresh.or(self.meta.max_activity)
    }

    pub fn users(&self) -> &[UserState] {
        &self.users
    }

    /// `(id, user principal name, display name)` of a user ordinal.
    pub fn names(&self, ord: u32) -> (&str, &str, &str) {
        self.names.get(ord)
    }

    pub fn product_name(&self, product: u32) -> &str {
        self.products
            .get(product as usize)
            .map_or("", |s| s.as_str())
    }

    pub fn product_count(&self) -> usize {
        self.products.len()
    }

    /// Changes when anything but activity changes; reports that ignore activity key on it.
    pub fn directory_version(&self) -> u64 {
        self.directory_version
    }

    /// Users with activity in `service` during `period` ending on R (licensed or not).
    pub fn active_in_window(&self, service: Service, period: Period) -> &RoaringBitmap {
        &self.windows.unions[service.index()][period.index()]
    }

    /// Users existing and licensed on `r`, per service and for any service. Cached per
    /// directory version and `r`.
    pub fn licensed_on(&self, r: Day) -> Arc<Licensed> {
        let mut cache = self.licensed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, day, l)) = cache.as_ref()
            && *v == self.directory_version
            && *day == r
        {
            return l.clone();
        }
        let mut l: Licensed = Default::default();
        for (ord, user) in self.users.iter().enumerate() {
            if !user.exists_on(r) {
                continue;
            }
            let mut any = false;
            for s in Service::ALL {
                if user.licenses[s.index()].holds_on(r) {
                    // Ordinals ascend, so these inserts are appends.
                    l[s.index()].insert(ord as u32);
                    any = true;
                }
            }
            if any {
                l[6].insert(ord as u32);
            }
        }
        let l = Arc::new(l);
        *cache = Some((self.directory_version, r, l.clone()));
        l
    }

    /// Computes derived sets now (after a load or a batch), so the next report call does
    /// not pay for them.
    pub fn warm(&self) {
        if let Some(r) = self.refresh_date() {
            self.licensed_on(r);
        }
    }

    pub(super) fn rebuild_windows(&mut self) {
        let r = self.refresh_date();
        let mut w = Windows {
            r,
            ..Windows::default()
        };
        if let Some(r) = r {
            for s in Service::ALL {
                let days = &self.activity[s.index()];
                for p in Period::ALL {
                    let u = &mut w.unions[s.index()][p.index()];
                    for (_, bits) in days.range(r.minus(p.days() - 1)..=r) {
                        *u |= bits;
                    }
                }
            }
        }
        self.windows = w;
    }

    /// The first day retention kept, if it ever removed anything: reports over periods
    /// starting before it answer with what remains.
    pub fn retained_from(&self) -> Option<Day> {
        self.retained_from
    }

    /// Approximately how many bytes of memory the tenant holds (what `--memory-budget`
    /// counts): the users and their assignments, the id index and names, every day's
    /// bitmaps and counters, mailboxes and sites with their states. Bitmaps count their
    /// serialized size, close to their in-memory one; allocator overhead is not counted.
    pub fn heap_bytes(&self) -> u64 {
        use std::mem::size_of;
        let users = self.users.capacity() * size_of::<UserState>()
            + self
                .users
                .iter()
                .map(|u| {
                    u.products.len() * size_of::<(u32, Held)>()
                        + u.activations.len() * size_of::<ActivationState>()
                })
                .sum::<usize>();
        let bitmaps = |m: &BTreeMap<Day, RoaringBitmap>| {
            m.values().map(|b| b.serialized_size() + 48).sum::<usize>()
        };
        let activity: usize = self.activity.iter().map(bitmaps).sum();
        let counters: usize = self
            .counters
            .iter()
            .flat_map(|m| m.values())
            .map(|b| b.ords.capacity() * 4 + b.values.capacity() * 4 * MAX_COUNTERS + 64)
            .sum();
        let clients: usize = self
            .clients
            .values()
            .flat_map(|v| v.iter())
            .map(|b| b.serialized_size() + 48)
            .sum();
        let mailboxes: usize = self
            .mailboxes
            .values()
            .map(|f| {
                size_of::<MailboxFacts>()
                    + 40
                    + f.days.capacity() * size_of::<(Day, MailboxState)>()
            })
            .sum();
        let sites: usize = self
            .sites
            .iter()
            .map(|f| {
                size_of::<SiteFacts>()
                    + f.days.capacity() * size_of::<(Day, SiteState)>()
                    + f.site.as_ref().map_or(0, |x| {
                        x.id.len() * 2 + x.url.len() + x.root_web_template.len() + 48
                    })
            })
            .sum();
        let windows: usize = self
            .windows
            .unions
            .iter()
            .flatten()
            .map(|b| b.serialized_size())
            .sum();
        (users
            + self.index.heap_bytes()
            + self.names.heap_bytes()
            + activity
            + counters
            + clients
            + mailboxes
            + sites
            + windows) as u64
    }

    /// The ordinal of the user with this id, if ingested.
    pub fn ordinal(&self, user_id: &str) -> Option<u32> {
        self.index.get(user_id)
    }

    /// Whether retention with this floor would remove anything: a day of activity, counters
    /// or email clients before it, or a mailbox or site state replaced before it (the state
    /// in force on `before` is kept, so one state dated before it is not enough).
    pub fn has_prunable(&self, before: Day) -> bool {
        let first_days = self
            .activity
            .iter()
            .filter_map(|m| m.keys().next())
            .chain(self.counters.iter().filter_map(|m| m.keys().next()))
            .chain(self.clients.keys().next());
        first_days.into_iter().any(|d| *d < before)
            || self
                .mailboxes
                .values()
                .any(|f| f.days.get(1).is_some_and(|d| d.0 <= before))
            || self
                .sites
                .iter()
                .any(|f| f.days.get(1).is_some_and(|d| d.0 <= before))
    }

    /// Retention, in memory, as [`crate::store::Store::prune`] does in the store (a new data
    /// version, like a batch): drops
    /// activity, counters and email-client days before `before`, and mailbox and site states
    /// replaced before it (the one in force on `before` stays). The kept per-day summaries
    /// cover the 180 days up to R; they are recomputed only when `before` falls inside them.
    pub fn prune(&mut self, before: Day) {
        self.meta.version += 1;
        for m in &mut self.activity {
            *m = m.split_off(&before);
        }
        for m in &mut self.counters {
            *m = m.split_off(&before);
        }
        self.totals.drop_before(before);
        self.clients = self.clients.split_off(&before);
        for f in self.mailboxes.values_mut() {
            let keep = f.days.partition_point(|d| d.0 <= before).saturating_sub(1);
            f.days.drain(..keep);
        }
        for f in &mut self.sites {
            let keep = f.days.partition_point(|d| d.0 <= before).saturating_sub(1);
            f.days.drain(..keep);
        }
        let inside = self
            .refresh_date()
            .is_some_and(|r| before > r.minus(Period::D180.days() - 1));
        if inside {
            self.rebuild_totals();
            self.rebuild_windows();
        }
    }

    /// Per day, the users of each email client (the first nine) and Outlook version.
    pub fn email_clients(&self) -> &BTreeMap<Day, Vec<RoaringBitmap>> {
        &self.clients
    }

    /// Sites and their daily states, by site ordinal.
    pub fn sites(&self) -> &[SiteFacts] {
        &self.sites
    }

    /// Users' mailboxes and their daily states, by user ordinal.
    pub fn mailboxes(&self) -> &BTreeMap<u32, MailboxFacts> {
        &self.mailboxes
    }

    /// The per-day activity counters of `workload`.
    pub fn counters(&self, workload: Workload) -> &BTreeMap<Day, CounterBlock> {
        &self.counters[workload.index()]
    }

    /// The counters' totals of `workload` on `day` over the users existing on R (none: no
    /// counters that day).
    pub fn counter_totals(&self, workload: Workload, day: Day) -> Option<&DayTotals> {
        self.totals.get(workload.index(), day)
    }

    /// The users not existing on R (deleted on or before it), kept as batches apply.
    pub fn not_existing_on_r(&self) -> &RoaringBitmap {
        self.totals.excluded()
    }

    /// Per day of the 180 up to R, the mailbox and site totals.
    pub fn usage_days(&self) -> &UsageDays {
        &self.usage_days
    }

    /// Recomputes the per-day totals whole (after a snapshot load).
    pub(super) fn rebuild_totals(&mut self) {
        self.totals
            .rebuild(&self.users, self.refresh_date(), &self.counters);
        let mut usage = std::mem::take(&mut self.usage_days);
        usage.rebuild(self);
        self.usage_days = usage;
        self.client_windows
            .rebuild(&self.clients, self.refresh_date(), self.totals.excluded());
    }

    /// The email app usage summaries (per-period client unions, per-day counts).
    pub fn client_windows(&self) -> &ClientWindows {
        &self.client_windows
    }

    /// The per-day bitmaps of users active in `service`.
    pub fn activity(&self, service: Service) -> &BTreeMap<Day, RoaringBitmap> {
        &self.activity[service.index()]
    }

    /// Checks a parsed batch against this state and turns it into the rows to store. Pure:
    /// `self` is not changed, so a refused batch leaves nothing behind.
    pub fn plan(&self, batch: &[Numbered]) -> Result<Changeset, IngestError> {
        let mut p = self.planner();
        p.feed(batch)?;
        Ok(p.finish())
    }

    /// A [`Planner`] for one batch fed in blocks (a big file need not be held parsed whole).
    pub fn planner(&self) -> Planner<'_> {
        Planner {
            state: self,
            c: Changeset::default(),
            new_users: UserIndex::default(),
            next_ord: self.users.len() as u32,
            explicit: self.meta.explicit_refresh,
            max_activity: self.meta.max_activity,
            delta: ActiveDelta::default(),
            counts: HashMap::new(),
            written: [0; 8],
            new_sites: HashMap::new(),
            next_site: self.sites.len() as u32,
            clients: HashMap::new(),
            emitted: Emitted::default(),
            last_user: (String::new(), None),
        }
    }

    fn intern(&mut self, product_type: &str) -> u32 {
        if let Some(p) = self.product_index.get(product_type) {
            return *p;
        }
        let p = self.products.len() as u32;
        self.products.push(product_type.to_string());
        self.product_index.insert(product_type.to_string(), p);
        p
    }

    fn user_mut(&mut self, ord: u32) -> &mut UserState {
        let i = ord as usize;
        if i >= self.users.len() {
            self.users.resize_with(i + 1, UserState::default);
        }
        &mut self.users[i]
    }

    /// Applies a planned (and committed) changeset.
    pub fn apply(&mut self, c: Changeset) {
        let mut usage = std::mem::take(&mut self.usage_days);
        let usage_touched = usage.retract(self, &c);
        let directory_changed = !(c.users.is_empty()
            && c.licenses.is_empty()
            && c.products.is_empty()
            && c.activations.is_empty());
        for u in c.users {
            self.user_mut(u.ord).deleted = Deleted::new(u.deleted);
            self.index.insert(&u.id, u.ord);
            self.names
                .set(u.ord, &u.id, &u.user_principal_name, &u.display_name);
        }
        for l in c.licenses {
            self.user_mut(l.ord).licenses[l.service.index()] = Held::from_span(l.span);
        }
        for p in c.products {
            let product = self.intern(&p.product_type);
            let user = self.user_mut(p.ord);
            upsert(
                &mut user.products,
                (product, Held::from_span(p.span)),
                |(q, _)| *q == product,
            );
        }
        for a in c.activations {
            let product = self.intern(&a.activation.product_type);
            let user = self.user_mut(a.ord);
            let new = ActivationState {
                product,
                device: device_key(&a.activation.device_id),
                platform: a.activation.platform,
                active: Held::from_span(a.activation.active),
                shared_computer: a.activation.shared_computer,
            };
            let device = new.device;
            upsert(&mut user.activations, new, |x| {
                x.product == product && x.device == device
            });
        }
        let touched: Vec<(Service, Day)> = c.activity.iter().map(|a| (a.service, a.day)).collect();
        for a in c.activity {
            self.activity[a.service.index()].insert(a.day, a.users);
        }
        for x in c.counters {
            self.totals.set_block(x.workload.index(), x.day, &x.block);
            self.counters[x.workload.index()].insert(x.day, x.block);
        }
        let mut client_change = ClientChange::default();
        for x in c.clients {
            if let Some(old) = self.clients.get(&x.day) {
                client_change.shrunk |= old.iter().zip(&x.signals).any(|(o, n)| !o.is_subset(n));
            }
            client_change.days.push(x.day);
            self.clients.insert(x.day, x.signals);
        }
        for m in c.mailboxes {
            self.mailboxes.entry(m.ord).or_default().mailbox = Some(m.mailbox);
        }
        for x in c.sites {
            let i = x.ord as usize;
            if i >= self.sites.len() {
                self.sites.resize_with(i + 1, SiteFacts::default);
            }
            self.site_index.insert(x.site.id.clone(), x.ord);
            self.sites[i].site = Some(x.site);
            self.sites[i].owner = x.owner;
        }
        for x in c.site_days {
            if let Some(f) = self.sites.get_mut(x.ord as usize) {
                match f.days.binary_search_by_key(&x.day, |d| d.0) {
                    Ok(i) => f.days[i].1 = x.state,
                    Err(i) => f.days.insert(i, (x.day, x.state)),
                }
            }
        }
        for d in c.mailbox_days {
            let days = &mut self.mailboxes.entry(d.ord).or_default().days;
            match days.binary_search_by_key(&d.day, |x| x.0) {
                Ok(i) => days[i].1 = d.state,
                Err(i) => days.insert(i, (d.day, d.state)),
            }
        }
        self.meta = c.meta;
        if directory_changed {
            self.directory_version += 1;
        }
        let excluded_changed =
            self.totals
                .reconcile(&self.users, self.refresh_date(), &self.counters);
        self.client_windows.update(
            &self.clients,
            self.refresh_date(),
            self.totals.excluded(),
            excluded_changed,
            &client_change,
        );
        usage.restore(self, usage_touched);
        self.usage_days = usage;
        if self.windows.r != self.refresh_date() {
            self.rebuild_windows();
        } else if let Some(r) = self.windows.r {
            for (s, d) in touched {
                let Some(bits) = self.activity[s.index()].get(&d) else {
                    continue;
                };
                for p in Period::ALL {
                    if d <= r && d > r.minus(p.days()) {
                        self.windows.unions[s.index()][p.index()] |= bits;
                    }
                }
            }
        }
    }
}

/// Keys of the directory rows a batch has emitted so far. A row that would leave the stored
/// state as it is (a daily full export repeats most of the directory) is left out of the
/// changeset, unless an earlier row of the same batch set that key: later rows win, so a
/// change and its undoing must both be kept.
#[derive(Default)]
struct Emitted {
    users: RoaringBitmap,
    licenses: [RoaringBitmap; 6],
    /// (user, interned product): a product the tenant has never seen is always emitted.
    products: HashSet<(u32, u32)>,
    /// (user, interned product, device key).
    activations: HashSet<(u32, u32, u64)>,
}

impl TenantState {
    /// Whether a user row would change nothing stored.
    fn user_unchanged(&self, ord: u32, upn: &str, display: &str, deleted: Option<Day>) -> bool {
        self.users
            .get(ord as usize)
            .is_some_and(|u| u.deleted == Deleted::new(deleted))
            && {
                let (_, u, d) = self.names.get(ord);
                u == upn && d == display
            }
    }

    /// Whether a license row would change nothing stored.
    fn license_unchanged(&self, ord: u32, service: Service, span: crate::model::Span) -> bool {
        self.users
            .get(ord as usize)
            .is_some_and(|u| u.licenses[service.index()] == Held::from_span(span))
    }

    /// Whether a product assignment row would change nothing stored.
    fn product_unchanged(&self, ord: u32, product_type: &str, span: crate::model::Span) -> bool {
        let Some(p) = self.product_index.get(product_type) else {
            return false;
        };
        self.users.get(ord as usize).is_some_and(|u| {
            u.products
                .iter()
                .any(|(q, h)| q == p && *h == Held::from_span(span))
        })
    }

    /// Whether an activation row would change nothing stored.
    fn activation_unchanged(&self, ord: u32, a: &crate::model::Activation) -> bool {
        let Some(p) = self.product_index.get(&a.product_type) else {
            return false;
        };
        let device = device_key(&a.device_id);
        self.users.get(ord as usize).is_some_and(|u| {
            u.activations.iter().any(|x| {
                x.product == *p
                    && x.device == device
                    && x.platform == a.platform
                    && x.shared_computer == a.shared_computer
                    && x.active == Held::from_span(a.active)
            })
        })
    }
}

/// Plans one batch in blocks: [`Planner::feed`] each block of parsed lines in order, then
/// [`Planner::finish`]. Pure like [`TenantState::plan`]: the state is only read.
pub struct Planner<'s> {
    state: &'s TenantState,
    c: Changeset,
    /// Users first defined in this batch (owned keys: earlier blocks are gone).
    new_users: UserIndex,
    next_ord: u32,
    explicit: Option<Day>,
    max_activity: Option<Day>,
    delta: ActiveDelta,
    /// `activityCounts` of the batch per workload and day, in line order.
    counts: HashMap<(Workload, Day), Vec<CountEntry>>,
    /// How many of `c`'s users, licenses, products, activations, mailboxes and mailbox days
    /// [`Planner::unwritten`] has handed out.
    written: [usize; 8],
    /// Sites first defined in this batch, and the next free site ordinal.
    new_sites: HashMap<String, u32>,
    next_site: u32,
    /// `emailClients` of the batch per day, in line order: (user, clients, version).
    clients: HashMap<Day, Vec<(u32, u16, Option<u8>)>>,
    emitted: Emitted,
    /// The last user id resolved and its ordinal.
    last_user: (String, Option<u32>),
}

impl Planner<'_> {
    /// The directory rows planned since the last call (for writing while planning).
    pub fn unwritten(&mut self) -> Rows<'_> {
        let [u, l, p, a, m, md, st, sd] = self.written;
        self.written = [
            self.c.users.len(),
            self.c.licenses.len(),
            self.c.products.len(),
            self.c.activations.len(),
            self.c.mailboxes.len(),
            self.c.mailbox_days.len(),
            self.c.sites.len(),
            self.c.site_days.len(),
        ];
        Rows {
            users: &self.c.users[u..],
            licenses: &self.c.licenses[l..],
            products: &self.c.products[p..],
            activations: &self.c.activations[a..],
            mailboxes: &self.c.mailboxes[m..],
            mailbox_days: &self.c.mailbox_days[md..],
            sites: &self.c.sites[st..],
            site_days: &self.c.site_days[sd..],
        }
    }

    /// Checks the next block of the batch; the first bad line refuses the whole batch.
    pub fn feed(&mut self, block: &[Numbered]) -> Result<(), IngestError> {
        let Planner {
            state,
            c,
            new_users,
            next_ord,
            explicit,
            max_activity,
            delta,
            counts,
            written: _,
            new_sites,
            next_site,
            clients,
            emitted,
            last_user,
        } = self;
        let this = *state;
        for n in block {
            let line = n.line;
            // A user's lines usually come together: the last id resolved is checked first
            // (an id's ordinal never changes within a batch).
            let mut resolve = |id: &str| -> Result<u32, IngestError> {
                if let Some(o) = last_user.1
                    && last_user.0 == id
                {
                    return Ok(o);
                }
                let o = this
                    .index
                    .get(id)
                    .or_else(|| new_users.get(id))
                    .ok_or_else(|| IngestError::Field {
                        line,
                        field: "userId",
                        message: format!("unknown user '{id}': no earlier user record defines it"),
                    })?;
                last_user.0.clear();
                last_user.0.push_str(id);
                last_user.1 = Some(o);
                Ok(o)
            };
            match &n.record {
                Record::User {
                    id,
                    user_principal_name,
                    display_name,
                    deleted,
                } => {
                    let ord = match this
                        .index
                        .get(id.as_str())
                        .or_else(|| new_users.get(id.as_str()))
                    {
                        Some(o) => o,
                        None => {
                            let o = *next_ord;
                            *next_ord =
                                next_ord.checked_add(1).ok_or_else(|| IngestError::Line {
                                    line,
                                    message: "the tenant has reached the limit of 4294967295 users"
                                        .into(),
                                })?;
                            new_users.insert(id.as_str(), o);
                            o
                        }
                    };
                    if !emitted.users.contains(ord)
                        && this.user_unchanged(ord, user_principal_name, display_name, *deleted)
                    {
                        continue;
                    }
                    emitted.users.insert(ord);
                    c.users.push(UserRow {
                        ord,
                        id: id.clone(),
                        user_principal_name: user_principal_name.clone(),
                        display_name: display_name.clone(),
                        deleted: *deleted,
                    });
                }
                Record::ServiceLicense {
                    user_id,
                    service,
                    span,
                } => {
                    let ord = resolve(user_id)?;
                    let seen = &mut emitted.licenses[service.index()];
                    if !seen.contains(ord) && this.license_unchanged(ord, *service, *span) {
                        continue;
                    }
                    seen.insert(ord);
                    c.licenses.push(LicenseRow {
                        ord,
                        service: *service,
                        span: *span,
                    });
                }
                Record::ProductAssignment {
                    user_id,
                    product_type,
                    span,
                } => {
                    let ord = resolve(user_id)?;
                    if let Some(p) = this.product_index.get(product_type.as_str()) {
                        if !emitted.products.contains(&(ord, *p))
                            && this.product_unchanged(ord, product_type, *span)
                        {
                            continue;
                        }
                        emitted.products.insert((ord, *p));
                    }
                    c.products.push(ProductRow {
                        ord,
                        product_type: product_type.clone(),
                        span: *span,
                    });
                }
                Record::Activation {
                    user_id,
                    activation,
                } => {
                    let ord = resolve(user_id)?;
                    if let Some(p) = this.product_index.get(activation.product_type.as_str()) {
                        let key = (ord, *p, device_key(&activation.device_id));
                        if !emitted.activations.contains(&key)
                            && this.activation_unchanged(ord, activation)
                        {
                            continue;
                        }
                        emitted.activations.insert(key);
                    }
                    c.activations.push(ActivationRow {
                        ord,
                        activation: activation.clone(),
                    });
                }
                Record::Activity {
                    user_id,
                    service,
                    date,
                } => {
                    let ord = resolve(user_id)?;
                    delta.insert((*service, *date), ord);
                    *max_activity = (*max_activity).max(Some(*date));
                }
                Record::ActivityDates {
                    user_id,
                    service,
                    dates,
                } => {
                    let ord = resolve(user_id)?;
                    for date in dates {
                        delta.insert((*service, *date), ord);
                        *max_activity = (*max_activity).max(Some(*date));
                    }
                }
                Record::ActivityCounts {
                    user_id,
                    workload,
                    date,
                    counts: values,
                } => {
                    let ord = resolve(user_id)?;
                    counts
                        .entry((*workload, *date))
                        .or_default()
                        .push((ord, *values));
                    if values.iter().any(|v| *v > 0) {
                        delta.insert((workload.service(), *date), ord);
                        *max_activity = (*max_activity).max(Some(*date));
                    }
                }
                Record::Mailbox { user_id, mailbox } => c.mailboxes.push(MailboxRow {
                    ord: resolve(user_id)?,
                    mailbox: *mailbox,
                }),
                Record::MailboxDay {
                    user_id,
                    date,
                    state,
                } => c.mailbox_days.push(MailboxDayRow {
                    ord: resolve(user_id)?,
                    day: *date,
                    state: *state,
                }),
                Record::Site { site } => {
                    let owner = site.owner.as_deref().map(&mut resolve).transpose()?;
                    let ord = match this
                        .site_index
                        .get(&site.id)
                        .or_else(|| new_sites.get(&site.id))
                    {
                        Some(o) => *o,
                        None => {
                            let o = *next_site;
                            *next_site =
                                next_site.checked_add(1).ok_or_else(|| IngestError::Line {
                                    line,
                                    message: "the tenant has reached the limit of sites".into(),
                                })?;
                            new_sites.insert(site.id.clone(), o);
                            o
                        }
                    };
                    c.sites.push(SiteRow {
                        ord,
                        site: site.clone(),
                        owner,
                    });
                }
                Record::SiteDay {
                    site_id,
                    date,
                    state,
                } => {
                    let ord = this
                        .site_index
                        .get(site_id)
                        .or_else(|| new_sites.get(site_id))
                        .copied()
                        .ok_or_else(|| IngestError::Field {
                            line,
                            field: "siteId",
                            message: format!(
                                "unknown site '{site_id}': no earlier site record defines it"
                            ),
                        })?;
                    c.site_days.push(SiteDayRow {
                        ord,
                        day: *date,
                        state: *state,
                    });
                }
                Record::EmailClients {
                    user_id,
                    date,
                    apps,
                    outlook_version,
                } => {
                    let ord = resolve(user_id)?;
                    clients
                        .entry(*date)
                        .or_default()
                        .push((ord, *apps, *outlook_version));
                }
                Record::Refresh { date } => {
                    if let Some(r) = *explicit
                        && *date < r
                    {
                        return Err(IngestError::Field {
                            line,
                            field: "date",
                            message: format!(
                                "{date} is earlier than the current Report Refresh Date {r}"
                            ),
                        });
                    }
                    *explicit = Some(*date);
                }
            }
        }
        delta.fold();
        Ok(())
    }

    /// The rows to store for the whole batch.
    pub fn finish(self) -> Changeset {
        let mut activity: Vec<ActivityDay> = self
            .delta
            .into_days()
            .into_iter()
            .map(|((service, day), mut users)| {
                if let Some(existing) = self.state.activity[service.index()].get(&day) {
                    users |= existing;
                }
                ActivityDay {
                    service,
                    day,
                    users,
                }
            })
            .collect();
        activity.sort_by_key(|a| (a.service, a.day));
        let mut counters: Vec<CounterDay> = self
            .counts
            .into_iter()
            .map(|((workload, day), new)| CounterDay {
                workload,
                day,
                block: merge_counts(self.state.counters[workload.index()].get(&day), new),
            })
            .collect();
        counters.sort_by_key(|c| (c.workload, c.day));
        let mut clients: Vec<ClientDay> = self
            .clients
            .into_iter()
            .map(|(day, updates)| {
                let mut signals = self
                    .state
                    .clients
                    .get(&day)
                    .cloned()
                    .unwrap_or_else(|| vec![RoaringBitmap::new(); CLIENT_SIGNALS]);
                // In line order, so a later record of a user replaces an earlier one.
                for (ord, apps, version) in updates {
                    for b in signals.iter_mut() {
                        b.remove(ord);
                    }
                    for (bit, b) in signals.iter_mut().take(EMAIL_APPS.len()).enumerate() {
                        if apps & (1 << bit) != 0 {
                            b.insert(ord);
                        }
                    }
                    if let Some(v) = version {
                        signals[EMAIL_APPS.len() + v as usize].insert(ord);
                    }
                }
                ClientDay { day, signals }
            })
            .collect();
        clients.sort_by_key(|c| c.day);
        let mut c = self.c;
        c.activity = activity;
        c.counters = counters;
        c.clients = clients;
        c.meta = TenantMeta {
            explicit_refresh: self.explicit,
            max_activity: self.max_activity,
            version: self.state.meta.version + 1,
        };
        c
    }
}

/// One user's counters on one day, as a batch brings them.
type CountEntry = (u32, [u32; MAX_COUNTERS]);

/// A day's counter block with the batch's entries for it: a later entry of a user replaces
/// an earlier one, and the batch's replace the stored ones.
fn merge_counts(
    old: Option<&CounterBlock>,
    mut new: Vec<(u32, [u32; MAX_COUNTERS])>,
) -> CounterBlock {
    // Stable sort keeps line order among a user's entries; keep the last of each.
    new.sort_by_key(|e| e.0);
    let mut last: Vec<CountEntry> = Vec::with_capacity(new.len());
    for e in new {
        match last.last_mut() {
            Some(l) if l.0 == e.0 => *l = e,
            _ => last.push(e),
        }
    }
    let empty = CounterBlock::default();
    let old = old.unwrap_or(&empty);
    let mut out = CounterBlock {
        ords: Vec::with_capacity(old.ords.len() + last.len()),
        values: Vec::with_capacity(old.ords.len() + last.len()),
    };
    let (mut i, mut j) = (0, 0);
    while i < old.ords.len() || j < last.len() {
        let take_new = match (old.ords.get(i), last.get(j)) {
            (Some(o), Some(n)) if n.0 < *o => true,
            (Some(o), Some(n)) if n.0 == *o => {
                i += 1;
                true
            }
            (Some(_), _) => false,
            (None, _) => true,
        };
        if take_new {
            out.ords.push(last[j].0);
            out.values.push(last[j].1);
            j += 1;
        } else {
            out.ords.push(old.ords[i]);
            out.values.push(old.values[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The lists and their cache give the same bitmaps as inserting every signal into a
    /// set, whatever the order, with days 512 apart (one cache slot) interleaved and folds
    /// between blocks.
    #[test]
    fn the_active_delta_holds_every_signal_once() {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..20 {
            let mut delta = ActiveDelta::default();
            let mut want: BTreeMap<(Service, Day), std::collections::BTreeSet<u32>> =
                BTreeMap::new();
            for block in 0..4 {
                for _ in 0..2_000 {
                    let service = Service::ALL[rng.gen_range(0..6)];
                    let day = Day(20_000 + rng.gen_range(0..4) * 512 + rng.gen_range(0..3));
                    let ord = if round % 2 == 0 {
                        rng.gen_range(0..300)
                    } else {
                        block * 1000 + rng.gen_range(0..300)
                    };
                    delta.insert((service, day), ord);
                    want.entry((service, day)).or_default().insert(ord);
                }
                delta.fold();
            }
            let got = delta.into_days();
            assert_eq!(got.len(), want.len());
            for (key, users) in &want {
                let bitmap: Vec<u32> = got[key].iter().collect();
                assert_eq!(bitmap, users.iter().copied().collect::<Vec<_>>(), "{key:?}");
            }
        }
    }

    fn batch(text: &str) -> Vec<Numbered> {
        crate::ingest::parse_batch(text.as_bytes(), &crate::ingest::Limits::default()).unwrap()
    }

    const DIRECTORY: &str = r#"{"type":"user","id":"u1","userPrincipalName":"a@x","displayName":"A"}
{"type":"serviceLicense","userId":"u1","service":"exchange","assignedDate":"2024-01-01"}
{"type":"productAssignment","userId":"u1","productType":"MICROSOFT 365 APPS FOR ENTERPRISE","assignedDate":"2024-01-01"}
{"type":"activation","userId":"u1","productType":"MICROSOFT 365 APPS FOR ENTERPRISE","deviceId":"d1","platform":"windows","activatedDate":"2024-01-02","sharedComputer":false}
"#;

    #[test]
    fn directory_rows_that_change_nothing_are_left_out_unless_the_batch_set_the_key() {
        let mut s = TenantState::empty(TenantId::parse("t").unwrap());
        let c = s.plan(&batch(DIRECTORY)).unwrap();
        assert_eq!(
            (
                c.users.len(),
                c.licenses.len(),
                c.products.len(),
                c.activations.len()
            ),
            (1, 1, 1, 1)
        );
        s.apply(c);
        let version = s.directory_version();
        // The same directory again: nothing to store or apply.
        let c = s.plan(&batch(DIRECTORY)).unwrap();
        assert_eq!(
            (
                c.users.len(),
                c.licenses.len(),
                c.products.len(),
                c.activations.len()
            ),
            (0, 0, 0, 0)
        );
        s.apply(c);
        assert_eq!(s.directory_version(), version);
        // A change and its undoing in one batch: both rows stay, so the last one wins.
        let changed = DIRECTORY
            .replace("\"A\"", "\"B\"")
            .replace("2024-01-01", "2024-02-01")
            .replace("windows", "mac");
        let c = s.plan(&batch(&format!("{changed}{DIRECTORY}"))).unwrap();
        assert_eq!(
            (
                c.users.len(),
                c.licenses.len(),
                c.products.len(),
                c.activations.len()
            ),
            (2, 2, 2, 2)
        );
        s.apply(c);
        assert_eq!(s.names(0).2, "A");
        assert_eq!(
            s.users()[0].licenses[Service::Exchange.index()],
            Held::from_span(crate::model::Span {
                start: Day::parse("2024-01-01").unwrap(),
                end: None
            })
        );
        assert_eq!(s.users()[0].activations[0].platform, Platform::Windows);
        // The undoing first, then the change: the first is left out, the change stays.
        let c = s.plan(&batch(&format!("{DIRECTORY}{changed}"))).unwrap();
        assert_eq!(
            (
                c.users.len(),
                c.licenses.len(),
                c.products.len(),
                c.activations.len()
            ),
            (1, 1, 1, 1)
        );
        s.apply(c);
        assert_eq!(s.names(0).2, "B");
        assert_eq!(s.users()[0].activations[0].platform, Platform::Mac);
    }

    fn naive_window(s: &TenantState, service: Service, p: Period) -> RoaringBitmap {
        let mut u = RoaringBitmap::new();
        if let Some(r) = s.refresh_date() {
            for (_, b) in s.activity(service).range(r.minus(p.days() - 1)..=r) {
                u |= b;
            }
        }
        u
    }

    /// The incrementally kept window unions always equal a union computed from scratch, as
    /// batches add activity inside, before and after R and move R (by activity or refresh).
    #[test]
    fn incremental_windows_match_a_full_rebuild() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut state = TenantState::empty(TenantId::parse("t").unwrap());
        let base = Day::parse("2026-01-01").unwrap();
        let mut line = 0;
        let mut next = |record: Record| {
            line += 1;
            Numbered { line, record }
        };
        let users: Vec<Numbered> = (0..50)
            .map(|i| {
                next(Record::User {
                    id: format!("u{i}"),
                    user_principal_name: format!("u{i}@x"),
                    display_name: String::new(),
                    deleted: None,
                })
            })
            .collect();
        let c = state.plan(&users).unwrap();
        state.apply(c);
        let mut refresh = base;
        for round in 0..60 {
            let mut batch = Vec::new();
            for _ in 0..rng.gen_range(1..30) {
                batch.push(next(Record::Activity {
                    user_id: format!("u{}", rng.gen_range(0..50)),
                    service: Service::ALL[rng.gen_range(0..6)],
                    date: base.plus(rng.gen_range(0..400)),
                }));
            }
            if round % 7 == 3 {
                refresh = refresh.plus(rng.gen_range(0..40));
                batch.push(next(Record::Refresh { date: refresh }));
            }
            let c = state.plan(&batch).unwrap();
            state.apply(c);
            for s in Service::ALL {
                for p in Period::ALL {
                    assert_eq!(
                        state.active_in_window(s, p),
                        &naive_window(&state, s, p),
                        "round {round} {s:?} {p:?}"
                    );
                }
            }
        }
    }
}

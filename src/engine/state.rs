//! One tenant's state, and how a batch is planned against it and applied to it.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use crate::ingest::{IngestError, Numbered};
use crate::model::{Day, Platform, Record, Service, Span, TenantId};
use crate::store::{
    ActivationRow, ActivityDay, Changeset, LicenseRow, ProductRow, TenantMeta, UserRow,
};

/// What the reports need of one user (names stay in the store).
#[derive(Debug, Clone, Default)]
pub struct UserState {
    pub deleted: Option<Day>,
    /// Indexed by [`Service::index`].
    pub licenses: [Option<Span>; 6],
    /// (product index, assignment span), at most one per product.
    pub products: Vec<(u32, Span)>,
    pub activations: Vec<ActivationState>,
}

impl UserState {
    /// A user exists on `r` if not deleted, or deleted after `r`.
    pub fn exists_on(&self, r: Day) -> bool {
        self.deleted.is_none_or(|d| d > r)
    }
}

#[derive(Debug, Clone)]
pub struct ActivationState {
    pub product: u32,
    pub device: Box<str>,
    pub platform: Platform,
    pub active: Span,
    pub shared_computer: bool,
}

#[derive(Debug)]
pub struct TenantState {
    tenant: TenantId,
    users: Vec<UserState>,
    index: HashMap<Box<str>, u32>,
    products: Vec<String>,
    product_index: HashMap<String, u32>,
    activity: [BTreeMap<Day, RoaringBitmap>; 6],
    meta: TenantMeta,
}

impl TenantState {
    pub fn empty(tenant: TenantId) -> TenantState {
        TenantState {
            tenant,
            users: Vec::new(),
            index: HashMap::new(),
            products: Vec::new(),
            product_index: HashMap::new(),
            activity: Default::default(),
            meta: TenantMeta::default(),
        }
    }

    /// Rebuilds a tenant from everything the store holds for it.
    pub fn from_stored(tenant: TenantId, stored: Changeset) -> TenantState {
        let mut s = TenantState::empty(tenant);
        s.apply(stored);
        s
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

    pub fn product_name(&self, product: u32) -> &str {
        self.products
            .get(product as usize)
            .map_or("", |s| s.as_str())
    }

    pub fn product_count(&self) -> usize {
        self.products.len()
    }

    /// The per-day bitmaps of users active in `service`.
    pub fn activity(&self, service: Service) -> &BTreeMap<Day, RoaringBitmap> {
        &self.activity[service.index()]
    }

    /// Checks a parsed batch against this state and turns it into the rows to store. Pure:
    /// `self` is not changed, so a refused batch leaves nothing behind.
    pub fn plan(&self, batch: &[Numbered]) -> Result<Changeset, IngestError> {
        let mut c = Changeset::default();
        let mut new_users: HashMap<&str, u32> = HashMap::new();
        let mut next_ord = self.users.len() as u32;
        let mut explicit = self.meta.explicit_refresh;
        let mut max_activity = self.meta.max_activity;
        let mut delta: HashMap<(Service, Day), RoaringBitmap> = HashMap::new();

        for n in batch {
            let line = n.line;
            let resolve = |id: &str| -> Result<u32, IngestError> {
                self.index
                    .get(id)
                    .or_else(|| new_users.get(id))
                    .copied()
                    .ok_or_else(|| IngestError::Field {
                        line,
                        field: "userId",
                        message: format!("unknown user '{id}': no earlier user record defines it"),
                    })
            };
            match &n.record {
                Record::User {
                    id,
                    user_principal_name,
                    display_name,
                    deleted,
                } => {
                    let ord = match self
                        .index
                        .get(id.as_str())
                        .or_else(|| new_users.get(id.as_str()))
                    {
                        Some(o) => *o,
                        None => {
                            let o = next_ord;
                            next_ord =
                                next_ord.checked_add(1).ok_or_else(|| IngestError::Line {
                                    line,
                                    message: "the tenant has reached the limit of 4294967295 users"
                                        .into(),
                                })?;
                            new_users.insert(id.as_str(), o);
                            o
                        }
                    };
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
                } => c.licenses.push(LicenseRow {
                    ord: resolve(user_id)?,
                    service: *service,
                    span: *span,
                }),
                Record::ProductAssignment {
                    user_id,
                    product_type,
                    span,
                } => c.products.push(ProductRow {
                    ord: resolve(user_id)?,
                    product_type: product_type.clone(),
                    span: *span,
                }),
                Record::Activation {
                    user_id,
                    activation,
                } => c.activations.push(ActivationRow {
                    ord: resolve(user_id)?,
                    activation: activation.clone(),
                }),
                Record::Activity {
                    user_id,
                    service,
                    date,
                } => {
                    let ord = resolve(user_id)?;
                    delta.entry((*service, *date)).or_default().insert(ord);
                    max_activity = max_activity.max(Some(*date));
                }
                Record::ActivityDates {
                    user_id,
                    service,
                    dates,
                } => {
                    let ord = resolve(user_id)?;
                    for date in dates {
                        delta.entry((*service, *date)).or_default().insert(ord);
                        max_activity = max_activity.max(Some(*date));
                    }
                }
                Record::Refresh { date } => {
                    if let Some(r) = explicit
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
                    explicit = Some(*date);
                }
            }
        }

        let mut activity: Vec<ActivityDay> = delta
            .into_iter()
            .map(|((service, day), mut users)| {
                if let Some(existing) = self.activity[service.index()].get(&day) {
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
        c.activity = activity;
        c.meta = TenantMeta {
            explicit_refresh: explicit,
            max_activity,
            version: self.meta.version + 1,
        };
        Ok(c)
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
        for u in c.users {
            self.user_mut(u.ord).deleted = u.deleted;
            self.index.insert(u.id.into_boxed_str(), u.ord);
        }
        for l in c.licenses {
            self.user_mut(l.ord).licenses[l.service.index()] = Some(l.span);
        }
        for p in c.products {
            let product = self.intern(&p.product_type);
            let user = self.user_mut(p.ord);
            match user.products.iter_mut().find(|(q, _)| *q == product) {
                Some(slot) => slot.1 = p.span,
                None => user.products.push((product, p.span)),
            }
        }
        for a in c.activations {
            let product = self.intern(&a.activation.product_type);
            let user = self.user_mut(a.ord);
            let new = ActivationState {
                product,
                device: a.activation.device_id.into_boxed_str(),
                platform: a.activation.platform,
                active: a.activation.active,
                shared_computer: a.activation.shared_computer,
            };
            match user
                .activations
                .iter_mut()
                .find(|x| x.product == product && x.device == new.device)
            {
                Some(slot) => *slot = new,
                None => user.activations.push(new),
            }
        }
        for a in c.activity {
            self.activity[a.service.index()].insert(a.day, a.users);
        }
        self.meta = c.meta;
    }
}

//! A stored tenant written back as ingest NDJSON (`reportroot export`): one batch that,
//! ingested into an empty store of either kind, rebuilds the same stored rows, hence the
//! same reports byte for byte.
//!
//! Order: users (in ordinal order, so re-ingesting gives every user the same ordinal and
//! the detail reports the same first-ingested order), their licenses, product assignments
//! and activations, activity (the bulk `dates` form, one record per user and service),
//! activity counters, mailboxes and their days, sites (in ordinal order) and their days,
//! email clients, and the explicit refresh date last.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use crate::model::{Day, EMAIL_APPS, OUTLOOK_VERSIONS, Service, TenantId};
use crate::store::{CLIENT_SIGNALS, Changeset, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no data is stored for tenant {0}")]
    NotFound(TenantId),
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub records: u64,
    pub users: u64,
}

fn day(d: Day) -> String {
    d.to_string()
}

fn opt(d: Option<Day>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

/// Writes tenant `tid` of `store` to `out` as ingest NDJSON.
pub fn write_tenant(
    store: &dyn Store,
    tid: &TenantId,
    out: &mut dyn Write,
) -> Result<ExportSummary, ExportError> {
    let mut all = Changeset::default();
    let found = store.load(tid, &mut |c| {
        all.meta = c.meta;
        all.users.extend(c.users);
        all.licenses.extend(c.licenses);
        all.products.extend(c.products);
        all.activations.extend(c.activations);
        all.mailboxes.extend(c.mailboxes);
        all.mailbox_days.extend(c.mailbox_days);
        all.sites.extend(c.sites);
        all.site_days.extend(c.site_days);
        all.activity.extend(c.activity);
        all.counters.extend(c.counters);
        all.clients.extend(c.clients);
    })?;
    if !found {
        return Err(ExportError::NotFound(tid.clone()));
    }
    let mut w = Writer { out, records: 0 };

    all.users.sort_by_key(|u| u.ord);
    let mut ids: Vec<Option<&str>> = Vec::new();
    for u in &all.users {
        let i = u.ord as usize;
        if ids.len() <= i {
            ids.resize(i + 1, None);
        }
        ids[i] = Some(u.id.as_str());
    }
    let user = |ord: u32| -> Result<&str, ExportError> {
        ids.get(ord as usize)
            .copied()
            .flatten()
            .ok_or_else(|| ExportError::Inconsistent(format!("no user with ordinal {ord}")))
    };
    for u in &all.users {
        w.record(
            json!({"type": "user", "id": u.id, "userPrincipalName": u.user_principal_name,
            "displayName": u.display_name, "deletedDate": opt(u.deleted)}),
        )?;
    }
    for l in &all.licenses {
        w.record(json!({"type": "serviceLicense", "userId": user(l.ord)?,
            "service": l.service.as_str(), "assignedDate": day(l.span.start),
            "removedDate": opt(l.span.end)}))?;
    }
    for p in &all.products {
        w.record(json!({"type": "productAssignment", "userId": user(p.ord)?,
            "productType": p.product_type, "assignedDate": day(p.span.start),
            "removedDate": opt(p.span.end)}))?;
    }
    for a in &all.activations {
        let x = &a.activation;
        w.record(json!({"type": "activation", "userId": user(a.ord)?,
            "productType": x.product_type, "deviceId": x.device_id,
            "platform": x.platform.as_str(), "activatedDate": day(x.active.start),
            "deactivatedDate": opt(x.active.end), "sharedComputer": x.shared_computer}))?;
    }

    // Activity: per user and service, the days (ascending).
    let mut days: BTreeMap<(u32, Service), Vec<Day>> = BTreeMap::new();
    all.activity.sort_by_key(|a| (a.day, a.service));
    for a in &all.activity {
        for ord in &a.users {
            days.entry((ord, a.service)).or_default().push(a.day);
        }
    }
    for ((ord, service), ds) in &days {
        let dates: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
        w.record(json!({"type": "activity", "userId": user(*ord)?,
            "service": service.as_str(), "dates": dates}))?;
    }
    drop(days);

    all.counters.sort_by_key(|c| (c.day, c.workload));
    for c in &all.counters {
        let names = c.workload.counters();
        for (ord, values) in c.block.ords.iter().zip(&c.block.values) {
            let mut rec = serde_json::Map::new();
            rec.insert("type".into(), json!("activityCounts"));
            rec.insert("userId".into(), json!(user(*ord)?));
            rec.insert("workload".into(), json!(c.workload.as_str()));
            rec.insert("date".into(), json!(day(c.day)));
            for (name, v) in names.iter().zip(values) {
                rec.insert((*name).into(), json!(v));
            }
            w.record(Value::Object(rec))?;
        }
    }

    for m in &all.mailboxes {
        let x = &m.mailbox;
        let recipient = ["user", "shared", "room", "equipment"]
            .get(x.recipient_type as usize)
            .copied()
            .unwrap_or("user");
        w.record(json!({"type": "mailbox", "userId": user(m.ord)?,
            "createdDate": day(x.created), "deletedDate": opt(x.deleted),
            "recipientType": recipient, "issueWarningQuota": x.issue_warning_quota,
            "prohibitSendQuota": x.prohibit_send_quota,
            "prohibitSendReceiveQuota": x.prohibit_send_receive_quota,
            "deletedItemQuota": x.deleted_item_quota, "hasArchive": x.has_archive}))?;
    }
    for m in &all.mailbox_days {
        let s = &m.state;
        w.record(
            json!({"type": "mailboxDay", "userId": user(m.ord)?, "date": day(m.day),
            "itemCount": s.item_count, "storageUsed": s.storage_used,
            "deletedItemCount": s.deleted_item_count, "deletedItemSize": s.deleted_item_size}),
        )?;
    }

    all.sites.sort_by_key(|s| s.ord);
    let mut site_ids: BTreeMap<u32, &str> = BTreeMap::new();
    for s in &all.sites {
        site_ids.insert(s.ord, s.site.id.as_str());
        let x = &s.site;
        let kind = match x.kind {
            crate::model::SiteKind::OneDrive => "oneDrive",
            crate::model::SiteKind::SharePoint => "sharePoint",
        };
        w.record(
            json!({"type": "site", "id": x.id, "kind": kind, "url": x.url,
            "ownerId": x.owner, "rootWebTemplate": x.root_web_template,
            "createdDate": day(x.created), "deletedDate": opt(x.deleted)}),
        )?;
    }
    for s in &all.site_days {
        let id = site_ids
            .get(&s.ord)
            .ok_or_else(|| ExportError::Inconsistent(format!("no site with ordinal {}", s.ord)))?;
        let v = &s.state;
        w.record(json!({"type": "siteDay", "siteId": id, "date": day(s.day),
            "fileCount": v.file_count, "activeFileCount": v.active_file_count,
            "pageViewCount": v.page_view_count, "visitedPageCount": v.visited_page_count,
            "storageUsed": v.storage_used, "storageAllocated": v.storage_allocated}))?;
    }

    all.clients.sort_by_key(|c| c.day);
    for c in &all.clients {
        if c.signals.len() != CLIENT_SIGNALS {
            return Err(ExportError::Inconsistent(format!(
                "{} client signals on {}",
                c.signals.len(),
                c.day
            )));
        }
        let mut users = roaring::RoaringBitmap::new();
        for s in &c.signals {
            users |= s;
        }
        for ord in &users {
            let clients: Vec<&str> = EMAIL_APPS
                .iter()
                .enumerate()
                .filter(|(i, _)| c.signals[*i].contains(ord))
                .map(|(_, name)| *name)
                .collect();
            let version = OUTLOOK_VERSIONS
                .iter()
                .enumerate()
                .find(|(i, _)| c.signals[EMAIL_APPS.len() + i].contains(ord))
                .map(|(_, v)| *v);
            w.record(json!({"type": "emailClients", "userId": user(ord)?,
                "date": day(c.day), "clients": clients, "outlookVersion": version}))?;
        }
    }

    if let Some(r) = all.meta.explicit_refresh {
        w.record(json!({"type": "refresh", "date": day(r)}))?;
    }
    w.out.flush()?;
    Ok(ExportSummary {
        records: w.records,
        users: all.users.len() as u64,
    })
}

struct Writer<'a> {
    out: &'a mut dyn Write,
    records: u64,
}

impl Writer<'_> {
    fn record(&mut self, v: Value) -> Result<(), ExportError> {
        serde_json::to_writer(&mut *self.out, &v).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        self.records += 1;
        Ok(())
    }
}

//! Deterministic synthetic tenants in the ingest NDJSON format: license mixes like real plans,
//! weekday-heavy activity with a long tail of rarely and never active users, deleted users,
//! removed licenses, several devices per user. Same options and seed, same bytes.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{Day, Platform, Service, Workload};

#[derive(Debug, Clone)]
pub struct Options {
    pub users: u32,
    pub days: u32,
    pub seed: u64,
    /// The Report Refresh Date the data ends on.
    pub end: Day,
    /// One `activity` record per user, service and day instead of the compact `dates` form.
    pub single_date: bool,
    /// Also `activityCounts` records (email, OneDrive, SharePoint counters) for every day a
    /// user is active in those workloads. Off, the output is what it was before counters
    /// existed (same bytes for the same seed).
    pub usage: bool,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// User-service-day activity signals (the single-date records they stand for).
    pub activity_signals: u64,
}

struct Plan {
    weight: u32,
    services: &'static [Service],
    products: &'static [&'static str],
}

const ENTERPRISE: &str = "MICROSOFT 365 APPS FOR ENTERPRISE";
const BUSINESS: &str = "MICROSOFT 365 APPS FOR BUSINESS";
const PROJECT: &str = "PROJECT ONLINE DESKTOP CLIENT";
const VISIO: &str = "VISIO ONLINE PLAN 2";

use Service::*;
const PLANS: [Plan; 5] = [
    // Office 365 E3
    Plan {
        weight: 42,
        services: &[
            Exchange,
            OneDrive,
            SharePoint,
            SkypeForBusiness,
            Yammer,
            Teams,
        ],
        products: &[ENTERPRISE],
    },
    // Microsoft 365 E5
    Plan {
        weight: 14,
        services: &[
            Exchange,
            OneDrive,
            SharePoint,
            SkypeForBusiness,
            Yammer,
            Teams,
        ],
        products: &[ENTERPRISE],
    },
    // Microsoft 365 F3: no desktop apps, no Skype
    Plan {
        weight: 20,
        services: &[Exchange, OneDrive, SharePoint, Yammer, Teams],
        products: &[],
    },
    // Microsoft 365 Business Premium
    Plan {
        weight: 18,
        services: &[Exchange, OneDrive, SharePoint, Teams],
        products: &[BUSINESS],
    },
    // No license at all (guests, service accounts)
    Plan {
        weight: 6,
        services: &[],
        products: &[],
    },
];

/// How often a user is active on a weekday, per engagement profile (weight, probability).
const PROFILES: [(u32, f64); 5] = [(30, 0.9), (30, 0.6), (18, 0.15), (10, 0.02), (12, 0.0)];
/// Relative use of each service, in `Service::ALL` order.
const SERVICE_USE: [f64; 6] = [1.0, 0.55, 0.45, 0.05, 0.08, 0.9];
const FIRST: [&str; 12] = [
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jon", "Kemal", "Lea",
];
const LAST: [&str; 10] = [
    "Novak", "Okafor", "Park", "Quinn", "Rossi", "Sato", "Tanaka", "Ueda", "Varga", "Weber",
];

fn pick<T>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&weight).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (i, it) in items.iter().enumerate() {
        let w = weight(it);
        if x < w {
            return i;
        }
        x -= w;
    }
    items.len() - 1
}

fn guid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.r#gen();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Writes a tenant. `progress` is called with the number of users written so far.
pub fn write_tenant(
    opts: &Options,
    out: &mut impl Write,
    progress: impl FnMut(u64),
) -> std::io::Result<Summary> {
    write_tenant_usage_days(opts, None, out, progress)
}

/// [`write_tenant`] with the usage facts (`activityCounts`, `emailClients`, `mailboxDay`,
/// `siteDay`) limited to the last `usage_days` days (`None` or ≥ `days`: all of them, the same
/// bytes as [`write_tenant`]). Users, licenses, activations and `activity` are unchanged, as
/// are the `mailbox` and `site` records; a mailbox or site has no state before the span (a
/// 1M-user tenant with 180 days of counters is tens of GB; the benchmark uses a shorter span).
pub fn write_tenant_usage_days(
    opts: &Options,
    usage_days: Option<u32>,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> std::io::Result<Summary> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let days = opts.days.max(1) as i32;
    let first = opts.end.minus(days - 1);
    // Day index (0 = first) from which usage facts are written.
    let usage_from = usage_days.map_or(0, |n| (days - n.max(1) as i32).max(0));
    let usage_cutoff = first.plus(usage_from).to_string();
    let date_str: Vec<String> = (0..days).map(|i| first.plus(i).to_string()).collect();
    let weekday: Vec<bool> = (0..days).map(|i| first.plus(i).weekday() < 5).collect();
    let before = |rng: &mut StdRng| first.minus(rng.gen_range(1..400)).to_string();
    let mut s = Summary::default();
    let mut dates_buf: Vec<&str> = Vec::with_capacity(days as usize);
    let mut owners: Vec<String> = Vec::new();

    for i in 0..opts.users {
        let id = guid(&mut rng);
        let name = format!(
            "{} {}",
            FIRST[rng.gen_range(0..FIRST.len())],
            LAST[rng.gen_range(0..LAST.len())]
        );
        let upn = format!("user{i}@contoso.onmicrosoft.com");
        let roll: f64 = rng.r#gen();
        // ~3% deleted inside the period, ~0.5% deleted after R ("not yet").
        let deleted = if roll < 0.03 {
            Some(first.plus(rng.gen_range(0..days)))
        } else if roll < 0.035 {
            Some(opts.end.plus(rng.gen_range(1..30)))
        } else {
            None
        };
        let deleted_json = deleted.map_or("null".to_string(), |d| format!("\"{d}\""));
        writeln!(
            out,
            r#"{{"type":"user","id":"{id}","userPrincipalName":"{upn}","displayName":"{name}","deletedDate":{deleted_json}}}"#
        )?;
        s.records += 1;

        let plan = &PLANS[pick(&mut rng, &PLANS, |p| p.weight)];
        let mut licensed_from = [None::<i32>; 6];
        for &svc in plan.services {
            let r: f64 = rng.r#gen();
            // ~8% of licenses assigned inside the period, ~3% removed inside it.
            let (assigned, offset) = if r < 0.08 {
                let o = rng.gen_range(0..days);
                (first.plus(o).to_string(), o)
            } else {
                (before(&mut rng), 0)
            };
            let removed = if rng.gen_bool(0.03) {
                let o = rng.gen_range(offset..days);
                format!("\"{}\"", first.plus(o))
            } else {
                "null".to_string()
            };
            licensed_from[svc.index()] = Some(offset);
            writeln!(
                out,
                r#"{{"type":"serviceLicense","userId":"{id}","service":"{}","assignedDate":"{assigned}","removedDate":{removed}}}"#,
                svc.as_str()
            )?;
            s.records += 1;
        }
        if opts.usage && licensed_from[Service::Exchange.index()].is_some() {
            s.records += write_mailbox(out, &id, first, days, usage_from, opts.seed, i)?;
        }
        if opts.usage && licensed_from[Service::OneDrive.index()].is_some() {
            let url = format!(
                "https://contoso-my.sharepoint.com/personal/user{i}_contoso_onmicrosoft_com"
            );
            s.records += write_site(
                out,
                SiteSpec {
                    id: &format!("od-{i}"),
                    kind: "oneDrive",
                    url: &url,
                    owner: Some(&id),
                    template: "SPSPERS#10",
                    salt: u64::from(i),
                },
                first,
                days,
                usage_from,
                opts.seed,
            )?;
        }
        if opts.usage && i % 25 == 0 {
            owners.push(id.clone());
        }
        let mut products: Vec<&str> = plan.products.to_vec();
        if !products.is_empty() && rng.gen_bool(0.12) {
            products.push(if rng.gen_bool(0.5) { PROJECT } else { VISIO });
        }
        for p in &products {
            let removed = if rng.gen_bool(0.02) {
                format!("\"{}\"", first.plus(rng.gen_range(0..days)))
            } else {
                "null".to_string()
            };
            writeln!(
                out,
                r#"{{"type":"productAssignment","userId":"{id}","productType":"{p}","assignedDate":"{}","removedDate":{removed}}}"#,
                before(&mut rng)
            )?;
            s.records += 1;
            // 0–5 devices; some users never activate.
            let devices = if rng.gen_bool(0.15) {
                0
            } else {
                rng.gen_range(1..=5)
            };
            for d in 0..devices {
                let platform = Platform::ALL[pick(&mut rng, &[60u32, 15, 10, 12, 3], |w| *w)];
                let shared = rng.gen_bool(0.03);
                let deactivated = if rng.gen_bool(0.06) {
                    format!("\"{}\"", first.plus(rng.gen_range(0..days)))
                } else {
                    "null".to_string()
                };
                writeln!(
                    out,
                    r#"{{"type":"activation","userId":"{id}","productType":"{p}","deviceId":"dev-{i}-{d}","platform":"{}","activatedDate":"{}","deactivatedDate":{deactivated},"sharedComputer":{shared}}}"#,
                    platform.as_str(),
                    before(&mut rng)
                )?;
                s.records += 1;
            }
        }

        let p_day = PROFILES[pick(&mut rng, &PROFILES, |p| p.0)].1;
        for svc in Service::ALL {
            let Some(from) = licensed_from[svc.index()] else {
                continue;
            };
            let p = p_day * SERVICE_USE[svc.index()];
            if p <= 0.0 {
                continue;
            }
            dates_buf.clear();
            for d in from..days {
                let pd = if weekday[d as usize] { p } else { p * 0.15 };
                if rng.gen_bool(pd.min(1.0)) {
                    dates_buf.push(&date_str[d as usize]);
                }
            }
            if dates_buf.is_empty() {
                continue;
            }
            s.activity_signals += dates_buf.len() as u64;
            if opts.usage {
                // ISO dates compare as strings; the dates are in ascending order.
                let k = if usage_from > 0 {
                    dates_buf.partition_point(|d| *d < usage_cutoff.as_str())
                } else {
                    0
                };
                s.records += write_counters(out, &id, svc, &dates_buf[k..], opts.seed, i)?;
            }
            if opts.single_date {
                for d in &dates_buf {
                    writeln!(
                        out,
                        r#"{{"type":"activity","userId":"{id}","service":"{}","date":"{d}"}}"#,
                        svc.as_str()
                    )?;
                }
                s.records += dates_buf.len() as u64;
            } else {
                write!(
                    out,
                    r#"{{"type":"activity","userId":"{id}","service":"{}","dates":["#,
                    svc.as_str()
                )?;
                for (k, d) in dates_buf.iter().enumerate() {
                    if k > 0 {
                        out.write_all(b",")?;
                    }
                    write!(out, "\"{d}\"")?;
                }
                out.write_all(b"]}\n")?;
                s.records += 1;
            }
        }
        if i % 1024 == 0 {
            progress(u64::from(i));
        }
    }
    // SharePoint sites: one per 25 users, owned by one of them, team, communication and
    // classic templates.
    for (k, owner) in owners.iter().enumerate() {
        let template = ["GROUP#0", "SITEPAGEPUBLISHING#0", "STS#3"][k % 3];
        let url = format!("https://contoso.sharepoint.com/sites/site{k}");
        s.records += write_site(
            out,
            SiteSpec {
                id: &format!("sp-{k:06}"),
                kind: "sharePoint",
                url: &url,
                owner: Some(owner),
                template,
                salt: 1 << 40 | k as u64,
            },
            first,
            days,
            usage_from,
            opts.seed,
        )?;
    }
    writeln!(out, r#"{{"type":"refresh","date":"{}"}}"#, opts.end)?;
    s.records += 1;
    progress(u64::from(opts.users));
    Ok(s)
}

struct SiteSpec<'a> {
    id: &'a str,
    kind: &'a str,
    url: &'a str,
    owner: Option<&'a str>,
    template: &'a str,
    salt: u64,
}

/// A site with growing files and storage and some activity most weekdays; ~2% deleted in
/// the period; a state every day of the last week and weekly before.
fn write_site(
    out: &mut impl Write,
    spec: SiteSpec<'_>,
    first: Day,
    days: i32,
    usage_from: i32,
    seed: u64,
) -> std::io::Result<u64> {
    let mut rng = StdRng::seed_from_u64(seed ^ spec.salt.rotate_left(17) ^ 0x517E);
    let created = first.minus(rng.gen_range(1..1000));
    let deleted = if rng.gen_bool(0.02) {
        format!("\"{}\"", first.plus(rng.gen_range(0..days)))
    } else {
        "null".to_string()
    };
    let owner = spec
        .owner
        .map_or("null".to_string(), |o| format!("\"{o}\""));
    writeln!(
        out,
        r#"{{"type":"site","id":"{}","kind":"{}","url":"{}","ownerId":{owner},"rootWebTemplate":"{}","createdDate":"{created}","deletedDate":{deleted}}}"#,
        spec.id, spec.kind, spec.url, spec.template
    )?;
    let sharepoint = spec.kind == "sharePoint";
    let files_end: u64 = rng.gen_range(10..5000);
    let bytes_per_file: u64 = rng.gen_range(50_000..2_000_000);
    let allocated: u64 = if sharepoint { 25 << 40 } else { 1 << 40 };
    let mut n = 1;
    for d in usage_from..days {
        if d < days - 7 && (days - 1 - d) % 7 != 0 {
            continue;
        }
        let files = files_end.saturating_sub((days - 1 - d) as u64 * files_end / 600);
        let weekday = first.plus(d).weekday() < 5;
        let active = if weekday && rng.gen_bool(0.7) {
            rng.gen_range(1..=files.clamp(1, 40))
        } else {
            0
        };
        let (views, visited) = if sharepoint && weekday {
            let v = rng.gen_range(0..200);
            (v, v / 3)
        } else {
            (0, 0)
        };
        writeln!(
            out,
            r#"{{"type":"siteDay","siteId":"{}","date":"{}","fileCount":{files},"activeFileCount":{active},"pageViewCount":{views},"visitedPageCount":{visited},"storageUsed":{},"storageAllocated":{allocated}}}"#,
            spec.id,
            first.plus(d),
            files * bytes_per_file
        )?;
        n += 1;
    }
    Ok(n)
}

/// A mailbox with growing storage: ~4% shared, ~1% room or equipment; quotas of a 50 GB
/// plan (a few 2 GB ones); about one in 30 near or over a quota by the end; a state every
/// day of the last week and weekly before. Returns the records written.
fn write_mailbox(
    out: &mut impl Write,
    id: &str,
    first: Day,
    days: i32,
    usage_from: i32,
    seed: u64,
    user: u32,
) -> std::io::Result<u64> {
    const GB: u64 = 1 << 30;
    let mut rng = StdRng::seed_from_u64(seed ^ (u64::from(user) << 8) ^ 0xB0);
    let kind = match rng.gen_range(0..100) {
        0..=3 => "shared",
        4 => "room",
        5 => "equipment",
        _ => "user",
    };
    let small = kind != "user" || rng.gen_bool(0.05);
    let (warn, send, send_receive) = if small {
        (GB * 19 / 10, GB * 2, GB * 23 / 10)
    } else {
        (GB * 49, GB * 99 / 2, GB * 50)
    };
    let has_archive = rng.gen_bool(0.3);
    let created = first.minus(rng.gen_range(1..1500));
    writeln!(
        out,
        r#"{{"type":"mailbox","userId":"{id}","createdDate":"{created}","deletedDate":null,"recipientType":"{kind}","issueWarningQuota":{warn},"prohibitSendQuota":{send},"prohibitSendReceiveQuota":{send_receive},"deletedItemQuota":{},"hasArchive":{has_archive}}}"#,
        GB * 30
    )?;
    // Where storage ends: mostly well under the warning quota, some near or over it.
    let end = if rng.gen_bool(0.035) {
        (send_receive as f64 * rng.gen_range(0.97..1.05)) as u64
    } else {
        (warn as f64 * rng.gen_range(0.001..0.8)) as u64
    };
    let daily = end / 400;
    let mut n = 1;
    for d in usage_from..days {
        if d < days - 7 && (days - 1 - d) % 7 != 0 {
            continue;
        }
        let storage = end.saturating_sub(daily * (days - 1 - d) as u64);
        let items = storage / 75_000 + 10;
        let deleted_items = items / 20;
        writeln!(
            out,
            r#"{{"type":"mailboxDay","userId":"{id}","date":"{}","itemCount":{items},"storageUsed":{storage},"deletedItemCount":{deleted_items},"deletedItemSize":{}}}"#,
            first.plus(d),
            deleted_items * 40_000
        )?;
        n += 1;
    }
    Ok(n)
}

/// Realistic daily counters for one user's active days in one service (a separate random
/// stream, so the rest of the tenant does not depend on `usage`). Returns the records written.
fn write_counters(
    out: &mut impl Write,
    id: &str,
    svc: Service,
    dates: &[&str],
    seed: u64,
    user: u32,
) -> std::io::Result<u64> {
    let Some(workload) = Workload::ALL.into_iter().find(|w| w.service() == svc) else {
        return Ok(0);
    };
    let mut rng = StdRng::seed_from_u64(seed ^ (u64::from(user) << 8) ^ workload.index() as u64);
    // (min, max) per counter, in the workload's counter order; the first range of each
    // workload that starts at 1 makes every generated day count as activity.
    let ranges: &[(u32, u32)] = match workload {
        Workload::Exchange => &[(0, 20), (1, 80), (0, 60), (0, 2), (0, 5)],
        Workload::OneDrive => &[(1, 15), (0, 30), (0, 3), (0, 1)],
        Workload::SharePoint => &[(0, 10), (0, 5), (0, 2), (0, 1), (1, 25)],
    };
    // Email users keep their clients: a desktop client (most often Outlook for Windows), the
    // web, sometimes a phone; a few use POP3/IMAP4/SMTP; Outlook versions mostly M365.
    let (desktop, version) = match rng.gen_range(0..100) {
        0..=64 => (
            "outlookForWindows",
            Some(
                [
                    "M365",
                    "2019",
                    "2016",
                    "2013",
                    "2010",
                    "2007",
                    "undetermined",
                ][pick(&mut rng, &[70u32, 10, 10, 5, 2, 1, 2], |w| *w)],
            ),
        ),
        65..=74 => ("outlookForMac", None),
        75..=79 => ("mailForMac", None),
        80..=84 => (
            ["pop3App", "imap4App", "smtpApp"][rng.gen_range(0..3)],
            None,
        ),
        _ => ("outlookForWeb", None),
    };
    let mobile =
        ["outlookForMobile", "otherForMobile", ""][pick(&mut rng, &[45u32, 15, 40], |w| *w)];
    let mut n = 0;
    for d in dates {
        write!(
            out,
            r#"{{"type":"activityCounts","userId":"{id}","workload":"{}","date":"{d}""#,
            workload.as_str()
        )?;
        for (name, (lo, hi)) in workload.counters().iter().zip(ranges) {
            write!(out, r#","{name}":{}"#, rng.gen_range(*lo..=*hi))?;
        }
        out.write_all(b"}\n")?;
        n += 1;
        if workload == Workload::Exchange {
            let mut clients = vec![desktop];
            if desktop != "outlookForWeb" && rng.gen_bool(0.3) {
                clients.push("outlookForWeb");
            }
            if !mobile.is_empty() && rng.gen_bool(0.5) {
                clients.push(mobile);
            }
            let list: Vec<String> = clients.iter().map(|c| format!("\"{c}\"")).collect();
            let version = version.map_or("null".to_string(), |v| format!("\"{v}\""));
            writeln!(
                out,
                r#"{{"type":"emailClients","userId":"{id}","date":"{d}","clients":[{}],"outlookVersion":{version}}}"#,
                list.join(",")
            )?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Limits, parse_batch};

    #[test]
    fn deterministic_and_valid() {
        let opts = Options {
            users: 300,
            days: 30,
            seed: 7,
            end: Day::parse("2026-10-31").unwrap(),
            single_date: false,
            usage: true,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_tenant(&opts, &mut a, |_| {}).unwrap();
        write_tenant(&opts, &mut b, |_| {}).unwrap();
        assert_eq!(a, b);
        let batch = parse_batch(&a, &Limits::default()).unwrap();
        assert!(batch.len() > 300 * 3);
    }

    #[test]
    fn usage_days_limits_only_the_usage_facts() {
        let opts = Options {
            users: 200,
            days: 60,
            seed: 3,
            end: Day::parse("2026-10-31").unwrap(),
            single_date: false,
            usage: true,
        };
        let mut all = Vec::new();
        let mut same = Vec::new();
        let mut short = Vec::new();
        write_tenant(&opts, &mut all, |_| {}).unwrap();
        write_tenant_usage_days(&opts, Some(60), &mut same, |_| {}).unwrap();
        write_tenant_usage_days(&opts, Some(7), &mut short, |_| {}).unwrap();
        assert_eq!(all, same);
        let cutoff = "2026-10-25";
        let usage = ["activityCounts", "emailClients", "mailboxDay", "siteDay"];
        let (mut kept, mut other) = (0, [0usize; 2]);
        for (k, text) in [&all, &short].iter().enumerate() {
            for line in std::str::from_utf8(text).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let t = v["type"].as_str().unwrap();
                if usage.contains(&t) {
                    if k == 1 {
                        assert!(v["date"].as_str().unwrap() >= cutoff, "{line}");
                        kept += 1;
                    }
                } else {
                    other[k] += 1;
                }
            }
        }
        assert!(kept > 0);
        assert_eq!(other[0], other[1]);
        parse_batch(&short, &Limits::default()).unwrap();
    }
}

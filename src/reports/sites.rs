//! OneDrive and SharePoint usage from the `site` and `siteDay` facts: per site (OneDrive
//! account or SharePoint site) as of the as-of day, and per day of the period the sites
//! existing that day, their files, pages and storage.
//!
//! A site exists on day d if created on or before d and not deleted on or before d. Sizes
//! (file count, storage) carry forward: the latest `siteDay` on or before d. Activity is an
//! event of its day: a site is active on d if its state dated d has active files (or, for
//! SharePoint, page views); the detail's Active File Count, Page View Count and Visited Page
//! Count sum the window's dated states (there is no per-file data to count distinct files).
//! Site Type: every daily row is `All` (per-template rows are not built).

use super::table::{Args, Cell, Query, Sink};
use super::{ReportError, as_of};
use crate::engine::{SiteFacts, TenantState, site_active, site_exists_on};
use crate::model::{SiteKind, SiteState};

fn daily(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    kind: SiteKind,
    cols: &[usize],
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (state.refresh_date(), q.args) else {
        return Ok(());
    };
    // Kept per day by the engine as batches apply (index 0 = R).
    let totals: Vec<_> = (0..p.days())
        .map(|i| state.usage_days().sites(kind, r.minus(i)))
        .collect();
    super::totals_rows(q, sink, r, &totals, &[Cell::Text("All".into())], cols);
    Ok(())
}

/// The owner's principal and display names (concealed like user names), empty without one.
fn owner_cells<'a>(state: &'a TenantState, q: &Query, f: &SiteFacts) -> [Cell<'a>; 2] {
    match f.owner {
        Some(o) => super::name_cells(state, q, o),
        None => [Cell::Text("".into()), Cell::Text("".into())],
    }
}

/// The per-site rows: sites existing on the as-of day d, plus those deleted within the
/// window, in site ordinal (first-ingested) order from `q.from`.
fn detail(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    kind: SiteKind,
) -> Result<(), ReportError> {
    let Some(d) = as_of(state, q.args)? else {
        return Ok(());
    };
    let (first, period) = match q.args {
        Args::Period(p) => (d.minus(p.days() - 1), p.days() as u32),
        _ => (d, 1),
    };
    for (ord, f) in state.sites().iter().enumerate().skip(q.from as usize) {
        let Some(site) = f.site.as_ref().filter(|s| s.kind == kind) else {
            continue;
        };
        let deleted = !site_exists_on(site, d);
        if site.created > d || (deleted && site.deleted.is_none_or(|x| x < first)) {
            continue;
        }
        let now = f.state_on(d).copied().unwrap_or_default();
        let mut window = SiteState::default();
        let mut last = None;
        for (day, st) in f.days.iter().take_while(|x| x.0 <= d) {
            if site_active(kind, st) {
                last = Some(*day);
            }
            if *day >= first {
                window.active_file_count += st.active_file_count;
                window.page_view_count += st.page_view_count;
                window.visited_page_count += st.visited_page_count;
            }
        }
        let [upn, display] = owner_cells(state, q, f);
        let mut cells = vec![Cell::Date(Some(d))];
        match kind {
            SiteKind::OneDrive => cells.extend([
                Cell::Text(site.url.as_str().into()),
                display,
                Cell::Bool(deleted),
                Cell::Date(last),
                Cell::Int(now.file_count),
                Cell::Int(window.active_file_count),
                Cell::Int(now.storage_used),
                Cell::Int(now.storage_allocated),
                upn,
            ]),
            SiteKind::SharePoint => cells.extend([
                Cell::Text(site.id.as_str().into()),
                Cell::Text(site.url.as_str().into()),
                display,
                Cell::Bool(deleted),
                Cell::Date(last),
                Cell::Int(now.file_count),
                Cell::Int(window.active_file_count),
                Cell::Int(window.page_view_count),
                Cell::Int(window.visited_page_count),
                Cell::Int(now.storage_used),
                Cell::Int(now.storage_allocated),
                Cell::Text(site.root_web_template.as_str().into()),
                upn,
            ]),
        }
        cells.push(Cell::Period(period));
        sink.row(ord as u32, &cells);
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}

pub(super) fn onedrive_account_detail(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    detail(s, q, k, SiteKind::OneDrive)
}
pub(super) fn onedrive_account_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::OneDrive, &[0, 1])
}
pub(super) fn onedrive_file_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::OneDrive, &[2, 3])
}
pub(super) fn onedrive_storage(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::OneDrive, &[5])
}
pub(super) fn sharepoint_site_detail(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    detail(s, q, k, SiteKind::SharePoint)
}
pub(super) fn sharepoint_site_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::SharePoint, &[0, 1])
}
pub(super) fn sharepoint_file_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::SharePoint, &[2, 3])
}
pub(super) fn sharepoint_pages(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::SharePoint, &[4])
}
pub(super) fn sharepoint_storage(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, SiteKind::SharePoint, &[5])
}

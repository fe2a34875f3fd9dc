//! Outlook mailbox usage from the `mailbox` and `mailboxDay` facts: per mailbox as of R
//! (MailboxUsageDetail), and per day of the period the mailboxes existing that day, the
//! active ones, their quota status and their storage (MailboxCounts, QuotaStatus..., Storage).
//!
//! A mailbox exists on day d if it was created on or before d and neither it nor its user was
//! deleted on or before d. Its state on d is the latest `mailboxDay` dated on or before d; its
//! quotas are the mailbox's current ones (quota history is not ingested).

use roaring::RoaringBitmap;

use super::active_users::{first_chunk, last_activity, next_chunk};
use super::table::{Args, Cell, Query, Sink};
use super::{ReportError, name_cells};
use crate::engine::{MailboxFacts, TenantState, mailbox_exists_on, mailbox_gone};
use crate::model::{Day, Mailbox, Service};

fn daily(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    cols: &[usize],
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (state.refresh_date(), q.args) else {
        return Ok(());
    };
    // Kept per day by the engine as batches apply (index 0 = R).
    let totals: Vec<_> = (0..p.days())
        .map(|i| state.usage_days().mailboxes(r.minus(i)))
        .collect();
    super::totals_rows(q, sink, r, &totals, &[], cols);
    Ok(())
}

pub(super) fn mailbox_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, &[0, 1])
}

pub(super) fn quota_status_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, &[2, 3, 4, 5, 6])
}

pub(super) fn storage(s: &TenantState, q: &Query, k: &mut dyn Sink) -> Result<(), ReportError> {
    daily(s, q, k, &[7])
}

/// Rows of getMailboxUsageDetail(period): every mailbox existing on R, plus those deleted
/// within the period, in user ordinal order; state and quotas as of R; Last Activity Date =
/// the user's latest Exchange activity on or before R (as in ActiveUserDetail).
pub(super) fn detail(s: &TenantState, q: &Query, sink: &mut dyn Sink) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (s.refresh_date(), q.args) else {
        return Ok(());
    };
    let first = r.minus(p.days() - 1);
    let n = s.users().len() as u32;
    let mut size = first_chunk(sink);
    let mut lo = q.from;
    let mut last = Vec::new();
    while lo < n {
        let hi = lo.saturating_add(next_chunk(&mut size)).min(n);
        let rows: Vec<(u32, &MailboxFacts, &Mailbox, Option<Day>)> = s
            .mailboxes()
            .range(lo..hi)
            .filter_map(|(ord, f)| {
                let m = f.mailbox.as_ref()?;
                let del = mailbox_gone(s, *ord, m);
                let listed = m.created <= r
                    && (mailbox_exists_on(m, del, r) || del.is_some_and(|x| x >= first && x <= r));
                listed.then_some((*ord, f, m, del))
            })
            .collect();
        let chunk: RoaringBitmap = rows.iter().map(|x| x.0).collect();
        last.clear();
        last.resize((hi - lo) as usize, None::<Day>);
        last_activity(s, Service::Exchange, r, &chunk, lo, &mut last);
        for (ord, f, m, del) in rows {
            let gone = !mailbox_exists_on(m, del, r);
            let st = f.state_on(r).copied().unwrap_or_default();
            let [upn, display] = name_cells(s, q, ord);
            let cells = [
                Cell::Date(Some(r)),
                upn,
                display,
                Cell::Bool(gone),
                Cell::Date(if gone { del } else { None }),
                Cell::Date(Some(m.created)),
                Cell::Date(last[(ord - lo) as usize]),
                Cell::Int(st.item_count),
                Cell::Int(st.storage_used),
                Cell::Int(m.issue_warning_quota),
                Cell::Int(m.prohibit_send_quota),
                Cell::Int(m.prohibit_send_receive_quota),
                Cell::Int(st.deleted_item_count),
                Cell::Int(st.deleted_item_size),
                Cell::Int(m.deleted_item_quota),
                Cell::Bool(m.has_archive),
                Cell::Period(p.days() as u32),
            ];
            sink.row(ord, &cells);
            if !sink.entity_done() {
                return Ok(());
            }
        }
        lo = hi;
    }
    Ok(())
}

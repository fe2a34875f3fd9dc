//! The in-memory engine: each tenant's state in a form the reports can read in milliseconds
//! (dense user ordinals, per-service per-day roaring bitmaps of active users), the planning of
//! a batch against that state (checks that need stored state), and the [`Registry`] that ties
//! state to the durable [`Store`](crate::store::Store): validate → commit durably → apply.
//! `stream` feeds a batch of any size through that cycle in blocks.

mod client_windows;
mod compact;
mod erase;
mod registry;
pub mod snapshot;
mod state;
mod stream;
mod totals;
mod usage_days;

pub use client_windows::ClientWindows;
pub use compact::{Deleted, Held};
pub use erase::Erasure;
pub use registry::{EngineError, Feeder, Freshness, IngestOutcome, Registry};
pub use state::{
    ActivationState, Licensed, MailboxFacts, Planner, SiteFacts, TenantState, UserState,
};
pub use stream::{BULK_BLOCK_BYTES, StreamOptions, in_background};
pub use totals::DayTotals;
pub use usage_days::{
    MailboxDay, SiteDay, UsageDays, mailbox_exists_on, mailbox_gone, site_active, site_exists_on,
};

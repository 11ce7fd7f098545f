//! The transactional outbox: how an accepted order's OrderPlaced event reaches the bus even when
//! the bus is down at the time, or the process dies right after the commit.
//!
//! Read in order: [`event`] builds the event written with the order (in
//! [`OrderStore::create`](crate::store::OrderStore::create)'s transaction), which then raises
//! [`OutboxWritten`]; the [`relay`] actor, woken by that signal or its poll, claims rows from the
//! [`table`], publishes them and marks each published once the bus confirmed it; [`status`]
//! turns the relay's progress into metrics and the `outbox` health check.
//!
//! `lib.rs` creates the signal and hands one copy to the store and one to the relay, so the
//! wiring between the request path and the relay is visible where the service is put together.

pub mod event;
pub mod relay;
pub mod status;
pub mod table;

use std::sync::Arc;

use tokio::sync::Notify;

pub use self::event::{OutboxEvent, order_placed};
pub use self::relay::{OutboxRelay, RelayArgs, RelayConfig, RelayError};
pub use self::status::RelayStatus;
pub use self::table::{Outbox, OutboxLag, OutboxRow};

/// "Rows were written to the outbox": raised by the order store after each commit, awaited by the
/// relay. Raises coalesce — a relay that is busy when several orders commit wakes once and then
/// drains everything — so no raise is ever lost and none piles up. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OutboxWritten(Arc<Notify>);

impl OutboxWritten {
    /// A signal nobody has raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the relay (or its next wait, if it is not waiting now).
    pub fn raise(&self) {
        self.0.notify_one();
    }

    /// Resolves once the signal was raised since the last time this resolved.
    pub async fn raised(&self) {
        self.0.notified().await;
    }
}

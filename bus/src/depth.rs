//! How far behind a queue's consumers are, as the backend itself counts it: what the
//! `wharf_bus_queue_depth` and `wharf_bus_dlq_depth` gauges export.
//!
//! One reading is one cheap backend call or two (a passive queue declare, `GetQueueAttributes`, a
//! count over the SQLite bus's rows), meant to be sampled every few seconds, never per message.

/// Messages in a queue and in its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    /// Ready for delivery and not handed to a consumer: neither in flight nor waiting out a
    /// retry delay (RabbitMQ's ready count, SQS's `ApproximateNumberOfMessages`).
    pub waiting: u64,
    /// In the dead-letter queue, including any a listing holds at that moment (on SQS, visible
    /// and not visible alike).
    pub dead_letters: u64,
}

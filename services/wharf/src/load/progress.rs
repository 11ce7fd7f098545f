//! Live progress of the load on stderr: a bar on a terminal, a line every 5 s otherwise (CI logs).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::{Limit, Stop};

/// Live counters, shared by the virtual users and the progress display.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Requests answered or failed.
    pub(super) done: AtomicU64,
    /// Of those, failed.
    pub(super) errors: AtomicU64,
    /// Open model: arrivals that found every slot busy.
    pub(super) dropped: AtomicU64,
}

/// A live bar on a terminal; on anything else (CI logs) a line every 5 s.
pub(super) async fn show_progress(progress: Arc<Progress>, limit: Limit, started: Instant, finished: Arc<Stop>) {
    let target = ProgressDrawTarget::stderr();
    let live = !target.is_hidden();
    let bar = live.then(|| {
        let (length, template) = match limit {
            Limit::Time(duration) => (
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                "{spinner:.green} {elapsed_precise} {msg} [{wide_bar:.cyan/blue}]",
            ),
            Limit::Count(count) => {
                (count, "{spinner:.green} {elapsed_precise} {msg} [{wide_bar:.cyan/blue}] {pos}/{len}")
            }
        };
        let bar = ProgressBar::with_draw_target(Some(length), target);
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar
    });
    let mut window: VecDeque<(Instant, u64)> = VecDeque::new();
    let tick = if live { Duration::from_millis(200) } else { Duration::from_secs(5) };
    let mut interval = tokio::time::interval_at(started + tick, tick);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = finished.stopped() => break,
        }
        let now = Instant::now();
        let done = progress.done.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let dropped = progress.dropped.load(Ordering::Relaxed);
        // Current rate: over the last second or so on a terminal, the last 5 s otherwise.
        window.push_back((now, done));
        while window.len() > 2 && now.duration_since(window[0].0) > Duration::from_millis(1100) {
            window.pop_front();
        }
        let (since, done_then) =
            if window.len() > 1 { window.front().copied().unwrap_or((started, 0)) } else { (started, 0) };
        let seconds = now.duration_since(since).as_secs_f64();
        let rps = if seconds > 0.0 { (done - done_then) as f64 / seconds } else { 0.0 };
        let mut message = format!("{done} requests · {rps:.0} req/s · {errors} errors");
        if dropped > 0 {
            let _ = write!(message, " · {dropped} dropped");
        }
        match &bar {
            Some(bar) => {
                let position = match limit {
                    Limit::Time(_) => u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX),
                    // With --rate a count limits arrivals, dropped ones included.
                    Limit::Count(_) => done + dropped,
                };
                bar.set_position(position);
                bar.set_message(message);
            }
            None => eprintln!("wharf load: {:>6.1} s  {message}", now.duration_since(started).as_secs_f64()),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

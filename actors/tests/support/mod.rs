//! Shared by the integration tests: a test actor that can be told to panic,
//! fail, sleep or stop and counts its incarnations, a fast restart policy, and a
//! polling helper.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use wharf_actors::RestartPolicy;

/// Messages a probe understands.
#[derive(Debug)]
pub enum ProbeMsg {
    /// Replies with the incarnation number (1 for the first start).
    Ping(RpcReplyPort<u64>),
    /// Panics inside the handler.
    Panic,
    /// Returns `Err` from the handler.
    Fail,
    /// Sleeps (asynchronously) for the duration, then replies.
    Sleep(Duration, RpcReplyPort<()>),
    /// Stops itself, as if its work were done.
    Stop,
}

/// Shared counters of all incarnations of one probe.
#[derive(Clone, Default)]
pub struct ProbeStats {
    /// How many times `pre_start` succeeded.
    pub starts: Arc<AtomicU64>,
    /// When set, `pre_start` fails (to test failing restarts).
    pub refuse_start: Arc<AtomicBool>,
    /// How many times `post_stop` began (graceful stops only: kills skip it).
    pub stops: Arc<AtomicU64>,
    /// How long `post_stop` takes (milliseconds), to make shutdowns observable.
    pub stop_delay_ms: Arc<AtomicU64>,
}

pub struct Probe {
    stats: ProbeStats,
}

impl Probe {
    /// A `make` closure for [`wharf_actors::child`].
    pub fn maker(stats: &ProbeStats) -> impl Fn() -> (Probe, ()) + Send + Sync + 'static {
        let stats = stats.clone();
        move || (Probe { stats: stats.clone() }, ())
    }
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<ProbeMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        if self.stats.refuse_start.load(Ordering::SeqCst) {
            return Err("probe refuses to start".into());
        }
        Ok(self.stats.starts.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn post_stop(&self, _: ActorRef<ProbeMsg>, _: &mut u64) -> Result<(), ActorProcessingErr> {
        self.stats.stops.fetch_add(1, Ordering::SeqCst);
        let delay = self.stats.stop_delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ProbeMsg>,
        message: ProbeMsg,
        incarnation: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProbeMsg::Ping(reply) => {
                let _ = reply.send(*incarnation);
            }
            ProbeMsg::Panic => panic!("probe asked to panic"),
            ProbeMsg::Fail => return Err("probe asked to fail".into()),
            ProbeMsg::Sleep(duration, reply) => {
                tokio::time::sleep(duration).await;
                let _ = reply.send(());
            }
            ProbeMsg::Stop => myself.stop(None),
        }
        Ok(())
    }
}

/// A policy with tiny backoffs, so restarts happen within milliseconds.
pub fn fast_policy(max_restarts: u32) -> RestartPolicy {
    RestartPolicy {
        max_restarts,
        window: Duration::from_secs(30),
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
    }
}

/// Polls `check` every 5 ms until it yields `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

//! The pool actor: owns the queue, the in-flight jobs and the workers.
//!
//! Supervised by a [`crate::Supervisor`]; supervises its workers itself. Every
//! accepted job lives in exactly one place — the queue, or the `running` slot of
//! one worker — until its caller is answered, which is what lets the pool
//! redeliver or fail a job when its worker dies. If this actor dies, those places
//! are dropped with it and so are the callers' reply senders: they get
//! [`PoolError::Unavailable`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent, registry};

use super::worker::{Outcome, WorkerActor, WorkerMsg};
use super::{Admission, MAX_ATTEMPTS, PoolError, Reply, Worker};
use crate::liveness::Liveness;
use crate::policy::{RestartDecision, RestartPolicy, RestartWindow};

/// How long a new pool incarnation waits for a worker of the previous one to
/// release its registry name.
const STALE_WORKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages of the pool actor.
pub(crate) enum PoolMsg<W: Worker> {
    /// A new job from a [`super::PoolHandle`].
    Submit { job: W::Job, reply: Option<Reply<W>>, admission: Admission },
    /// Worker `worker` finished job `ticket`; its output is in the job's [`Outcome`].
    Done { worker: ActorId, ticket: u64 },
    /// The backoff of worker `index` elapsed: spawn it again.
    RespawnWorker { index: usize },
    /// Stop taking jobs and reply once the accepted ones are answered.
    Drain(RpcReplyPort<()>),
}

/// Builds the pool's state; `make` in [`super::pool`] creates one per incarnation.
pub(crate) struct PoolActor<W: Worker> {
    worker: Arc<W>,
    size: usize,
    policy: RestartPolicy,
    /// Admitted jobs not yet handed to a worker; see [`Admission`].
    waiting: Arc<AtomicUsize>,
    /// Where worker restarts are counted, for metrics.
    liveness: Option<Liveness>,
}

impl<W: Worker> PoolActor<W> {
    pub(crate) fn new(
        worker: Arc<W>,
        size: usize,
        policy: RestartPolicy,
        waiting: Arc<AtomicUsize>,
        liveness: Option<Liveness>,
    ) -> Self {
        Self { worker, size, policy, waiting, liveness }
    }
}

/// A job accepted by the pool and not yet answered.
struct PendingJob<W: Worker> {
    /// Identifies the job across deliveries (worker reports, logs).
    ticket: u64,
    job: Arc<W::Job>,
    reply: Option<Reply<W>>,
    /// Deliveries so far whose worker died before finishing.
    deaths: u32,
    /// Held while the job waits for a worker; `None` once handed to one.
    admission: Option<Admission>,
}

/// The job a worker is performing, and where it will put the output.
struct Running<W: Worker> {
    job: PendingJob<W>,
    outcome: Outcome<W::Output>,
}

struct WorkerSlot<W: Worker> {
    /// The live incarnation; `None` while it waits for its backoff to elapse.
    actor: Option<ActorRef<WorkerMsg<W>>>,
    running: Option<Running<W>>,
    /// A send to `actor` failed: it is dead and its exit event is on the way.
    unreachable: bool,
    window: RestartWindow,
}

impl<W: Worker> WorkerSlot<W> {
    fn is_idle(&self) -> bool {
        self.actor.is_some() && self.running.is_none() && !self.unreachable
    }
}

pub(crate) struct PoolState<W: Worker> {
    /// The pool's registry name; workers are `"{name}/{index}"`.
    name: String,
    queue: VecDeque<PendingJob<W>>,
    workers: Vec<WorkerSlot<W>>,
    next_ticket: u64,
    /// Set by [`PoolMsg::Drain`]: no new jobs, no worker restarts.
    draining: bool,
    drain_waiters: Vec<RpcReplyPort<()>>,
}

impl<W: Worker> Drop for PoolState<W> {
    fn drop(&mut self) {
        // Callers are answered `Unavailable` by their dropped senders; say so in the
        // log, since fire-and-forget jobs have nobody else to tell.
        let unanswered = self.queue.len() + self.workers.iter().filter(|w| w.running.is_some()).count();
        if unanswered > 0 {
            tracing::warn!(pool = %self.name, unanswered, "pool stopped with unanswered jobs");
        }
    }
}

impl<W: Worker> PoolActor<W> {
    async fn spawn_worker(
        &self,
        pool: &ActorRef<PoolMsg<W>>,
        pool_name: &str,
        index: usize,
    ) -> Result<ActorRef<WorkerMsg<W>>, ractor::SpawnErr> {
        let name = format!("{pool_name}/{index}");
        let actor = WorkerActor::new(Arc::clone(&self.worker), pool.clone());
        let (worker, _join) = WorkerActor::spawn_linked(Some(name), actor, (), pool.get_cell()).await?;
        Ok(worker)
    }

    /// Hands queued jobs to idle workers, oldest first.
    fn dispatch(&self, state: &mut PoolState<W>) {
        while !state.queue.is_empty() {
            let Some(slot) = state.workers.iter_mut().find(|slot| slot.is_idle()) else { return };
            let Some(actor) = slot.actor.as_ref() else { return };
            let Some(mut job) = state.queue.pop_front() else { return };
            let outcome = Outcome::default();
            let message =
                WorkerMsg::Perform { ticket: job.ticket, job: Arc::clone(&job.job), outcome: outcome.clone() };
            match actor.send_message(message) {
                Ok(()) => {
                    job.admission = None;
                    slot.running = Some(Running { job, outcome });
                }
                Err(_) => {
                    slot.unreachable = true;
                    state.queue.push_front(job);
                }
            }
        }
    }

    /// A worker died while running `running`: answer, redeliver or fail the job.
    fn job_interrupted(&self, state: &mut PoolState<W>, running: Running<W>) {
        let Running { mut job, outcome } = running;
        // The worker may have finished and reported just before dying; its report
        // is still in the mailbox, behind this (higher-priority) exit event.
        if let Some(output) = outcome.take() {
            answer(job, Ok(output));
            return;
        }
        job.deaths += 1;
        if self.worker.redeliver_on_death(&job.job) && job.deaths < MAX_ATTEMPTS {
            tracing::info!(pool = %state.name, ticket = job.ticket, deaths = job.deaths, "redelivering job of a dead worker");
            job.admission = Some(Admission::force(&self.waiting));
            state.queue.push_front(job);
        } else {
            tracing::warn!(pool = %state.name, ticket = job.ticket, deaths = job.deaths, "worker died mid-job; job not redelivered");
            answer(job, Err(PoolError::WorkerDied));
        }
    }

    /// Replies to drain requests once nothing accepted is left to do (or nobody is
    /// left to do it).
    fn check_drained(&self, state: &mut PoolState<W>) {
        if !state.draining || state.drain_waiters.is_empty() {
            return;
        }
        if state.workers.iter().any(|w| w.running.is_some()) {
            return;
        }
        // Nothing is running, so a non-empty queue means no worker is left to take
        // it (none are restarted while draining): those jobs cannot finish.
        for job in state.queue.drain(..) {
            answer(job, Err(PoolError::ShuttingDown));
        }
        for waiter in state.drain_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// Sends a job's result to its caller, if it has one still listening.
fn answer<W: Worker>(job: PendingJob<W>, result: Result<W::Output, PoolError>) {
    if let Some(reply) = job.reply {
        let _ = reply.send(result);
    }
}

/// The error a pool fails with when a worker restarts too often.
#[derive(Debug, thiserror::Error)]
#[error("worker {worker} failed {failures} times within the restart window; last failure: {reason}")]
struct WorkerRestartStorm {
    worker: String,
    failures: u32,
    reason: String,
}

impl<W: Worker> Actor for PoolActor<W> {
    type Msg = PoolMsg<W>;
    type State = PoolState<W>;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        let name = myself.get_name().unwrap_or_else(|| format!("pool-{}", myself.get_id()));
        let mut workers = Vec::with_capacity(self.size);
        for index in 0..self.size {
            // Workers of a previous incarnation are killed when it dies, but may
            // not have released their names yet.
            if let Some(stale) = registry::where_is(format!("{name}/{index}")) {
                stale.kill();
                let _ = stale.wait(Some(STALE_WORKER_TIMEOUT)).await;
            }
            match self.spawn_worker(&myself, &name, index).await {
                Ok(actor) => workers.push(WorkerSlot {
                    actor: Some(actor),
                    running: None,
                    unreachable: false,
                    window: RestartWindow::new(),
                }),
                Err(err) => {
                    for slot in &workers {
                        if let Some(actor) = &slot.actor {
                            actor.kill();
                        }
                    }
                    return Err(Box::new(err));
                }
            }
        }
        Ok(PoolState {
            name,
            queue: VecDeque::new(),
            workers,
            next_ticket: 0,
            draining: false,
            drain_waiters: Vec::new(),
        })
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // A graceful stop: whatever the drain did not finish is answered now rather
        // than left to dropped senders, so callers learn it was a shutdown.
        for job in state.queue.drain(..) {
            answer(job, Err(PoolError::ShuttingDown));
        }
        for slot in &mut state.workers {
            if let Some(running) = slot.running.take() {
                answer(running.job, Err(PoolError::ShuttingDown));
            }
        }
        myself.stop_children_and_wait(Some("pool stopping".to_owned()), Some(STALE_WORKER_TIMEOUT)).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PoolMsg::Submit { job, reply, admission } => {
                if state.draining {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(PoolError::ShuttingDown));
                    }
                    return Ok(());
                }
                let ticket = state.next_ticket;
                state.next_ticket += 1;
                state.queue.push_back(PendingJob {
                    ticket,
                    job: Arc::new(job),
                    reply,
                    deaths: 0,
                    admission: Some(admission),
                });
                self.dispatch(state);
            }
            PoolMsg::Done { worker, ticket } => {
                // Only the incarnation that is running `ticket` may free its slot:
                // a report from a worker that already died was handled with its exit.
                let slot = state.workers.iter_mut().find(|slot| {
                    slot.actor.as_ref().is_some_and(|a| a.get_id() == worker)
                        && slot.running.as_ref().is_some_and(|r| r.job.ticket == ticket)
                });
                if let Some(running) = slot.and_then(|slot| slot.running.take()) {
                    match running.outcome.take() {
                        Some(output) => answer(running.job, Ok(output)),
                        // Unreachable by construction (the worker stores before it
                        // reports); failing the job beats hanging its caller.
                        None => answer(running.job, Err(PoolError::WorkerDied)),
                    }
                }
                self.dispatch(state);
                self.check_drained(state);
            }
            PoolMsg::RespawnWorker { index } => {
                if state.draining {
                    return Ok(());
                }
                let Some(slot) = state.workers.get(index) else { return Ok(()) };
                if slot.actor.is_some() {
                    return Ok(());
                }
                match self.spawn_worker(&myself, &state.name, index).await {
                    Ok(actor) => {
                        tracing::info!(pool = %state.name, worker = index, "worker restarted");
                        if let Some(slot) = state.workers.get_mut(index) {
                            slot.actor = Some(actor);
                            slot.unreachable = false;
                        }
                        self.dispatch(state);
                    }
                    Err(err) => self.worker_failed(&myself, state, index, format!("restart failed: {err}"))?,
                }
            }
            PoolMsg::Drain(reply) => {
                state.draining = true;
                state.drain_waiters.push(reply);
                self.dispatch(state);
                self.check_drained(state);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.map_or_else(|| "stopped".to_owned(), |r| format!("terminated: {r}")))
            }
            _ => return Ok(()),
        };
        let id = cell.get_id();
        let Some(index) = state.workers.iter().position(|slot| slot.actor.as_ref().is_some_and(|a| a.get_id() == id))
        else {
            return Ok(());
        };
        let running = state.workers.get_mut(index).and_then(|slot| {
            slot.actor = None;
            slot.unreachable = false;
            slot.running.take()
        });
        if let Some(running) = running {
            self.job_interrupted(state, running);
        }
        if !state.draining {
            self.worker_failed(&myself, state, index, reason)?;
        }
        self.dispatch(state);
        self.check_drained(state);
        Ok(())
    }
}

impl<W: Worker> PoolActor<W> {
    /// Schedules a respawn of worker `index`, or fails the pool on a restart storm
    /// so that its own supervisor decides.
    fn worker_failed(
        &self,
        myself: &ActorRef<PoolMsg<W>>,
        state: &mut PoolState<W>,
        index: usize,
        reason: String,
    ) -> Result<(), ActorProcessingErr> {
        let Some(slot) = state.workers.get_mut(index) else { return Ok(()) };
        let worker = format!("{}/{index}", state.name);
        match slot.window.record_failure(Instant::now(), &self.policy) {
            RestartDecision::Restart { attempt, delay } => {
                tracing::warn!(
                    pool = %state.name,
                    %worker,
                    %reason,
                    attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "worker failed; restarting after backoff"
                );
                if let Some(liveness) = &self.liveness {
                    liveness.record_restart(&worker);
                }
                let _timer = myself.send_after(delay, move || PoolMsg::RespawnWorker { index });
                Ok(())
            }
            RestartDecision::Escalate { failures } => {
                tracing::error!(pool = %state.name, %worker, %reason, failures, "worker restart limit exceeded; failing the pool");
                Err(Box::new(WorkerRestartStorm { worker, failures, reason }))
            }
        }
    }
}

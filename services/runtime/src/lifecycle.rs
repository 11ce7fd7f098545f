//! A started service and its orderly stop.
//!
//! The order matters: first the edge stops accepting and drains in-flight requests (which still
//! need the actors and the database), then the supervisor stops its actors, then the database
//! pool closes. A supervision escalation takes the same path but ends in [`Stopped::Escalated`],
//! which `main` turns into a non-zero exit so the orchestrator restarts the process.

use std::future::Future;
use std::net::SocketAddr;

use wharf_actors::{Liveness, SupervisorError, SupervisorHandle};
use wharf_edge::{Edge, EdgeError, RunningEdge};

use crate::{Database, DatabaseError, StoreError};

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A start-up step in the store failed (e.g. seeding).
    #[error("preparing the store failed")]
    Store(#[from] StoreError),
    /// The bus could not be reached or provisioned (the runtime does not link a bus: a service
    /// that has one boxes its error with [`StartError::bus`]).
    #[error("cannot open the bus")]
    Bus(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The actors could not be started.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// The edge could not listen.
    #[error(transparent)]
    Edge(#[from] EdgeError),
}

impl StartError {
    /// The bus a service opens at start-up failed.
    pub fn bus(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Bus(Box::new(err))
    }
}

/// How a service's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to stop (signal): exit 0.
    Requested,
    /// Supervision escalated: exit non-zero.
    Escalated(String),
}

/// A serving service: its edge, its supervisor and its database.
#[derive(Debug)]
pub struct RunningService {
    edge: RunningEdge,
    supervisor: SupervisorHandle,
    db: Database,
}

impl RunningService {
    /// Bundles the started parts.
    pub fn new(edge: RunningEdge, supervisor: SupervisorHandle, db: Database) -> Self {
        Self { edge, supervisor, db }
    }

    /// The last start-up step: the edge starts serving `api`. If it cannot (port taken), the
    /// actors and the database started before it are stopped, so a failed start leaves nothing.
    pub async fn serve<F>(edge: Edge, api: F, supervisor: SupervisorHandle, db: Database) -> Result<Self, StartError>
    where
        F: warp::Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    {
        match edge.serve(api).await {
            Ok(edge) => Ok(Self::new(edge, supervisor, db)),
            Err(err) => {
                supervisor.shutdown().await;
                db.close().await;
                Err(err.into())
            }
        }
    }

    /// Where the edge listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.edge.local_addr()
    }

    /// The service's supervisor (tests kill its children).
    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.supervisor
    }

    /// The liveness the supervisor escalates into.
    pub fn liveness(&self) -> &Liveness {
        self.supervisor.liveness()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Serves until `signal` resolves or supervision escalates, then stops in order.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Stopped {
        let liveness = self.liveness().clone();
        let stopped = tokio::select! {
            () = signal => Stopped::Requested,
            reason = liveness.failed() => {
                tracing::error!(reason = %reason, "supervision escalated; stopping so the orchestrator restarts the process");
                Stopped::Escalated(reason)
            }
        };
        self.shutdown().await;
        stopped
    }

    /// Drains the edge, stops the actors, closes the database.
    pub async fn shutdown(self) {
        self.edge.shutdown().await;
        self.supervisor.shutdown().await;
        self.db.close().await;
        tracing::info!("stopped");
    }
}

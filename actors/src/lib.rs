//! Supervision for wharf services, on ractor.
//!
//! - [`RestartPolicy`]: how often and how fast a child is restarted;
//! - [`Supervisor`]: owns named children, restarts them under that policy and
//!   escalates a restart storm to the process's [`Liveness`];
//! - [`ActorHandle`]: reaches the current incarnation of a supervised actor;
//! - [`pool()`]: a worker pool that redelivers or fails, never drops, the jobs of
//!   a worker that died;
//! - [`chaos`]: kill an actor by name, to prove all of the above on a live process.
//!
//! This crate knows nothing about HTTP, SQL or the bus.

pub mod chaos;
mod child;
mod handle;
pub mod liveness;
pub mod policy;
pub mod pool;
pub mod supervisor;

pub use chaos::ChaosError;
pub use child::{ChildSpec, child};
pub use handle::{ActorHandle, CallError};
pub use liveness::Liveness;
pub use policy::{RestartDecision, RestartPolicy, RestartWindow};
pub use pool::{PoolError, PoolHandle, Worker, pool};
pub use supervisor::{Supervisor, SupervisorError, SupervisorHandle, start};

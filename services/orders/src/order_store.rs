//! The order store workers: a supervised pool through which every request reaches the order
//! store (`orders/store`, workers `orders/store/0…`).
//!
//! As in products, a dead worker's reads are redelivered and its writes answer 503 — a create
//! may have committed, and the client's `Idempotency-Key` is what makes its retry safe.

use wharf_actors::{PoolHandle, Worker};
use wharf_edge::{Page, Problem};
use wharf_runtime::{StoreClient, StoreError};

use crate::domain::{NewOrder, Order, OrderStatus, TransitionError};
use crate::events::order_placed;
use crate::store::{Created, IdempotencyKey, OrderStore};

/// One unit of order-store work.
#[derive(Debug)]
pub enum OrderJob {
    /// A page of orders.
    List(Page),
    /// One order.
    Get(i64),
    /// What an idempotency key was used for.
    FindIdempotent(IdempotencyKey),
    /// Write an order with its OrderPlaced event (and key).
    Create { order: NewOrder, correlation_id: String, traceparent: Option<String>, key: Option<IdempotencyKey> },
    /// Change an order's status.
    ChangeStatus(i64, OrderStatus),
}

/// What a job produced.
#[derive(Debug)]
pub enum OrderOutput {
    /// For `List`.
    Orders(Vec<Order>),
    /// For `Get`.
    Order(Option<Order>),
    /// For `FindIdempotent` (`None`: unused key) and `Create`.
    Created(Option<Created>),
    /// For `ChangeStatus`.
    StatusChanged(Option<Result<Order, TransitionError>>),
}

/// The work of an order-store worker.
#[derive(Debug)]
pub struct OrderStoreWorker {
    store: OrderStore,
}

impl OrderStoreWorker {
    /// Workers over `store`.
    pub fn new(store: OrderStore) -> Self {
        Self { store }
    }
}

impl Worker for OrderStoreWorker {
    type Job = OrderJob;
    type Output = Result<OrderOutput, StoreError>;
    type State = OrderStore;

    async fn init(&self) -> Result<OrderStore, ractor::ActorProcessingErr> {
        Ok(self.store.clone())
    }

    async fn perform(&self, store: &mut OrderStore, job: &OrderJob) -> Self::Output {
        Ok(match job {
            OrderJob::List(page) => OrderOutput::Orders(store.list(*page).await?),
            OrderJob::Get(id) => OrderOutput::Order(store.get(*id).await?),
            OrderJob::FindIdempotent(key) => OrderOutput::Created(store.find_idempotent(key).await?),
            OrderJob::Create { order, correlation_id, traceparent, key } => {
                let event = |written: &Order| order_placed(written, correlation_id, traceparent.as_deref());
                OrderOutput::Created(Some(store.create(order, event, key.as_ref()).await?))
            }
            OrderJob::ChangeStatus(id, status) => OrderOutput::StatusChanged(store.change_status(*id, *status).await?),
        })
    }

    fn redeliver_on_death(&self, job: &OrderJob) -> bool {
        matches!(job, OrderJob::List(_) | OrderJob::Get(_) | OrderJob::FindIdempotent(_))
    }
}

/// Typed access to the order store pool for the routes.
#[derive(Debug, Clone)]
pub struct Orders {
    store: StoreClient<OrderStoreWorker>,
}

impl Orders {
    /// Calls through `pool`.
    pub fn new(pool: PoolHandle<OrderStoreWorker>) -> Self {
        Self { store: StoreClient::new(pool, "order store") }
    }

    /// A page of orders.
    pub async fn list(&self, page: Page) -> Result<Vec<Order>, Problem> {
        match self.store.read(|| OrderJob::List(page)).await? {
            OrderOutput::Orders(orders) => Ok(orders),
            other => Err(mismatch(&other)),
        }
    }

    /// One order, or 404.
    pub async fn get(&self, id: i64) -> Result<Order, Problem> {
        match self.store.read(|| OrderJob::Get(id)).await? {
            OrderOutput::Order(order) => order.ok_or_else(|| not_found(id)),
            other => Err(mismatch(&other)),
        }
    }

    /// What `key` was used for, if anything.
    pub async fn find_idempotent(&self, key: &IdempotencyKey) -> Result<Option<Created>, Problem> {
        match self.store.read(|| OrderJob::FindIdempotent(key.clone())).await? {
            OrderOutput::Created(found) => Ok(found),
            other => Err(mismatch(&other)),
        }
    }

    /// Writes an order and its OrderPlaced event.
    pub async fn create(
        &self,
        order: NewOrder,
        correlation_id: String,
        traceparent: Option<String>,
        key: Option<IdempotencyKey>,
    ) -> Result<Created, Problem> {
        match self.store.write(OrderJob::Create { order, correlation_id, traceparent, key }).await? {
            OrderOutput::Created(Some(created)) => Ok(created),
            other => Err(mismatch(&other)),
        }
    }

    /// Changes an order's status: 404 if absent, 409 if the lifecycle forbids it.
    pub async fn change_status(&self, id: i64, status: OrderStatus) -> Result<Order, Problem> {
        match self.store.write(OrderJob::ChangeStatus(id, status)).await? {
            OrderOutput::StatusChanged(None) => Err(not_found(id)),
            OrderOutput::StatusChanged(Some(Ok(order))) => Ok(order),
            OrderOutput::StatusChanged(Some(Err(err))) => Err(Problem::new(
                warp::http::StatusCode::CONFLICT,
                "transition-not-allowed",
                "Status change not allowed",
                format!("Order {id}: {err}."),
            )),
            other => Err(mismatch(&other)),
        }
    }
}

fn not_found(id: i64) -> Problem {
    Problem::not_found(format!("There is no order with id {id}."))
}

/// A worker answered a job with another job's output: a bug, reported as a 500.
fn mismatch(output: &OrderOutput) -> Problem {
    tracing::error!(?output, "order store worker answered with the wrong kind of output");
    Problem::internal()
}

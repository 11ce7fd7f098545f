//! The orders as the routes see them: each operation of the order store, run on the store's
//! supervised worker pool (`orders/store`, workers `orders/store/0…`) and answered as problems.
//!
//! As in products, a dead worker's reads are redelivered and its writes answer 503 — a create
//! may have committed, and the client's `Idempotency-Key` is what makes its retry safe.

use wharf_edge::{Page, Problem};
use wharf_runtime::StoreClient;

use crate::domain::{NewOrder, Order, OrderStatus};
use crate::outbox::order_placed;
use crate::store::{Created, IdempotencyKey, OrderStore};

/// Typed access to the order store pool for the routes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Orders {
    store: StoreClient<OrderStore>,
}

impl Orders {
    /// Calls the store through `store`'s pool.
    pub fn new(store: StoreClient<OrderStore>) -> Self {
        Self { store }
    }

    /// A page of orders in ascending id order.
    pub async fn list(&self, page: Page) -> Result<Vec<Order>, Problem> {
        self.store.read(move |s| async move { s.list(page).await }).await
    }

    /// One order, or 404.
    pub async fn get(&self, id: i64) -> Result<Order, Problem> {
        self.store.read(move |s| async move { s.get(id).await }).await?.ok_or_else(|| not_found(id))
    }

    /// What `key` was used for, if anything.
    pub async fn find_idempotent(&self, key: &IdempotencyKey) -> Result<Option<Created>, Problem> {
        let key = key.clone();
        self.store
            .read(move |s| {
                let key = key.clone();
                async move { s.find_idempotent(&key).await }
            })
            .await
    }

    /// Writes an order, its OrderPlaced event (carrying the request's correlation id and trace
    /// context) and its idempotency key in one transaction.
    pub async fn create(
        &self,
        order: NewOrder,
        correlation_id: String,
        traceparent: Option<String>,
        tracestate: Option<String>,
        key: Option<IdempotencyKey>,
    ) -> Result<Created, Problem> {
        self.store
            .write(move |s| async move {
                let event = |written: &Order| {
                    order_placed(written, &correlation_id, traceparent.as_deref(), tracestate.as_deref())
                };
                s.create(&order, event, key.as_ref()).await
            })
            .await
    }

    /// Changes an order's status: 404 if absent, 409 if the lifecycle forbids it.
    pub async fn change_status(&self, id: i64, status: OrderStatus) -> Result<Order, Problem> {
        match self.store.write(move |s| async move { s.change_status(id, status).await }).await? {
            None => Err(not_found(id)),
            Some(Ok(order)) => Ok(order),
            Some(Err(err)) => Err(Problem::new(
                warp::http::StatusCode::CONFLICT,
                "transition-not-allowed",
                "Status change not allowed",
                format!("Order {id}: {err}."),
            )),
        }
    }
}

fn not_found(id: i64) -> Problem {
    Problem::not_found(format!("There is no order with id {id}."))
}

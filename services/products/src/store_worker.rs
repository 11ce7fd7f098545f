//! The store workers: a supervised pool of actors through which every request reaches the
//! product store.
//!
//! Owned by the products supervisor (`products/store`), each worker holds a clone of the database
//! pool and runs one query at a time, so the pool's size bounds the database work in flight and
//! a full queue sheds load with 503 instead of piling up requests.
//!
//! When a worker dies mid-job, the pool redelivers reads to another worker (they are
//! idempotent) and answers writes with `WorkerDied` — the write may or may not have committed,
//! so the client gets a 503 and decides, rather than risking a duplicate product.

use wharf_actors::{PoolHandle, Worker};
use wharf_edge::{Page, Problem};
use wharf_runtime::{StoreClient, StoreError};

use crate::domain::{NewProduct, Product};
use crate::store::ProductStore;

/// One unit of store work.
#[derive(Debug)]
pub enum StoreJob {
    /// A page of products.
    List(Page),
    /// One product.
    Get(i64),
    /// Add a product.
    Create(NewProduct),
    /// Replace a product.
    Update(i64, NewProduct),
    /// Remove a product.
    Delete(i64),
}

/// What a job produced.
#[derive(Debug)]
pub enum StoreOutput {
    /// For `List`.
    Products(Vec<Product>),
    /// For `Get`, `Create`, `Update` (`None`: no such product).
    Product(Option<Product>),
    /// For `Delete`.
    Deleted(bool),
}

/// The work of a store worker.
#[derive(Debug)]
pub struct StoreWorker {
    store: ProductStore,
}

impl StoreWorker {
    /// Workers over `store`.
    pub fn new(store: ProductStore) -> Self {
        Self { store }
    }
}

impl Worker for StoreWorker {
    type Job = StoreJob;
    type Output = Result<StoreOutput, StoreError>;
    type State = ProductStore;

    async fn init(&self) -> Result<ProductStore, ractor::ActorProcessingErr> {
        Ok(self.store.clone())
    }

    async fn perform(&self, store: &mut ProductStore, job: &StoreJob) -> Self::Output {
        Ok(match job {
            StoreJob::List(page) => StoreOutput::Products(store.list(*page).await?),
            StoreJob::Get(id) => StoreOutput::Product(store.get(*id).await?),
            StoreJob::Create(product) => StoreOutput::Product(Some(store.create(product).await?)),
            StoreJob::Update(id, product) => StoreOutput::Product(store.update(*id, product).await?),
            StoreJob::Delete(id) => StoreOutput::Deleted(store.delete(*id).await?),
        })
    }

    fn redeliver_on_death(&self, job: &StoreJob) -> bool {
        matches!(job, StoreJob::List(_) | StoreJob::Get(_))
    }
}

/// Typed access to the store pool for the routes.
#[derive(Debug, Clone)]
pub struct Catalogue {
    store: StoreClient<StoreWorker>,
}

impl Catalogue {
    /// Calls through `pool`.
    pub fn new(pool: PoolHandle<StoreWorker>) -> Self {
        Self { store: StoreClient::new(pool, "product store") }
    }

    /// A page of products.
    pub async fn list(&self, page: Page) -> Result<Vec<Product>, Problem> {
        match self.store.read(|| StoreJob::List(page)).await? {
            StoreOutput::Products(products) => Ok(products),
            other => Err(mismatch(&other)),
        }
    }

    /// One product, or a 404 problem.
    pub async fn get(&self, id: i64) -> Result<Product, Problem> {
        match self.store.read(|| StoreJob::Get(id)).await? {
            StoreOutput::Product(product) => product.ok_or_else(|| not_found(id)),
            other => Err(mismatch(&other)),
        }
    }

    /// Adds a product.
    pub async fn create(&self, product: NewProduct) -> Result<Product, Problem> {
        match self.store.write(StoreJob::Create(product)).await? {
            StoreOutput::Product(Some(product)) => Ok(product),
            other => Err(mismatch(&other)),
        }
    }

    /// Replaces a product, or a 404 problem.
    pub async fn update(&self, id: i64, product: NewProduct) -> Result<Product, Problem> {
        match self.store.write(StoreJob::Update(id, product)).await? {
            StoreOutput::Product(product) => product.ok_or_else(|| not_found(id)),
            other => Err(mismatch(&other)),
        }
    }

    /// Removes a product, or a 404 problem.
    pub async fn delete(&self, id: i64) -> Result<(), Problem> {
        match self.store.write(StoreJob::Delete(id)).await? {
            StoreOutput::Deleted(true) => Ok(()),
            StoreOutput::Deleted(false) => Err(not_found(id)),
            other => Err(mismatch(&other)),
        }
    }
}

fn not_found(id: i64) -> Problem {
    Problem::not_found(format!("There is no product with id {id}."))
}

/// A worker answered a job with another job's output: a bug, reported as a 500.
fn mismatch(output: &StoreOutput) -> Problem {
    tracing::error!(?output, "store worker answered with the wrong kind of output");
    Problem::internal()
}

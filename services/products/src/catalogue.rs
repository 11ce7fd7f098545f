//! The catalogue as the routes see it: each operation of the product store, run on the store's
//! supervised worker pool (`products/store`) and answered as the routes' problems.
//!
//! Each worker holds a clone of the database pool and runs one query at a time, so the pool's
//! size bounds the database work in flight and a full queue sheds load with 503 instead of piling
//! up requests. Reads are redelivered to another worker when theirs dies (they are idempotent);
//! a write whose worker dies answers 503 — it may or may not have committed, so the client
//! decides, rather than risking a duplicate product.

use wharf_edge::{Page, Problem};
use wharf_runtime::StoreClient;

use crate::domain::{NewProduct, Product};
use crate::store::ProductStore;

/// Typed access to the product store pool for the routes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalogue {
    store: StoreClient<ProductStore>,
}

impl Catalogue {
    /// Calls the store through `store`'s pool.
    pub fn new(store: StoreClient<ProductStore>) -> Self {
        Self { store }
    }

    /// A page of products in ascending id order.
    pub async fn list(&self, page: Page) -> Result<Vec<Product>, Problem> {
        self.store.read(move |s| async move { s.list(page).await }).await
    }

    /// One product, or a 404 problem.
    pub async fn get(&self, id: i64) -> Result<Product, Problem> {
        self.store.read(move |s| async move { s.get(id).await }).await?.ok_or_else(|| not_found(id))
    }

    pub async fn create(&self, product: NewProduct) -> Result<Product, Problem> {
        self.store.write(move |s| async move { s.create(&product).await }).await
    }

    /// Replaces a product, or a 404 problem.
    pub async fn update(&self, id: i64, product: NewProduct) -> Result<Product, Problem> {
        self.store.write(move |s| async move { s.update(id, &product).await }).await?.ok_or_else(|| not_found(id))
    }

    /// Removes a product, or a 404 problem.
    pub async fn delete(&self, id: i64) -> Result<(), Problem> {
        match self.store.write(move |s| async move { s.delete(id).await }).await? {
            true => Ok(()),
            false => Err(not_found(id)),
        }
    }
}

fn not_found(id: i64) -> Problem {
    Problem::not_found(format!("There is no product with id {id}."))
}

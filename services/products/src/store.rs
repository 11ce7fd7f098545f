//! Where products are kept: one interface, SQLite and PostgreSQL behind it.
//!
//! The SQL is the same on both backends (`$1` parameters, `RETURNING`), so each query is written
//! once and run on whichever pool is configured. Queries are built at run time (`query_as`), so
//! building wharf needs no live database.

use sqlx::FromRow;
use time::OffsetDateTime;
use wharf_edge::Page;
use wharf_runtime::{Database, StoreError, on_database};

use crate::domain::{Description, NewProduct, Price, Product, ProductName, Stock};

/// The embedded migrations, one set per backend.
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The embedded migrations, one set per backend.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(FromRow)]
struct ProductRow {
    id: i64,
    name: String,
    price_cents: i64,
    description: String,
    stock: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<ProductRow> for Product {
    /// Rows were validated on the way in (and the schema's checks repeat the rules), so they are
    /// trusted on the way out.
    fn from(row: ProductRow) -> Self {
        Self {
            id: row.id,
            name: ProductName::from_stored(row.name),
            price: Price::from_cents(row.price_cents),
            description: Description::from_stored(row.description),
            stock: Stock::from_stored(row.stock),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The selected columns, as a macro so queries stay `&'static str` literals (sqlx refuses
/// strings built at run time unless audited, and these need no run-time parts).
macro_rules! columns {
    () => {
        "id, name, price_cents, description, stock, created_at, updated_at"
    };
}

/// The product store.
#[derive(Debug, Clone)]
pub struct ProductStore {
    db: Database,
}

/// Timestamps are kept to the microsecond, the precision both backends store.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

impl ProductStore {
    /// A store over `db` (already migrated).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// A page of products in ascending id order.
    pub async fn list(&self, page: Page) -> Result<Vec<Product>, StoreError> {
        const SQL: &str = concat!("SELECT ", columns!(), " FROM products ORDER BY id LIMIT $1 OFFSET $2");
        let rows = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, ProductRow>(SQL).bind(page.limit).bind(page.offset).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Product::from).collect())
    }

    pub async fn get(&self, id: i64) -> Result<Option<Product>, StoreError> {
        const SQL: &str = concat!("SELECT ", columns!(), " FROM products WHERE id = $1");
        let row =
            on_database!(&self.db, |pool| sqlx::query_as::<_, ProductRow>(SQL).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Product::from))
    }

    /// Adds a product and returns it with its id.
    pub async fn create(&self, product: &NewProduct) -> Result<Product, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO products (name, price_cents, description, stock, created_at, updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
            columns!()
        );
        let now = now();
        let row = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, ProductRow>(SQL)
                .bind(product.name.as_str())
                .bind(product.price.cents())
                .bind(product.description.as_str())
                .bind(product.stock.get())
                .bind(now)
                .fetch_one(pool)
                .await
        })?;
        Ok(row.into())
    }

    /// Replaces a product's fields; `None` when there is no such product.
    pub async fn update(&self, id: i64, product: &NewProduct) -> Result<Option<Product>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE products SET name = $2, price_cents = $3, description = $4, stock = $5, updated_at = $6 ",
            "WHERE id = $1 RETURNING ",
            columns!()
        );
        let now = now();
        let row = on_database!(&self.db, |pool| {
            sqlx::query_as::<_, ProductRow>(SQL)
                .bind(id)
                .bind(product.name.as_str())
                .bind(product.price.cents())
                .bind(product.description.as_str())
                .bind(product.stock.get())
                .bind(now)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Product::from))
    }

    /// Removes a product; `false` when there was none.
    pub async fn delete(&self, id: i64) -> Result<bool, StoreError> {
        let affected = on_database!(&self.db, |pool| {
            sqlx::query("DELETE FROM products WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
        });
        Ok(affected > 0)
    }

    /// Adds the demo catalogue when the store is empty; returns how many products were added.
    pub async fn seed_demo(&self) -> Result<usize, StoreError> {
        if !self.list(Page { limit: 1, offset: 0 }).await?.is_empty() {
            return Ok(0);
        }
        let mut added = 0;
        for (name, cents, description, stock) in DEMO_CATALOGUE {
            let product = NewProduct {
                name: ProductName::from_stored((*name).to_owned()),
                price: Price::from_cents(*cents),
                description: Description::from_stored((*description).to_owned()),
                stock: Stock::from_stored(*stock),
            };
            self.create(&product).await?;
            added += 1;
        }
        Ok(added)
    }
}

const DEMO_CATALOGUE: &[(&str, i64, &str, i32)] = &[
    ("Espresso cup", 1250, "Porcelain, 90 ml, dishwasher safe.", 40),
    ("Pour-over kettle", 5900, "Gooseneck, 1 l, stainless steel.", 12),
    ("Burr grinder", 12900, "Conical steel burrs, 40 settings.", 7),
    ("Filter papers (100)", 699, "Unbleached, size 02.", 250),
    ("House blend, 1 kg", 2450, "Medium roast; chocolate and hazelnut.", 60),
];

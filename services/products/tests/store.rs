//! One store test-suite, run against every backend: SQLite always, PostgreSQL in the
//! integration tier (`--features integration`). The bodies are shared; only set-up differs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use products::domain::{NewProduct, Price};
use products::store::{POSTGRES_MIGRATIONS, ProductStore, SQLITE_MIGRATIONS};
use serde_json::json;
use wharf_edge::Page;
use wharf_runtime::Database;

/// A migrated, empty store, and what to clean up afterwards.
struct Backend {
    store: ProductStore,
    db: Database,
    test_db: wharf_testkit::TestDb,
}

async fn open(test_db: wharf_testkit::TestDb) -> Backend {
    let db = Database::connect(&test_db.url(), 4).await.expect("connect");
    db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await.expect("migrate");
    Backend { store: ProductStore::new(db.clone()), db, test_db }
}

async fn sqlite() -> Backend {
    open(wharf_testkit::TestDb::sqlite()).await
}

#[cfg(feature = "integration")]
async fn postgres() -> Backend {
    open(wharf_testkit::TestDb::postgres().await).await
}

impl Backend {
    async fn finish(self) {
        self.db.close().await;
        self.test_db.remove().await;
    }
}

fn product(name: &str, price: f64, stock: i64) -> NewProduct {
    NewProduct::parse(&json!({"name": name, "price": price, "stock": stock, "description": format!("about {name}")}))
        .expect("valid")
}

async fn create_then_get_returns_the_same_product(b: Backend) {
    let created = b.store.create(&product("Kettle", 59.0, 12)).await.unwrap();
    assert!(created.id > 0);
    assert_eq!(created.name.as_str(), "Kettle");
    assert_eq!(created.description.as_str(), "about Kettle");
    assert_eq!(created.created_at, created.updated_at);
    let fetched = b.store.get(created.id).await.unwrap().expect("found");
    assert_eq!(fetched, created, "what is read back equals what was returned on create, timestamps included");
    assert!(b.store.get(created.id + 1000).await.unwrap().is_none());
    b.finish().await;
}

async fn money_and_text_round_trip_exactly(b: Backend) {
    let cases = [
        ("zero", 0.0),
        ("cent", 0.01),
        ("tricky float", 0.29),
        ("classic", 19.99),
        ("max", 999_999_999.99),
        ("Robert'); DROP TABLE products;--", 1.1),
        ("Café 咖啡 ☕ — ملعقة", 3.3),
    ];
    for (name, price) in cases {
        let created = b.store.create(&product(name, price, 1)).await.unwrap();
        let fetched = b.store.get(created.id).await.unwrap().unwrap();
        assert_eq!(fetched.name.as_str(), name);
        assert_eq!(fetched.price, Price::parse(price).unwrap(), "{name}");
        assert_eq!(serde_json::to_value(fetched.price).unwrap(), json!(price));
    }
    assert_eq!(b.store.list(Page::default()).await.unwrap().len(), cases.len());
    b.finish().await;
}

async fn lists_page_in_ascending_id_order(b: Backend) {
    for i in 0..12 {
        b.store.create(&product(&format!("p{i:02}"), 1.0, i)).await.unwrap();
    }
    let all = b.store.list(Page { limit: 100, offset: 0 }).await.unwrap();
    assert_eq!(all.len(), 12);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let page = b.store.list(Page { limit: 5, offset: 10 }).await.unwrap();
    assert_eq!(page.iter().map(|p| p.id).collect::<Vec<_>>(), all[10..].iter().map(|p| p.id).collect::<Vec<_>>());
    assert!(b.store.list(Page { limit: 5, offset: 12 }).await.unwrap().is_empty());
    b.finish().await;
}

async fn update_replaces_fields_and_keeps_created_at(b: Backend) {
    let created = b.store.create(&product("Cup", 2.5, 3)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = b.store.update(created.id, &product("Cup v2", 3.75, 0)).await.unwrap().expect("exists");
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.name.as_str(), "Cup v2");
    assert_eq!(updated.price.cents(), 375);
    assert_eq!(updated.stock.get(), 0);
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(b.store.get(created.id).await.unwrap().unwrap(), updated);
    assert!(b.store.update(created.id + 99, &product("ghost", 1.0, 1)).await.unwrap().is_none());
    b.finish().await;
}

async fn delete_removes_and_ids_are_never_reused(b: Backend) {
    let first = b.store.create(&product("a", 1.0, 1)).await.unwrap();
    let second = b.store.create(&product("b", 1.0, 1)).await.unwrap();
    assert!(b.store.delete(second.id).await.unwrap());
    assert!(!b.store.delete(second.id).await.unwrap(), "a second delete finds nothing");
    assert!(b.store.get(second.id).await.unwrap().is_none());
    let third = b.store.create(&product("c", 1.0, 1)).await.unwrap();
    assert!(third.id > second.id, "ids of deleted products are not reused");
    assert_eq!(
        b.store.list(Page::default()).await.unwrap().iter().map(|p| p.id).collect::<Vec<_>>(),
        [first.id, third.id]
    );
    b.finish().await;
}

async fn concurrent_creates_get_distinct_ids(b: Backend) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = b.store.clone();
        tasks.spawn(async move { store.create(&product(&format!("c{i}"), 1.0, 1)).await.unwrap().id });
    }
    let mut ids = BTreeSet::new();
    while let Some(id) = tasks.join_next().await {
        assert!(ids.insert(id.unwrap()));
    }
    assert_eq!(ids.len(), 50);
    b.finish().await;
}

async fn demo_seed_fills_only_an_empty_store_and_migrations_rerun(b: Backend) {
    let added = b.store.seed_demo().await.unwrap();
    assert!(added >= 3);
    assert_eq!(b.store.seed_demo().await.unwrap(), 0, "a second seed adds nothing");
    b.db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await.expect("migrations are idempotent");
    assert_eq!(b.store.list(Page::default()).await.unwrap().len(), added);
    b.finish().await;
}

macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(super::sqlite().await).await })*
        }
        #[cfg(feature = "integration")]
        mod postgres {
            $(#[tokio::test] async fn $case() { super::$case(super::postgres().await).await })*
        }
    };
}

store_suite!(
    create_then_get_returns_the_same_product,
    money_and_text_round_trip_exactly,
    lists_page_in_ascending_id_order,
    update_replaces_fields_and_keeps_created_at,
    delete_removes_and_ids_are_never_reused,
    concurrent_creates_get_distinct_ids,
    demo_seed_fills_only_an_empty_store_and_migrations_rerun,
);

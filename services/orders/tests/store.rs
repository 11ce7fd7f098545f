//! The order store suite on every backend: SQLite always, PostgreSQL with `--features
//! integration`. Orders, outbox and idempotency keys; outbox claims by competing relays.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use orders::domain::{NewOrder, OrderStatus};
use orders::outbox::{OutboxEvent, OutboxWritten};
use orders::store::{Created, IdempotencyKey, OrderStore, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use serde_json::json;
use wharf_edge::Page;
use wharf_runtime::Database;

struct Backend {
    store: OrderStore,
    db: Database,
    test_db: wharf_testkit::TestDb,
}

async fn open(test_db: wharf_testkit::TestDb) -> Backend {
    let db = Database::connect(&test_db.url(), 8).await.expect("connect");
    db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await.expect("migrate");
    Backend { store: OrderStore::new(db.clone(), OutboxWritten::new()), db, test_db }
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

fn order(product: i64, quantity: i64, email: &str) -> NewOrder {
    NewOrder::parse(&json!({"productId": product, "quantity": quantity, "customerEmail": email})).unwrap()
}

fn event(order: &orders::domain::Order) -> OutboxEvent {
    OutboxEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: "OrderPlaced".into(),
        event_version: 1,
        occurred_at: time::OffsetDateTime::now_utc(),
        correlation_id: "corr-1".into(),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        tracestate: Some("wharf=1,congo=t61rcWkgMzE".into()),
        envelope: json!({"orderId": order.id}).to_string(),
    }
}

async fn create(store: &OrderStore, new: &NewOrder, key: Option<&IdempotencyKey>) -> Created {
    store.create(new, event, key).await.unwrap()
}

async fn an_order_and_its_event_are_written_together(b: Backend) {
    let Created::New(order) = create(&b.store, &order(7, 2, "ada@example.com"), None).await else { panic!("new") };
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(b.store.get(order.id).await.unwrap(), Some(order.clone()));
    let lag = b.store.outbox().lag().await.unwrap();
    assert_eq!(lag.pending, 1);
    let rows = b.store.outbox().claim("relay-a", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row.event_type.as_str(), row.event_version, row.attempts), ("OrderPlaced", 1, 1));
    assert_eq!(row.correlation_id, "corr-1");
    assert_eq!(row.tracestate.as_deref(), Some("wharf=1,congo=t61rcWkgMzE"), "stored with the row");
    assert!(row.traceparent.is_some());
    assert_eq!(serde_json::from_str::<serde_json::Value>(&row.envelope).unwrap()["orderId"], order.id);
    b.store.outbox().mark_published(&[row.id]).await.unwrap();
    assert_eq!(b.store.outbox().lag().await.unwrap().pending, 0);
    assert!(b.store.outbox().claim("relay-a", 10, Duration::from_secs(30)).await.unwrap().is_empty());
    b.finish().await;
}

async fn idempotency_keys_replay_or_conflict(b: Backend) {
    let new = order(1, 1, "a@b.co");
    let key = IdempotencyKey::new("key-1".into(), &new);
    let Created::New(first) = create(&b.store, &new, Some(&key)).await else { panic!("new") };
    // The same request written differently is the same request.
    let same = order(1, 1, "a@B.CO");
    assert_eq!(
        create(&b.store, &same, Some(&IdempotencyKey::new("key-1".into(), &same))).await,
        Created::Replayed(first.clone())
    );
    let other = order(1, 2, "a@b.co");
    assert_eq!(
        create(&b.store, &other, Some(&IdempotencyKey::new("key-1".into(), &other))).await,
        Created::KeyConflict
    );
    assert_eq!(b.store.list(Page::default()).await.unwrap().len(), 1);
    assert_eq!(b.store.outbox().lag().await.unwrap().pending, 1, "no second event");
    b.finish().await;
}

async fn concurrent_requests_with_one_key_make_one_order(b: Backend) {
    let new = order(3, 1, "race@example.com");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (store, new) = (b.store.clone(), new.clone());
        tasks.spawn(async move {
            let key = IdempotencyKey::new("same-key".into(), &new);
            store.create(&new, event, Some(&key)).await.unwrap()
        });
    }
    let mut ids = BTreeSet::new();
    let mut fresh = 0;
    while let Some(created) = tasks.join_next().await {
        match created.unwrap() {
            Created::New(order) => {
                fresh += 1;
                ids.insert(order.id);
            }
            Created::Replayed(order) => {
                ids.insert(order.id);
            }
            Created::KeyConflict => panic!("same body is no conflict"),
        }
    }
    assert_eq!((fresh, ids.len()), (1, 1));
    assert_eq!(b.store.outbox().lag().await.unwrap().pending, 1);
    b.finish().await;
}

async fn status_changes_follow_the_lifecycle(b: Backend) {
    let Created::New(order) = create(&b.store, &order(1, 1, "a@b.co"), None).await else { panic!() };
    let confirmed = b.store.change_status(order.id, OrderStatus::Confirmed).await.unwrap().unwrap().unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    let again = b.store.change_status(order.id, OrderStatus::Confirmed).await.unwrap().unwrap().unwrap();
    assert_eq!(again.status, OrderStatus::Confirmed, "repeating a change is harmless");
    let refused = b.store.change_status(order.id, OrderStatus::Delivered).await.unwrap().unwrap().unwrap_err();
    assert_eq!((refused.from, refused.to), (OrderStatus::Confirmed, OrderStatus::Delivered));
    assert!(b.store.change_status(order.id + 99, OrderStatus::Confirmed).await.unwrap().is_none());

    // Racing Shipped against Cancelled from Confirmed: both are allowed from Confirmed, but only
    // one can win; the loser re-decides from the winner's status.
    let (shipped, cancelled) = tokio::join!(
        b.store.change_status(order.id, OrderStatus::Shipped),
        b.store.change_status(order.id, OrderStatus::Cancelled)
    );
    let outcomes = [shipped.unwrap().unwrap(), cancelled.unwrap().unwrap()];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    b.finish().await;
}

async fn claims_are_leased_released_and_expire(b: Backend) {
    for i in 0..5 {
        create(&b.store, &order(i + 1, 1, "a@b.co"), None).await;
    }
    let first = b.store.outbox().claim("relay-a", 3, Duration::from_secs(30)).await.unwrap();
    let ids: Vec<i64> = first.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let second = b.store.outbox().claim("relay-a", 10, Duration::from_millis(1500)).await.unwrap();
    assert_eq!(second.len(), 2, "leased rows are not claimed twice");
    b.store.outbox().release(&[first[0].id], "bus down").await.unwrap();
    let again = b.store.outbox().claim("relay-a", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.iter().map(|r| (r.id, r.attempts)).collect::<Vec<_>>(), [(first[0].id, 2)]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let expired = b.store.outbox().claim("relay-b", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(expired.len(), 2, "rows of a relay that died are claimable after the lease");
    // A restarted relay frees its previous incarnation's claims at once.
    assert_eq!(b.store.outbox().release_claims_of("relay-b").await.unwrap(), 2);
    assert_eq!(b.store.outbox().claim("relay-b", 10, Duration::from_secs(30)).await.unwrap().len(), 2);
    b.finish().await;
}

async fn competing_relays_never_claim_the_same_row(b: Backend) {
    const ROWS: i64 = 300;
    for i in 0..ROWS {
        create(&b.store, &order(i + 1, 1, "a@b.co"), None).await;
    }
    let mut relays = tokio::task::JoinSet::new();
    for relay in 0..3 {
        let store = b.store.clone();
        let owner = format!("relay-{relay}");
        relays.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let rows = store.outbox().claim(&owner, 7, Duration::from_secs(60)).await.unwrap();
                if rows.is_empty() {
                    break mine;
                }
                for row in rows {
                    store.outbox().mark_published(&[row.id]).await.unwrap();
                    mine.push(row.id);
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = relays.join_next().await {
        all.extend(mine.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a row was published by two relays");
    assert_eq!(i64::try_from(distinct.len()).unwrap(), ROWS);
    assert_eq!(b.store.outbox().lag().await.unwrap().pending, 0);
    b.finish().await;
}

macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::sqlite().await).await })*
        }
        #[cfg(feature = "integration")]
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::postgres().await).await })*
        }
    };
}

store_suite!(
    an_order_and_its_event_are_written_together,
    idempotency_keys_replay_or_conflict,
    concurrent_requests_with_one_key_make_one_order,
    status_changes_follow_the_lifecycle,
    claims_are_leased_released_and_expire,
    competing_relays_never_claim_the_same_row,
);

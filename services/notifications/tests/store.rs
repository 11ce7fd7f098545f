//! The notification store on every backend: SQLite always, PostgreSQL with `--features integration`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use notifications::domain::{DeliveryStatus, NewNotification};
use notifications::store::{Filter, NotificationStore, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use serde_json::json;
use wharf_edge::Page;
use wharf_runtime::Database;

struct Backend {
    store: NotificationStore,
    db: Database,
    test_db: wharf_testkit::TestDb,
}

async fn open(test_db: wharf_testkit::TestDb) -> Backend {
    let db = Database::connect(&test_db.url(), 8).await.expect("connect");
    db.migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await.expect("migrate");
    Backend { store: NotificationStore::new(db.clone()), db, test_db }
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

fn email(to: &str) -> NewNotification {
    NewNotification::parse(&json!({"type": "Email", "recipient": to, "message": "hello"})).unwrap()
}

async fn an_event_makes_one_notification_however_often_it_comes(b: Backend) {
    let (first, fresh) = b.store.for_event("event-1", 10, &email("a@b.co"), "corr").await.unwrap();
    assert!(fresh);
    let (again, fresh_again) = b.store.for_event("event-1", 10, &email("a@b.co"), "corr").await.unwrap();
    assert!(!fresh_again);
    assert_eq!(again.notification.id, first.notification.id);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = b.store.clone();
        tasks.spawn(async move { store.for_event("event-2", 11, &email("c@d.co"), "corr").await.unwrap() });
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut fresh = 0;
    while let Some(found) = tasks.join_next().await {
        let (stored, was_fresh) = found.unwrap();
        ids.insert(stored.notification.id);
        fresh += usize::from(was_fresh);
    }
    assert_eq!((ids.len(), fresh), (1, 1), "concurrent deliveries of one event make one notification");
    assert_eq!(b.store.list(&Filter::default(), Page::default()).await.unwrap().len(), 2);
    b.finish().await;
}

async fn status_moves_pending_to_sent_or_failed_once(b: Backend) {
    let sent = b.store.create(&email("s@b.co"), "c1").await.unwrap().notification.id;
    assert!(b.store.mark_sent(sent).await.unwrap());
    assert!(!b.store.mark_sent(sent).await.unwrap(), "a Sent notification is not sent again");
    let failed = b.store.create(&email("f@b.co"), "c2").await.unwrap().notification.id;
    b.store.record_failure(failed, "refused", false).await.unwrap();
    assert_eq!(b.store.get(failed).await.unwrap().unwrap().notification.status, DeliveryStatus::Pending);
    b.store.record_failure(failed, "refused", true).await.unwrap();
    assert_eq!(b.store.get(failed).await.unwrap().unwrap().notification.status, DeliveryStatus::Failed);
    let pending = b.store.create(&email("p@b.co"), "c3").await.unwrap().notification.id;
    b.store.for_event("event-9", 9, &email("e@b.co"), "c4").await.unwrap();
    let waiting: Vec<i64> = b.store.pending_direct(100).await.unwrap().iter().map(|s| s.notification.id).collect();
    assert_eq!(waiting, [pending], "only direct sends are resumed; events come back by themselves");
    let only_failed = Filter { status: Some(DeliveryStatus::Failed), ..Filter::default() };
    assert_eq!(b.store.list(&only_failed, Page::default()).await.unwrap().len(), 1);
    let for_s = Filter { recipient: Some("s@b.co".into()), ..Filter::default() };
    assert_eq!(b.store.list(&for_s, Page::default()).await.unwrap()[0].id, sent);
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

store_suite!(an_event_makes_one_notification_however_often_it_comes, status_moves_pending_to_sent_or_failed_once);

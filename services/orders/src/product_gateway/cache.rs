//! The last-known products: what the [`ProductGateway`](super::ProductGateway)
//! answers from while products cannot.
//!
//! Every live `200` from products refreshes its entry; a `404` removes it. When the circuit is
//! open or a lookup fails, the gateway serves the entry marked as a fallback together with its
//! age, so the caller (and the client) can judge how stale it is. The cache is bounded: once it
//! holds `capacity` products, refreshing a new one evicts the product refreshed longest ago.
//! "Least recently *refreshed*" rather than "least recently used" on purpose: a fallback read
//! does not make an entry any fresher, so it must not keep the stalest entries alive.
//!
//! Shared by all gateway workers and the gateway handle; it outlives worker restarts. Critical
//! sections are a few map operations, never an `.await`, so a plain mutex is the right lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::answer::ProductSnapshot;

/// A product served from the cache, and how long ago products last confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedProduct {
    /// The snapshot as products last returned it.
    pub product: ProductSnapshot,
    /// Time since that answer.
    pub age: Duration,
}

/// A bounded map of product id → last-known snapshot, evicting the least recently refreshed.
#[derive(Debug)]
pub struct ProductCache {
    /// The most products held; 0 disables the cache (every fallback misses).
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<i64, Entry>,
    /// Refresh sequence number → product id, oldest refresh first: the eviction order.
    by_refresh: BTreeMap<u64, i64>,
    /// The next refresh's sequence number; only grows.
    next_refresh: u64,
}

#[derive(Debug)]
struct Entry {
    product: ProductSnapshot,
    refreshed_at: Instant,
    /// This entry's key in `by_refresh`.
    refresh: u64,
}

impl ProductCache {
    /// An empty cache holding at most `capacity` products.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: Mutex::new(Entries::default()) }
    }

    /// Records a live answer from products; returns how many products are cached now.
    pub fn refresh(&self, product: ProductSnapshot) -> usize {
        self.refresh_at(product, Instant::now())
    }

    /// The last-known snapshot of product `id`, with its age.
    pub fn get(&self, id: i64) -> Option<CachedProduct> {
        self.get_at(id, Instant::now())
    }

    /// Forgets product `id` (products said it does not exist); returns how many products are cached now.
    pub fn remove(&self, id: i64) -> usize {
        let mut entries = self.lock();
        if let Some(entry) = entries.by_id.remove(&id) {
            entries.by_refresh.remove(&entry.refresh);
        }
        entries.by_id.len()
    }

    /// The id of the product refreshed most recently: the one a recovery probe asks products for.
    pub fn most_recent(&self) -> Option<i64> {
        self.lock().by_refresh.last_key_value().map(|(_, id)| *id)
    }

    /// How many products are cached.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no product is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refresh_at(&self, product: ProductSnapshot, now: Instant) -> usize {
        if self.capacity == 0 {
            return 0;
        }
        let mut entries = self.lock();
        let refresh = entries.next_refresh;
        entries.next_refresh += 1;
        let id = product.id;
        if let Some(previous) = entries.by_id.insert(id, Entry { product, refreshed_at: now, refresh }) {
            entries.by_refresh.remove(&previous.refresh);
        }
        entries.by_refresh.insert(refresh, id);
        while entries.by_id.len() > self.capacity {
            let Some((_, oldest)) = entries.by_refresh.pop_first() else { break };
            entries.by_id.remove(&oldest);
        }
        entries.by_id.len()
    }

    fn get_at(&self, id: i64, now: Instant) -> Option<CachedProduct> {
        let entries = self.lock();
        let entry = entries.by_id.get(&id)?;
        Some(CachedProduct { product: entry.product.clone(), age: now.saturating_duration_since(entry.refreshed_at) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // No code path panics while holding the lock; if one ever did, the maps are still
        // consistent (each operation completes before unlocking), so keep serving.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn product(id: i64, price_cents: i64) -> ProductSnapshot {
        ProductSnapshot { id, name: format!("product {id}"), price_cents, stock: 1 }
    }

    #[test]
    fn serves_the_last_refresh_with_its_age() {
        let cache = ProductCache::new(10);
        let t0 = Instant::now();
        cache.refresh_at(product(1, 100), t0);
        cache.refresh_at(product(1, 150), t0 + Duration::from_secs(2));
        let cached = cache.get_at(1, t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(cached.product.price_cents, 150);
        assert_eq!(cached.age, Duration::from_secs(3));
        assert_eq!(cache.len(), 1);
        assert!(cache.get(2).is_none());
    }

    #[test]
    fn evicts_the_least_recently_refreshed_not_the_least_recently_read() {
        let cache = ProductCache::new(2);
        let t0 = Instant::now();
        cache.refresh_at(product(1, 1), t0);
        cache.refresh_at(product(2, 2), t0);
        // Reading 1 does not make it fresher; refreshing 2 again does.
        assert!(cache.get(1).is_some());
        cache.refresh_at(product(2, 2), t0);
        assert_eq!(cache.refresh_at(product(3, 3), t0), 2);
        assert!(cache.get(1).is_none(), "1 was refreshed longest ago");
        assert!(cache.get(2).is_some());
        assert!(cache.get(3).is_some());
        assert_eq!(cache.most_recent(), Some(3));
    }

    #[test]
    fn remove_forgets_a_product_and_zero_capacity_caches_nothing() {
        let cache = ProductCache::new(3);
        cache.refresh(product(1, 1));
        cache.refresh(product(2, 2));
        assert_eq!(cache.remove(2), 1);
        assert_eq!(cache.remove(2), 1);
        assert_eq!(cache.most_recent(), Some(1));
        assert!(cache.get(2).is_none());

        let disabled = ProductCache::new(0);
        assert_eq!(disabled.refresh(product(1, 1)), 0);
        assert!(disabled.is_empty());
        assert_eq!(disabled.most_recent(), None);
    }
}

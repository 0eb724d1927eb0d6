//! The query cache: answers kept in process, with a time to live and a
//! bound on entries and bytes (least recently used out first).
//!
//! Keys carry the product's version, so a refresh makes every older answer
//! unreachable the moment the catalogue's version moves — no invalidation
//! message to lose or to race with. [`QueryCache::retire`] only frees the
//! memory of the versions left behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::query::QueryAnswer;

#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    pub ttl: Duration,
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            ttl: Duration::from_secs(300),
            max_entries: 10_000,
            max_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    product: String,
    version: u64,
    query: String,
}

#[derive(Debug)]
struct Slot {
    answer: Arc<QueryAnswer>,
    at: Instant,
    used: u64,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Key, Slot>,
    /// Use tick → key: the least recently used first.
    lru: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
}

/// Hit and miss counts since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub bytes: usize,
}

impl CacheStats {
    pub fn hit_rate(&self) -> f64 {
        let n = self.hits + self.misses;
        if n == 0 {
            0.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

#[derive(Debug)]
pub struct QueryCache {
    options: CacheOptions,
    inner: Mutex<Inner>,
}

impl QueryCache {
    pub fn new(options: CacheOptions) -> QueryCache {
        QueryCache {
            options,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached answer of `query` on `product` at `version`, if fresh.
    pub fn get(&self, product: &str, version: u64, query: &str) -> Option<Arc<QueryAnswer>> {
        let key = Key {
            product: product.to_owned(),
            version,
            query: query.to_owned(),
        };
        let mut g = self.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        let found = match inner.map.get_mut(&key) {
            Some(slot) if slot.at.elapsed() <= self.options.ttl => {
                inner.lru.remove(&slot.used);
                slot.used = tick;
                inner.lru.insert(tick, key.clone());
                Some(slot.answer.clone())
            }
            Some(_) => {
                remove(inner, &key);
                None
            }
            None => None,
        };
        if found.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        found
    }

    /// Keeps an answer, evicting the least recently used beyond the bounds.
    pub fn put(&self, query: &str, answer: Arc<QueryAnswer>) {
        // The key is held twice (the map and the LRU order).
        let bytes = answer.approx_bytes() + 2 * (query.len() + answer.product_id.len());
        if bytes > self.options.max_bytes || self.options.max_entries == 0 {
            return;
        }
        let key = Key {
            product: answer.product_id.clone(),
            version: answer.version,
            query: query.to_owned(),
        };
        let mut g = self.lock();
        let inner = &mut *g;
        remove(inner, &key);
        inner.tick += 1;
        let tick = inner.tick;
        inner.bytes += bytes;
        inner.lru.insert(tick, key.clone());
        inner.map.insert(
            key,
            Slot {
                answer,
                at: Instant::now(),
                used: tick,
                bytes,
            },
        );
        while inner.map.len() > self.options.max_entries || inner.bytes > self.options.max_bytes {
            let Some((_, oldest)) = inner.lru.pop_first() else {
                break;
            };
            if let Some(slot) = inner.map.remove(&oldest) {
                inner.bytes -= slot.bytes;
            }
        }
    }

    /// Drops every answer.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.map.clear();
        g.lru.clear();
        g.bytes = 0;
    }

    /// Frees the answers of `product` older than `version`.
    pub fn retire(&self, product: &str, version: u64) {
        let mut g = self.lock();
        let inner = &mut *g;
        let old: Vec<Key> = inner
            .map
            .keys()
            .filter(|k| k.product == product && k.version < version)
            .cloned()
            .collect();
        for k in old {
            remove(inner, &k);
        }
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            hits: g.hits,
            misses: g.misses,
            entries: g.map.len(),
            bytes: g.bytes,
        }
    }
}

fn remove(inner: &mut Inner, key: &Key) {
    if let Some(slot) = inner.map.remove(key) {
        inner.lru.remove(&slot.used);
        inner.bytes -= slot.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(product: &str, version: u64, rows: usize) -> Arc<QueryAnswer> {
        Arc::new(QueryAnswer {
            product_id: product.into(),
            version,
            columns: vec!["x".into()],
            rows: (0..rows).map(|i| vec![json!(i)]).collect(),
            truncated: false,
            scanned: json!(null),
        })
    }

    #[test]
    fn a_new_version_never_sees_old_answers() {
        let c = QueryCache::new(CacheOptions::default());
        c.put("q", answer("p", 1, 1));
        assert_eq!(c.get("p", 1, "q").unwrap().version, 1);
        assert!(c.get("p", 2, "q").is_none());
        c.retire("p", 2);
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().hits, 1);
        assert_eq!(c.stats().misses, 1);
    }

    #[test]
    fn bounds_evict_the_least_recently_used() {
        let c = QueryCache::new(CacheOptions {
            max_entries: 2,
            ..CacheOptions::default()
        });
        c.put("a", answer("p", 1, 1));
        c.put("b", answer("p", 1, 1));
        assert!(c.get("p", 1, "a").is_some());
        c.put("c", answer("p", 1, 1));
        assert!(c.get("p", 1, "b").is_none(), "b was least recently used");
        assert!(c.get("p", 1, "a").is_some());
        assert!(c.get("p", 1, "c").is_some());
        let small = QueryCache::new(CacheOptions {
            max_bytes: answer("p", 1, 10).approx_bytes() + 20,
            ..CacheOptions::default()
        });
        small.put("a", answer("p", 1, 10));
        small.put("b", answer("p", 1, 10));
        assert_eq!(small.stats().entries, 1);
        assert!(small.stats().bytes <= answer("p", 1, 10).approx_bytes() + 20);
    }

    #[test]
    fn entries_expire() {
        let c = QueryCache::new(CacheOptions {
            ttl: Duration::ZERO,
            ..CacheOptions::default()
        });
        c.put("a", answer("p", 1, 1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.get("p", 1, "a").is_none());
        assert_eq!(c.stats().entries, 0);
    }
}

//! Bounded deduplication: the last N keys seen, in insertion order, each
//! with what the service needs to remember about it (nothing, by default).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use ultracore_metrics::Gauge;

/// Remembers the most recent `capacity` keys (event ids, request ids) so a
/// redelivered or duplicated record is recognised; the oldest are forgotten
/// first, so memory stays bounded however long the service runs. Its size
/// is exported as `ultracore_service_dedup_entries{service}` when made by
/// [`crate::ServiceContext::dedup`]. With a value type `V`, it also keeps
/// what the first record of each key said (the portfolio a request id
/// belongs to, say), so a later record can be checked against it.
#[derive(Debug)]
pub struct Dedup<K, V = ()> {
    seen: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
    size: Option<Gauge>,
}

impl<K: Hash + Eq + Clone> Dedup<K> {
    /// Remembers `key`; returns whether it was new.
    pub fn insert(&mut self, key: K) -> bool {
        self.insert_with(key, ())
    }
}

impl<K: Hash + Eq + Clone, V> Dedup<K, V> {
    pub fn new(capacity: usize) -> Self {
        Dedup {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            size: None,
        }
    }

    pub(crate) fn with_gauge(mut self, gauge: Gauge) -> Self {
        gauge.set(0.0);
        self.size = Some(gauge);
        self
    }

    pub fn contains(&self, key: &K) -> bool {
        self.seen.contains_key(key)
    }

    /// What was remembered with `key`, if it is remembered.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.seen.get(key)
    }

    /// Remembers `key` with `value`; returns whether it was new. A key
    /// already remembered keeps its first value.
    pub fn insert_with(&mut self, key: K, value: V) -> bool {
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key.clone(), value);
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        if let Some(g) = &self.size {
            g.set(self.order.len() as f64);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let mut d = Dedup::new(3);
        for k in 0..5 {
            assert!(d.insert(k));
        }
        assert!(!d.insert(4));
        assert_eq!(d.len(), 3);
        assert!(!d.contains(&0) && !d.contains(&1));
        assert!(d.contains(&2) && d.contains(&3) && d.contains(&4));
        assert!(d.insert(0), "a forgotten key is new again");
    }

    #[test]
    fn keeps_the_first_value_of_a_key() {
        let mut d: Dedup<u32, &str> = Dedup::new(2);
        assert!(d.insert_with(1, "pf-a"));
        assert!(!d.insert_with(1, "pf-b"));
        assert_eq!(d.get(&1), Some(&"pf-a"));
        d.insert_with(2, "pf-c");
        d.insert_with(3, "pf-d");
        assert_eq!(d.get(&1), None, "forgotten with its key");
        assert_eq!(d.len(), 2);
    }
}

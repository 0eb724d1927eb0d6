//! Bounded deduplication: the last N keys seen, in insertion order.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

use ultracore_metrics::Gauge;

/// Remembers the most recent `capacity` keys (event ids, request ids) so a
/// redelivered or duplicated record is recognised; the oldest are forgotten
/// first, so memory stays bounded however long the service runs. Its size
/// is exported as `ultracore_service_dedup_entries{service}` when made by
/// [`crate::ServiceContext::dedup`].
#[derive(Debug)]
pub struct Dedup<K> {
    seen: HashSet<K>,
    order: VecDeque<K>,
    capacity: usize,
    size: Option<Gauge>,
}

impl<K: Hash + Eq + Clone> Dedup<K> {
    pub fn new(capacity: usize) -> Self {
        Dedup {
            seen: HashSet::new(),
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
        self.seen.contains(key)
    }

    /// Remembers `key`; returns whether it was new.
    pub fn insert(&mut self, key: K) -> bool {
        if !self.seen.insert(key.clone()) {
            return false;
        }
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
}

//! The process's one registry of metric families.

use std::sync::{Arc, Mutex};

use crate::text::Exposition;

/// Anything that writes whole metric families into an exposition.
pub trait Collector: Send + Sync {
    fn collect(&self, out: &mut Exposition);
}

/// A collector from a function (a service that renders its own families).
pub struct FnCollector<F>(pub F);

impl<F: Fn(&mut Exposition) + Send + Sync> Collector for FnCollector<F> {
    fn collect(&self, out: &mut Exposition) {
        (self.0)(out)
    }
}

impl<F> std::fmt::Debug for FnCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnCollector")
    }
}

/// Every family a process exports, rendered in registration order.
///
/// Cloning shares the registry. A family registered twice under one name
/// would make the exposition invalid; [`Registry::register`] refuses the
/// second (by the family's own name where it has one).
#[derive(Clone, Default)]
pub struct Registry {
    collectors: Arc<Mutex<Vec<Keyed>>>,
}

/// A collector and the key it was registered under.
type Keyed = (String, Arc<dyn Collector>);

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .collectors
            .lock()
            .map(|c| c.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        f.debug_struct("Registry")
            .field("families", &names)
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds a collector under `key` (a family name, or a service's name for
    /// a collector of several families). Returns false, and keeps the first,
    /// when the key is taken.
    pub fn register(&self, key: impl Into<String>, collector: Arc<dyn Collector>) -> bool {
        let key = key.into();
        let mut c = self.collectors.lock().unwrap_or_else(|p| p.into_inner());
        if c.iter().any(|(k, _)| *k == key) {
            return false;
        }
        c.push((key, collector));
        true
    }

    /// Registers a family and returns it for use.
    pub fn family<C: Collector + 'static>(&self, key: &str, family: C) -> Arc<C> {
        let family = Arc::new(family);
        self.register(key, family.clone());
        family
    }

    /// Whether a collector is registered under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(k, _)| k == key)
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        // Collect under the lock only the list, so a slow collector never
        // blocks a registration.
        let collectors: Vec<Arc<dyn Collector>> = self
            .collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        let mut out = Exposition::new();
        for c in collectors {
            c.collect(&mut out);
        }
        out.into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CounterVec;

    #[test]
    fn one_family_per_name() {
        let r = Registry::new();
        let a = r.family("a_total", CounterVec::new("a_total", "A.", &[]));
        a.with(&[]).inc();
        assert!(!r.register(
            "a_total",
            Arc::new(CounterVec::new("a_total", "Again.", &[]))
        ));
        r.register(
            "svc",
            Arc::new(FnCollector(|out: &mut Exposition| {
                out.raw("# HELP b B.\n# TYPE b gauge\nb 2\n")
            })),
        );
        assert_eq!(
            r.render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# HELP b B.\n# TYPE b gauge\nb 2\n"
        );
    }
}

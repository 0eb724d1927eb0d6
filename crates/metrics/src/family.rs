//! Labelled metric families and their series handles.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::registry::Collector;
use crate::text::{Exposition, Kind};

/// Series of one family by label values (in the order of the label names).
type Series<T> = Mutex<BTreeMap<Vec<String>, Arc<T>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the map leaves it usable: every entry
    // is an atomic, never half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn series<T: Default>(map: &Series<T>, names: &[&str], values: &[&str]) -> Arc<T> {
    assert_eq!(
        names.len(),
        values.len(),
        "a series needs one value per label ({names:?})"
    );
    // Allocating the key on look-up is fine: hot paths keep the handle.
    let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    lock(map).entry(key).or_default().clone()
}

fn labels<'a>(names: &'a [&'static str], values: &'a [String]) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect()
}

/// A monotonically increasing count.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters by label values.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    series: Series<AtomicU64>,
}

impl CounterVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Self {
        CounterVec {
            name,
            help,
            label_names,
            series: Mutex::default(),
        }
    }

    /// The series of these label values (created at 0 on first use). Keep
    /// the handle where events are counted.
    pub fn with(&self, values: &[&str]) -> Counter {
        Counter(series(&self.series, self.label_names, values))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Collector for CounterVec {
    fn collect(&self, out: &mut Exposition) {
        out.family(self.name, self.help, Kind::Counter);
        for (values, v) in lock(&self.series).iter() {
            out.sample(
                self.name,
                &labels(self.label_names, values),
                v.load(Ordering::Relaxed) as f64,
            );
        }
    }
}

/// A value that goes up and down (stored as the bits of an `f64`).
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn add(&self, d: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + d).to_bits())
            });
    }
}

/// Gauges by label values.
#[derive(Debug)]
pub struct GaugeVec {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    series: Series<AtomicU64>,
}

impl GaugeVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Self {
        GaugeVec {
            name,
            help,
            label_names,
            series: Mutex::default(),
        }
    }

    pub fn with(&self, values: &[&str]) -> Gauge {
        Gauge(series(&self.series, self.label_names, values))
    }

    /// Drops the series whose label values `keep` refuses (a partition no
    /// longer assigned, a service that stopped).
    pub fn retain(&self, mut keep: impl FnMut(&[String]) -> bool) {
        lock(&self.series).retain(|values, _| keep(values));
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Collector for GaugeVec {
    fn collect(&self, out: &mut Exposition) {
        out.family(self.name, self.help, Kind::Gauge);
        for (values, v) in lock(&self.series).iter() {
            out.sample(
                self.name,
                &labels(self.label_names, values),
                f64::from_bits(v.load(Ordering::Relaxed)),
            );
        }
    }
}

/// Observations counted into fixed buckets.
#[derive(Debug)]
pub struct HistogramCore {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), plus one for +Inf.
    counts: Vec<AtomicU64>,
    sum_bits: AtomicU64,
}

impl HistogramCore {
    fn new(bounds: &'static [f64]) -> Self {
        HistogramCore {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }
}

/// One histogram series.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramCore>);

impl Histogram {
    pub fn observe(&self, v: f64) {
        let core = &self.0;
        let i = core.bounds.partition_point(|b| *b < v);
        core.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = core
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Histograms by label values, sharing one set of bucket bounds.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Vec<String>, Arc<HistogramCore>>>,
}

impl HistogramVec {
    /// `bounds` are the buckets' upper bounds, ascending.
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        HistogramVec {
            name,
            help,
            label_names,
            bounds,
            series: Mutex::default(),
        }
    }

    pub fn with(&self, values: &[&str]) -> Histogram {
        assert_eq!(self.label_names.len(), values.len());
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let bounds = self.bounds;
        Histogram(
            lock(&self.series)
                .entry(key)
                .or_insert_with(|| Arc::new(HistogramCore::new(bounds)))
                .clone(),
        )
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Collector for HistogramVec {
    fn collect(&self, out: &mut Exposition) {
        out.family(self.name, self.help, Kind::Histogram);
        let bucket = format!("{}_bucket", self.name);
        let sum = format!("{}_sum", self.name);
        let count = format!("{}_count", self.name);
        for (values, core) in lock(&self.series).iter() {
            let l = labels(self.label_names, values);
            let mut cumulative = 0u64;
            for (i, c) in core.counts.iter().enumerate() {
                cumulative += c.load(Ordering::Relaxed);
                let le = match core.bounds.get(i) {
                    Some(b) => b.to_string(),
                    None => "+Inf".to_owned(),
                };
                let mut with_le = l.clone();
                with_le.push(("le", &le));
                out.sample(&bucket, &with_le, cumulative as f64);
            }
            out.sample(
                &sum,
                &l,
                f64::from_bits(core.sum_bits.load(Ordering::Relaxed)),
            );
            out.sample(&count, &l, cumulative as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(c: &dyn Collector) -> String {
        let mut e = Exposition::new();
        c.collect(&mut e);
        e.into_string()
    }

    #[test]
    fn a_counter_series_is_shared_by_its_handles() {
        let v = CounterVec::new("x_total", "Things.", &["topic"]);
        v.with(&["a"]).inc();
        v.with(&["a"]).add(2);
        v.with(&["b"]).inc();
        assert_eq!(v.with(&["a"]).get(), 3);
        assert_eq!(
            render(&v),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{topic=\"a\"} 3\nx_total{topic=\"b\"} 1\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        static B: &[f64] = &[0.1, 1.0];
        let h = HistogramVec::new("t_seconds", "Time.", &["route"], B);
        let s = h.with(&["/x"]);
        s.observe(0.05);
        s.observe(0.1); // on the bound: counts in le="0.1"
        s.observe(0.5);
        s.observe(5.0);
        let text = render(&h);
        assert!(
            text.contains("t_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_sum{route=\"/x\"} 5.65\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_count{route=\"/x\"} 4\n"), "{text}");
    }

    #[test]
    fn gauges_can_drop_series() {
        let g = GaugeVec::new("lag", "Lag.", &["partition"]);
        g.with(&["0"]).set(4.0);
        g.with(&["1"]).set(2.5);
        g.retain(|v| v[0] != "0");
        assert_eq!(
            render(&g),
            "# HELP lag Lag.\n# TYPE lag gauge\nlag{partition=\"1\"} 2.5\n"
        );
    }
}

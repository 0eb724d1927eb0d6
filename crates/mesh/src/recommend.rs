//! Related products: what else the consumers of a product read
//! (co-consumption, from lineage), what shares its domain and tags, and
//! what is used most.
//!
//! score(i, j) = 1.0 · cosine(consumers of i, consumers of j)
//!             + 0.1 · [same domain] + 0.2 · jaccard(tags of i, tags of j)
//!             + 0.05 · log(1 + uses of j) / log(1 + most uses)
//!
//! Co-consumption dominates because it is observed behaviour; domain and
//! tags rank the products nobody reads yet, and usage breaks ties.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

const W_CO: f64 = 1.0;
const W_DOMAIN: f64 = 0.1;
const W_TAGS: f64 = 0.2;
const W_USAGE: f64 = 0.05;

/// What the recommender knows of a product.
#[derive(Debug, Clone, Default)]
pub struct Item {
    pub domain: String,
    pub tags: BTreeSet<String>,
    pub usage: u64,
}

/// A related product and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related {
    pub id: String,
    pub score: f64,
    /// Consumer groups reading both.
    pub shared_consumers: usize,
    pub same_domain: bool,
    pub shared_tags: Vec<String>,
}

/// The usage graph: products, and which consumer groups read which.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    items: BTreeMap<String, Item>,
    /// Product → the groups reading it.
    readers: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn upsert(&mut self, id: &str, item: Item) {
        self.items.insert(id.to_owned(), item);
    }

    pub fn add_use(&mut self, id: &str, n: u64) {
        if let Some(i) = self.items.get_mut(id) {
            i.usage += n;
        }
    }

    /// Records that `group` consumes `product`.
    pub fn consume(&mut self, group: &str, product: &str) {
        self.readers
            .entry(product.to_owned())
            .or_default()
            .insert(group.to_owned());
    }

    pub fn readers(&self, product: &str) -> Option<&BTreeSet<String>> {
        self.readers.get(product)
    }

    /// The `k` products most related to `id`, best first, leaving out
    /// `exclude`.
    pub fn related(&self, id: &str, k: usize, exclude: &BTreeSet<String>) -> Vec<Related> {
        let Some(me) = self.items.get(id) else {
            return Vec::new();
        };
        let empty = BTreeSet::new();
        let mine = self.readers.get(id).unwrap_or(&empty);
        let max_usage = self.items.values().map(|i| i.usage).max().unwrap_or(0);
        let usage_norm = ((1 + max_usage) as f64).ln().max(f64::MIN_POSITIVE);
        let mut out: Vec<Related> = self
            .items
            .iter()
            .filter(|(other, _)| other.as_str() != id && !exclude.contains(*other))
            .map(|(other, item)| {
                let theirs = self.readers.get(other).unwrap_or(&empty);
                let shared = mine.intersection(theirs).count();
                let cosine = if shared == 0 {
                    0.0
                } else {
                    shared as f64 / ((mine.len() * theirs.len()) as f64).sqrt()
                };
                let same_domain = item.domain == me.domain;
                let shared_tags: Vec<String> = me.tags.intersection(&item.tags).cloned().collect();
                let union = me.tags.union(&item.tags).count();
                let jaccard = if union == 0 {
                    0.0
                } else {
                    shared_tags.len() as f64 / union as f64
                };
                let usage = ((1 + item.usage) as f64).ln() / usage_norm;
                let score = W_CO * cosine
                    + W_DOMAIN * f64::from(u8::from(same_domain))
                    + W_TAGS * jaccard
                    + W_USAGE * usage;
                Related {
                    id: other.clone(),
                    score,
                    shared_consumers: shared,
                    same_domain,
                    shared_tags,
                }
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        out.truncate(k);
        out
    }
}

/// A seeded usage graph with one held-out product per consumer: what the
/// recommender's test and benchmark measure hit@k on.
pub mod synthetic {
    use super::*;
    use ultracore_rng::SplitMix64;

    /// The graph without the held-out reads, and per consumer (its
    /// products, the held-out product).
    #[derive(Debug)]
    pub struct HeldOut {
        pub graph: Graph,
        pub consumers: Vec<(BTreeSet<String>, String)>,
    }

    /// Products come in pipelines (sets read together, mostly within one
    /// domain); each consumer runs one or two pipelines, reading most of
    /// each, plus an odd product at random.
    pub fn usage_graph(seed: u64, products: usize, consumers: usize) -> HeldOut {
        const DOMAINS: usize = 10;
        const TAGS: usize = 40;
        const PIPELINE: usize = 4;
        let mut rng = SplitMix64::new(seed);
        let mut graph = Graph::default();
        let ids: Vec<String> = (0..products).map(|i| format!("p{i:05}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let domain = format!("d{}", i % DOMAINS);
            let tags = (0..3).map(|_| format!("t{}", rng.below(TAGS))).collect();
            graph.upsert(
                id,
                Item {
                    domain,
                    tags,
                    usage: rng.below(1000) as u64,
                },
            );
        }
        // Pipelines: 3 products of one domain and 1 of any.
        let pipelines: Vec<Vec<usize>> = (0..products / PIPELINE)
            .map(|_| {
                let d = rng.below(DOMAINS);
                let mut p: Vec<usize> = (0..PIPELINE - 1)
                    .map(|_| d + DOMAINS * rng.below(products / DOMAINS))
                    .collect();
                p.push(rng.below(products));
                p.sort_unstable();
                p.dedup();
                p
            })
            .collect();
        let mut held = Vec::new();
        for c in 0..consumers {
            let group = format!("g{c:05}");
            let mut reads = BTreeSet::new();
            let runs = 1 + rng.below(2);
            for _ in 0..runs {
                for &p in rng.pick(&pipelines) {
                    if rng.chance(0.9) {
                        reads.insert(ids[p].clone());
                    }
                }
            }
            if reads.len() < 2 {
                continue;
            }
            // The held-out product is one read together with others (a
            // pipeline's), never the odd one: nothing could predict that.
            let out = reads
                .iter()
                .nth(rng.below(reads.len()))
                .cloned()
                .unwrap_or_default();
            reads.remove(&out);
            reads.insert(ids[rng.below(products)].clone());
            reads.remove(&out);
            for r in &reads {
                graph.consume(&group, r);
            }
            held.push((reads, out));
        }
        HeldOut {
            graph,
            consumers: held,
        }
    }

    /// hit@k: the share of consumers whose held-out product is among the
    /// `k` products most related to the products they read (each read's
    /// list, scores summed), their own reads left out.
    pub fn hit_at(h: &HeldOut, k: usize) -> f64 {
        let mut hits = 0usize;
        for (reads, out) in &h.consumers {
            let mut merged: BTreeMap<String, f64> = BTreeMap::new();
            for r in reads {
                for rel in h.graph.related(r, 4 * k + 8, reads) {
                    *merged.entry(rel.id).or_insert(0.0) += rel.score;
                }
            }
            let mut best: Vec<(String, f64)> = merged.into_iter().collect();
            best.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            if best.iter().take(k).any(|(id, _)| id == out) {
                hits += 1;
            }
        }
        hits as f64 / h.consumers.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_consumption_ranks_first() {
        let mut g = Graph::default();
        for (id, domain, tags) in [
            ("prices", "markets", vec!["prices"]),
            ("esg", "esg", vec!["esg"]),
            ("fx", "markets", vec!["prices"]),
            ("users", "customer", vec![]),
        ] {
            g.upsert(
                id,
                Item {
                    domain: domain.into(),
                    tags: tags.into_iter().map(String::from).collect(),
                    usage: 0,
                },
            );
        }
        g.consume("optimizer", "prices");
        g.consume("optimizer", "esg");
        let r = g.related("prices", 3, &BTreeSet::new());
        assert_eq!(r[0].id, "esg");
        assert_eq!(r[0].shared_consumers, 1);
        assert_eq!(r[1].id, "fx", "same domain and tag come next");
        assert_eq!(r[1].shared_tags, ["prices"]);
        assert!(g.related("missing", 3, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn held_out_products_are_recommended() {
        let h = synthetic::usage_graph(7, 400, 300);
        assert!(h.consumers.len() > 250);
        let hit = synthetic::hit_at(&h, 3);
        assert!(hit >= 0.6, "hit@3 {hit}");
    }
}

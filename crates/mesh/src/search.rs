//! Product search on tantivy, in memory (the index is rebuilt from the
//! catalogue's events at start, so it needs no files of its own): the name
//! (boosted), description and tags; facets by domain, quality tier and tag;
//! fuzzy matching; autocomplete; results ranked by relevance and usage.
//!
//! Usage changes with every query, so it lives outside the index: each
//! document carries a small ordinal (a fast field) into a table of usage
//! counters that the ranking reads while it scores. Counting a use never
//! re-indexes anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, FacetCounts, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST,
    STRING,
};
use tantivy::tokenizer::TokenStream;
use tantivy::{DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader};
use tantivy::{TantivyDocument, Term};

use crate::quality::Tier;

/// What the index knows of a product.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub domain: String,
    pub tier: Option<Tier>,
}

/// A search: free text (may be empty: every product), facet filters and a
/// page size.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub domain: Option<String>,
    pub tier: Option<Tier>,
    /// Every tag listed must be on the product.
    pub tags: Vec<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub score: f32,
}

/// Counts of the matching products per facet value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facets {
    pub domain: BTreeMap<String, u64>,
    pub tier: BTreeMap<String, u64>,
    pub tags: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    pub hits: Vec<Hit>,
    /// Matching products in all (the hits are the first `limit`).
    pub total: usize,
    pub facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub id: String,
    pub name: String,
    pub domain: String,
}

#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct SearchError(#[from] tantivy::TantivyError);

/// Name matches weigh this much more than description matches.
const NAME_BOOST: Score = 3.0;
const TAG_BOOST: Score = 1.5;
/// Fuzzy matches weigh less than exact ones.
const FUZZY_BOOST: Score = 0.5;
/// Words shorter than this are matched exactly (a typo in "esg" is another word).
const FUZZY_MIN_LEN: usize = 4;
/// From this length two typos are forgiven.
const FUZZY_TWO_LEN: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    ord: Field,
    name: Field,
    description: Field,
    tags: Field,
    domain: Field,
    tier: Field,
    tag: Field,
}

/// What a hit's ordinal stands for.
#[derive(Debug)]
struct Entry {
    id: String,
    name: String,
    domain: String,
    usage: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    entries: Vec<Arc<Entry>>,
    by_id: HashMap<String, u64>,
}

/// The search index of the catalogue.
pub struct SearchIndex {
    index: Index,
    fields: Fields,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    reader: IndexReader,
    table: Arc<RwLock<Table>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("products", &self.len())
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    pub fn new() -> Result<SearchIndex, SearchError> {
        let mut b = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            id: b.add_text_field("id", STRING),
            ord: b.add_u64_field("ord", FAST),
            name: b.add_text_field("name", text.clone()),
            description: b.add_text_field("description", text.clone()),
            tags: b.add_text_field("tags", text),
            domain: b.add_facet_field("domain", FacetOptions::default()),
            tier: b.add_facet_field("tier", FacetOptions::default()),
            tag: b.add_facet_field("tag", FacetOptions::default()),
        };
        let index = Index::create_in_ram(b.build());
        // One indexing thread: the catalogue's writes are small and rare
        // next to its reads.
        let writer = index.writer_with_num_threads(1, 32_000_000)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            fields,
            writer: Mutex::new(writer),
            reader,
            table: Arc::default(),
        })
    }

    /// Products indexed.
    pub fn len(&self) -> usize {
        self.table.read().map(|t| t.by_id.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces products; searchable when this returns.
    pub fn upsert(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let f = self.fields;
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for d in docs {
            let ord = self.ordinal(d);
            writer.delete_term(Term::from_field_text(f.id, &d.id));
            let mut doc = TantivyDocument::default();
            doc.add_text(f.id, &d.id);
            doc.add_u64(f.ord, ord);
            doc.add_text(f.name, &d.name);
            doc.add_text(f.description, &d.description);
            doc.add_text(f.tags, d.tags.join(" "));
            doc.add_facet(f.domain, facet(&d.domain));
            if let Some(t) = d.tier {
                doc.add_facet(f.tier, facet(t.as_str()));
            }
            for t in &d.tags {
                doc.add_facet(f.tag, facet(t));
            }
            writer.add_document(doc)?;
        }
        writer.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// The ordinal of `d`'s entry, created or refreshed.
    fn ordinal(&self, d: &SearchDoc) -> u64 {
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        let usage = match t.by_id.get(&d.id) {
            Some(&o) => t.entries[o as usize].usage.load(Ordering::Relaxed),
            None => 0,
        };
        let entry = Arc::new(Entry {
            id: d.id.clone(),
            name: d.name.clone(),
            domain: d.domain.clone(),
            usage: AtomicU64::new(usage),
        });
        match t.by_id.get(&d.id) {
            Some(&o) => {
                t.entries[o as usize] = entry;
                o
            }
            None => {
                let o = t.entries.len() as u64;
                t.entries.push(entry);
                t.by_id.insert(d.id.clone(), o);
                o
            }
        }
    }

    /// Counts `n` uses of a product (queries, reads): it ranks higher.
    pub fn record_use(&self, id: &str, n: u64) {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        if let Some(&o) = t.by_id.get(id) {
            t.entries[o as usize].usage.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn usage(&self, id: &str) -> u64 {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        t.by_id
            .get(id)
            .map(|&o| t.entries[o as usize].usage.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn tokens(&self, text: &str) -> Vec<String> {
        let mut tokenizer = self
            .index
            .tokenizer_for_field(self.fields.name)
            .expect("the name field has a tokenizer");
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// The text part of a search: every word must match somewhere (name,
    /// description or tags; exactly, with typos when long enough, or — the
    /// last word, as it is being typed — as a prefix of a name word).
    fn text_query(&self, text: &str) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let words = self.tokens(text);
        let last = words.len().checked_sub(1)?;
        let clauses = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for (field, boost) in [
                    (f.name, NAME_BOOST),
                    (f.description, 1.0),
                    (f.tags, TAG_BOOST),
                ] {
                    let term = Term::from_field_text(field, w);
                    should.push((
                        Occur::Should,
                        boosted(
                            TermQuery::new(term.clone(), IndexRecordOption::WithFreqs),
                            boost,
                        ),
                    ));
                    if let Some(d) = fuzzy_distance(w) {
                        should.push((
                            Occur::Should,
                            boosted(FuzzyTermQuery::new(term, d, true), boost * FUZZY_BOOST),
                        ));
                    }
                }
                if i == last {
                    let term = Term::from_field_text(f.name, w);
                    should.push((
                        Occur::Should,
                        boosted(FuzzyTermQuery::new_prefix(term, 0, true), FUZZY_BOOST),
                    ));
                }
                (
                    Occur::Must,
                    Box::new(BooleanQuery::new(should)) as Box<dyn Query>,
                )
            })
            .collect();
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    fn filters(&self, q: &SearchQuery) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.fields;
        let mut out: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut must = |field: Field, value: &str| {
            out.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_facet(field, &facet(value)),
                    IndexRecordOption::Basic,
                )),
            ))
        };
        if let Some(d) = &q.domain {
            must(f.domain, d);
        }
        if let Some(t) = q.tier {
            must(f.tier, t.as_str());
        }
        for t in &q.tags {
            must(f.tag, t);
        }
        out
    }

    /// Runs a search: hits ranked by relevance × usage, and facet counts
    /// over every match.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResults, SearchError> {
        let mut clauses = self.filters(q);
        let text = self.text_query(&q.text);
        let scored = text.is_some();
        match text {
            Some(t) => clauses.push((Occur::Must, t)),
            None => clauses.push((Occur::Must, Box::new(AllQuery))),
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let mut domains = FacetCollector::for_field("domain");
        domains.add_facet("/");
        let mut tiers = FacetCollector::for_field("tier");
        tiers.add_facet("/");
        let mut tags = FacetCollector::for_field("tag");
        tags.add_facet("/");
        let table = self.table.clone();
        let top = TopDocs::with_limit(q.limit.max(1)).tweak_score(move |seg: &SegmentReader| {
            let usage_of = segment_usage(&table, seg);
            move |doc: DocId, score: Score| {
                let (_, usage) = usage_of(doc);
                let base = if scored { score } else { 1.0 };
                base * (1.0 + (1.0 + usage as f32).ln() / 10.0)
            }
        });
        let (total, docs, (domains, tiers, tags)) =
            searcher.search(&query, &(Count, top, (domains, tiers, tags)))?;
        let mut hits = Vec::with_capacity(docs.len());
        {
            let t = self.table.read().unwrap_or_else(|e| e.into_inner());
            for (score, addr) in docs {
                let ord = searcher
                    .segment_reader(addr.segment_ord)
                    .fast_fields()
                    .u64("ord")?
                    .first_or_default_col(0)
                    .get_val(addr.doc_id);
                if let Some(e) = t.entries.get(ord as usize) {
                    hits.push(Hit {
                        id: e.id.clone(),
                        name: e.name.clone(),
                        domain: e.domain.clone(),
                        score,
                    });
                }
            }
        }
        Ok(SearchResults {
            hits,
            total,
            facets: Facets {
                domain: counts(&domains),
                tier: counts(&tiers),
                tags: counts(&tags),
            },
        })
    }

    /// Product names completing what is typed: every word but the last
    /// as typed, the last as a prefix of a name word; the most used first.
    pub fn autocomplete(&self, prefix: &str, limit: usize) -> Result<Vec<Suggestion>, SearchError> {
        let f = self.fields;
        let words = self.tokens(prefix);
        let Some((last, before)) = words.split_last() else {
            return Ok(Vec::new());
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = before
            .iter()
            .map(|w| {
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.name, w),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                )
            })
            .collect();
        clauses.push((
            Occur::Must,
            Box::new(FuzzyTermQuery::new_prefix(
                Term::from_field_text(f.name, last),
                0,
                true,
            )),
        ));
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let table = self.table.clone();
        let top = TopDocs::with_limit(limit.max(1)).tweak_score(move |seg: &SegmentReader| {
            let usage_of = segment_usage(&table, seg);
            move |doc: DocId, _score: Score| {
                let (ord, usage) = usage_of(doc);
                // Most used first; among equals the older product.
                (usage, u64::MAX - ord)
            }
        });
        let docs = searcher.search(&query, &top)?;
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        Ok(docs
            .into_iter()
            .filter_map(|((_, inv), _)| t.entries.get((u64::MAX - inv) as usize))
            .map(|e| Suggestion {
                id: e.id.clone(),
                name: e.name.clone(),
                domain: e.domain.clone(),
            })
            .collect())
    }
}

/// For one segment: a document's ordinal and its product's uses.
fn segment_usage(
    table: &Arc<RwLock<Table>>,
    seg: &SegmentReader,
) -> impl Fn(DocId) -> (u64, u64) + 'static {
    let ords = seg
        .fast_fields()
        .u64("ord")
        .expect("ord is a fast field")
        .first_or_default_col(0);
    let table = table.clone();
    move |doc| {
        let ord = ords.get_val(doc);
        let t = table.read().unwrap_or_else(|e| e.into_inner());
        let usage = t
            .entries
            .get(ord as usize)
            .map(|e| e.usage.load(Ordering::Relaxed))
            .unwrap_or(0);
        (ord, usage)
    }
}

fn boosted(q: impl Query + 'static, boost: Score) -> Box<dyn Query> {
    if (boost - 1.0).abs() < f32::EPSILON {
        Box::new(q)
    } else {
        Box::new(BoostQuery::new(Box::new(q), boost))
    }
}

/// How many typos a word may have and still match.
pub fn fuzzy_distance(word: &str) -> Option<u8> {
    let n = word.chars().count();
    if n >= FUZZY_TWO_LEN {
        Some(2)
    } else if n >= FUZZY_MIN_LEN {
        Some(1)
    } else {
        None
    }
}

fn facet(value: &str) -> Facet {
    Facet::from_path([value])
}

fn counts(c: &FacetCounts) -> BTreeMap<String, u64> {
    c.get("/")
        .map(|(f, n)| {
            let path = f.to_path_string();
            (path.trim_start_matches('/').to_owned(), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, name: &str, domain: &str, tags: &[&str], tier: Tier) -> SearchDoc {
        SearchDoc {
            id: id.into(),
            name: name.into(),
            description: format!("{name} for the {domain} domain"),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            domain: domain.into(),
            tier: Some(tier),
        }
    }

    fn index() -> SearchIndex {
        let ix = SearchIndex::new().unwrap();
        ix.upsert(&[
            doc(
                "optimizations",
                "Portfolio optimizations",
                "wealth",
                &["esg", "portfolio"],
                Tier::Gold,
            ),
            doc(
                "prices",
                "Financial prices",
                "markets",
                &["prices"],
                Tier::Gold,
            ),
            doc("esg", "ESG scores", "esg", &["esg"], Tier::Silver),
            doc(
                "holdings",
                "Portfolio holdings",
                "wealth",
                &["portfolio"],
                Tier::Bronze,
            ),
        ])
        .unwrap();
        ix
    }

    fn ids(r: &SearchResults) -> Vec<&str> {
        r.hits.iter().map(|h| h.id.as_str()).collect()
    }

    #[test]
    fn fuzzy_words_find_their_products() {
        let ix = index();
        let r = ix
            .search(&SearchQuery {
                text: "portfollio".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.total, 2, "{r:?}");
        assert!(ids(&r).contains(&"optimizations") && ids(&r).contains(&"holdings"));
    }

    #[test]
    fn facets_count_every_match_and_filters_narrow() {
        let ix = index();
        let all = ix
            .search(&SearchQuery {
                limit: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.total, 4);
        assert_eq!(all.hits.len(), 1);
        assert_eq!(all.facets.domain.get("wealth"), Some(&2));
        assert_eq!(all.facets.tags.get("esg"), Some(&2));
        assert_eq!(all.facets.tier.get("gold"), Some(&2));
        let narrowed = ix
            .search(&SearchQuery {
                text: "portfolio".into(),
                tier: Some(Tier::Bronze),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&narrowed), ["holdings"]);
    }

    #[test]
    fn usage_ranks_and_replacing_keeps_it() {
        let ix = index();
        ix.record_use("holdings", 1000);
        let r = ix
            .search(&SearchQuery {
                text: "portfolio".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&r)[0], "holdings");
        ix.upsert(&[doc(
            "holdings",
            "Portfolio holdings",
            "wealth",
            &["portfolio"],
            Tier::Gold,
        )])
        .unwrap();
        assert_eq!(ix.usage("holdings"), 1000);
        assert_eq!(ix.len(), 4);
        let gold = ix
            .search(&SearchQuery {
                tier: Some(Tier::Gold),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(gold.total, 3, "the replaced document is gone: {gold:?}");
    }

    #[test]
    fn autocomplete_completes_the_last_word() {
        let ix = index();
        ix.record_use("holdings", 5);
        let s = ix.autocomplete("port", 5).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(names, ["holdings", "optimizations"]);
        let s = ix.autocomplete("portfolio opt", 5).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].id, "optimizations");
        assert!(ix.autocomplete("", 5).unwrap().is_empty());
    }
}

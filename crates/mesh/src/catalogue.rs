//! The catalogue: every product's aggregate, its rows, the search index,
//! the query cache and the usage graph, kept in step.
//!
//! Writes (apply, refresh, quality) go through the event store first and
//! change the in-memory state only once the event is stored, so what a
//! reader sees is always something the log holds. Reads take no async
//! lock: a query is a read of the state, a cache lookup and, on a miss, a
//! run of the product's source.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use ultracore_es::{Aggregate, EventStore, Loaded};
use ultracore_log::{now_millis, EventLog, Record};
use ultracore_metrics::{CounterVec, HistogramVec, Registry, LATENCY_BUCKETS};

use ultracore_runtime::lineage::Lineage;

use crate::cache::{CacheOptions, QueryCache};
use crate::lineage::ProductLineage;
use crate::product::{Cause, DataProduct, ProductCommand, ProductDef, QualityReading};
use crate::quality::{self, Tier};
use crate::query::{InvalidQuery, ProductQuery, QueryAnswer};
use crate::recommend::{Graph, Item, Related};
use crate::rows::{self, Change, Rows};
use crate::search::{SearchDoc, SearchError, SearchIndex, SearchQuery, SearchResults, Suggestion};

/// Queries per product and outcome (`hit`, `miss`, `error`).
pub const QUERIES_TOTAL: &str = "data_mesh_queries_total";
/// Time to answer a query, per product.
pub const QUERY_SECONDS: &str = "data_mesh_query_duration_seconds";

/// Answers a product's queries from data the catalogue does not hold
/// (Parquet files, another store), pushing the filters down.
pub trait Source: Send + Sync + 'static {
    /// Rows, whether more matched than the limit, and what was scanned.
    fn query(
        &self,
        def: &ProductDef,
        query: &ProductQuery,
    ) -> Result<(Vec<Vec<Value>>, bool, Value), String>;

    /// When the store last changed (a file's modification time), for
    /// freshness: data written there is a refresh the log does not see.
    fn refreshed_at_ms(&self) -> Option<i64> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("no data product '{0}'; list them with GET /api/v1/mesh/products")]
    NotFound(String),
    #[error("invalid query: {0}")]
    InvalidQuery(#[from] InvalidQuery),
    #[error("the source of '{product}' failed: {reason}")]
    Source { product: String, reason: String },
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] ultracore_es::Error),
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// What `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub registered: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProductView {
    #[serde(flatten)]
    pub def: ProductDef,
    /// The version answers belong to (bumped by updates and refreshes).
    pub data_version: u64,
    pub refreshes: u64,
    pub last_refresh_ms: Option<i64>,
    pub tier: Option<Tier>,
    pub rows: usize,
    pub usage: u64,
}

struct Entry {
    loaded: Loaded<DataProduct>,
    rows: Rows,
}

impl Entry {
    fn def(&self) -> &ProductDef {
        self.loaded
            .state
            .def
            .as_ref()
            .expect("entries are registered products")
    }
}

struct Metrics {
    queries: Arc<CounterVec>,
    seconds: Arc<HistogramVec>,
}

/// The data mesh catalogue over an event store.
pub struct Catalogue<L: EventLog> {
    store: EventStore<L>,
    search: SearchIndex,
    cache: QueryCache,
    entries: RwLock<BTreeMap<String, Entry>>,
    graph: Mutex<Graph>,
    sources: RwLock<HashMap<String, Arc<dyn Source>>>,
    /// Saves take turns: the in-memory aggregate must follow the store.
    writes: tokio::sync::Mutex<()>,
    metrics: Metrics,
    /// What the running system produces and consumes.
    lineage: Lineage,
    rebuilding: std::sync::atomic::AtomicBool,
}

impl<L: EventLog> std::fmt::Debug for Catalogue<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("search", &self.search)
            .finish_non_exhaustive()
    }
}

impl<L: EventLog> Catalogue<L> {
    /// Loads every product from the store; on a store without products,
    /// registers the shipped ones (so search and queries work on a fresh
    /// data dir).
    pub async fn open(
        store: EventStore<L>,
        cache: CacheOptions,
        registry: &Registry,
    ) -> Result<Catalogue<L>, CatalogueError> {
        Catalogue::open_with(store, cache, registry, true).await
    }

    /// Loads the products without writing anything (beside a running
    /// server): a store without products shows the shipped ones, held in
    /// memory only.
    pub async fn open_read_only(store: EventStore<L>) -> Result<Catalogue<L>, CatalogueError> {
        Catalogue::open_with(store, CacheOptions::default(), &Registry::new(), false).await
    }

    async fn open_with(
        store: EventStore<L>,
        cache: CacheOptions,
        registry: &Registry,
        write: bool,
    ) -> Result<Catalogue<L>, CatalogueError> {
        let catalogue = Catalogue {
            store,
            search: SearchIndex::new()?,
            cache: QueryCache::new(cache),
            entries: RwLock::default(),
            graph: Mutex::default(),
            sources: RwLock::default(),
            writes: tokio::sync::Mutex::new(()),
            lineage: Lineage::new(),
            rebuilding: std::sync::atomic::AtomicBool::new(false),
            metrics: Metrics {
                queries: registry.family(
                    QUERIES_TOTAL,
                    CounterVec::new(
                        QUERIES_TOTAL,
                        "Data product queries, by product and status (hit, miss, error).",
                        &["product_id", "status"],
                    ),
                ),
                seconds: registry.family(
                    QUERY_SECONDS,
                    HistogramVec::new(
                        QUERY_SECONDS,
                        "Time to answer a data product query.",
                        &["product_id"],
                        LATENCY_BUCKETS,
                    ),
                ),
            },
        };
        if write {
            catalogue.store.ensure_topic(ultracore_es_type()).await?;
        }
        let ids = catalogue
            .store
            .aggregate_ids(ultracore_es_type(), usize::MAX)
            .await?;
        let mut docs = Vec::new();
        for id in &ids {
            let loaded = catalogue.store.load::<DataProduct>(id).await?;
            if loaded.state.def.is_some() {
                docs.push(catalogue.install(loaded));
            }
        }
        catalogue.search.upsert(&docs)?;
        if ids.is_empty() && write {
            catalogue.apply(crate::spec::shipped()).await?;
        } else if ids.is_empty() {
            let docs: Vec<SearchDoc> = crate::spec::shipped()
                .into_iter()
                .map(|def| {
                    let mut state = DataProduct::default();
                    state.apply(&crate::product::ProductEvent::Registered { def });
                    catalogue.install(Loaded {
                        id: state.def.as_ref().map(|d| d.id.clone()).unwrap_or_default(),
                        state,
                        version: 1,
                        from_snapshot: None,
                        events_replayed: 1,
                    })
                })
                .collect();
            catalogue.search.upsert(&docs)?;
        }
        Ok(catalogue)
    }

    /// Puts a loaded product in the state and the graph; returns its
    /// search document.
    fn install(&self, loaded: Loaded<DataProduct>) -> SearchDoc {
        let def = loaded.state.def.clone().expect("registered");
        let doc = search_doc(&def, loaded.state.tier);
        self.lock_graph().upsert(
            &def.id,
            Item {
                domain: def.domain.clone(),
                tags: def.tags.iter().cloned().collect(),
                usage: self.search.usage(&def.id),
            },
        );
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(&def.id) {
            Some(e) => e.loaded = loaded,
            None => {
                entries.insert(
                    def.id.clone(),
                    Entry {
                        loaded,
                        rows: Rows::default(),
                    },
                );
            }
        }
        doc
    }

    fn lock_graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads lineage from `lineage` (the supervisor's, and what
    /// `mesh.lineage` brings from other processes) instead of its own.
    pub fn with_lineage(mut self, lineage: Lineage) -> Self {
        self.lineage = lineage;
        self
    }

    pub fn lineage(&self) -> &Lineage {
        &self.lineage
    }

    /// A product's lineage as the running system recorded it.
    pub fn product_lineage(&self, id: &str) -> Option<ProductLineage> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .map(|e| crate::lineage::of(e.def(), &e.loaded.state, &self.lineage))
    }

    /// Brings the usage graph's consumers up to date with the lineage.
    pub fn sync_consumers(&self) {
        let pairs = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            crate::lineage::groups_reading(entries.values().map(Entry::def), &self.lineage)
        };
        let mut graph = self.lock_graph();
        for (group, product) in pairs {
            graph.consume(&group, &product);
        }
    }

    pub fn store(&self) -> &EventStore<L> {
        &self.store
    }

    /// Registers or updates products; a definition equal to the stored
    /// one stores nothing.
    pub async fn apply(&self, defs: Vec<ProductDef>) -> Result<ApplyReport, CatalogueError> {
        // Every definition is checked before any is stored.
        for def in &defs {
            def.validate(ultracore_runtime::catalogue::is_known)
                .map_err(|e| CatalogueError::Rejected(e.to_string()))?;
        }
        let _turn = self.writes.lock().await;
        let mut report = ApplyReport::default();
        let mut docs = Vec::new();
        let stored = self.apply_each(defs, &mut report, &mut docs).await;
        // What was stored is searchable even when a later one failed.
        self.search.upsert(&docs)?;
        stored.map(|()| report)
    }

    async fn apply_each(
        &self,
        defs: Vec<ProductDef>,
        report: &mut ApplyReport,
        docs: &mut Vec<SearchDoc>,
    ) -> Result<(), CatalogueError> {
        for def in defs {
            let id = def.id.clone();
            let loaded = self.store.load::<DataProduct>(&id).await?;
            let was_registered = loaded.state.def.is_some();
            let events = loaded
                .state
                .handle(ProductCommand::Apply(def))
                .map_err(|e| CatalogueError::Rejected(e.to_string()))?;
            if events.is_empty() {
                report.unchanged.push(id);
                continue;
            }
            self.store.save(&loaded, events).await?;
            let loaded = self.store.load::<DataProduct>(&id).await?;
            let version = loaded.state.version;
            docs.push(self.install(loaded));
            self.cache.retire(&id, version);
            if was_registered {
                report.updated.push(id);
            } else {
                report.registered.push(id);
            }
        }
        Ok(())
    }

    /// Runs `command` on a product held in memory: saved against its
    /// in-memory version, reloaded once if another writer got there first.
    async fn execute(
        &self,
        id: &str,
        command: ProductCommand,
        rows: Option<Vec<Change>>,
    ) -> Result<Option<Loaded<DataProduct>>, CatalogueError> {
        let mut loaded = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            entries
                .get(id)
                .ok_or_else(|| CatalogueError::NotFound(id.to_owned()))?
                .loaded
                .clone()
        };
        for attempt in 0..2 {
            let events = loaded
                .state
                .handle(command.clone())
                .map_err(|e| CatalogueError::Rejected(e.to_string()))?;
            if events.is_empty() {
                return Ok(None);
            }
            match self.store.save(&loaded, events.clone()).await {
                Ok(saved) => {
                    for e in &events {
                        loaded.state.apply(e);
                    }
                    loaded.version = saved.version;
                    let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
                    if let Some(entry) = entries.get_mut(id) {
                        entry.loaded = loaded.clone();
                        for change in rows.into_iter().flatten() {
                            entry.rows.apply(change);
                        }
                    }
                    return Ok(Some(loaded));
                }
                Err(ultracore_es::Error::Conflict { .. }) if attempt == 0 => {
                    loaded = self.store.load::<DataProduct>(id).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// Refreshes `id` from records of its topics: its rows take the
    /// changes, and a `data_product_refreshed` event lists the records
    /// that caused it. Returns the new version.
    pub async fn refresh(&self, id: &str, records: &[&Record]) -> Result<u64, CatalogueError> {
        let _turn = self.writes.lock().await;
        let def = self
            .definition(id)
            .ok_or_else(|| CatalogueError::NotFound(id.to_owned()))?;
        // Products answered from another store keep no rows; the others
        // are graded on their rows as the changes leave them.
        let sourced = self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id);
        let mut changes = Vec::with_capacity(records.len());
        let (mut checked, mut complete, mut conforming) = (0u64, 0u64, 0u64);
        if !sourced {
            let mut merged: HashMap<String, serde_json::Map<String, Value>> = HashMap::new();
            for r in records {
                let change = rows::change_of(&def, r);
                if let Change::Upsert(key, row) = &change {
                    let now = match merged.get_mut(key) {
                        Some(m) => m,
                        None => {
                            let before = self
                                .entries
                                .read()
                                .unwrap_or_else(|e| e.into_inner())
                                .get(id)
                                .and_then(|e| e.rows.get(key).cloned())
                                .unwrap_or_default();
                            merged.entry(key.clone()).or_insert(before)
                        }
                    };
                    now.extend(row.clone());
                    let (c, k) = rows::grade(&def, now);
                    checked += 1;
                    complete += u64::from(c);
                    conforming += u64::from(k);
                }
                changes.push(change);
            }
        }
        let causes = records
            .iter()
            .take(crate::product::MAX_CAUSES)
            .map(|r| Cause {
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
                event_id: serde_json::from_slice::<Value>(&r.value)
                    .ok()
                    .and_then(|v| v.get("event_id")?.as_str().map(str::to_owned)),
            })
            .collect();
        let command = ProductCommand::Refresh {
            at_ms: now_millis(),
            causes,
            events: records.len() as u64,
            rows: (checked, complete, conforming),
        };
        let loaded = self
            .execute(id, command, Some(changes))
            .await?
            .ok_or_else(|| CatalogueError::Rejected("a refresh always stores an event".into()))?;
        let version = loaded.state.version;
        self.cache.retire(id, version);
        Ok(version)
    }

    /// Grades every product against its contract at `now_ms`; stores a
    /// `data_product_quality_changed` event for each whose tier moved, and
    /// returns those.
    pub async fn evaluate(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(String, QualityReading)>, CatalogueError> {
        // Graded under the write turn: no refresh lands between the
        // reading and its event.
        let _turn = self.writes.lock().await;
        let readings: Vec<(String, QualityReading)> = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            entries
                .iter()
                .map(|(id, e)| {
                    (
                        id.clone(),
                        quality::evaluate(
                            &e.def().contract,
                            &self.graded(id, &e.loaded.state),
                            now_ms,
                        ),
                    )
                })
                .filter(|(id, r)| entries.get(id).and_then(|e| e.loaded.state.tier) != Some(r.tier))
                .collect()
        };
        if readings.is_empty() {
            return Ok(readings);
        }
        let mut docs = Vec::new();
        let mut changed = Vec::new();
        for (id, reading) in readings {
            if let Some(loaded) = self
                .execute(&id, ProductCommand::Quality(reading.clone()), None)
                .await?
            {
                if let Some(def) = &loaded.state.def {
                    docs.push(search_doc(def, loaded.state.tier));
                }
                changed.push((id, reading));
            }
        }
        self.search.upsert(&docs)?;
        Ok(changed)
    }

    /// The product as quality sees it: its last refresh is the later of
    /// its events' and its source's.
    fn graded(&self, id: &str, state: &DataProduct) -> DataProduct {
        let source = self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .and_then(|s| s.refreshed_at_ms());
        let mut state = state.clone();
        state.last_refresh_ms = state.last_refresh_ms.max(source);
        state
    }

    /// Quality at `now_ms`, without storing anything (the `mesh-quality`
    /// service stores changes of tier).
    pub fn quality_now(&self, id: &str, now_ms: i64) -> Option<QualityReading> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| {
            quality::evaluate(&e.def().contract, &self.graded(id, &e.loaded.state), now_ms)
        })
    }

    pub fn definition(&self, id: &str) -> Option<ProductDef> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| e.def().clone())
    }

    /// The product's current version (`None`: no such product).
    pub fn version(&self, id: &str) -> Option<u64> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| e.loaded.state.version)
    }

    pub fn product(&self, id: &str) -> Option<ProductView> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| self.view(e))
    }

    pub fn products(&self) -> Vec<ProductView> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.values().map(|e| self.view(e)).collect()
    }

    fn view(&self, e: &Entry) -> ProductView {
        let s = &e.loaded.state;
        ProductView {
            def: e.def().clone(),
            data_version: s.version,
            refreshes: s.refreshes,
            last_refresh_ms: s.last_refresh_ms,
            tier: s.tier,
            rows: e.rows.len(),
            usage: self.search.usage(&e.def().id),
        }
    }

    /// Applies a change to a product's rows without an event (rows
    /// rebuilt from the log at start).
    pub fn apply_row(&self, id: &str, change: Change) {
        if self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
        {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get_mut(id) {
            e.rows.apply(change);
        }
    }

    /// Topic → the products it refreshes.
    pub fn topic_products(&self) -> BTreeMap<String, Vec<String>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, e) in entries.iter() {
            for t in e.def().topics() {
                out.entry(t.to_owned()).or_default().push(id.clone());
            }
        }
        out
    }

    /// Answers a product's data from another store instead of its rows.
    pub fn set_source(&self, id: &str, source: Arc<dyn Source>) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), source);
    }

    /// Answers a query: from the cache when this version's answer is
    /// there, else from the product's source (its rows by default).
    pub fn query(
        &self,
        id: &str,
        query: ProductQuery,
    ) -> Result<(Arc<QueryAnswer>, bool), CatalogueError> {
        let started = Instant::now();
        let result = self.query_inner(id, query);
        let status = match &result {
            Ok((_, true)) => "hit",
            Ok((_, false)) => "miss",
            Err(_) => "error",
        };
        if !matches!(result, Err(CatalogueError::NotFound(_))) {
            self.metrics.queries.with(&[id, status]).inc();
            self.metrics
                .seconds
                .with(&[id])
                .observe(started.elapsed().as_secs_f64());
            self.search.record_use(id, 1);
            self.lock_graph().add_use(id, 1);
        }
        result
    }

    fn query_inner(
        &self,
        id: &str,
        query: ProductQuery,
    ) -> Result<(Arc<QueryAnswer>, bool), CatalogueError> {
        let source = self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        // A source's own change (a rewritten file) is part of the key.
        let stamp = source
            .as_ref()
            .and_then(|s| s.refreshed_at_ms())
            .unwrap_or(0);
        let (def, version, query, key, rows) = {
            // The version and the rows are read under one guard: an answer
            // is always of the version it says.
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            let e = entries
                .get(id)
                .ok_or_else(|| CatalogueError::NotFound(id.to_owned()))?;
            let def = e.def().clone();
            let version = e.loaded.state.version;
            let query = query.canonical(&def)?;
            let key = format!("{stamp}|{}", query.key());
            if let Some(hit) = self.cache.get(id, version, &key) {
                return Ok((hit, true));
            }
            let rows = source.is_none().then(|| {
                let (rows, truncated, scanned) = query.run(e.rows.iter());
                (
                    rows,
                    truncated,
                    serde_json::json!({ "rows_scanned": scanned }),
                )
            });
            (def, version, query, key, rows)
        };
        let (mut rows, truncated, scanned) = match (rows, source) {
            (Some(rows), _) => rows,
            (None, Some(s)) => s
                .query(&def, &query)
                .map_err(|reason| CatalogueError::Source {
                    product: id.to_owned(),
                    reason,
                })?,
            (None, None) => unreachable!("rows are read when there is no source"),
        };
        // Personal data is masked in every answer, whatever the rows hold.
        for (i, column) in query.columns.iter().enumerate() {
            if def.schema.iter().any(|c| c.name == *column && c.mask) {
                for row in &mut rows {
                    if let Some(v) = row.get_mut(i) {
                        *v = rows::mask(v);
                    }
                }
            }
        }
        let answer = Arc::new(QueryAnswer {
            product_id: id.to_owned(),
            version,
            columns: query.columns.clone(),
            rows,
            truncated,
            scanned,
        });
        // Not kept while the rows are being rebuilt (they change with no
        // new version), nor when the version moved while a source ran.
        if !self.rebuilding.load(std::sync::atomic::Ordering::Acquire)
            && self.version(id) == Some(version)
        {
            self.cache.put(&key, answer.clone());
        }
        Ok((answer, false))
    }

    /// Rows are being rebuilt from the topics: answers are not cached
    /// meanwhile, and the cache is emptied when it ends.
    pub fn set_rebuilding(&self, on: bool) {
        self.rebuilding
            .store(on, std::sync::atomic::Ordering::Release);
        if !on {
            self.cache.clear();
        }
    }

    pub fn cache(&self) -> &QueryCache {
        &self.cache
    }

    pub fn search(&self, q: &SearchQuery) -> Result<SearchResults, CatalogueError> {
        Ok(self.search.search(q)?)
    }

    pub fn autocomplete(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>, CatalogueError> {
        Ok(self.search.autocomplete(prefix, limit)?)
    }

    /// Records that consumer `group` reads `product` (from lineage).
    pub fn consumed_by(&self, group: &str, product: &str) {
        self.lock_graph().consume(group, product);
    }

    pub fn related(&self, id: &str, k: usize) -> Result<Vec<Related>, CatalogueError> {
        if self.version(id).is_none() {
            return Err(CatalogueError::NotFound(id.to_owned()));
        }
        Ok(self.lock_graph().related(id, k, &BTreeSet::new()))
    }
}

fn ultracore_es_type() -> &'static str {
    DataProduct::TYPE
}

fn search_doc(def: &ProductDef, tier: Option<Tier>) -> SearchDoc {
    SearchDoc {
        id: def.id.clone(),
        name: def.name.clone(),
        description: def.description.clone(),
        tags: def.tags.clone(),
        domain: def.domain.clone(),
        tier,
    }
}

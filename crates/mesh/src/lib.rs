//! The data mesh catalogue: data products users discover and trust.
//!
//! Products are event-sourced aggregates ([`DataProduct`]): registered from
//! code (`products.yaml`), refreshed by the events that change them, graded
//! against their contracts. Around them: a full-text search with facets
//! ([`SearchIndex`], on tantivy), a query cache keyed by product version
//! ([`QueryCache`]), related products from co-consumption ([`Graph`]), and
//! OpenLineage events for the refreshes.
//!
//! # Layout
//!
//! - `catalogue`: [`Catalogue`]: products, rows, search, cache and usage in
//!   step, written through the event store.
//! - `service`: the `mesh-refresh` and `mesh-quality` services.
//! - `rows`: a product's rows from its change feed.
//! - `product`: [`ProductDef`], [`DataProduct`] and its events.
//! - `spec`: products as code (YAML), the shipped products.
//! - `search`: [`SearchIndex`]: relevance × usage, facets, fuzzy, autocomplete.
//! - `query`: [`ProductQuery`] (validated, canonical) and [`QueryAnswer`].
//! - `cache`: [`QueryCache`]: TTL, bounded, versioned keys.
//! - `quality`: [`Tier`] and [`quality::evaluate`].
//! - `recommend`: [`Graph`]: related products.
//! - `http`: the `/api/v1/mesh/…` routes.
//! - `lineage`: a product's lineage from the runtime's records.
//! - `openlineage`: OpenLineage 2-0-2 `RunEvent`s.

pub mod cache;
pub mod catalogue;
pub mod http;
pub mod lineage;
pub mod openlineage;
pub mod product;
pub mod quality;
pub mod query;
pub mod recommend;
pub mod rows;
pub mod search;
pub mod service;
pub mod spec;

pub use cache::{CacheOptions, CacheStats, QueryCache};
pub use catalogue::{ApplyReport, Catalogue, CatalogueError, ProductView, Source};
pub use product::{
    Cause, Column, ColumnType, Contract, DataProduct, OutputPort, PortKind, ProductCommand,
    ProductDef, ProductError, ProductEvent, QualityReading,
};
pub use quality::Tier;
pub use query::{Filter, Op, ProductQuery, QueryAnswer};
pub use recommend::{Graph, Related};
pub use search::{Facets, Hit, SearchDoc, SearchIndex, SearchQuery, SearchResults, Suggestion};

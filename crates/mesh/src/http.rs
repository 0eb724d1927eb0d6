//! The data mesh API, merged into the platform's server behind its guard
//! (authentication, the access table, limits).
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET /api/v1/mesh/products?domain=&tier=` | read-data-products | 200 `{products}` |
//! | `POST /api/v1/mesh/products` | admin | 200 what was registered, updated, unchanged (JSON `{products: [...]}`, or the YAML of `mesh apply`) |
//! | `GET /api/v1/mesh/products/{id}` | read-data-products | 200 the product with its quality now; 404 |
//! | `POST /api/v1/mesh/products/{id}/query` | read-data-products, a key for every portfolio, and the product's `requires` | 200 `{product_id, version, columns, rows, truncated, scanned, cached}`; 404; 422 a bad filter or column |
//! | `GET /api/v1/mesh/products/{id}/lineage` | read-data-products | 200 producers, upstream topics, downstream groups, last refresh's causes; 404 |
//! | `GET /api/v1/mesh/products/{id}/related?limit=` | read-data-products | 200 `{related}`; 404 |
//! | `GET /api/v1/mesh/search?q=&domain=&tier=&tag=&limit=` | read-data-products | 200 `{hits, total, facets}` |
//! | `GET /api/v1/mesh/autocomplete?q=&limit=` | read-data-products | 200 `{suggestions}` |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use ultracore_http::{Permission, Principal, Problem};
use ultracore_log::{now_millis, EventLog};

use crate::catalogue::{Catalogue, CatalogueError};
use crate::product::is_slug;
use crate::quality::Tier;
use crate::query::ProductQuery;
use crate::search::SearchQuery;

pub const PRODUCTS_ROUTE: &str = "/api/v1/mesh/products";
pub const PRODUCT_ROUTE: &str = "/api/v1/mesh/products/{id}";
pub const QUERY_ROUTE: &str = "/api/v1/mesh/products/{id}/query";
pub const LINEAGE_ROUTE: &str = "/api/v1/mesh/products/{id}/lineage";
pub const RELATED_ROUTE: &str = "/api/v1/mesh/products/{id}/related";
pub const SEARCH_ROUTE: &str = "/api/v1/mesh/search";
pub const AUTOCOMPLETE_ROUTE: &str = "/api/v1/mesh/autocomplete";

/// The routes, to be merged into the platform's server.
pub fn router<L: EventLog>(catalogue: Arc<Catalogue<L>>) -> Router {
    Router::new()
        .route(PRODUCTS_ROUTE, get(list::<L>).post(apply::<L>))
        .route(PRODUCT_ROUTE, get(product::<L>))
        .route(QUERY_ROUTE, post(query::<L>))
        .route(LINEAGE_ROUTE, get(lineage::<L>))
        .route(RELATED_ROUTE, get(related::<L>))
        .route(SEARCH_ROUTE, get(search::<L>))
        .route(AUTOCOMPLETE_ROUTE, get(autocomplete::<L>))
        .with_state(catalogue)
}

type Answer = Result<Response, Problem>;

fn problem(e: CatalogueError) -> Problem {
    match e {
        e @ CatalogueError::NotFound(_) => Problem::not_found(e.to_string()),
        CatalogueError::InvalidQuery(q) => {
            Problem::invalid_field(q.field.clone(), format!("{}: {}", q.field, q.reason))
        }
        CatalogueError::Rejected(m) => Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_product",
            m,
        ),
        e @ CatalogueError::Source { .. } => Problem::unavailable("the product's source", e),
        e @ CatalogueError::Store(ultracore_es::Error::Conflict { .. }) => Problem::conflict(
            format!("{e}: another writer changed the product at the same time; send it again"),
        ),
        e => Problem::unavailable("the data mesh catalogue", e),
    }
}

fn path_id(id: &str) -> Result<(), Problem> {
    if is_slug(id, 64) {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "invalid_id",
            format!(
                "product id {:?} is invalid: use 1–64 lower-case letters, digits, '_' or '-' (e.g. financial_prices)",
                id.chars().take(80).collect::<String>()
            ),
        )
        .with_field("id"))
    }
}

fn tier_param(t: Option<&str>) -> Result<Option<Tier>, Problem> {
    t.map(|t| {
        Tier::parse(t).ok_or_else(|| {
            Problem::bad_request(
                "invalid_query",
                format!("tier {t:?} is not one of gold, silver, bronze"),
            )
            .with_field("tier")
        })
    })
    .transpose()
}

fn text_param(q: &str, max: usize) -> Result<(), Problem> {
    if q.len() > max {
        return Err(Problem::bad_request(
            "invalid_query",
            format!("q is longer than {max} characters"),
        )
        .with_field("q"));
    }
    Ok(())
}

fn limit_param(limit: Option<usize>, default: usize, max: usize) -> Result<usize, Problem> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::bad_request(
            "invalid_query",
            format!("limit {limit} is out of range: use 1 to {max}"),
        )
        .with_field("limit"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    domain: Option<String>,
    tier: Option<String>,
}

async fn list<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Query(p): Query<ListParams>,
) -> Answer {
    let tier = tier_param(p.tier.as_deref())?;
    let products: Vec<_> = c
        .products()
        .into_iter()
        .filter(|v| p.domain.as_ref().is_none_or(|d| *d == v.def.domain))
        .filter(|v| tier.is_none() || v.tier == tier)
        .collect();
    Ok(Json(json!({ "products": products })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductsBody {
    products: Vec<crate::product::ProductDef>,
}

async fn apply<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Answer {
    let yaml = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("yaml"));
    let defs = if yaml {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Problem::bad_request("invalid_yaml", "the body is not UTF-8 text"))?;
        crate::spec::parse(text, ultracore_runtime::catalogue::is_known).map_err(|e| {
            Problem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_product",
                e.to_string(),
            )
        })?
    } else {
        let body: ProductsBody = serde_json::from_slice(&bytes).map_err(|e| {
            Problem::bad_request(
                "invalid_json",
                format!("the body is not what this route takes: {e}; send {{\"products\": [{{\"id\": …, \"name\": …, …}}]}} or the YAML of `ultracore mesh apply` with Content-Type: application/yaml"),
            )
        })?;
        body.products
    };
    let report = c.apply(defs).await.map_err(problem)?;
    Ok(Json(report).into_response())
}

async fn product<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Path(id): Path<String>,
) -> Answer {
    path_id(&id)?;
    let view = c
        .product(&id)
        .ok_or_else(|| problem(CatalogueError::NotFound(id.clone())))?;
    let quality = c
        .quality_now(&id, now_millis())
        .ok_or_else(|| problem(CatalogueError::NotFound(id.clone())))?;
    let mut body = serde_json::to_value(view).unwrap_or_default();
    body["quality"] = serde_json::to_value(quality).unwrap_or_default();
    Ok(Json(body).into_response())
}

async fn query<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Path(id): Path<String>,
    who: Option<Extension<Principal>>,
    bytes: Bytes,
) -> Answer {
    path_id(&id)?;
    // Behind the guard every request has a principal; without one, refuse.
    let Some(Extension(who)) = who else {
        return Err(Problem::unauthorized("authentication required", "Bearer"));
    };
    let def = c
        .definition(&id)
        .ok_or_else(|| problem(CatalogueError::NotFound(id.clone())))?;
    for needed in &def.requires {
        let allowed = needed.parse::<Permission>().is_ok_and(|p| who.allows(p));
        if !allowed {
            return Err(Problem::forbidden(format!(
                "querying '{id}' needs the {needed} permission besides read-data-products"
            )));
        }
    }
    let q: ProductQuery = if bytes.iter().all(u8::is_ascii_whitespace) {
        ProductQuery::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            Problem::bad_request(
                "invalid_json",
                format!("the body is not a query: {e}; send {{\"filters\": [{{\"column\": \"isin\", \"op\": \"eq\", \"value\": \"…\"}}], \"columns\": [\"date\", \"close\"], \"limit\": 100}} (ops: eq, ne, lt, le, gt, ge, in)"),
            )
        })?
    };
    // Parquet sources read files: off the async workers.
    let answer = tokio::task::spawn_blocking(move || c.query(&id, q))
        .await
        .map_err(|e| Problem::internal("the query", e))?
        .map_err(problem)?;
    let (answer, cached) = answer;
    let mut body = serde_json::to_value(&*answer).unwrap_or_default();
    body["cached"] = json!(cached);
    Ok(Json(body).into_response())
}

async fn lineage<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Path(id): Path<String>,
) -> Answer {
    path_id(&id)?;
    let view = c
        .product_lineage(&id)
        .ok_or_else(|| problem(CatalogueError::NotFound(id)))?;
    Ok(Json(view).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelatedParams {
    limit: Option<usize>,
}

async fn related<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Path(id): Path<String>,
    Query(p): Query<RelatedParams>,
) -> Answer {
    path_id(&id)?;
    let limit = limit_param(p.limit, 5, 50)?;
    c.sync_consumers();
    let related = c.related(&id, limit).map_err(problem)?;
    Ok(Json(json!({ "product_id": id, "related": related })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    #[serde(default)]
    q: String,
    domain: Option<String>,
    tier: Option<String>,
    /// Comma-separated; every one must be on the product.
    tag: Option<String>,
    limit: Option<usize>,
}

async fn search<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Query(p): Query<SearchParams>,
) -> Answer {
    text_param(&p.q, 200)?;
    let q = SearchQuery {
        text: p.q,
        domain: p.domain,
        tier: tier_param(p.tier.as_deref())?,
        tags: p
            .tag
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        limit: limit_param(p.limit, 10, 100)?,
    };
    let results = c.search(&q).map_err(problem)?;
    Ok(Json(results).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteParams {
    q: String,
    limit: Option<usize>,
}

async fn autocomplete<L: EventLog>(
    State(c): State<Arc<Catalogue<L>>>,
    Query(p): Query<CompleteParams>,
) -> Answer {
    text_param(&p.q, 100)?;
    let limit = limit_param(p.limit, 8, 50)?;
    let suggestions = c.autocomplete(&p.q, limit).map_err(problem)?;
    Ok(Json(json!({ "suggestions": suggestions })).into_response())
}

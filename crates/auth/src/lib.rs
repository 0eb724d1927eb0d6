//! Who is calling UltraCore and what they may do.
//!
//! A request brings `Authorization: Bearer <credential>`, either an
//! UltraCore API key (`uck_<id>_<secret>`, kept hashed in `keys.json` in the
//! data directory) or a JWT from the configured OIDC issuer.
//! [`Authenticator::authenticate`] turns the header into a [`Principal`]
//! (or an [`AuthError`], a 401); the route then asks
//! [`Principal::require`] for the [`Permission`] it needs (a [`Forbidden`]
//! is a 403) and [`Principal::can_access_portfolio`] for the portfolio it
//! touches (a "no" should be a 404, so other portfolios' ids stay hidden).
//! [`RateLimiter::check`] with [`Principal::id`] applies the per-key limit.
//! The CLI and `ultracore mcp` on stdio act as [`Principal::local`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use ultracore_auth::{Authenticator, KeyStore, Permission};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = Arc::new(KeyStore::open("/var/lib/ultracore")?);
//! if let Some((record, key)) = keys.ensure_bootstrap_admin()? {
//!     eprintln!("admin key {} (shown once): {}", record.id, key.expose());
//! }
//! let auth = Authenticator::new(keys);
//! let principal = auth.authenticate(Some("Bearer uck_…"))?;
//! principal.require(Permission::ReadPortfolios)?;
//! if !principal.can_access_portfolio("pf-1") { /* 404 */ }
//! # Ok(())
//! # }
//! ```
//!
//! # Roles
//!
//! The one table is `MATRIX` in `role.rs`; this copy is checked against it
//! by a test.
//!
//! | role | read-portfolios | request-optimization | trade | read-forensics | read-events | read-audit | read-metrics | read-compliance | admin | assist | ingest-external | read-data-products |
//! |---|---|---|---|---|---|---|---|---|---|---|---|---|
//! | `viewer` | ✓ | | | | | | | | | | | |
//! | `trader` | ✓ | | ✓ | | | | | | | | | |
//! | `portfolio-manager` | ✓ | ✓ | | | | | | | | | | ✓ |
//! | `auditor` | ✓ | | | ✓ | ✓ | ✓ | ✓ | ✓ | | | | ✓ |
//! | `admin` | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | `customer` | ✓ | | | | | | | | | ✓ | | |
//! | `integration` | | | | | | | | | | | ✓ | |
//!
//! - read-portfolios: results, state, history, orders, notifications, risk.
//! - request-optimization: ask for an optimization, which stages orders.
//! - trade: publish trading decisions.
//! - read-events: the live event stream and the log's topics.
//! - read-compliance: compliance alerts (where personal data was seen, never the value).
//! - admin: keys and configuration.
//! - assist: the customer assistant and its agents' tools, about a customer.
//! - ingest-external: publish events of outside systems (CRM, price feeds).
//! - read-data-products: the data mesh: search, lineage, quality, queries of data products.
//!
//! Roles say what; the [`Scope`] of a principal says which portfolios, and
//! [`Principal::customer`] which customer a customer's key speaks for (a
//! `customer` key always names one; other roles' keys none).
//!
//! # Layout
//!
//! - `role`: [`Role`], [`Permission`] and the matrix.
//! - `principal`: [`Principal`], [`Scope`], [`AuthMethod`].
//! - `keys`: [`KeyStore`], [`KeyRecord`], [`KeyId`], [`ApiKey`]: the key
//!   format, verification, reloading.
//! - `keyfile`: `keys.json` on disk: format, atomic replacement, the
//!   writers' lock.
//! - `jwt`: [`JwtVerifier`], [`JwtConfig`], [`SigningAlgorithm`]: OIDC
//!   tokens and how their claims become a principal.
//! - `authenticator`: [`Authenticator`], the `Authorization` header.
//! - `ratelimit`: [`RateLimiter`], [`RateLimit`], [`RetryAfter`].
//! - `error`: [`Error`], [`AuthError`], [`TokenRejection`], [`Forbidden`].

mod authenticator;
mod error;
mod jwt;
mod keyfile;
mod keys;
mod principal;
mod ratelimit;
mod role;

pub use authenticator::Authenticator;
pub use error::{AuthError, Error, Forbidden, Result, TokenRejection};
pub use jwt::{JwkSet, JwtConfig, JwtVerifier, SigningAlgorithm};
pub use keys::{ApiKey, KeyId, KeyRecord, KeyStore, KEY_PREFIX, RELOAD_INTERVAL};
pub use principal::{is_valid_customer_id, is_valid_portfolio_id, AuthMethod, Principal, Scope};
pub use ratelimit::{RateLimit, RateLimiter, RetryAfter};
pub use role::{Permission, Role};

//! `ultracore bench auth`: what the edge's authentication and authorization
//! add to a request.
//!
//! One router behind the server's guard, called in this process (no
//! sockets, so the network's noise does not hide microseconds): the same
//! tiny handler on an open route (`/healthz`: Host check, policy lookup,
//! timeout) and on a portfolio route (`GET /api/v1/portfolios/{id}`: all
//! of that plus the Bearer key's check, the role's permission, the key's
//! portfolio scope and its rate-limit bucket). The requests alternate
//! between the two so both see the same machine; the difference of their
//! latencies is what authentication and authorization cost.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use tower::ServiceExt;
use ultracore_auth::{Authenticator, KeyStore, RateLimit, RateLimiter, Role, Scope};
use ultracore_http::{EdgeConfig, Guard};

#[derive(Debug, Args)]
pub struct AuthBench {
    /// Timed requests per route.
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    #[arg(long)]
    json: bool,
}

/// Latencies of one kind of request, in nanoseconds.
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram")
}

async fn call(app: &Router, request: Request<Body>, expect: StatusCode) -> Result<u64> {
    let started = Instant::now();
    let response = app.clone().oneshot(request).await?;
    let ns = started.elapsed().as_nanos() as u64;
    if response.status() != expect {
        bail!(
            "the benchmark's request answered {}, expected {expect}",
            response.status()
        );
    }
    Ok(ns)
}

pub async fn run(b: AuthBench) -> Result<()> {
    if b.requests == 0 {
        bail!("--requests must be positive");
    }
    let dir = tempfile::Builder::new()
        .prefix("ultracore-bench-auth-")
        .tempdir()?;
    let keys = KeyStore::open(dir.path())?;
    // A key scoped to portfolios, so the scope check runs too.
    let (_, key) = keys.create(
        Role::PortfolioManager,
        Scope::portfolios(["pf-bench", "pf-other"])?,
        Some("bench"),
    )?;
    let bearer = format!("Bearer {}", key.expose());
    let guard = Guard::new(
        EdgeConfig::default(),
        Authenticator::new(Arc::new(keys)),
        // High enough never to answer 429: the bucket is still checked.
        RateLimiter::new(RateLimit {
            per_second: 1e12,
            burst: u32::MAX,
            ..RateLimit::default()
        })?,
    );
    let app = guard.protect(
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/api/v1/portfolios/{id}", get(|| async { "ok" })),
    );
    let open = || {
        Request::get("/healthz")
            .header(header::HOST, "127.0.0.1")
            .body(Body::empty())
    };
    let authed = || {
        Request::get("/api/v1/portfolios/pf-bench")
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, &bearer)
            .body(Body::empty())
    };
    // Warm up: allocator, the key's cache, the rate-limit bucket.
    for _ in 0..b.requests.min(10_000) {
        call(&app, open()?, StatusCode::OK).await?;
        call(&app, authed()?, StatusCode::OK).await?;
    }
    let (mut h_open, mut h_authed) = (histogram(), histogram());
    let started = Instant::now();
    for _ in 0..b.requests {
        h_open.record(call(&app, open()?, StatusCode::OK).await?)?;
        h_authed.record(call(&app, authed()?, StatusCode::OK).await?)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let row = |h: &Histogram<u64>| {
        json!({
            "p50_us": us(h, 0.5),
            "p99_us": us(h, 0.99),
            "p999_us": us(h, 0.999),
            "mean_us": h.mean() / 1e3,
        })
    };
    let added_p50 = us(&h_authed, 0.5) - us(&h_open, 0.5);
    let added_p99 = us(&h_authed, 0.99) - us(&h_open, 0.99);
    let out = json!({
        "requests_per_route": b.requests,
        "open": row(&h_open),
        "authenticated": row(&h_authed),
        "added_p50_us": added_p50,
        "added_p99_us": added_p99,
        "seconds": elapsed,
    });
    if b.json {
        println!("{out}");
        return Ok(());
    }
    let line = |name: &str, h: &Histogram<u64>| {
        vec![
            name.to_owned(),
            format!("{:.2}", us(h, 0.5)),
            format!("{:.2}", us(h, 0.99)),
            format!("{:.2}", us(h, 0.999)),
        ]
    };
    print!(
        "{}",
        ultracore_term::table(
            &["request", ">p50_us", ">p99_us", ">p99.9_us"],
            &[
                line("GET /healthz (open)", &h_open),
                line("GET /api/v1/portfolios/{id} (Bearer key)", &h_authed),
            ],
        )
    );
    println!(
        "authentication and authorization add {added_p50:.2} µs at p50, {added_p99:.2} µs at p99 \
         ({} requests per route, in this process, no sockets)",
        b.requests
    );
    Ok(())
}

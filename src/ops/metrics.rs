//! Prometheus metrics: requests by route and status, latency, pool usage, CSP violations.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcedureLabels {
    procedure: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pool_size: Gauge,
    pool_idle: Gauge,
    pub csp_violations: Counter,
    runs_active: Family<ProcedureLabels, Gauge>,
    runs_unattended: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dropops");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let csp_violations = Counter::default();
        let runs_active = Family::<ProcedureLabels, Gauge>::default();
        let runs_unattended = Gauge::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("db_pool_connections", "Open database connections", pool_size.clone());
        registry.register("db_pool_idle_connections", "Idle database connections", pool_idle.clone());
        registry.register("csp_violations", "Content-Security-Policy violation reports", csp_violations.clone());
        registry.register("runs_active", "Runs queued or running, by procedure", runs_active.clone());
        registry.register(
            "runs_unattended",
            "Active runs no worker has held for 5 minutes: no replica is driving them",
            runs_unattended.clone(),
        );
        Self { registry, requests, latency, pool_size, pool_idle, csp_violations, runs_active, runs_unattended }
    }
}

/// Middleware: count and time every request under its route template (`/static/{*path}`),
/// never the raw path, so ids and hashes cannot blow up the label set.
///
/// Casework routes (alerts, STRs, people: compliance and MLRO only) are all counted as one
/// `casework` route with no method or status, so a scrape cannot tell an STR being drafted
/// from one being filed (tipping-off rule).
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let casework = state.policy.is_casework(&route);
    let (method, route) =
        if casework { ("any".to_owned(), "casework".to_owned()) } else { (request.method().to_string(), route) };
    let started = Instant::now();
    let response = next.run(request).await;
    let m = &state.metrics;
    m.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(started.elapsed().as_secs_f64());
    let status = if casework { 0 } else { response.status().as_u16() };
    m.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    response
}

/// Whether a scrape carries the configured bearer token (compared as digests, so the time it
/// takes says nothing about the token).
fn scrape_allowed(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    use sha2::{Digest, Sha256};
    let Some(token) = &state.config.metrics_token else { return true };
    let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    sent.is_some_and(|sent| Sha256::digest(sent.as_bytes()) == Sha256::digest(token.expose().as_bytes()))
}

/// `GET /metrics` in the Prometheus text format, for a scrape with the bearer token.
pub async fn export(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if !scrape_allowed(&state, &headers) {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"dropops metrics\"")],
            "A metrics scrape needs the bearer token configured as metrics_token.",
        )
            .into_response();
    }
    let m = &state.metrics;
    m.pool_size.set(i64::from(state.pool.size()));
    m.pool_idle.set(i64::try_from(state.pool.num_idle()).unwrap_or(i64::MAX));
    match crate::runs::activity(&state.pool).await {
        Ok(activity) => {
            m.runs_active.clear();
            for (procedure, count) in activity.active {
                m.runs_active.get_or_create(&ProcedureLabels { procedure }).set(count);
            }
            m.runs_unattended.set(activity.unattended);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count runs for /metrics"),
    }
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &m.registry) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

//! What the console counts about itself (Prometheus): requests by route and status, latency,
//! pool usage, CSP violations, runs. Part of the shared core: the state holds it and the
//! router's middleware records into it; features report their numbers through its setters, and
//! the `/metrics` page (`ops`) encodes it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
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
    csp_violations: Counter,
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

    pub fn set_pool(&self, size: u32, idle: usize) {
        self.pool_size.set(i64::from(size));
        self.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
    }

    /// Active runs by procedure, and how many of them no worker holds.
    pub fn set_runs(&self, active: Vec<(String, i64)>, unattended: i64) {
        self.runs_active.clear();
        for (procedure, count) in active {
            self.runs_active.get_or_create(&ProcedureLabels { procedure }).set(count);
        }
        self.runs_unattended.set(unattended);
    }

    pub fn csp_violation(&self) {
        self.csp_violations.inc();
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut body = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        body
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

/// At most this many CSP reports are logged a minute; the rest are counted only.
pub const CSP_LOGS_PER_MINUTE: u32 = 10;

/// Whether one more report may be logged this minute.
pub enum Budget {
    /// Log it; `suppressed` reports went unlogged since the last one that was.
    Log {
        suppressed: u64,
    },
    Spent,
}

/// A per-minute log budget for what anonymous requests make the console log.
#[derive(Default)]
pub struct LogBudget {
    window: std::sync::Mutex<(Option<std::time::Instant>, u32, u64)>,
}

impl LogBudget {
    pub fn take(&self) -> Budget {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let (start, used, suppressed) = &mut *w;
        if start.is_none_or(|s| s.elapsed() >= std::time::Duration::from_secs(60)) {
            *start = Some(std::time::Instant::now());
            *used = 0;
        }
        if *used < CSP_LOGS_PER_MINUTE {
            *used += 1;
            Budget::Log { suppressed: std::mem::take(suppressed) }
        } else {
            *suppressed += 1;
            Budget::Spent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_beyond_the_budget_are_counted_not_logged() {
        let budget = LogBudget::default();
        for _ in 0..CSP_LOGS_PER_MINUTE {
            assert!(matches!(budget.take(), Budget::Log { suppressed: 0 }));
        }
        assert!(matches!(budget.take(), Budget::Spent));
        assert!(matches!(budget.take(), Budget::Spent));
        budget.window.lock().unwrap().0 = Some(std::time::Instant::now() - std::time::Duration::from_secs(61));
        assert!(matches!(budget.take(), Budget::Log { suppressed: 2 }), "the next minute says how many were skipped");
    }
}

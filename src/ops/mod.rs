//! The console's own operability: liveness, readiness, Prometheus metrics, CSP reports.

pub mod metrics;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::policy::{Access, Route};
use crate::db;
use crate::metrics::Budget;
use crate::state::AppState;

/// The console's own endpoints: open to probes and scrapers, no sign-in.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/health/live", Access::Public, live),
        Route::get("/health/ready", Access::Public, ready),
        Route::get("/metrics", Access::Public, metrics::export),
        Route::post("/csp-report", Access::PublicReport, csp_report),
        Route::get("/static/{*path}", Access::Public, crate::web::assets::serve_static),
    ]
}

/// `GET /health/live`: the process answers. No dependency is checked on purpose, so a slow
/// database never gets the console restarted.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: the database answers, every migration is applied and Drop's tables
/// hold what the schema contract requires. Counts only: which columns is for `check-db` and
/// the dashboard, not for an unauthenticated probe.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let unavailable = |database: String| {
        tracing::warn!(reason = %database, "not ready");
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": database })))
    };
    if let Err(reason) = db::readiness(&state.probe_pool).await {
        return unavailable(reason);
    }
    match state.contract().await {
        Ok(report) if report.blocking().is_empty() => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok", "optional_columns_absent": report.degraded().len() })),
        ),
        Ok(report) => unavailable(format!(
            "{} items of the schema contract are missing: run `dropops check-db`",
            report.blocking().len()
        )),
        Err(e) => unavailable(format!("the schema contract cannot be checked: {e}")),
    }
}

/// `POST /csp-report`: browsers report Content-Security-Policy violations here. They are
/// counted, and logged up to [`crate::metrics::CSP_LOGS_PER_MINUTE`] a minute (anyone may post one): only the
/// directive, blocked and document URIs, with control characters escaped so that a report
/// cannot forge a log line.
pub async fn csp_report(State(state): State<AppState>, body: String) -> StatusCode {
    state.metrics.csp_violation();
    match state.csp_log.take() {
        Budget::Log { suppressed } => {
            let report: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let r = report.get("csp-report").unwrap_or(&report);
            let field = |k: &str| escaped(r.get(k).and_then(|v| v.as_str()).unwrap_or(""), 300);
            tracing::warn!(
                directive = %field("violated-directive"),
                blocked = %field("blocked-uri"),
                document = %field("document-uri"),
                suppressed_before = suppressed,
                "content security policy violation"
            );
        }
        Budget::Spent => {}
    }
    StatusCode::NO_CONTENT
}

/// Text from outside, fit for a log line: bounded, every control character escaped.
fn escaped(text: &str, max: usize) -> String {
    text.chars().take(max).flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_cannot_forge_a_log_line() {
        let forged = escaped("inline\n2026-12-02T03:00:00Z ERROR dropops: audit chain broken\u{1b}[2J", 300);
        assert!(!forged.chars().any(char::is_control), "{forged}");
        assert!(forged.starts_with("inline\\n2026"), "{forged}");
        assert_eq!(escaped(&"x".repeat(1000), 300).len(), 300);
    }
}

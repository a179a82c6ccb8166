//! The console's own operability: liveness, readiness, Prometheus metrics, CSP reports.

pub mod metrics;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::policy::{Access, Route};
use crate::db;
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

/// `GET /health/ready`: the database answers and every migration is applied.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match db::readiness(&state.pool).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok", "database": "ok" }))),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": reason })))
        }
    }
}

/// `POST /csp-report`: browsers report Content-Security-Policy violations here. They are
/// logged and counted; a non-zero count means a page broke the no-inline rule.
pub async fn csp_report(State(state): State<AppState>, body: String) -> StatusCode {
    state.metrics.csp_violations.inc();
    let report: String = body.chars().take(2000).collect();
    tracing::warn!(%report, "content security policy violation");
    StatusCode::NO_CONTENT
}

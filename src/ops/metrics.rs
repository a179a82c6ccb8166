//! `GET /metrics`: the console's counters, with what the features report at scrape time.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

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
    m.set_pool(state.pool.size(), state.pool.num_idle());
    match crate::runs::activity(&state.pool).await {
        Ok(activity) => m.set_runs(activity.active, activity.unattended),
        Err(e) => tracing::warn!(error = %e, "cannot count runs for /metrics"),
    }
    let body = m.encode();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

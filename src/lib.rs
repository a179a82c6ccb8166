//! dropops — Drop's operations console.
//!
//! [`app`] builds the whole HTTP application; `main.rs` and the tests both start from it.

pub mod audit;
pub mod compliance;
pub mod config;
pub mod database;
pub mod db;
pub mod demo;
pub mod deployments;
pub mod error;
pub mod health;
pub mod ops;
pub mod overview;
pub mod secrets;
pub mod state;
pub mod web;

use axum::Router;
use axum::routing::{get, post};

pub use crate::state::AppState;

/// The console's router with every middleware applied.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/", get(overview::show_overview))
        .route("/health/live", get(ops::live))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics::export))
        .route("/csp-report", post(ops::csp_report))
        .route("/static/{*path}", get(web::assets::serve_static))
        .merge(health::router())
        .merge(deployments::router())
        .merge(compliance::router())
        .merge(secrets::router())
        .merge(database::router())
        .merge(audit::router())
        .fallback(|| async { error::AppError::NotFound });
    web::layers::apply(router, &state).with_state(state)
}

/// Serve `app` until `shutdown` resolves, then give in-flight requests a bounded grace period.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut grace_rx = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    tokio::select! {
        result = server => result,
        () = async {
            let _ = grace_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(web::layers::SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("requests still open after the grace period; closing them");
            Ok(())
        }
    }
}

//! dropops — Drop's operations console.
//!
//! [`app`] builds the whole HTTP application; `main.rs` and the tests both start from it.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cloud;
pub mod compliance;
pub mod config;
pub mod contract;
pub mod database;
pub mod db;
pub mod demo;
pub mod deployments;
pub mod error;
pub mod health;
pub mod ids;
pub mod incidents;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod overview;
pub mod runs;
pub mod secrets;
pub mod simulator;
pub mod state;
pub mod web;

use axum::Router;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::policy::Route;
use crate::auth::store::PgSessionStore;
pub use crate::state::AppState;

/// Every route the console serves, each with its access rule. The router and the access
/// table are both built from this list, so no route exists without a rule.
pub fn routes() -> Vec<Route> {
    [
        ops::routes(),
        auth::routes(),
        overview::routes(),
        health::routes(),
        deployments::routes(),
        incidents::routes(),
        runs::pages::routes(),
        compliance::routes(),
        secrets::routes(),
        database::routes(),
        audit::routes(),
        admin::routes(),
        simulator::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The console's router with every middleware applied.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        router = router.route(route.path, route.handler);
    }
    let router = router
        .fallback(|| async { error::AppError::NotFound })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard::guard))
        .layer(session_layer(&state));
    web::layers::apply(router, &state).with_state(state)
}

/// Server-side sessions in `console.web_sessions`. The cookie is `__Host-` prefixed and
/// Secure whenever the console is served over HTTPS; plain-HTTP loopback demo excepted.
fn session_layer(state: &AppState) -> SessionManagerLayer<PgSessionStore> {
    let store = PgSessionStore::new(state.pool.clone());
    let https = state.config.is_https();
    // An hour beyond the longest sign-in, so the guard always sees an expired sign-in and
    // records why it ended, rather than the store silently forgetting it.
    let lifetime = state.config.auth.max_lifetime.as_secs().saturating_add(3600);
    let lifetime = time::Duration::seconds(i64::try_from(lifetime).unwrap_or(i64::MAX));
    SessionManagerLayer::new(store)
        .with_name(if https { "__Host-dropops" } else { "dropops" })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        // The sign-in's own idle and absolute limits are enforced by the guard.
        .with_expiry(Expiry::OnInactivity(lifetime))
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
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
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

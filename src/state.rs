//! Shared application state handed to every handler.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::oidc::Provider;
use crate::auth::policy::Policy;
use crate::cloud::{Cloud, sim::Simulator};
use crate::config::{Config, Mode};
use crate::metrics::Metrics;
use crate::web::assets::Assets;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Connections kept for readiness checks (the main pool when there is only one).
    pub probe_pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub assets: Arc<Assets>,
    /// The access table; filled by [`crate::app`] from the routes it serves.
    pub policy: Arc<Policy>,
    /// The OIDC provider, discovered on first use (a provider outage must not stop the console).
    pub oidc: Arc<tokio::sync::OnceCell<Provider>>,
    /// AWS and Drop's endpoints: simulated in demo mode.
    pub cloud: Cloud,
    /// How many failed sign-ins each address may still have audited one by one.
    pub sign_in_failures: Arc<crate::auth::flood::FloodGuard>,
    /// How many CSP reports may still be logged this minute.
    pub csp_log: Arc<crate::metrics::LogBudget>,
    /// Who is connected to the database, and signalling them: PostgreSQL's catalog, or in
    /// demo mode on the embedded database a simulated busy server.
    pub activity: Arc<dyn crate::database::activity::Activity>,
    /// The vacuums this process runs for vacuum runs (their connections live here).
    pub vacuums: Arc<crate::runs::vacuum::Vacuums>,
    /// Whether the database was last found unreachable (fail fast during an outage).
    pub db_gate: Arc<crate::db::DatabaseGate>,
    /// Drop's database measured against the schema contract ([`AppState::contract`]): kept
    /// once it lets the console serve, measured again while it does not.
    contract: Arc<std::sync::RwLock<Option<Arc<crate::contract::Report>>>>,
    /// The outside world's answers the dashboard and the deployments page share.
    pub outside: Arc<Outside>,
}

/// Readings of the outside world kept for a few seconds ([`crate::cloud::shared`]).
pub struct Outside {
    pub changes: crate::cloud::shared::Changes,
    pub dashboard: crate::cloud::shared::Shared<crate::health::cards::OutsideCards>,
    pub deployments: crate::cloud::shared::Shared<crate::deployments::Readings>,
    pub kyc: crate::cloud::shared::Shared<crate::compliance::SumsubAnswers>,
}

impl Outside {
    fn new(keep: std::time::Duration) -> Self {
        use crate::cloud::shared::Shared;
        Self {
            changes: Default::default(),
            dashboard: Shared::new(keep),
            deployments: Shared::new(keep),
            kyc: Shared::new(keep),
        }
    }
}

impl AppState {
    /// State with the cloud chosen by mode: the simulator in demo mode; in production a
    /// disconnected cloud until [`AppState::with_cloud`] plugs in AWS (`main` does).
    pub fn new(pool: PgPool, config: Config) -> Self {
        let cloud = match config.mode {
            Mode::Demo => {
                Cloud::simulated(Arc::new(Simulator::new(pool.clone(), &config)), crate::cloud::file_anchors(&config))
            }
            Mode::Production => Cloud::disconnected(),
        };
        Self::with_cloud(pool, config, cloud)
    }

    pub fn with_cloud(pool: PgPool, config: Config, cloud: Cloud) -> Self {
        let cloud = cloud.with_hooks(&config);
        let pool_for_activity = pool.clone();
        let outside = Arc::new(Outside::new(config.outside_readings));
        Self {
            probe_pool: pool.clone(),
            pool,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            assets: Arc::new(Assets::load()),
            // The access table of every route the app serves, complete before any request.
            policy: Arc::new(Policy::of(&crate::routes())),
            oidc: Arc::new(tokio::sync::OnceCell::new()),
            cloud,
            sign_in_failures: Arc::default(),
            csp_log: Arc::default(),
            db_gate: Arc::default(),
            vacuums: Arc::default(),
            activity: Arc::new(crate::database::activity::Catalog(pool_for_activity)),
            contract: Arc::default(),
            outside,
        }
    }

    /// What Drop's database has of what the console reads (the schema contract): pages ask
    /// it before showing an optional column. Inspected once it is complete enough to serve; a
    /// database still missing something (not migrated yet) is inspected again on each call, so
    /// readiness turns green as soon as it is fixed.
    pub async fn contract(&self) -> Result<Arc<crate::contract::Report>, sqlx::Error> {
        if let Some(report) = self.contract.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(report.clone());
        }
        let report = Arc::new(crate::contract::inspect(&self.pool).await?);
        if report.blocking().is_empty() {
            *self.contract.write().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        }
        Ok(report)
    }

    /// Another view of who is connected (the simulated server of demo mode).
    pub fn with_activity(mut self, activity: Arc<dyn crate::database::activity::Activity>) -> Self {
        self.activity = activity;
        self
    }

    /// Readiness checks on a pool of their own.
    pub fn with_probe_pool(mut self, probe: PgPool) -> Self {
        self.probe_pool = probe;
        self
    }
}

//! Health of Drop's environment (runbook.md §2) and of the console itself. The live checks of
//! Drop's targets read the cloud port; until an environment is connected each target is shown
//! with the identifiers it will be checked by.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{ANY_ROLE, Access, Route};
use crate::db;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub fn routes() -> Vec<Route> {
    vec![Route::get("/health", Access::Roles(ANY_ROLE), show_health)]
}

/// One thing the console watches, and how it is identified.
pub struct Target {
    pub name: &'static str,
    pub identifier: String,
    pub expectation: &'static str,
}

#[derive(Template)]
#[template(path = "health/index.html")]
pub struct HealthPage {
    pub shell: Shell,
    pub console_problem: Option<String>,
    pub database_kind: &'static str,
    pub targets: Vec<Target>,
}

pub async fn show_health(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let console_problem = db::readiness(&state.pool).await.err();
    let d = &state.config.drop;
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "not configured".into());
    let targets = vec![
        Target {
            name: "App health endpoint",
            identifier: shown(&d.health_url),
            expectation: "status ok, DB latency under the alert threshold",
        },
        Target {
            name: "App Runner service",
            identifier: shown(&d.apprunner_service_name),
            expectation: "Service.Status RUNNING",
        },
        Target {
            name: "RDS instance",
            identifier: shown(&d.rds_instance),
            expectation: "DBInstanceStatus available; newest automated snapshot under 24 h old",
        },
        Target { name: "Application logs", identifier: shown(&d.log_group), expectation: "no recurring error pattern" },
        Target {
            name: "Public domain certificate",
            identifier: shown(&d.public_domain),
            expectation: "expires in more than 30 days",
        },
        Target { name: "Staging (Fly.io)", identifier: shown(&d.staging_health_url), expectation: "status ok" },
    ];
    let page = HealthPage {
        shell: Shell::new(&state, &user, Area::Health, "Health"),
        console_problem,
        database_kind: if state.config.database.url.is_some() {
            "PostgreSQL (DATABASE_URL)"
        } else {
            "embedded PostgreSQL"
        },
        targets,
    };
    render(&page)
}

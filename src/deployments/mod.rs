//! Deployments of Drop's App Runner service (runbook.md §3): what a deploy, a rollback and a
//! restart do, and — once runs exist — their history and live progress.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, OPS, Route};
use crate::config::DropEnvironment;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub fn routes() -> Vec<Route> {
    vec![Route::get("/deployments", Access::Roles(OPS), show_deployments)]
}

#[derive(Template)]
#[template(path = "deployments/index.html")]
pub struct DeploymentsPage {
    pub shell: Shell,
    pub drop: DropEnvironment,
    pub region: String,
}

pub async fn show_deployments(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    render(&DeploymentsPage {
        shell: Shell::new(&state, &user, Area::Deployments, "Deployments"),
        drop: state.config.drop.clone(),
        region: state.config.aws.region.clone().unwrap_or_else(|| "not configured".into()),
    })
}

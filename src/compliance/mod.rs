//! Compliance workspace (runbook.md §6): the queues compliance staff work through. This page
//! shows only counts — no personal data and nothing about STRs, whose existence only
//! compliance and the MLRO may learn (tipping-off rule).

mod db;

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, COMPLIANCE_SUMMARY, Route};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub use db::QueueCounts;

pub fn routes() -> Vec<Route> {
    vec![Route::get("/compliance", Access::Roles(COMPLIANCE_SUMMARY), show_compliance)]
}

#[derive(Template)]
#[template(path = "compliance/index.html")]
pub struct CompliancePage {
    pub shell: Shell,
    pub counts: QueueCounts,
}

pub async fn show_compliance(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let counts = db::queue_counts(&state.pool).await?;
    render(&CompliancePage { shell: Shell::new(&state, &user, Area::Compliance, "Compliance"), counts })
}

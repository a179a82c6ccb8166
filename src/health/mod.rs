//! The health dashboard (runbook.md §2 and §7): production and staging side by side, every
//! card green, amber, red or unknown-with-a-reason, refreshing itself. A red or unknown card
//! links to the matching playbook entry.

pub(crate) mod cards;
mod checks;
mod db;
mod logs;
mod schedule;
pub mod sla;
pub use db::{HealthChange, changes_between};
pub use schedule::{announce_overdue, last_submitted, overdue, sample, spawn_overdue_announcer, spawn_sampler};

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{ANY_ROLE, Access, ONCALL, Route};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::tabs::Tab;
use crate::web::{Htmx, Shell, page_or_fragment, render};

pub use cards::{Card, Tone, read_all};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/health", Access::Roles(ANY_ROLE), show_health),
        Route::get("/health/playbook", Access::Roles(ANY_ROLE), show_playbook),
        Route::get("/health/checks", Access::Roles(ANY_ROLE), checks::list_checks),
        Route::get("/health/sla", Access::Roles(ANY_ROLE), sla::show),
        Route::get("/health/sla.csv", Access::Roles(ANY_ROLE), sla::csv),
        Route::get("/health/checks/{name}", Access::Roles(ANY_ROLE), checks::show_checklist),
        Route::post("/health/checks/{name}", Access::Roles(ONCALL), checks::submit_checklist),
        Route::get("/health/logs", Access::Roles(ONCALL), logs::search_logs),
    ]
}

#[derive(Template)]
#[template(path = "health/_cards.html")]
pub struct CardsFragment {
    pub production: Vec<Card>,
    pub staging: Vec<Card>,
    pub console: Card,
    pub operations: Vec<crate::cloud::Operation>,
    pub operations_error: Option<String>,
    /// Routine checklists not submitted in time.
    pub overdue_checks: Vec<&'static str>,
    /// Deploys, restarts, rotations… in progress: why a card may be amber right now.
    pub active_runs: Vec<crate::runs::Run>,
    /// Ended runs that left production inconsistent (a half-finished rotation).
    pub needing_repair: Vec<crate::runs::Run>,
    /// Whether the reader may open a run's page (compliance staff may not).
    pub may_follow_runs: bool,
    /// Monitoring maintenance windows open now, and when each ends.
    pub open_windows: Vec<chrono::DateTime<chrono::Utc>>,
    pub checked_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Template)]
#[template(path = "health/index.html")]
pub struct HealthPage {
    pub shell: Shell,
    pub cards: CardsFragment,
}

pub async fn show_health(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
) -> Result<Html<String>, AppError> {
    let mut fragment = cards::read_all(&state).await;
    fragment.may_follow_runs = state.policy.allows_page("/runs/{id}", &user.roles);
    page_or_fragment(htmx, fragment, |cards| HealthPage {
        shell: Shell::new(&state, &user, Tab::Dashboard, "Health"),
        cards,
    })
}

#[derive(Template)]
#[template(path = "health/playbook.html")]
pub struct PlaybookPage {
    pub shell: Shell,
}

/// `GET /health/playbook`: runbook §7's first looks, one anchor per alert.
pub async fn show_playbook(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    render(&PlaybookPage { shell: Shell::new(&state, &user, Tab::Playbook, "Playbook") })
}

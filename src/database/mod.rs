//! Database operations (runbook.md §5): the live view of the console's PostgreSQL — size and
//! connections by state, refreshed in place by htmx.

mod db;

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, OPS, Route};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Htmx, Shell, page_or_fragment};

pub use db::{ConnectionCount, DatabaseOverview};

pub fn routes() -> Vec<Route> {
    vec![Route::get("/database", Access::Roles(OPS), show_database)]
}

#[derive(Template)]
#[template(path = "database/index.html")]
pub struct DatabasePage {
    pub shell: Shell,
    pub stats: StatsFragment,
}

#[derive(Template)]
#[template(path = "database/_stats.html")]
pub struct StatsFragment {
    pub overview: DatabaseOverview,
    pub connections: Vec<ConnectionCount>,
}

pub async fn show_database(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
) -> Result<Html<String>, AppError> {
    let overview = db::overview(&state.pool).await?;
    let connections = db::connections_by_state(&state.pool).await?;
    page_or_fragment(htmx, StatsFragment { overview, connections }, |stats| DatabasePage {
        shell: Shell::new(&state, &user, Area::Database, "Database"),
        stats,
    })
}

//! Database operations (runbook.md §5): the live view of the console's PostgreSQL — size and
//! connections by state, refreshed in place by htmx — and Drop's RDS snapshots, with manual
//! snapshots and restore drills as runs.

mod db;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, OPS, Route};
use crate::cloud::{Snapshot, bounded};
use crate::error::AppError;
use crate::runs::{self, Run};
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
    pub instance: String,
    /// The newest snapshots, manual and automated, or why they cannot be read.
    pub snapshots: Result<Vec<Snapshot>, String>,
    pub history: Vec<Run>,
    pub next: Option<String>,
}

const HISTORY_PAGE: i64 = 10;

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
    Query(q): Query<runs::HistoryQuery>,
) -> Result<Html<String>, AppError> {
    let overview = db::overview(&state.pool).await?;
    let connections = db::connections_by_state(&state.pool).await?;
    let stats = StatsFragment { overview, connections };
    if htmx.0 {
        // The 10-second refresh: only the statistics, no AWS call.
        return page_or_fragment(htmx, stats, |stats| stats);
    }
    let instance = state.config.drop.instance().to_owned();
    let snapshots = bounded(std::time::Duration::from_secs(3), state.cloud.rds.snapshots())
        .await
        .map(|mut list| {
            list.truncate(10);
            list
        })
        .map_err(|e| e.to_string());
    let history = runs::history_page(&state.pool, Area::Database, &q, HISTORY_PAGE).await?;
    page_or_fragment(htmx, stats, |stats| DatabasePage {
        shell: Shell::new(&state, &user, Area::Database, "Database"),
        stats,
        snapshots,
        history: history.runs,
        next: history.next,
        instance,
    })
}

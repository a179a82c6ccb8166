//! The audit trail: every action taken through the console, newest first, with keyset
//! pagination by id.

mod db;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;

use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub use db::AuditEntry;

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list_audit))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    /// Show entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
}

#[derive(Template)]
#[template(path = "audit/index.html")]
pub struct AuditPage {
    pub shell: Shell,
    pub entries: Vec<AuditEntry>,
    pub older: Option<i64>,
    pub paged: bool,
}

pub async fn list_audit(State(state): State<AppState>, Query(q): Query<AuditQuery>) -> Result<Html<String>, AppError> {
    if q.before.is_some_and(|id| id < 1) {
        return Err(AppError::Validation("`before` must be a positive entry id.".into()));
    }
    let mut entries = db::page(&state.pool, q.before, PAGE_SIZE + 1).await?;
    let older = if entries.len() as i64 > PAGE_SIZE {
        entries.truncate(PAGE_SIZE as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    render(&AuditPage { shell: Shell::new(&state, Area::Audit, "Audit"), entries, older, paged: q.before.is_some() })
}

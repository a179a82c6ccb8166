//! The landing page: what each area of the console is for, and what data this console holds.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::demo::{self, SeedInfo};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

#[derive(Template)]
#[template(path = "overview/index.html")]
pub struct OverviewPage {
    pub shell: Shell,
    pub seed: Option<SeedInfo>,
}

pub async fn show_overview(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let seed = demo::seeded(&state.pool).await?;
    render(&OverviewPage { shell: Shell::new(&state, Area::Overview, "Overview"), seed })
}

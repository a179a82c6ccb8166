//! The landing page: what each area of the console is for, and what data this console holds.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{ANY_ROLE, Access, Route};
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

pub fn routes() -> Vec<Route> {
    vec![Route::get("/", Access::Roles(ANY_ROLE), show_overview)]
}

pub async fn show_overview(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let seed = demo::seeded(&state.pool).await?;
    render(&OverviewPage { shell: Shell::new(&state, &user, Area::Overview, "Overview"), seed })
}

//! Deployments of Drop's App Runner service (runbook.md §3): what a deploy, a rollback and a
//! restart do, and — once runs exist — their history and live progress.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, OPS, Route};
use crate::cloud::{Image, ServiceStatus, bounded};
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
    /// What runs now, or why it cannot be read.
    pub running: Result<ServiceStatus, String>,
    pub images: Result<Vec<Image>, String>,
}

impl DeploymentsPage {
    /// Whether the service runs this image (its tag ends the running image URI).
    pub fn is_running(&self, image: &Image) -> bool {
        self.running.as_ref().is_ok_and(|s| image.tags.iter().any(|t| s.image.ends_with(&format!(":{t}"))))
    }

    pub fn untagged(&self) -> usize {
        self.images.as_ref().map_or(0, |list| list.iter().filter(|i| i.tags.is_empty()).count())
    }
}

impl Image {
    pub fn short_digest(&self) -> &str {
        self.digest.get(..19).unwrap_or(&self.digest)
    }

    pub fn size(&self) -> String {
        format!("{:.0} MB", self.size_bytes as f64 / 1_048_576.0)
    }
}

pub async fn show_deployments(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let limit = std::time::Duration::from_secs(3);
    let (running, images) =
        tokio::join!(bounded(limit, state.cloud.app_runner.service_status()), bounded(limit, state.cloud.ecr.images()));
    render(&DeploymentsPage {
        shell: Shell::new(&state, &user, Area::Deployments, "Deployments"),
        drop: state.config.drop.clone(),
        region: state.config.aws.region.clone().unwrap_or_else(|| "not configured".into()),
        running: running.map_err(|e| e.to_string()),
        images: images.map_err(|e| e.to_string()),
    })
}

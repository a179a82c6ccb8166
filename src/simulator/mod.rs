//! The simulator's fault switches (demo and training): an admin switches a fault on to
//! practise a playbook entry, and the simulated cloud behaves accordingly. A feature of its
//! own: the cloud port knows nothing of these pages, and the switch is an audited write here.

mod db;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, AuditContext, Intent, Resource};
use crate::auth::CurrentUser;
use crate::auth::policy::{ADMIN, Access, Route};
use crate::cloud::sim::FAULTS;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

use db::FaultState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/admin/simulator", Access::Roles(ADMIN), show_simulator),
        Route::post("/admin/simulator/{name}", Access::Roles(ADMIN), set_fault),
    ]
}

#[derive(Template)]
#[template(path = "simulator/index.html")]
pub struct SimulatorPage {
    pub shell: Shell,
    pub faults: Vec<FaultState>,
}

/// Only a simulated cloud has faults to switch; elsewhere the pages do not exist.
fn simulated(state: &AppState) -> Result<(), AppError> {
    if state.cloud.is_simulated() { Ok(()) } else { Err(AppError::NotFound) }
}

/// `GET /admin/simulator`: the faults people can switch on to practise the playbook.
pub async fn show_simulator(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    simulated(&state)?;
    let faults = db::faults(&state.pool).await?;
    render(&SimulatorPage { shell: Shell::new(&state, &user, Tab::Simulator, "Simulator"), faults })
}

#[derive(Deserialize)]
pub struct FaultForm {
    #[serde(default)]
    active: String,
}

pub async fn set_fault(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Path(name): Path<String>,
    Form(form): Form<FaultForm>,
) -> Result<Response, AppError> {
    simulated(&state)?;
    let fault = FAULTS.iter().find(|f| f.name == name).ok_or(AppError::NotFound)?;
    let active = match form.active.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(AppError::Validation("Say whether to switch the fault on or off.".into())),
    };
    let intent = Intent {
        action: if active { "sim_fault_on" } else { "sim_fault_off" },
        resource_type: Resource::Simulator,
        resource_id: fault.name.into(),
        reason: None,
        details: json!({ "fault": fault.label }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        Ok(db::set_fault(tx, token, fault.name, active, &user.name).await?)
    })
    .await?;
    Ok(Redirect::to("/admin/simulator").into_response())
}

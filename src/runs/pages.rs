//! The run page: live step progress (htmx polling while the run is active), elapsed time,
//! the step log, and cancel / resume.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::{LogLine, Procedure, Run, RunId, RunStatus, Step, StepStatus};
use crate::audit::AuditContext;
use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Htmx, PathId, Shell, page_or_fragment};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/runs/{id}", Access::Roles(OPS), show_run),
        Route::post("/runs/{id}/cancel", Access::Roles(ONCALL), cancel_run),
        Route::post("/runs/{id}/resume", Access::Roles(ONCALL), resume_run).step_up(),
    ]
}

#[derive(Template)]
#[template(path = "runs/show.html")]
pub struct RunPage {
    pub shell: Shell,
    pub progress: RunProgress,
}

#[derive(Template)]
#[template(path = "runs/_progress.html")]
pub struct RunProgress {
    pub run: Run,
    pub steps: Vec<Step>,
    pub log: Vec<LogLine>,
    pub csrf: String,
    pub may_act: bool,
    /// What was posted to Slack about this run, and whether it got there.
    pub messages: Vec<crate::notify::Message>,
}

impl RunProgress {
    pub fn step_tone(step: &Step) -> &'static str {
        match step.status {
            StepStatus::Succeeded => "green",
            StepStatus::Failed => "red",
            StepStatus::Running => "blue",
            StepStatus::Cancelled | StepStatus::Skipped => "amber",
            StepStatus::Pending => "grey",
        }
    }

    pub fn step_label(step: &Step) -> &'static str {
        match step.status {
            StepStatus::Succeeded => "Done",
            StepStatus::Failed => "Failed",
            StepStatus::Running => "In progress",
            StepStatus::Cancelled => "Cancelled",
            StepStatus::Skipped => "Skipped",
            StepStatus::Pending => "Waiting",
        }
    }

    pub fn lines_of(&self, step: &Step) -> Vec<&LogLine> {
        self.log.iter().filter(|l| l.position == Some(step.position)).collect()
    }

    pub fn run_lines(&self) -> Vec<&LogLine> {
        self.log.iter().filter(|l| l.position.is_none()).collect()
    }

    /// A database password rotation stopped between asking RDS for the new password and
    /// verifying health with it: production may not connect, now or on its next restart.
    /// Said in words, with the way out.
    pub fn half_rotated(&self) -> bool {
        super::half_finished(&self.run, &self.steps)
    }

    /// Why the run may no longer be cancelled, shown instead of the button.
    pub fn too_late_to_cancel(&self) -> Option<String> {
        super::too_late_to_cancel(&self.steps)
    }

    /// Resuming makes sense for a failed rotation and for any half-finished one: its next
    /// step continues with the value already stored, never a new one.
    pub fn resumable(&self) -> bool {
        let rotation = matches!(self.run.procedure(), Some(Procedure::RotateDbPassword | Procedure::RotateJwtSecret));
        rotation
            && (self.run.status == RunStatus::Failed
                || (self.run.status == RunStatus::Cancelled && self.half_rotated()))
    }

    pub fn error_of(step: &Step) -> Option<&str> {
        step.state["error"].as_str()
    }

    /// Where the error text sends people to the application logs, a link to them.
    pub fn mentions_logs(step: &Step) -> bool {
        Self::error_of(step).is_some_and(|e| e.contains("application logs"))
    }
}

async fn progress(state: &AppState, user: &CurrentUser, id: Uuid) -> Result<RunProgress, AppError> {
    let run = super::get(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    Ok(RunProgress {
        steps: super::steps(&state.pool, id).await?,
        log: super::log(&state.pool, id).await?,
        may_act: ONCALL.iter().any(|r| user.has(*r)),
        csrf: user.csrf.clone(),
        messages: crate::notify::db::of_source(&state.pool, &crate::notify::run_source(RunId::stored(id))).await?,
        run,
    })
}

/// `GET /runs/{id}`: the page, or (htmx polling) just the progress.
pub async fn show_run(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
    PathId(id): PathId<RunId>,
) -> Result<Response, AppError> {
    let progress = progress(&state, &user, id.uuid()).await?;
    // Polling a run that has ended gets its last progress with htmx's "stop polling" (286).
    let status = if htmx.0 && !progress.run.active() { stop_polling() } else { StatusCode::OK };
    let title = progress.run.heading();
    let area = progress.run.area();
    let html = page_or_fragment(htmx, progress, |progress| RunPage {
        shell: Shell::new(&state, &user, area, title),
        progress,
    })?;
    Ok((status, html).into_response())
}

/// htmx stops a polling trigger when the answer has this status (and still swaps it in).
fn stop_polling() -> StatusCode {
    StatusCode::from_u16(286).unwrap_or(StatusCode::OK)
}

/// `POST /runs/{id}/cancel`: stop before the next step (a step in progress finishes first).
pub async fn cancel_run(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<RunId>,
) -> Result<Redirect, AppError> {
    let id = id.uuid();
    super::request_cancel(&state.pool, &ctx, &user, id).await?;
    Ok(Redirect::to(&format!("/runs/{id}")))
}

/// `POST /runs/{id}/resume`: carry on a failed rotation from the step that failed.
pub async fn resume_run(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<RunId>,
) -> Result<Redirect, AppError> {
    let id = id.uuid();
    let p = progress(&state, &user, id).await?;
    if !p.resumable() {
        return Err(AppError::Conflict(
            "Only a failed secret rotation can be resumed; start a new run instead.".into(),
        ));
    }
    super::request_resume(&state.pool, &ctx, &user, &p.run).await?;
    Ok(Redirect::to(&format!("/runs/{id}")))
}

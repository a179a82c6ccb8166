//! Deployments of Drop's App Runner service (runbook.md §3): what runs now, the images in
//! ECR, and deploy, rollback, rolling and emergency restart and scaling as runs — each behind
//! a confirmation page that says exactly what will happen, where.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{AuditContext, Reason};
use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::cloud::{Image, Operation, Scaling, ServiceStatus, bounded, image_of, reference_tag, tag_of};
use crate::config::DropEnvironment;
use crate::error::AppError;
use crate::runs::params::{DrillParams, ImageParams, RestartParams, ScaleParams, SnapshotParams};
use crate::runs::{self, NewRun, Plan, Procedure, Run, RunId, RunParams};
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/deployments", Access::Roles(OPS), show_deployments),
        Route::get("/deployments/confirm", Access::Roles(ONCALL), confirm),
        Route::post("/deployments/runs", Access::Roles(ONCALL), start).step_up(),
    ]
}

const HISTORY_PAGE: i64 = 20;
const LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

fn target(state: &AppState) -> String {
    state.config.service_target()
}

fn service_name(state: &AppState) -> String {
    state.config.drop.service_name().to_owned()
}

fn environment(state: &AppState) -> String {
    state.config.service_environment()
}

/// The ECR image reference App Runner pulls, pinned by digest. Production refuses to start
/// without `aws.account_id` (config); a reference is never made up.
fn image_reference(state: &AppState, digest: &str) -> Result<String, AppError> {
    let c = &state.config;
    let (Some(account), Some(region)) = (c.aws.account_id.as_deref(), c.aws.region.as_deref()) else {
        return Err(AppError::Unavailable(
            "aws.account_id and aws.region must be configured to name the image App Runner pulls.".into(),
        ));
    };
    Ok(format!("{}@{digest}", crate::cloud::ecr_repository_uri(account, region, c.drop.repository())))
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
    pub scaling: Result<Scaling, String>,
    /// When the running image was put in place, and by whom (if through the console).
    pub since: Option<DateTime<Utc>>,
    pub deployed_by: Option<Run>,
    pub active: Option<Run>,
    pub history: Vec<Run>,
    pub next: Option<String>,
}

impl DeploymentsPage {
    /// Whether the service runs this image.
    pub fn is_running(&self, image: &Image) -> bool {
        self.running.as_ref().is_ok_and(|s| {
            s.image.ends_with(&format!("@{}", image.digest))
                || image.tags.iter().any(|t| s.image.ends_with(&format!(":{t}")))
        })
    }

    /// The running image's entry in ECR.
    pub fn running_image(&self) -> Option<&Image> {
        self.images.as_ref().ok()?.iter().find(|i| self.is_running(i))
    }

    /// Newer than what runs (a deploy) or older (a rollback)?
    pub fn action_for(&self, image: &Image) -> Option<&'static str> {
        if image.tags.is_empty() || self.is_running(image) {
            return None;
        }
        match self.running_image() {
            Some(running) if image.pushed_at < running.pushed_at => Some("rollback"),
            _ => Some("deploy"),
        }
    }

    /// The image pushed before the running one: the runbook's rollback target.
    pub fn previous_image(&self) -> Option<&Image> {
        let running = self.running_image()?;
        self.images
            .as_ref()
            .ok()?
            .iter()
            .filter(|i| !i.tags.is_empty() && i.pushed_at < running.pushed_at)
            .max_by_key(|i| i.pushed_at)
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

    pub fn tag(&self) -> &str {
        self.tags.first().map_or("untagged", String::as_str)
    }
}

pub async fn show_deployments(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<runs::HistoryQuery>,
) -> Result<Html<String>, AppError> {
    let (running, images, scaling, operations) = tokio::join!(
        bounded(LIMIT, state.cloud.app_runner.service_status()),
        bounded(LIMIT, state.cloud.ecr.images()),
        bounded(LIMIT, state.cloud.app_runner.scaling()),
        bounded(LIMIT, state.cloud.app_runner.recent_operations()),
    );
    let history = runs::history_page(&state.pool, Area::Deployments, &q, HISTORY_PAGE).await?;
    let tag = match (&running, &images) {
        (Ok(s), Ok(list)) => tag_of(list, &s.image),
        _ => None,
    };
    let deployed_by = match &tag {
        Some(tag) => runs::last_success_with_tag(&state.pool, tag).await?,
        None => None,
    };
    render(&DeploymentsPage {
        shell: Shell::new(&state, &user, Area::Deployments, "Deployments"),
        drop: state.config.drop.clone(),
        region: state.config.aws.region.clone().unwrap_or_else(|| "not configured".into()),
        since: operations.ok().as_deref().and_then(last_deployed),
        running: running.map_err(|e| e.to_string()),
        images: images.map_err(|e| e.to_string()),
        scaling: scaling.map_err(|e| e.to_string()),
        deployed_by,
        active: runs::active_on(&state.pool, &target(&state)).await?,
        history: history.runs,
        next: history.next,
    })
}

/// When the last successful deployment ended: since when the running image serves.
fn last_deployed(operations: &[Operation]) -> Option<DateTime<Utc>> {
    operations
        .iter()
        .filter(|o| {
            o.succeeded() && matches!(o.kind.as_str(), "START_DEPLOYMENT" | "UPDATE_SERVICE" | "CREATE_SERVICE")
        })
        .filter_map(|o| o.ended_at)
        .max()
}

/// What the person asked for, from the query string or the form.
#[derive(Deserialize, Default, Clone)]
pub struct RunForm {
    #[serde(default)]
    pub procedure: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub understood: String,
    /// The run's id, chosen when the confirmation was shown ([`RunId`]).
    #[serde(default)]
    pub run: String,
}

#[derive(Template)]
#[template(path = "deployments/confirm.html")]
pub struct ConfirmPage {
    pub shell: Shell,
    pub form: RunForm,
    pub procedure: Procedure,
    pub environment: String,
    pub heading: String,
    pub impact: String,
    pub running: Option<Image>,
    pub running_reference: String,
    pub chosen: Option<Image>,
    pub steps: Vec<String>,
    pub scaling: Option<Scaling>,
    pub scaling_error: Option<String>,
    pub understood_error: Option<String>,
    /// What the person ticks to confirm an impact that needs it.
    pub understand: Option<&'static str>,
    /// Next to the reason field: a production deploy needs one; every reason is bounded.
    pub reason_error: Option<String>,
    pub reason_example: &'static str,
    pub active: Option<Run>,
}

impl ConfirmPage {
    /// A production deploy must say why.
    pub fn reason_required(&self) -> bool {
        self.procedure == Procedure::Deploy
    }

    /// Whether the run changes the App Runner service (then what runs now is shown).
    pub fn about_service(&self) -> bool {
        self.procedure.area() != Area::Database
    }
}

/// Everything a deployment run needs, worked out from what runs now and the choice made.
struct Prepared {
    page: ConfirmPage,
    new: NewRun,
}

async fn prepare(state: &AppState, user: &CurrentUser, form: RunForm) -> Result<Prepared, AppError> {
    let run = RunId::from_form(&form.run)?;
    let form = RunForm { run: run.to_string(), ..form };
    let procedure = Procedure::parse(&form.procedure)
        .filter(|p| matches!(p.area(), Area::Deployments | Area::Database))
        .ok_or_else(|| AppError::Validation("Choose deploy, rollback, restart, emergency restart or scale.".into()))?;
    if procedure.area() == Area::Database {
        return prepare_database(state, user, form, procedure, run).await;
    }
    let (running, images) =
        tokio::join!(bounded(LIMIT, state.cloud.app_runner.service_status()), bounded(LIMIT, state.cloud.ecr.images()));
    let running = running
        .map_err(|e| AppError::Unavailable(format!("What runs now cannot be read, so nothing can be planned: {e}")))?;
    let images = images.map_err(|e| AppError::Unavailable(format!("The images in ECR cannot be read: {e}")))?;
    // Resolved through ECR (a tag reference names one image), or unknown: never a guess.
    let running_image = image_of(&images, &running.image).cloned();
    // What a redeploy of the same reference (restart) will report as its version.
    let running_tag =
        tag_of(&images, &running.image).or_else(|| reference_tag(&running.image)).unwrap_or_else(|| "unknown".into());
    let service = service_name(state);
    let chosen = match procedure {
        Procedure::Deploy | Procedure::Rollback => {
            let image =
                images.iter().find(|i| i.digest == form.digest && !i.tags.is_empty()).cloned().ok_or_else(|| {
                    AppError::Validation("Choose a tagged image from the list on the deployments page.".into())
                })?;
            Some(image)
        }
        _ => None,
    };
    let mut scaling_error = None;
    let scaling = if procedure == Procedure::Scale {
        let now = bounded(LIMIT, state.cloud.app_runner.scaling()).await.ok();
        match (form.min.trim().parse::<i32>(), form.max.trim().parse::<i32>()) {
            (Ok(min), Ok(max)) if (1..=25).contains(&min) && (min..=25).contains(&max) => Some(Scaling { min, max }),
            _ if form.min.trim().is_empty() && form.max.trim().is_empty() => now,
            _ => {
                scaling_error =
                    Some("Give whole numbers: at least 1 instance, at most 25, minimum not above maximum.".into());
                now
            }
        }
    } else {
        None
    };
    let snapshot = format!("{}-pre-deploy-{}", state.config.drop.instance(), run.stamp());
    let (heading, impact, plan, params) = match (procedure, &chosen) {
        (Procedure::Deploy, Some(image)) => (
            format!("Deploy {} to production", image.tag()),
            if running_image.is_some() {
                format!("No downtime expected: App Runner moves traffic to the new version once it is healthy. Typically 3–5 minutes, plus the snapshot. If health fails afterwards, the console rolls back to {running_tag}, the image running now.")
            } else {
                "No downtime expected: App Runner moves traffic to the new version once it is healthy. Typically 3–5 minutes, plus the snapshot. The image running now cannot be identified in ECR, so if health fails afterwards there is NO automatic rollback: you would have to choose an image to roll back to.".to_owned()
            },
            Plan::deploy(&service, image.tag(), &snapshot, state.config.runs.maintenance_window_minutes),
            RunParams::Deploy(ImageParams {
                image: image_reference(state, &image.digest)?,
                digest: image.digest.clone(),
                tag: image.tag().to_owned(),
                snapshot_id: Some(snapshot),
            }),
        ),
        (Procedure::Rollback, Some(image)) => (
            format!("Roll back production to {}", image.tag()),
            format!("No downtime expected. {} replaces {running_tag}, which stops serving once {} is healthy. Database changes made by newer releases are not undone.", image.tag(), image.tag()),
            Plan::rollback(&service, image.tag()),
            RunParams::Rollback(ImageParams {
                image: image_reference(state, &image.digest)?,
                digest: image.digest.clone(),
                tag: image.tag().to_owned(),
                snapshot_id: None,
            }),
        ),
        (Procedure::Restart, _) => (
            "Rolling restart of production".to_owned(),
            format!("No downtime expected: App Runner starts fresh instances of {running_tag} and moves traffic once they are healthy. Typically 3–5 minutes."),
            Plan::restart(&service, &running_tag),
            RunParams::Restart(RestartParams { tag: running_tag.clone() }),
        ),
        (Procedure::EmergencyRestart, _) => (
            "Emergency restart of production".to_owned(),
            "Drop is DOWN for every user from the pause until the resume completes — typically 1–3 minutes. Use it only when a rolling restart cannot help (the service is wedged).".to_owned(),
            Plan::emergency_restart(&service, &running_tag),
            RunParams::EmergencyRestart(RestartParams { tag: running_tag.clone() }),
        ),
        (Procedure::Scale, _) => {
            let s = scaling.unwrap_or(Scaling { min: 1, max: 4 });
            (
                "Change production auto-scaling".to_owned(),
                "No downtime expected: App Runner adds or removes instances within the new bounds. More instances cost more.".to_owned(),
                Plan::scale(&service, s),
                RunParams::Scale(ScaleParams { min: s.min, max: s.max }),
            )
        }
        _ => return Err(AppError::Validation("Choose an image.".into())),
    };
    let running_known = running_image.is_some();
    let page = ConfirmPage {
        shell: Shell::new(state, user, Area::Deployments, heading.clone()),
        environment: environment(state),
        heading,
        impact,
        running: running_image,
        running_reference: running.image.clone(),
        chosen,
        steps: plan.steps.iter().map(|s| s.title.clone()).collect(),
        scaling,
        scaling_error,
        understood_error: None,
        reason_error: None,
        understand: match procedure {
            Procedure::EmergencyRestart => {
                Some("I understand Drop is down for every user until the service has resumed.")
            }
            Procedure::Deploy if !running_known => Some(
                "I understand the image running now is unknown, so a failed deploy cannot be rolled back automatically.",
            ),
            _ => None,
        },
        reason_example: "e.g. release 2026-11-29, fixes payout retries",
        active: runs::active_on(&state.pool, &target(state)).await?,
        procedure,
        form: form.clone(),
    };
    let new = NewRun {
        id: run,
        target: target(state),
        environment: "production".into(),
        params,
        facts: json!({}),
        reason: None,
        plan,
    };
    Ok(Prepared { page, new })
}

/// `GET /deployments/confirm?procedure=…`: what will happen, where, and the button.
pub async fn confirm(
    State(state): State<AppState>,
    user: CurrentUser,
    session: tower_sessions::Session,
    Query(mut form): Query<RunForm>,
) -> Result<Html<String>, AppError> {
    // Back from a step-up sign-in: everything typed before it is filled in again.
    let stash = crate::auth::take_stashed_form(&session, "/deployments/confirm").await;
    for (name, field) in [
        ("reason", &mut form.reason),
        ("understood", &mut form.understood),
        ("min", &mut form.min),
        ("max", &mut form.max),
        ("run", &mut form.run),
    ] {
        stash.restore(name, field);
    }
    render(&prepare(&state, &user, form).await?.page)
}

/// `POST /deployments/runs`: start the confirmed run and follow it.
pub async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Form(form): Form<RunForm>,
) -> Result<Response, AppError> {
    let Prepared { mut page, mut new } = prepare(&state, &user, form.clone()).await?;
    if page.understand.is_some() && form.understood != "yes" {
        page.understood_error = Some(match page.procedure {
            Procedure::EmergencyRestart => "Tick the box to confirm that Drop will be down during the restart.".into(),
            _ => "Tick the box to confirm that you deploy without an automatic rollback.".into(),
        });
    }
    if page.procedure == Procedure::Scale && page.scaling_error.is_none() && form.min.trim().is_empty() {
        page.scaling_error = Some("Give the minimum and maximum number of instances.".into());
    }
    let reason = if page.procedure == Procedure::Deploy {
        Reason::parse(&form.reason, "why you deploy (the release, the fix): it goes to the audit log").map(Some)
    } else {
        Reason::optional(&form.reason, "the reason")
    };
    match reason {
        Ok(reason) => new.reason = reason,
        Err(e) => page.reason_error = Some(e),
    }
    if page.scaling_error.is_some() || page.understood_error.is_some() || page.reason_error.is_some() {
        let mut response = render(&page)?.into_response();
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    let id = runs::start(&state.pool, &ctx, &user, new).await?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

/// A manual snapshot or a restore drill of Drop's RDS instance.
async fn prepare_database(
    state: &AppState,
    user: &CurrentUser,
    form: RunForm,
    procedure: Procedure,
    run: RunId,
) -> Result<Prepared, AppError> {
    let instance = state.config.drop.instance().to_owned();
    let (heading, impact, plan, params) = if procedure == Procedure::Snapshot {
        let id = format!("{instance}-manual-{}", run.stamp());
        (
            format!("Take a manual snapshot of {instance}"),
            "No downtime: RDS snapshots a single-AZ instance with a brief I/O pause, a Multi-AZ one from its standby. Manual snapshots are kept until deleted.".to_owned(),
            Plan::snapshot(&instance, &id),
            RunParams::Snapshot(SnapshotParams { snapshot_id: id }),
        )
    } else {
        let snapshots = bounded(LIMIT, state.cloud.rds.snapshots()).await.map_err(|e| {
            AppError::Unavailable(format!("The snapshots cannot be read, so nothing can be planned: {e}"))
        })?;
        let newest =
            snapshots
                .iter()
                .filter(|s| s.automated && s.status == "available")
                .max_by_key(|s| s.created_at)
                .ok_or_else(|| AppError::Conflict("There is no available automated snapshot to restore.".into()))?;
        let drill = format!("{instance}-restore-drill-{}", run.stamp());
        (
            format!("Restore drill from {}", newest.id),
            format!(
                "Drop is not touched. A temporary instance {drill} is created from the newest automated snapshot (taken {}), checked, and deleted again — even if a step fails. It costs money while it exists (typically 15–30 minutes).",
                newest.created_at.format("%Y-%m-%d %H:%M UTC")
            ),
            Plan::restore_drill(&newest.id, &drill),
            RunParams::RestoreDrill(DrillParams { from_snapshot: newest.id.clone(), drill_instance: drill }),
        )
    };
    let environment = format!(
        "production — RDS instance {instance} in {}",
        state.config.aws.region.as_deref().unwrap_or("an unconfigured region")
    );
    let target = format!("rds:{instance}");
    let page = ConfirmPage {
        shell: Shell::new(state, user, Area::Database, heading.clone()),
        environment,
        heading,
        impact,
        running: None,
        running_reference: String::new(),
        chosen: None,
        steps: plan.steps.iter().map(|s| s.title.clone()).collect(),
        scaling: None,
        scaling_error: None,
        understood_error: None,
        reason_error: None,
        understand: None,
        reason_example: "e.g. before the manual data fix, or: monthly check",
        active: runs::active_on(&state.pool, &target).await?,
        procedure,
        form: form.clone(),
    };
    let new =
        NewRun { id: run, target, environment: "production".into(), params, facts: json!({}), reason: None, plan };
    Ok(Prepared { page, new })
}

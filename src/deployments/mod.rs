//! Deployments of Drop's App Runner service (runbook.md §3): what runs now, the images in
//! ECR, and deploy, rollback, rolling and emergency restart and scaling as runs — each behind
//! a confirmation page that says exactly what will happen, where.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{DateTime, Utc};

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::cloud::fly::{self, Release};
use crate::cloud::{Image, Operation, Scaling, ServiceStatus, bounded, image_of, reference_tag, tag_of};
use crate::config::DropEnvironment;
use crate::error::AppError;
use crate::runs::confirm::{
    self, Fact, Impact, Proposal, Proposer, ReasonRule, RunForm, ScaleChoice, StagingGate, Understand,
};
use crate::runs::params::{ImageParams, RestartParams, ScaleParams, StagingCheck, StagingParams};
use crate::runs::staging::{self, Pass};
use crate::runs::{self, NewRun, Plan, Procedure, Run, RunId, RunParams};
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/deployments", Access::Roles(OPS), show_deployments),
        Route::get(Deployments::PAGE, Access::Roles(ONCALL), confirm::confirmation::<Deployments>),
        Route::post("/deployments/runs", Access::Roles(ONCALL), confirm::confirmed::<Deployments>).step_up(),
    ]
}

const HISTORY_PAGE: i64 = 20;
/// Staging releases shown.
const RELEASES: usize = 8;
const LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// Fly.io staging's machines; `None` when Fly.io is not connected.
    pub staging: Option<Result<Vec<fly::Machine>, String>>,
    /// Staging's recent releases (`fly releases`), when Fly.io is connected.
    pub releases: Option<Result<Vec<Release>, String>>,
    /// The images of the list that passed a staging run.
    pub passes: Vec<Pass>,
    /// The staging run in progress, if one is.
    pub staging_active: Option<Run>,
    /// When AWS and Fly.io were asked what the page shows of them.
    pub read_at: DateTime<Utc>,
}

impl DeploymentsPage {
    /// Whether staging runs this image now with every machine healthy.
    pub fn healthy_on_staging(&self, image: &Image) -> bool {
        matches!(&self.staging, Some(Ok(machines)) if fly::runs_healthily(machines, &image.tags))
    }

    /// When this image last passed a staging run, if it did.
    pub fn passed_staging(&self, image: &Image) -> Option<&Pass> {
        self.passes.iter().find(|p| p.digest == image.digest)
    }

    /// The ECR image of a staging release (by its tag): what rolling staging back to it runs.
    pub fn image_of_release(&self, release: &Release) -> Option<&Image> {
        let tag = release.tag()?;
        self.images.as_ref().ok()?.iter().find(|i| i.tags.contains(&tag))
    }

    /// Whether staging runs this release's image now.
    pub fn staging_runs(&self, release: &Release) -> bool {
        matches!(&self.staging, Some(Ok(machines)) if release.tag().is_some_and(|t| machines.iter().all(|m| m.tag.as_ref() == Some(&t))))
    }

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

/// What AWS and Fly.io say of the service, its images and staging: shared between viewers for
/// `outside_readings_secs` ([`crate::cloud::shared`]).
pub struct Readings {
    running: Result<ServiceStatus, String>,
    images: Result<Vec<Image>, String>,
    scaling: Result<Scaling, String>,
    since: Option<DateTime<Utc>>,
    staging: Option<Result<Vec<fly::Machine>, String>>,
    releases: Option<Result<Vec<Release>, String>>,
}

async fn read_outside(state: &AppState) -> Readings {
    let (running, images, scaling, operations, staging, releases) = tokio::join!(
        bounded(LIMIT, state.cloud.app_runner.service_status()),
        bounded(LIMIT, state.cloud.ecr.images()),
        bounded(LIMIT, state.cloud.app_runner.scaling()),
        bounded(LIMIT, state.cloud.app_runner.recent_operations()),
        async {
            match &state.cloud.staging {
                Some(fly) => Some(bounded(LIMIT, fly.machines()).await.map_err(|e| e.to_string())),
                None => None,
            }
        },
        async {
            match &state.cloud.staging {
                Some(fly) => Some(bounded(LIMIT, fly.releases(RELEASES)).await.map_err(|e| e.to_string())),
                None => None,
            }
        },
    );
    Readings {
        running: running.map_err(|e| e.to_string()),
        images: images.map_err(|e| e.to_string()),
        scaling: scaling.map_err(|e| e.to_string()),
        since: operations.ok().as_deref().and_then(last_deployed),
        staging,
        releases,
    }
}

pub async fn show_deployments(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<runs::HistoryQuery>,
) -> Result<Html<String>, AppError> {
    let outside = &state.outside;
    let reading = outside.deployments.get(&outside.changes, read_outside(&state)).await;
    let Readings { running, images, scaling, since, staging, releases } = &*reading.value;
    let digests: Vec<String> =
        images.as_ref().map(|l| l.iter().map(|i| i.digest.clone()).collect()).unwrap_or_default();
    let tag = match (running, images) {
        (Ok(s), Ok(list)) => tag_of(list, &s.image),
        _ => None,
    };
    // The console's own reads at once, each on its own connection.
    let (service, staging_app) = (state.config.service_target(), state.config.staging_target());
    let (passes, history, deployed_by, active, staging_active) = tokio::try_join!(
        staging::passes(&state.pool, &digests),
        runs::history_page(&state.pool, Area::Deployments, &q, HISTORY_PAGE),
        async {
            match &tag {
                Some(tag) => runs::last_success_with_tag(&state.pool, tag).await,
                None => Ok(None),
            }
        },
        runs::active_on(&state.pool, &service),
        runs::active_on(&state.pool, &staging_app),
    )?;
    render(&DeploymentsPage {
        shell: Shell::new(&state, &user, Area::Deployments, "Deployments"),
        drop: state.config.drop.clone(),
        region: state.config.aws.region.clone().unwrap_or_else(|| "not configured".into()),
        since: *since,
        running: running.clone(),
        images: images.clone(),
        scaling: scaling.clone(),
        deployed_by,
        active,
        history: history.runs,
        staging: staging.clone(),
        releases: releases.clone(),
        passes,
        staging_active,
        next: history.next,
        read_at: reading.taken_at,
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

/// What the service runs now, as every deployment plan needs it.
struct Serving {
    /// The image reference App Runner is set to.
    reference: String,
    /// That image in ECR, resolved through it (a tag names one image), or unknown: never a guess.
    image: Option<Image>,
    /// What a redeploy of the same reference (restart) will report as its version.
    tag: String,
    images: Vec<Image>,
}

impl Serving {
    async fn read(state: &AppState) -> Result<Self, AppError> {
        let (running, images) = tokio::join!(
            bounded(LIMIT, state.cloud.app_runner.service_status()),
            bounded(LIMIT, state.cloud.ecr.images())
        );
        let running = running.map_err(|e| {
            AppError::Unavailable(format!("What runs now cannot be read, so nothing can be planned: {e}"))
        })?;
        let images = images.map_err(|e| AppError::Unavailable(format!("The images in ECR cannot be read: {e}")))?;
        Ok(Self {
            image: image_of(&images, &running.image).cloned(),
            tag: tag_of(&images, &running.image)
                .or_else(|| reference_tag(&running.image))
                .unwrap_or_else(|| "unknown".into()),
            reference: running.image,
            images,
        })
    }

    /// The tagged image chosen on the deployments page.
    fn chosen(&self, digest: &str) -> Result<Image, AppError> {
        self.images
            .iter()
            .find(|i| i.digest == digest && !i.tags.is_empty())
            .cloned()
            .ok_or_else(|| AppError::Validation("Choose a tagged image from the list on the deployments page.".into()))
    }
}

/// The parameters of a run that puts `image` in place.
fn image_params(state: &AppState, image: &Image, snapshot_id: Option<String>) -> Result<ImageParams, AppError> {
    Ok(ImageParams {
        image: image_reference(state, &image.digest)?,
        digest: image.digest.clone(),
        tag: image.tag().to_owned(),
        snapshot_id,
        staging: None,
    })
}

/// The runs of the deployments page: deploy, rollback, rolling and emergency restart, scale.
pub struct Deployments;

impl Proposer for Deployments {
    const PAGE: &'static str = "/deployments/confirm";

    async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
        propose(state, form).await
    }
}

/// The confirmation of a deployment run, worked out from what runs now and the choice made.
async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
    let run = RunId::from_form(&form.run)?;
    let unknown = || AppError::Validation("Choose deploy, rollback, restart, emergency restart or scale.".into());
    let procedure = Procedure::parse(&form.procedure).ok_or_else(unknown)?;
    if procedure.area() != Area::Deployments {
        return Err(unknown());
    }
    if matches!(procedure, Procedure::StagingDeploy | Procedure::StagingRollback) {
        return propose_staging(state, form, run, procedure).await;
    }
    let serving = Serving::read(state).await?;
    let service = state.config.drop.service_name();
    // A rolling restart of what runs now; each other procedure says what it changes.
    let mut p = Proposal {
        procedure: Procedure::Restart,
        heading: "Rolling restart of production".to_owned(),
        impact: Impact::Restart { tag: serving.tag.clone() },
        environment: state.config.service_environment(),
        facts: vec![Fact::Running(serving.image.clone(), serving.reference.clone())],
        understand: None,
        reason: ReasonRule::Optional,
        reason_example: "e.g. release 2026-11-29, fixes payout retries",
        scale: None,
        staging: None,
        action: "/deployments/runs",
        new: NewRun::production(
            run,
            state.config.service_target(),
            RunParams::Restart(RestartParams { tag: serving.tag.clone() }),
            Plan::restart(service, &serving.tag),
        ),
    };
    match procedure {
        Procedure::Restart => {}
        Procedure::Deploy => {
            let image = serving.chosen(&form.digest)?;
            let snapshot = format!("{}-pre-deploy-{}", state.config.drop.instance(), run.stamp());
            p.heading = format!("Deploy {} to production", image.tag());
            p.impact = Impact::Deploy { rollback_to: serving.image.as_ref().map(|_| serving.tag.clone()) };
            if serving.image.is_none() {
                p.understand = Some(Understand {
                    statement: "I understand the image running now is unknown, so a failed deploy cannot be rolled back automatically.",
                    missing: "Tick the box to confirm that you deploy without an automatic rollback.",
                });
            }
            p.reason = ReasonRule::Required("why you deploy (the release, the fix): it goes to the audit log");
            p.new.plan = Plan::deploy(service, image.tag(), &snapshot, state.config.runs.maintenance_window_minutes);
            let gate = staging_gate(state, &image).await?;
            let mut params = image_params(state, &image, Some(snapshot))?;
            params.staging = gate.passed.clone();
            p.new.params = RunParams::Deploy(params);
            p.staging = Some(gate);
            p.facts.push(Fact::WillRun(image));
        }
        Procedure::Rollback => {
            let image = serving.chosen(&form.digest)?;
            p.heading = format!("Roll back production to {}", image.tag());
            p.impact = Impact::Rollback { to: image.tag().to_owned(), replaces: serving.tag.clone() };
            p.new.plan = Plan::rollback(service, image.tag());
            p.new.params = RunParams::Rollback(image_params(state, &image, None)?);
            p.facts.push(Fact::WillRun(image));
        }
        Procedure::EmergencyRestart => {
            p.heading = "Emergency restart of production".to_owned();
            p.impact = Impact::EmergencyRestart;
            p.understand = Some(Understand {
                statement: "I understand Drop is down for every user until the service has resumed.",
                missing: "Tick the box to confirm that Drop will be down during the restart.",
            });
            p.new.plan = Plan::emergency_restart(service, &serving.tag);
            p.new.params = RunParams::EmergencyRestart(RestartParams { tag: serving.tag.clone() });
        }
        Procedure::Scale => {
            let now = bounded(LIMIT, state.cloud.app_runner.scaling()).await.ok();
            let choice = scale_choice(form, now);
            let s = choice.chosen.unwrap_or(Scaling { min: 1, max: 4 });
            p.heading = "Change production auto-scaling".to_owned();
            p.impact = Impact::Scale;
            let capacity = bounded(LIMIT, state.cloud.cloudwatch.capacity()).await.ok().flatten();
            p.scale = Some(ScaleChoice { now, error: choice.error, capacity });
            let down = now.is_none_or(|n| s.min < n.min || s.max < n.max);
            p.new.plan = Plan::scale(service, s, down);
            p.new.params = RunParams::Scale(ScaleParams { min: s.min, max: s.max });
        }
        _ => return Err(unknown()),
    }
    p.procedure = procedure;
    Ok(p)
}

/// Whether `image` passed staging: a staging run recorded it, or staging runs it healthily now
/// (deployed there by CI). Otherwise the confirmation asks for "skip staging" and a reason.
async fn staging_gate(state: &AppState, image: &Image) -> Result<StagingGate, AppError> {
    let deploy_there = state
        .cloud
        .staging
        .as_ref()
        .map(|_| format!("/deployments/confirm?procedure=staging_deploy&digest={}", image.digest));
    if let Some(pass) = staging::passes(&state.pool, std::slice::from_ref(&image.digest)).await?.pop() {
        let passed = StagingCheck::Passed { run_id: pass.run_id, passed_at: pass.passed_at };
        return Ok(StagingGate { passed: Some(passed), unknown: None, deploy_there });
    }
    let Some(fly) = &state.cloud.staging else {
        let unknown = "Fly.io is not connected (fly.token), so whether this image ran on staging is not known.";
        return Ok(StagingGate { passed: None, unknown: Some(unknown.into()), deploy_there });
    };
    Ok(match bounded(LIMIT, fly.machines()).await {
        Ok(machines) if fly::runs_healthily(&machines, &image.tags) => {
            StagingGate { passed: Some(StagingCheck::SeenHealthy { seen_at: Utc::now() }), unknown: None, deploy_there }
        }
        Ok(_) => StagingGate { passed: None, unknown: None, deploy_there },
        Err(e) => StagingGate {
            passed: None,
            unknown: Some(format!("Staging's machines cannot be read ({e}), and no staging run recorded this image.")),
            deploy_there,
        },
    })
}

/// The confirmation of a staging run: an image from ECR (by digest, or by tag when rolling
/// back to what ran before a run) to Fly.io staging. Production is not read or touched.
async fn propose_staging(
    state: &AppState,
    form: &RunForm,
    run: RunId,
    procedure: Procedure,
) -> Result<Proposal, AppError> {
    let Some(fly) = &state.cloud.staging else {
        return Err(AppError::Unavailable(
            "Fly.io is not connected (set fly.token), so staging cannot be changed from the console.".into(),
        ));
    };
    let (machines, images) = tokio::join!(bounded(LIMIT, fly.machines()), bounded(LIMIT, state.cloud.ecr.images()));
    let machines = machines.map_err(|e| {
        AppError::Unavailable(format!("Staging's machines cannot be read, so nothing can be planned: {e}"))
    })?;
    let images = images.map_err(|e| AppError::Unavailable(format!("The images in ECR cannot be read: {e}")))?;
    let image = images
        .into_iter()
        .filter(|i| !i.tags.is_empty())
        .find(|i| if form.digest.is_empty() { i.tags.contains(&form.tag) } else { i.digest == form.digest })
        .ok_or_else(|| AppError::Validation("Choose a tagged image from the list on the deployments page.".into()))?;
    let app = state.config.drop.staging_app();
    let tag = image.tag().to_owned();
    let now = machines.first().and_then(|m| m.tag.clone()).unwrap_or_else(|| "unknown".into());
    let health = state.config.drop.staging_health_url.as_deref().unwrap_or("https://drop-staging.fly.dev/api/health");
    let params = StagingParams {
        app: app.to_owned(),
        image: state.config.staging_image(&tag),
        tag: tag.clone(),
        digest: image.digest.clone(),
    };
    let (heading, params) = match procedure {
        Procedure::StagingRollback => (format!("Roll staging back to {tag}"), RunParams::StagingRollback(params)),
        _ => (format!("Deploy {tag} to staging"), RunParams::StagingDeploy(params)),
    };
    Ok(Proposal {
        procedure,
        heading,
        impact: Impact::Staging { to: tag.clone(), replaces: now },
        environment: format!("staging — Fly.io app {app}"),
        facts: vec![
            Fact::Text("Staging runs now", fly::summary(&machines)),
            Fact::Code("Staging pulls", state.config.staging_image(&tag)),
            Fact::WillRun(image),
        ],
        understand: None,
        reason: ReasonRule::Optional,
        reason_example: "e.g. try the payout retry fix before production",
        scale: None,
        staging: None,
        action: "/deployments/runs",
        new: NewRun::staging(
            run,
            state.config.staging_target(),
            params,
            Plan::staging(app, &tag, machines.len(), health),
        ),
    })
}

/// The instance bounds asked for: typed, or App Runner's as they are when nothing was typed.
struct Chosen {
    chosen: Option<Scaling>,
    error: Option<String>,
}

fn scale_choice(form: &RunForm, now: Option<Scaling>) -> Chosen {
    match (form.min.trim().parse::<i32>(), form.max.trim().parse::<i32>()) {
        (Ok(min), Ok(max)) if (1..=25).contains(&min) && (min..=25).contains(&max) => {
            Chosen { chosen: Some(Scaling { min, max }), error: None }
        }
        _ if form.min.trim().is_empty() && form.max.trim().is_empty() => Chosen { chosen: now, error: None },
        _ => Chosen {
            chosen: now,
            error: Some("Give whole numbers: at least 1 instance, at most 25, minimum not above maximum.".into()),
        },
    }
}

//! The steps procedures are made of. Every step reads the current state before it acts, so a
//! step resumed after a crash (its intent written, its outcome not) finds what it already did
//! instead of doing it again: snapshot ids and secret versions are client tokens, and an App
//! Runner operation started by the step is found again by its start time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::params::DrillParams;
use super::{Run, Step};
use crate::cloud::{CloudError, Environment, Operation, Scaling, pinned, tag_of};
use crate::state::AppState;

/// What a step does, as stored in `console.run_steps.name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// The service is RUNNING; records what runs before the change.
    Precheck,
    /// Start the pre-deploy snapshot (its id is the client token).
    Snapshot,
    WaitSnapshot,
    OpenWindow,
    /// Point the service at the run's image; App Runner deploys it.
    DeployImage,
    /// Redeploy the image the service is set to (rolling restart, rotations).
    Redeploy,
    WaitDeployment,
    VerifyHealth,
    /// Automatic rollback after failed health: point at the image that ran before.
    RollbackImage,
    WaitRollback,
    VerifyRollback,
    CloseWindow,
    Pause,
    WaitPaused,
    Resume,
    WaitResumed,
    SetScaling,
    WaitScaling,
    /// Generate a new value and store it as the secret's pending version (never regenerated).
    StageSecret,
    /// Set the RDS master password to the one in the pending DATABASE_URL.
    SetDbPassword,
    WaitDbAvailable,
    /// Make the pending version current: the app reads it on its next deployment.
    PromoteSecret,
    /// Restore a snapshot to the drill's temporary instance (its name is the client token).
    RestoreDrill,
    WaitDrillAvailable,
    /// Delete the drill's temporary instance (runs even after a failure: no instance is left).
    DeleteDrill,
    WaitDrillDeleted,
}

impl StepKind {
    pub const ALL: [StepKind; 26] = [
        StepKind::Precheck,
        StepKind::Snapshot,
        StepKind::WaitSnapshot,
        StepKind::OpenWindow,
        StepKind::DeployImage,
        StepKind::Redeploy,
        StepKind::WaitDeployment,
        StepKind::VerifyHealth,
        StepKind::RollbackImage,
        StepKind::WaitRollback,
        StepKind::VerifyRollback,
        StepKind::CloseWindow,
        StepKind::Pause,
        StepKind::WaitPaused,
        StepKind::Resume,
        StepKind::WaitResumed,
        StepKind::SetScaling,
        StepKind::WaitScaling,
        StepKind::StageSecret,
        StepKind::SetDbPassword,
        StepKind::WaitDbAvailable,
        StepKind::PromoteSecret,
        StepKind::RestoreDrill,
        StepKind::WaitDrillAvailable,
        StepKind::DeleteDrill,
        StepKind::WaitDrillDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Precheck => "precheck",
            StepKind::Snapshot => "snapshot",
            StepKind::WaitSnapshot => "wait_snapshot",
            StepKind::OpenWindow => "open_window",
            StepKind::DeployImage => "deploy_image",
            StepKind::Redeploy => "redeploy",
            StepKind::WaitDeployment => "wait_deployment",
            StepKind::VerifyHealth => "verify_health",
            StepKind::RollbackImage => "rollback_image",
            StepKind::WaitRollback => "wait_rollback",
            StepKind::VerifyRollback => "verify_rollback",
            StepKind::CloseWindow => "close_window",
            StepKind::Pause => "pause",
            StepKind::WaitPaused => "wait_paused",
            StepKind::Resume => "resume",
            StepKind::WaitResumed => "wait_resumed",
            StepKind::SetScaling => "set_scaling",
            StepKind::WaitScaling => "wait_scaling",
            StepKind::StageSecret => "stage_secret",
            StepKind::SetDbPassword => "set_db_password",
            StepKind::WaitDbAvailable => "wait_db_available",
            StepKind::PromoteSecret => "promote_secret",
            StepKind::RestoreDrill => "restore_drill",
            StepKind::WaitDrillAvailable => "wait_drill_available",
            StepKind::DeleteDrill => "delete_drill",
            StepKind::WaitDrillDeleted => "wait_drill_deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the step is a point of no return: once it has started, stopping the run
    /// would leave production inconsistent, so the run may no longer be cancelled and finishes
    /// on its own. The text says what stopping would leave behind.
    pub fn commits(self) -> Option<&'static str> {
        match self {
            StepKind::SetDbPassword => Some(
                "RDS would keep the new password while the app's DATABASE_URL holds the old one, and the next restart of Drop could not connect",
            ),
            StepKind::PromoteSecret => {
                Some("the new secret would be current while the app still runs with the old one")
            }
            StepKind::DeployImage | StepKind::RollbackImage | StepKind::Redeploy => {
                Some("the new version would go live with no health check and no automatic rollback")
            }
            StepKind::SetScaling => Some("the scaling change would be applied without being checked"),
            _ => None,
        }
    }

    /// For a step that waits for an App Runner operation: the steps that may have started it.
    pub fn started_by(self) -> &'static [StepKind] {
        match self {
            StepKind::WaitRollback => &[StepKind::RollbackImage],
            StepKind::WaitPaused => &[StepKind::Pause],
            StepKind::WaitResumed => &[StepKind::Resume],
            StepKind::WaitScaling => &[StepKind::SetScaling],
            StepKind::WaitDeployment => &[StepKind::DeployImage, StepKind::Redeploy],
            _ => &[],
        }
    }

    /// The audit action of the step's intent and outcome.
    pub fn action(self) -> &'static str {
        match self {
            StepKind::Precheck => "run_precheck",
            StepKind::Snapshot => "rds_snapshot_create",
            StepKind::WaitSnapshot | StepKind::WaitDeployment | StepKind::WaitRollback => "run_wait",
            StepKind::WaitPaused | StepKind::WaitResumed | StepKind::WaitScaling | StepKind::WaitDbAvailable => {
                "run_wait"
            }
            StepKind::OpenWindow => "maintenance_window_open",
            StepKind::CloseWindow => "maintenance_window_close",
            StepKind::DeployImage => "apprunner_deploy_image",
            StepKind::RollbackImage => "apprunner_rollback_image",
            StepKind::Redeploy => "apprunner_start_deployment",
            StepKind::VerifyHealth | StepKind::VerifyRollback => "run_verify_health",
            StepKind::Pause => "apprunner_pause",
            StepKind::Resume => "apprunner_resume",
            StepKind::SetScaling => "apprunner_set_scaling",
            StepKind::StageSecret => "secret_value_staged",
            StepKind::SetDbPassword => "rds_master_password_set",
            StepKind::PromoteSecret => "secret_rotated",
            StepKind::RestoreDrill => "rds_restore_drill_start",
            StepKind::WaitDrillAvailable | StepKind::WaitDrillDeleted => "run_wait",
            StepKind::DeleteDrill => "rds_restore_drill_delete",
        }
    }
}

pub struct PlannedStep {
    pub kind: StepKind,
    pub title: String,
    pub always: bool,
}

/// The ordered steps of a run.
#[derive(Default)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    fn step(mut self, kind: StepKind, title: impl Into<String>) -> Self {
        self.steps.push(PlannedStep { kind, title: title.into(), always: false });
        self
    }

    /// A step that runs even after an earlier one failed.
    fn cleanup(mut self, kind: StepKind, title: impl Into<String>) -> Self {
        self.steps.push(PlannedStep { kind, title: title.into(), always: true });
        self
    }

    /// runbook §3: snapshot, maintenance window, deploy, poll, verify, close.
    pub fn deploy(service: &str, tag: &str, snapshot: &str, window_minutes: u32) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(StepKind::Snapshot, format!("Take the pre-deploy RDS snapshot {snapshot}"))
            .step(StepKind::WaitSnapshot, "Wait until the snapshot is available")
            .step(StepKind::OpenWindow, format!("Open a {window_minutes}-minute monitoring maintenance window"))
            .step(StepKind::DeployImage, format!("Point {service} at image {tag} and start the deployment"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .cleanup(StepKind::CloseWindow, "Close the maintenance window")
    }

    /// What a failed deploy health check appends: back to the image that ran before.
    pub fn automatic_rollback(service: &str, previous_tag: &str) -> Self {
        // Added after a failure, so they run as clean-up steps do.
        Plan::default()
            .cleanup(
                StepKind::RollbackImage,
                format!("Roll back: point {service} at the previous image {previous_tag}"),
            )
            .cleanup(StepKind::WaitRollback, format!("Wait until {service} is RUNNING again"))
            .cleanup(StepKind::VerifyRollback, format!("Verify health reports ok and version {previous_tag}"))
    }

    /// runbook §3 rollback: point at an earlier image, deploy, poll, verify.
    pub fn rollback(service: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(StepKind::DeployImage, format!("Point {service} at image {tag} and start the deployment"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
    }

    /// Rolling restart: redeploy the same image, no downtime.
    pub fn restart(service: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(StepKind::Redeploy, format!("Start a deployment of the running image {tag}"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
    }

    /// Emergency restart: pause, then resume. Drop is down in between.
    pub fn emergency_restart(service: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Pause, format!("Pause {service} (Drop stops answering)"))
            .step(StepKind::WaitPaused, format!("Wait until {service} is PAUSED"))
            .cleanup(StepKind::Resume, format!("Resume {service}"))
            .cleanup(StepKind::WaitResumed, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
    }

    /// runbook §4, JWT_SECRET: new value, make it current, redeploy so the app reads it.
    pub fn rotate_jwt_secret(service: &str, secret_id: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(
                StepKind::StageSecret,
                format!("Generate 48 random bytes and store them as the pending version of {secret_id}"),
            )
            .step(StepKind::PromoteSecret, format!("Make the new value of {secret_id} current"))
            .step(
                StepKind::Redeploy,
                format!("Redeploy {service} ({tag}) so the app reads it: every Drop user is signed out"),
            )
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
    }

    /// runbook §4, database master password. The new DATABASE_URL is stored (pending) before
    /// RDS changes, so a stopped run always resumes with the same password.
    pub fn rotate_db_password(service: &str, instance: &str, secret_id: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(
                StepKind::StageSecret,
                format!(
                    "Generate a 32-byte password and store the new DATABASE_URL as the pending version of {secret_id}"
                ),
            )
            .step(
                StepKind::SetDbPassword,
                format!("Set the master password of RDS instance {instance} (applied immediately)"),
            )
            .step(StepKind::WaitDbAvailable, format!("Wait until {instance} is available"))
            .step(StepKind::PromoteSecret, format!("Make the new DATABASE_URL in {secret_id} current"))
            .step(StepKind::Redeploy, format!("Redeploy {service} ({tag}) so the app connects with the new password"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
    }

    /// runbook §5: a manual snapshot, waited for.
    pub fn snapshot(instance: &str, snapshot: &str) -> Self {
        Plan::default()
            .step(StepKind::Snapshot, format!("Take the manual RDS snapshot {snapshot} of {instance}"))
            .step(StepKind::WaitSnapshot, "Wait until the snapshot is available")
    }

    /// runbook §2 monthly: prove a snapshot restores — restore it to a temporary instance,
    /// check it, delete it.
    pub fn restore_drill(snapshot: &str, drill: &str) -> Self {
        Plan::default()
            .step(StepKind::RestoreDrill, format!("Restore snapshot {snapshot} to the temporary instance {drill}"))
            .step(
                StepKind::WaitDrillAvailable,
                format!("Wait until {drill} is available and check its engine and storage"),
            )
            .cleanup(StepKind::DeleteDrill, format!("Delete {drill} (no final snapshot)"))
            .cleanup(StepKind::WaitDrillDeleted, format!("Wait until {drill} is gone"))
    }

    pub fn scale(service: &str, scaling: Scaling) -> Self {
        Plan::default()
            .step(
                StepKind::SetScaling,
                format!("Set {service} auto-scaling to {} – {} instances", scaling.min, scaling.max),
            )
            .step(StepKind::WaitScaling, format!("Wait until {service} is RUNNING with the new bounds"))
    }
}

/// What one attempt at a step came to.
pub enum Progress {
    /// Finished; the facts it learned are merged into the run's.
    Done(Value),
    /// Not yet (an operation in progress); try again after the poll interval.
    Waiting(String),
    Failed(String),
}

/// Everything a step may read.
pub struct StepContext<'a> {
    pub state: &'a AppState,
    pub run: &'a Run,
    pub step: &'a Step,
}

impl StepContext<'_> {
    fn fact(&self, key: &str) -> Option<&str> {
        self.run.facts[key].as_str().or_else(|| self.step.state[key].as_str())
    }

    fn started(&self) -> DateTime<Utc> {
        self.step.started_at.unwrap_or_else(Utc::now)
    }

    /// The step has been at it longer than `limit`.
    pub(crate) fn overdue(&self, limit: Duration) -> bool {
        (Utc::now() - self.started()).to_std().unwrap_or_default() > limit
    }

    fn service(&self) -> String {
        self.state.config.drop.service_name().to_owned()
    }
}

/// A cloud error during a step: a passing trouble (throttling, no answer) is waited out until
/// the step's deadline; anything else fails the step.
pub(crate) fn trouble(cx: &StepContext<'_>, limit: Duration, e: CloudError) -> Progress {
    let passing = matches!(e, CloudError::Throttled | CloudError::TimedOut(_) | CloudError::Unreachable(_));
    if passing && !cx.overdue(limit) {
        Progress::Waiting(format!("{e}; trying again"))
    } else {
        Progress::Failed(e.to_string())
    }
}

/// Attempt a step once.
pub async fn attempt(cx: &StepContext<'_>, kind: StepKind) -> Progress {
    let cloud = &cx.state.cloud;
    let runs = &cx.state.config.runs;
    match kind {
        StepKind::Precheck => {
            if cx.run.procedure() == Some(super::Procedure::Deploy) {
                if let Some(why) = ci_is_not_green(cx).await {
                    return Progress::Failed(why);
                }
            }
            precheck(cx).await
        }
        StepKind::Snapshot => {
            let Some(id) = cx.run.params.snapshot_id() else {
                return Progress::Failed("the run names no snapshot".into());
            };
            // The snapshot id is the client token: asking again takes no second snapshot.
            match cloud.rds.create_snapshot(id).await {
                Ok(()) => Progress::Done(json!({ "snapshot_id": id })),
                Err(e) => trouble(cx, cx.state.config.runs.retry_limit, e),
            }
        }
        StepKind::WaitSnapshot => {
            let Some(id) = cx.run.params.snapshot_id() else {
                return Progress::Failed("the run names no snapshot".into());
            };
            match cloud.rds.snapshot(id).await {
                Ok(Some(s)) if s.status == "available" => Progress::Done(json!({})),
                Ok(Some(s)) if matches!(s.status.as_str(), "failed" | "deleted" | "deleting") => Progress::Failed(
                    format!("snapshot {id} is {}: the deploy stops before touching the service", s.status),
                ),
                _ if cx.overdue(runs.snapshot_timeout) => Progress::Failed(format!(
                    "snapshot {id} was not available after {} min: the deploy stops before touching the service",
                    runs.snapshot_timeout.as_secs() / 60
                )),
                Ok(Some(s)) => Progress::Waiting(format!("snapshot {id} is {}", s.status)),
                Ok(None) => Progress::Waiting(format!("snapshot {id} is not listed yet")),
                Err(e) => trouble(cx, runs.snapshot_timeout, e),
            }
        }
        StepKind::OpenWindow => open_window(cx).await,
        StepKind::CloseWindow => close_window(cx).await,
        StepKind::DeployImage => {
            let Some(image) = cx.run.params.image().map(|i| i.image.as_str()) else {
                return Progress::Failed("the run names no image".into());
            };
            start_operation(cx, "operation_id", &["UPDATE_SERVICE", "START_DEPLOYMENT"], async || {
                cloud.app_runner.deploy_image(image).await
            })
            .await
        }
        StepKind::RollbackImage => {
            let Some(image) = cx.fact("previous_image").map(str::to_owned) else {
                return Progress::Failed(
                    "the image that ran before is not known, so there is nothing to roll back to".into(),
                );
            };
            start_operation(cx, "rollback_operation_id", &["UPDATE_SERVICE", "START_DEPLOYMENT"], async || {
                cloud.app_runner.deploy_image(&image).await
            })
            .await
        }
        StepKind::Redeploy => {
            start_operation(cx, "operation_id", &["START_DEPLOYMENT"], async || {
                cloud.app_runner.start_deployment().await
            })
            .await
        }
        StepKind::Pause => {
            start_operation(cx, "pause_operation_id", &["PAUSE_SERVICE"], async || cloud.app_runner.pause().await).await
        }
        StepKind::Resume => {
            // A clean-up step: after a pause that never happened there is nothing to resume.
            if cx.fact("pause_operation_id").is_none() && cx.step.state["resumed"].as_bool() != Some(true) {
                match cloud.app_runner.service_status().await {
                    Ok(s) if s.status != "PAUSED" => {
                        return Progress::Done(json!({ "resume": format!("not needed: the service is {}", s.status) }));
                    }
                    Ok(_) => {}
                    Err(e) => return trouble(cx, cx.state.config.runs.retry_limit, e),
                }
            }
            start_operation(cx, "resume_operation_id", &["RESUME_SERVICE"], async || cloud.app_runner.resume().await)
                .await
        }
        StepKind::SetScaling => {
            let Some(scaling) = cx.run.params.scaling() else {
                return Progress::Failed("the run names no scaling bounds".into());
            };
            start_operation(cx, "operation_id", &["UPDATE_SERVICE"], async || {
                cloud.app_runner.set_scaling(scaling).await
            })
            .await
        }
        StepKind::WaitDeployment | StepKind::WaitScaling => wait_operation(cx, "operation_id").await,
        StepKind::WaitRollback => wait_operation(cx, "rollback_operation_id").await,
        StepKind::WaitPaused => wait_operation(cx, "pause_operation_id").await,
        StepKind::WaitResumed => wait_operation(cx, "resume_operation_id").await,
        StepKind::VerifyHealth => match cx.run.params.tag() {
            Some(tag) => verify_health(cx, tag).await,
            None => match cx.fact("previous_tag").map(str::to_owned) {
                Some(tag) => verify_health(cx, &tag).await,
                None => Progress::Failed("the version to expect is not known".into()),
            },
        },
        StepKind::VerifyRollback => match cx.fact("previous_tag").map(str::to_owned) {
            Some(tag) => verify_health(cx, &tag).await,
            None => Progress::Failed("the version to expect is not known".into()),
        },
        StepKind::StageSecret => super::rotation::stage(cx).await,
        StepKind::SetDbPassword => super::rotation::set_db_password(cx).await,
        StepKind::WaitDbAvailable => super::rotation::wait_db_available(cx).await,
        StepKind::PromoteSecret => super::rotation::promote(cx).await,
        StepKind::RestoreDrill | StepKind::WaitDrillAvailable | StepKind::DeleteDrill | StepKind::WaitDrillDeleted => {
            restore_drill(cx, kind).await
        }
    }
}

/// Start an App Runner operation once. A resumed step first looks for the operation it may
/// already have started (App Runner has no client token): one of the same kind that began
/// after the step did.
async fn start_operation(
    cx: &StepContext<'_>,
    key: &str,
    kinds: &[&str],
    start: impl AsyncFnOnce() -> crate::cloud::CloudResult<String>,
) -> Progress {
    if let Some(id) = cx.step.state[key].as_str() {
        return Progress::Done(json!({ key: id }));
    }
    // Redone after a resume: the operation started last time is followed if it still runs.
    if let Some(previous) = cx.step.state["previous_operation_id"].as_str() {
        match cx.state.cloud.app_runner.operation(previous).await {
            Ok(Some(op)) if op.in_progress() => return Progress::Done(json!({ key: previous, "adopted": true })),
            Ok(_) => {}
            Err(e) => return trouble(cx, cx.state.config.runs.retry_limit, e),
        }
    }
    if cx.step.state["resumed"].as_bool() == Some(true) {
        // A little slack for the difference between AWS's clock and the database's.
        let since = cx.started() - chrono::Duration::seconds(2);
        let ops = match cx.state.cloud.app_runner.recent_operations().await {
            Ok(ops) => ops,
            Err(e) => return trouble(cx, cx.state.config.runs.retry_limit, e),
        };
        for op in ops.iter().filter(|o| kinds.contains(&o.kind.as_str()) && o.started_at >= since) {
            match super::operation_followed_elsewhere(&cx.state.pool, &op.id, cx.run.id).await {
                Ok(false) => return Progress::Done(json!({ key: op.id, "adopted": true })),
                Ok(true) => {}
                Err(e) => {
                    return Progress::Waiting(format!("the console's database did not answer ({e}); trying again"));
                }
            }
        }
    }
    match start().await {
        Ok(id) => Progress::Done(json!({ key: id })),
        Err(e) => trouble(cx, cx.state.config.runs.retry_limit, e),
    }
}

async fn wait_operation(cx: &StepContext<'_>, key: &str) -> Progress {
    let runs = &cx.state.config.runs;
    let Some(id) = cx.fact(key).map(str::to_owned) else {
        if cx.fact("resume").is_some_and(|r| r.starts_with("not needed")) {
            return Progress::Done(json!({}));
        }
        return Progress::Failed("the operation to wait for is not known".into());
    };
    match cx.state.cloud.app_runner.operation(&id).await {
        Ok(Some(op)) if op.succeeded() => Progress::Done(json!({ format!("{key}_status"): op.status })),
        Ok(Some(op)) if !op.in_progress() => Progress::Failed(operation_failed(&op)),
        _ if cx.overdue(runs.deploy_timeout) => Progress::Failed(format!(
            "App Runner operation {id} had not finished after {} min; check the App Runner console",
            runs.deploy_timeout.as_secs() / 60
        )),
        Ok(Some(op)) => Progress::Waiting(format!("App Runner {} is {}", op.kind, op.status)),
        Ok(None) => Progress::Waiting(format!("App Runner does not list operation {id} yet")),
        Err(e) => trouble(cx, runs.deploy_timeout, e),
    }
}

fn operation_failed(op: &Operation) -> String {
    format!(
        "App Runner {} ended {}; App Runner keeps the previous version serving. Read the service's event log and the application logs.",
        op.kind, op.status
    )
}

async fn verify_health(cx: &StepContext<'_>, tag: &str) -> Progress {
    let limit = cx.state.config.runs.health_timeout;
    let why = match cx.state.cloud.probes.app_health(Environment::Production).await {
        Ok(h) if h.ok && h.version == tag => {
            return Progress::Done(json!({ "health_version": h.version, "db_latency_ms": h.db_latency_ms }));
        }
        Ok(h) if !h.ok => format!("health reports an error (version {})", h.version),
        Ok(h) => format!("health reports version {}, not {tag}", h.version),
        Err(e) => e.to_string(),
    };
    if cx.overdue(limit) {
        Progress::Failed(format!("health was not ok with version {tag} within {} s: {why}", limit.as_secs()))
    } else {
        Progress::Waiting(why)
    }
}

async fn open_window(cx: &StepContext<'_>) -> Progress {
    let minutes = cx.state.config.runs.maintenance_window_minutes;
    let opened = super::db::open_window(&cx.state.pool, cx.run.id, minutes as i32).await;
    match opened {
        Ok(ends_at) => {
            let told = notify_window(cx, "opened", Some(ends_at)).await;
            Progress::Done(json!({ "window_ends_at": ends_at, "webhook": told }))
        }
        Err(e) => Progress::Failed(format!("the maintenance window could not be recorded: {e}")),
    }
}

async fn close_window(cx: &StepContext<'_>) -> Progress {
    match super::db::close_window(&cx.state.pool, cx.run.id).await {
        Ok(false) => Progress::Done(json!({ "window": "none was open" })),
        Ok(true) => Progress::Done(json!({ "webhook": notify_window(cx, "closed", None).await })),
        Err(e) => Progress::Failed(format!("the maintenance window could not be closed: {e}")),
    }
}

/// Tell the monitoring relay, when one is configured. Monitoring is told at least once (the
/// `Idempotency-Key` lets it drop a repeat); a relay that does not answer does not stop a
/// deploy, it is only noted in the step's state.
async fn notify_window(cx: &StepContext<'_>, event: &str, ends_at: Option<DateTime<Utc>>) -> &'static str {
    let Some(relay) = &cx.state.cloud.relay else { return "not configured" };
    let body = json!({
        "event": event,
        "run_id": cx.run.id,
        "service": cx.service(),
        "ends_at": ends_at,
        "reason": format!("{} by {}", cx.run.label(), cx.run.started_by_name),
    });
    match relay.tell(&format!("{}-{event}", cx.run.id), &body).await {
        Ok(()) => "told",
        Err(_) => "did not answer",
    }
}

/// Why CI does not allow this deploy, if it does not: the commit status of the image's tag
/// (its short sha) must be "success". `None` when CI is green or no CI check is configured.
async fn ci_is_not_green(cx: &StepContext<'_>) -> Option<String> {
    let ci = cx.state.cloud.ci.as_ref()?;
    let Some(tag) = cx.run.params.tag() else { return Some("the run names no commit to check CI for".into()) };
    let state = match ci.commit_state(tag).await {
        Ok(state) => state,
        Err(e) => return Some(format!("CI status for {tag} could not be read ({e}): nothing was changed")),
    };
    match state.as_deref() {
        Some("success") => None,
        Some(other) => Some(format!("CI is not green for {tag} (state: {other}): nothing was changed")),
        None => Some(format!("CI answered for {tag} without a state: nothing was changed")),
    }
}

/// The service is RUNNING; what runs now is noted (the rollback target of a failed deploy).
async fn precheck(cx: &StepContext<'_>) -> Progress {
    let cloud = &cx.state.cloud;
    match cloud.app_runner.service_status().await {
        Ok(s) if s.status == "RUNNING" => {
            let images = match cloud.ecr.images().await {
                Ok(images) => images,
                // Throttled or no answer: try again. ECR refusing (no such repository): the
                // image running now is then unknown, which is said, not guessed.
                Err(e)
                    if matches!(e, CloudError::Throttled | CloudError::TimedOut(_) | CloudError::Unreachable(_))
                        && !cx.overdue(cx.state.config.runs.retry_limit) =>
                {
                    return Progress::Waiting(format!("{e}; trying again"));
                }
                Err(_) => vec![],
            };
            // What a rollback would point at: the running image by digest (a tag can move).
            // Not resolvable in ECR: unknown, and no automatic rollback — never a guess.
            match pinned(&images, &s.image) {
                Some(image) => Progress::Done(json!({
                    "previous_image": image,
                    "previous_tag": tag_of(&images, &s.image).unwrap_or_else(|| "untagged".into()),
                })),
                None => Progress::Done(json!({ "previous_tag": "unknown", "previous_reference": s.image })),
            }
        }
        Ok(s) => Progress::Failed(format!(
            "{} is {}, not RUNNING: nothing was changed. Wait for the operation in progress, or resume a paused service first.",
            cx.service(),
            s.status
        )),
        Err(e) => trouble(cx, cx.state.config.runs.retry_limit, e),
    }
}

/// The steps of a restore drill. The temporary instance's name is fixed when the run is
/// created, so each step is safe to repeat: restoring or deleting it again is not an error.
async fn restore_drill(cx: &StepContext<'_>, kind: StepKind) -> Progress {
    let rds = &cx.state.cloud.rds;
    let limits = &cx.state.config.runs;
    let Some(DrillParams { from_snapshot: snapshot, drill_instance: drill }) = cx.run.params.drill() else {
        return Progress::Failed("the run names no snapshot or temporary instance".into());
    };
    match kind {
        StepKind::RestoreDrill => match rds.restore_to_instance(snapshot, drill).await {
            Ok(()) => Progress::Done(json!({ "restored_from": snapshot })),
            Err(e) => trouble(cx, limits.retry_limit, e),
        },
        StepKind::WaitDrillAvailable => match rds.instance_named(drill).await {
            Ok(Some(db)) if db.status == "available" => Progress::Done(json!({
                "drill_engine": db.engine, "drill_storage_gb": db.allocated_gb,
            })),
            Ok(Some(db))
                if matches!(db.status.as_str(), "failed" | "incompatible-restore" | "incompatible-parameters") =>
            {
                Progress::Failed(format!("the restored instance is {}: this snapshot does not restore", db.status))
            }
            _ if cx.overdue(limits.snapshot_timeout) => Progress::Failed(format!(
                "{drill} was not available after {} min",
                limits.snapshot_timeout.as_secs() / 60
            )),
            Ok(Some(db)) => Progress::Waiting(format!("{drill} is {}", db.status)),
            Ok(None) => Progress::Waiting(format!("{drill} is not listed yet")),
            Err(e) => trouble(cx, limits.snapshot_timeout, e),
        },
        StepKind::DeleteDrill => match rds.delete_instance(drill).await {
            Ok(()) => Progress::Done(json!({ "deleted": drill })),
            Err(e) => trouble(cx, limits.retry_limit, e),
        },
        _ => match rds.instance_named(drill).await {
            Ok(None) => Progress::Done(json!({})),
            _ if cx.overdue(limits.snapshot_timeout) => Progress::Failed(format!(
                "{drill} still exists: delete it in the RDS console so it stops costing money"
            )),
            Ok(Some(db)) => Progress::Waiting(format!("{drill} is {}", db.status)),
            Err(e) => trouble(cx, limits.snapshot_timeout, e),
        },
    }
}

//! The steps procedures are made of. Every step reads the current state before it acts, so a
//! step resumed after a crash (its intent written, its outcome not) finds what it already did
//! instead of doing it again: snapshot ids and secret versions are client tokens, and an App
//! Runner operation started by the step is found again by its start time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::facts::{Fact, Slot, learned};
use super::params::DrillParams;
use super::plan::StepKind;
use super::{Run, Step};
use crate::cloud::{CloudError, Environment, Operation, pinned, tag_of};
use crate::state::AppState;

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
    /// A fact of the run, or learned by this step in an earlier attempt.
    pub(crate) fn fact(&self, fact: Fact) -> Option<&str> {
        fact.of(&self.run.facts).or_else(|| fact.of(&self.step.state))
    }

    pub(crate) fn started(&self) -> DateTime<Utc> {
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
    if e.is_passing() && !cx.overdue(limit) {
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
        StepKind::Vacuum => super::vacuum::attempt(cx).await,
        StepKind::RaiseAlert | StepKind::WaitAcknowledged | StepKind::ResolveAlert => {
            super::escalation::attempt(cx, kind).await
        }
        StepKind::OpenWindow => open_window(cx).await,
        StepKind::CloseWindow => close_window(cx).await,
        StepKind::DeployImage => {
            let Some(image) = cx.run.params.image().map(|i| i.image.as_str()) else {
                return Progress::Failed("the run names no image".into());
            };
            start_operation(cx, Slot::Change, &["UPDATE_SERVICE", "START_DEPLOYMENT"], async || {
                cloud.app_runner.deploy_image(image).await
            })
            .await
        }
        StepKind::RollbackImage => {
            let Some(image) = cx.fact(Fact::PreviousImage).map(str::to_owned) else {
                return Progress::Failed(
                    "the image that ran before is not known, so there is nothing to roll back to".into(),
                );
            };
            start_operation(cx, Slot::Rollback, &["UPDATE_SERVICE", "START_DEPLOYMENT"], async || {
                cloud.app_runner.deploy_image(&image).await
            })
            .await
        }
        StepKind::Redeploy => {
            start_operation(cx, Slot::Change, &["START_DEPLOYMENT"], async || cloud.app_runner.start_deployment().await)
                .await
        }
        StepKind::Pause => {
            start_operation(cx, Slot::Pause, &["PAUSE_SERVICE"], async || cloud.app_runner.pause().await).await
        }
        StepKind::Resume => {
            // A clean-up step: after a pause that never happened there is nothing to resume.
            if cx.fact(Fact::Operation(Slot::Pause)).is_none() && cx.step.state["resumed"].as_bool() != Some(true) {
                match cloud.app_runner.service_status().await {
                    Ok(s) if s.status != "PAUSED" => {
                        return Progress::Done(learned([(
                            Fact::Resume,
                            format!("not needed: the service is {}", s.status).into(),
                        )]));
                    }
                    Ok(_) => {}
                    Err(e) => return trouble(cx, cx.state.config.runs.retry_limit, e),
                }
            }
            start_operation(cx, Slot::Resume, &["RESUME_SERVICE"], async || cloud.app_runner.resume().await).await
        }
        StepKind::SetScaling => {
            let Some(scaling) = cx.run.params.scaling() else {
                return Progress::Failed("the run names no scaling bounds".into());
            };
            start_operation(cx, Slot::Change, &["UPDATE_SERVICE"], async || cloud.app_runner.set_scaling(scaling).await)
                .await
        }
        StepKind::WaitDeployment | StepKind::WaitScaling => wait_operation(cx, Slot::Change).await,
        StepKind::WaitRollback => wait_operation(cx, Slot::Rollback).await,
        StepKind::WaitPaused => wait_operation(cx, Slot::Pause).await,
        StepKind::WaitResumed => wait_operation(cx, Slot::Resume).await,
        StepKind::VerifyHealth => match cx.run.params.tag() {
            Some(tag) => verify_health(cx, Environment::Production, Some(tag)).await,
            None => match cx.fact(Fact::PreviousTag).map(str::to_owned) {
                Some(tag) => verify_health(cx, Environment::Production, Some(&tag)).await,
                None => Progress::Failed("the version to expect is not known".into()),
            },
        },
        StepKind::VerifyServing => verify_health(cx, Environment::Production, None).await,
        StepKind::VerifyInstances => verify_instances(cx).await,
        StepKind::VerifyRollback => match cx.fact(Fact::PreviousTag).map(str::to_owned) {
            Some(tag) => verify_health(cx, Environment::Production, Some(&tag)).await,
            None => Progress::Failed("the version to expect is not known".into()),
        },
        StepKind::StagingPrecheck | StepKind::StagingUpdate | StepKind::StagingVerify => {
            super::staging::attempt(cx, kind).await
        }
        StepKind::StageSecret => super::rotation::stage(cx).await,
        StepKind::SetDbPassword => super::rotation::set_db_password(cx).await,
        StepKind::WaitDbAvailable => super::rotation::wait_db_available(cx).await,
        StepKind::PromoteSecret => super::rotation::promote(cx).await,
        StepKind::RestoreDrill | StepKind::WaitDrillAvailable | StepKind::DeleteDrill | StepKind::WaitDrillDeleted => {
            restore_drill(cx, kind).await
        }
        StepKind::VerifyDrillData => verify_drill_data(cx).await,
    }
}

/// Start an App Runner operation once. A resumed step first looks for the operation it may
/// already have started (App Runner has no client token): one of the same kind that began
/// after the step did.
async fn start_operation(
    cx: &StepContext<'_>,
    slot: Slot,
    kinds: &[&str],
    start: impl AsyncFnOnce() -> crate::cloud::CloudResult<String>,
) -> Progress {
    let key = Fact::Operation(slot).key();
    if let Some(id) = Fact::Operation(slot).of(&cx.step.state) {
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

async fn wait_operation(cx: &StepContext<'_>, slot: Slot) -> Progress {
    let runs = &cx.state.config.runs;
    let key = Fact::Operation(slot).key();
    let Some(id) = cx.fact(Fact::Operation(slot)).map(str::to_owned) else {
        if cx.fact(Fact::Resume).is_some_and(|r| r.starts_with("not needed")) {
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

/// Health of `environment` is ok within the health timeout, reporting version `tag` when one
/// is expected (a change that keeps the version, such as scaling, expects none).
pub(super) async fn verify_health(cx: &StepContext<'_>, environment: Environment, tag: Option<&str>) -> Progress {
    let limit = cx.state.config.runs.health_timeout;
    let why = match cx.state.cloud.probes.app_health(environment).await {
        Ok(h) if h.ok && tag.is_none_or(|t| h.version == t) => {
            return Progress::Done(json!({ "health_version": h.version, "db_latency_ms": h.db_latency_ms }));
        }
        Ok(h) if !h.ok => format!("health reports an error (version {})", h.version),
        Ok(h) => format!("health reports version {}, not {}", h.version, tag.unwrap_or_default()),
        Err(e) => e.to_string(),
    };
    let with = tag.map(|t| format!(" with version {t}")).unwrap_or_default();
    if cx.overdue(limit) {
        Progress::Failed(format!("health was not ok{with} within {} s: {why}", limit.as_secs()))
    } else {
        Progress::Waiting(why)
    }
}

/// After a scaling change: App Runner's active instances (CloudWatch) are within the bounds
/// the run set. The metric lags by a few minutes, so this waits up to the health timeout.
async fn verify_instances(cx: &StepContext<'_>) -> Progress {
    let Some(bounds) = cx.run.params.scaling() else {
        return Progress::Failed("the bounds to expect are not known".into());
    };
    let limit = cx.state.config.runs.health_timeout;
    let why = match cx.state.cloud.cloudwatch.capacity().await {
        Ok(Some(c)) if c.active_instances >= f64::from(bounds.min) && c.active_instances <= f64::from(bounds.max) => {
            return Progress::Done(json!({
                "active_instances": c.active_instances,
                "cpu_percent": c.cpu_percent,
                "memory_percent": c.memory_percent,
                Fact::Did.key(): format!("{:.0} active instance(s), within {} – {}", c.active_instances, bounds.min, bounds.max),
            }));
        }
        Ok(Some(c)) => format!("{:.0} active instance(s), outside {} – {}", c.active_instances, bounds.min, bounds.max),
        Ok(None) => "CloudWatch has published no instance count yet".to_owned(),
        Err(e) => e.to_string(),
    };
    if cx.overdue(limit) {
        Progress::Failed(format!("the instance count did not settle within {} s: {why}", limit.as_secs()))
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
            let monitors = pause_monitors(cx).await;
            let did = format!("maintenance window open until {} UTC; {monitors}", ends_at.format("%H:%M"));
            Progress::Done(json!({ "window_ends_at": ends_at, "webhook": told, Fact::Did.key(): did }))
        }
        Err(e) => Progress::Failed(format!("the maintenance window could not be recorded: {e}")),
    }
}

async fn close_window(cx: &StepContext<'_>) -> Progress {
    match super::db::close_window(&cx.state.pool, cx.run.id).await {
        Ok(false) => Progress::Done(json!({ "window": "none was open" })),
        Ok(true) => {
            let told = notify_window(cx, "closed", None).await;
            match resume_monitors(cx).await {
                Ok(monitors) => Progress::Done(
                    json!({ "webhook": told, Fact::Did.key(): format!("maintenance window closed; {monitors}") }),
                ),
                Err(waiting) => waiting,
            }
        }
        Err(e) => Progress::Failed(format!("the maintenance window could not be closed: {e}")),
    }
}

/// Pause Drop's BetterStack monitors for the window, each written down before it is paused;
/// one someone else paused is left as it is. What happened, in words for the run's log: a
/// monitor that could not be paused is a warning, never a reason to stop the change.
async fn pause_monitors(cx: &StepContext<'_>) -> String {
    let Some(monitoring) = &cx.state.cloud.monitoring else {
        return "BetterStack is not connected, so no monitor was paused".into();
    };
    let pool = &cx.state.pool;
    let listed = match monitoring.monitors().await {
        Ok(listed) => listed,
        Err(e) => {
            return format!(
                "WARNING: BetterStack could not be read ({e}): no monitor was paused, expect its alerts during the change"
            );
        }
    };
    let ours = super::db::window_monitors(pool, cx.run.id).await.unwrap_or_default();
    let (mut paused, mut left, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for m in listed {
        if m.paused && !ours.contains(&m.id) {
            left.push(m.name);
            continue;
        }
        let result = match super::db::note_paused(pool, cx.run.id, &m.id).await {
            Ok(()) => monitoring.set_paused(&m.id, true).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("not recorded: {e}")),
        };
        match result {
            Ok(()) => paused.push(m.name),
            Err(e) => failed.push(format!("{} ({e})", m.name)),
        }
    }
    let mut words = if paused.is_empty() {
        "no monitor paused".to_owned()
    } else {
        format!("paused at BetterStack: {}", paused.join(", "))
    };
    if !left.is_empty() {
        words.push_str(&format!("; already paused by someone else, left as they are: {}", left.join(", ")));
    }
    if !failed.is_empty() {
        words.push_str(&format!("; WARNING: not paused: {}, expect their alerts during the change", failed.join(", ")));
    }
    words
}

/// Resume the monitors the window paused. Throttling or no answer is retried until the step's
/// retry limit (`Err`: keep waiting); after that, or on a refusal, a warning naming the monitors
/// still paused — the run carries on, and a person resumes them.
async fn resume_monitors(cx: &StepContext<'_>) -> Result<String, Progress> {
    let ids = super::db::window_monitors(&cx.state.pool, cx.run.id).await.unwrap_or_default();
    let Some(monitoring) = &cx.state.cloud.monitoring else {
        return Ok(if ids.is_empty() {
            "no monitor to resume".into()
        } else {
            format!("WARNING: BetterStack is no longer connected: resume monitors {} by hand", ids.join(", "))
        });
    };
    if ids.is_empty() {
        return Ok("no monitor to resume".into());
    }
    let names = monitoring.monitors().await.unwrap_or_default();
    let name = |id: &str| names.iter().find(|m| m.id == id).map_or_else(|| id.to_owned(), |m| m.name.clone());
    let (mut resumed, mut failed) = (Vec::new(), Vec::new());
    for id in &ids {
        match monitoring.set_paused(id, false).await {
            Ok(()) => resumed.push(name(id)),
            Err(e) => {
                if e.is_passing() && !cx.overdue(cx.state.config.runs.retry_limit) {
                    return Err(Progress::Waiting(format!("BetterStack: {e}; trying again to resume {}", name(id))));
                }
                failed.push(format!("{} ({e})", name(id)));
            }
        }
    }
    let mut words = format!(
        "monitors resumed at BetterStack: {}",
        if resumed.is_empty() { "none".into() } else { resumed.join(", ") }
    );
    if !failed.is_empty() {
        words.push_str(&format!("; WARNING: still paused: {}, resume them at BetterStack by hand", failed.join(", ")));
    }
    Ok(words)
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
                Err(e) if e.is_passing() && !cx.overdue(cx.state.config.runs.retry_limit) => {
                    return Progress::Waiting(format!("{e}; trying again"));
                }
                Err(_) => vec![],
            };
            // What a rollback would point at: the running image by digest (a tag can move).
            // Not resolvable in ECR: unknown, and no automatic rollback — never a guess.
            match pinned(&images, &s.image) {
                Some(image) => Progress::Done(learned([
                    (Fact::PreviousImage, image.into()),
                    (Fact::PreviousTag, tag_of(&images, &s.image).unwrap_or_else(|| "untagged".into()).into()),
                ])),
                None => Progress::Done(learned([
                    (Fact::PreviousTag, "unknown".into()),
                    (Fact::PreviousReference, s.image.into()),
                ])),
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
/// The copy holds Drop's data: Drop's main tables compared with production within the
/// tolerance, as the configured read-only role. The time from the run's start is its RTO.
async fn verify_drill_data(cx: &StepContext<'_>) -> Progress {
    let config = &cx.state.config;
    let limits = &config.runs;
    let Some(DrillParams { drill_instance: drill, .. }) = cx.run.params.drill() else {
        return Progress::Failed("the run names no temporary instance".into());
    };
    let endpoint = match cx.state.cloud.rds.instance_endpoint(drill).await {
        Ok(Some(endpoint)) => endpoint,
        Ok(None) if cx.overdue(limits.retry_limit) => return Progress::Failed(format!("{drill} has no endpoint")),
        Ok(None) => return Progress::Waiting(format!("{drill} has no endpoint yet")),
        Err(e) => return trouble(cx, limits.retry_limit, e),
    };
    let copy = match &endpoint {
        crate::cloud::Endpoint::Simulated => cx.state.pool.clone(),
        crate::cloud::Endpoint::At { host, port } => {
            let (Some(user), Some(password)) = (&limits.drill_user, &limits.drill_password) else {
                return Progress::Failed(
                    "the copy cannot be checked: set runs.drill_user and runs.drill_password (a read-only role that exists in production, and so in every restored copy)"
                        .into(),
                );
            };
            match super::drill::connect(host, *port, config.drop.database(), user, password.expose()).await {
                Ok(pool) => pool,
                Err(why) if cx.overdue(limits.retry_limit) => return Progress::Failed(why),
                Err(why) => return Progress::Waiting(why),
            }
        }
    };
    let checks = super::drill::compare(&cx.state.pool, &copy, limits.drill_tolerance_percent).await;
    if endpoint != crate::cloud::Endpoint::Simulated {
        copy.close().await;
    }
    let checks = match checks {
        Ok(checks) => checks,
        Err(e) => return Progress::Failed(format!("the copy could not be compared: {e}")),
    };
    let rto = (chrono::Utc::now() - cx.run.created_at).num_minutes();
    let wrong: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| c.describe()).collect();
    if !wrong.is_empty() {
        return Progress::Failed(format!(
            "the copy differs from production beyond {} %: {}",
            limits.drill_tolerance_percent,
            wrong.join("; ")
        ));
    }
    let rows: i64 = checks.iter().map(|c| c.copy_rows).sum();
    Progress::Done(json!({
        "checks": checks,
        "rto_minutes": rto,
        Fact::Did.key(): format!(
            "the copy holds Drop's data ({rows} rows in {} tables match production); verified {rto} min after the start (RTO)",
            checks.len()
        ),
    }))
}

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

//! Runs: the runbook's procedures that touch the outside world (deploy, rollback, restart,
//! scale, secret rotation) as ordered lists of steps kept in PostgreSQL.
//!
//! A run is created with all its steps in one audited transaction; the unique partial index on
//! `console.runs (target)` makes a second active run on the same service impossible, whatever
//! the number of replicas. The [`worker`] of any replica claims it, holds a lease it renews,
//! and drives the steps; each step writes its audit intent before acting and its outcome
//! after, reads the current state before acting, and so can be resumed by another replica
//! after a crash without repeating a side effect.

pub mod confirm;
mod db;
pub mod drill;
pub mod escalation;
pub mod facts;
pub mod pages;
pub mod params;
pub mod plan;
pub mod rotation;
pub mod staging;
pub mod steps;
pub mod vacuum;
pub mod worker;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent, Reason};
use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::notify::{Notice, StaffName};
use crate::state::AppState;

pub(crate) use db::note;
pub use db::{
    Activity, active, active_on, activity, get, history, last_success_with_tag, log, open_windows,
    operation_followed_elsewhere, overlapping, steps,
};
pub use params::RunParams;
pub use plan::{Plan, StepKind};

crate::db::text_enum! {
    /// The procedures, as stored in `console.runs.procedure`.
    pub enum Procedure {
        Deploy = "deploy",
        Rollback = "rollback",
        Restart = "restart",
        EmergencyRestart = "emergency_restart",
        Scale = "scale",
        RotateJwtSecret = "rotate_jwt_secret",
        RotateDbPassword = "rotate_db_password",
        Snapshot = "snapshot",
        RestoreDrill = "restore_drill",
        Vacuum = "vacuum",
        EscalationTest = "escalation_test",
        /// An image to Fly.io staging, one machine at a time, verified by staging's health.
        StagingDeploy = "staging_deploy",
        /// Staging back to an earlier image, the same way.
        StagingRollback = "staging_rollback",
    }
}

impl Procedure {
    /// How the procedure reads in a sentence: "a deploy by Kari is already running".
    pub fn label(self) -> &'static str {
        match self {
            Procedure::Deploy => "deploy",
            Procedure::Rollback => "rollback",
            Procedure::Restart => "rolling restart",
            Procedure::EmergencyRestart => "emergency restart",
            Procedure::Scale => "scaling change",
            Procedure::RotateJwtSecret => "JWT secret rotation",
            Procedure::RotateDbPassword => "database password rotation",
            Procedure::Snapshot => "manual snapshot",
            Procedure::RestoreDrill => "restore drill",
            Procedure::Vacuum => "vacuum",
            Procedure::EscalationTest => "alert escalation test",
            Procedure::StagingDeploy => "staging deploy",
            Procedure::StagingRollback => "staging rollback",
        }
    }

    /// Where the run page's "back" link goes.
    /// The area of the console the procedure belongs to: its runs are shown under it.
    pub fn area(self) -> crate::web::Area {
        use crate::web::Area;
        match self {
            Procedure::RotateJwtSecret | Procedure::RotateDbPassword => Area::Secrets,
            Procedure::Snapshot | Procedure::RestoreDrill | Procedure::Vacuum => Area::Database,
            Procedure::EscalationTest => Area::Incidents,
            _ => Area::Deployments,
        }
    }

    /// The page of that area, to go back to.
    pub fn home(self) -> &'static str {
        self.area().href()
    }

    /// The procedures started from an area's page, as the table spells them.
    pub fn of_area(area: crate::web::Area) -> Vec<&'static str> {
        Self::ALL.iter().filter(|p| p.area() == area).map(|p| p.as_str()).collect()
    }
}

/// Any run's id, as a path names it (runs made before ids were UUIDv7 included).
impl std::str::FromStr for RunId {
    type Err = crate::ids::BadId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self).map_err(|_| crate::ids::BadId("a run id"))
    }
}

/// A run's id, chosen when its confirmation page is shown: a UUIDv7, so it carries the time it
/// was made. Names derived from it (the pre-deploy snapshot, a restore drill's instance) are
/// shown on the confirmation exactly as they will be used and are unique per run; a
/// confirmation submitted twice starts one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunId(Uuid);

impl RunId {
    /// How long a confirmation page stays good.
    const VALID_FOR: chrono::Duration = chrono::Duration::hours(12);

    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id a confirmation form carries back (a fresh one when it carries none: a form
    /// posted by a script). Refused when it is not one this console made recently.
    pub fn from_form(text: &str) -> Result<Self, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::new());
        }
        let stale = || AppError::Validation("This confirmation page is out of date: open it again and confirm.".into());
        let id = Self(text.parse::<Uuid>().map_err(|_| stale())?);
        let age = Utc::now() - id.at().ok_or_else(stale)?;
        if age > Self::VALID_FOR || age < -chrono::Duration::minutes(5) {
            return Err(stale());
        }
        Ok(id)
    }

    pub fn uuid(self) -> Uuid {
        self.0
    }

    /// The id of a run already stored.
    pub fn stored(id: Uuid) -> Self {
        Self(id)
    }

    /// When the id was made (None: not a UUIDv7).
    fn at(self) -> Option<DateTime<Utc>> {
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        DateTime::from_timestamp(secs as i64, nanos)
    }

    /// "20261202-1743-3f9a2c1b": when, and the id's last 8 hex digits (random in a UUIDv7),
    /// for names that must be unique per run and still read well.
    pub fn stamp(self) -> String {
        let hex = self.0.simple().to_string();
        let at = self.at().unwrap_or_else(Utc::now);
        format!("{}-{}", at.format("%Y%m%d-%H%M"), &hex[hex.len() - 8..])
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

crate::db::text_enum! {
    /// Where a run is (`console.runs.status`).
    pub enum RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl RunStatus {
    /// Queued or running: the run holds its target, and its page keeps watching it.
    pub fn active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    /// The colour of its badge.
    pub fn tone(self) -> &'static str {
        match self {
            Self::Succeeded => "green",
            Self::Failed => "red",
            Self::Cancelled => "amber",
            Self::Running => "blue",
            Self::Queued => "grey",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Running => "Running",
            Self::Queued => "Queued",
        }
    }
}

crate::db::text_enum! {
    /// Where a step of a run is (`console.run_steps.status`).
    pub enum StepStatus {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Not run because the run was cancelled before it.
        Cancelled = "cancelled",
        /// Not run because a step before it failed.
        Skipped = "skipped",
    }
}

/// A run as the pages show it.
#[derive(Clone, Debug)]
pub struct Run {
    pub id: Uuid,
    /// As stored: a procedure this version does not know still shows.
    pub procedure: String,
    pub target: String,
    pub environment: String,
    pub params: RunParams,
    pub facts: Value,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub started_by: Uuid,
    pub started_by_name: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub cancel_requested_by: Option<String>,
}

impl Run {
    pub fn active(&self) -> bool {
        self.status.active()
    }

    pub fn procedure(&self) -> Option<Procedure> {
        Procedure::parse(&self.procedure)
    }

    pub fn label(&self) -> &'static str {
        self.procedure().map_or("run", Procedure::label)
    }

    pub fn home(&self) -> &'static str {
        self.area().href()
    }

    pub fn area(&self) -> crate::web::Area {
        self.procedure().map_or(crate::web::Area::Deployments, Procedure::area)
    }

    /// What the run is about, in a few words: "b2e9f14", "min 2 / max 6", "JWT_SECRET".
    pub fn subject(&self) -> String {
        self.params.subject()
    }

    /// The run as a heading: "Deploy b2e9f14", "Rollback to 7f3c2a1", "JWT secret rotation".
    pub fn heading(&self) -> String {
        let label = capitalise(self.label());
        match self.procedure() {
            Some(Procedure::Rollback | Procedure::StagingRollback) => format!("{label} to {}", self.subject()),
            Some(Procedure::RotateJwtSecret | Procedure::RotateDbPassword) => label,
            _ if self.subject().is_empty() => label,
            _ => format!("{label} {}", self.subject()),
        }
    }

    /// What to do next with a finished deploy or rollback: try it again, or roll back to the
    /// image that ran before it (by digest). Links to the confirmation, never a button.
    pub fn next_actions(&self) -> Vec<(String, String)> {
        let mut actions = vec![];
        if let Some(p) = self.params.staging().filter(|_| !self.active()) {
            return self.staging_next_actions(p);
        }
        if self.active() || !matches!(self.procedure(), Some(Procedure::Deploy | Procedure::Rollback)) {
            return actions;
        }
        if self.status != RunStatus::Succeeded {
            if let Some(digest) = self.params.image().map(|i| &i.digest) {
                let procedure = self.procedure.as_str();
                actions
                    .push((format!("/deployments/confirm?procedure={procedure}&digest={digest}"), "Try again".into()));
            }
        }
        let previous = facts::Fact::PreviousImage.of(&self.facts).and_then(|i| i.split_once('@')).map(|(_, d)| d);
        let rolled_back = self.outcome.as_deref().is_some_and(|o| o.contains("Rolled back automatically"));
        if let (Some(digest), false) = (previous, rolled_back) {
            let tag = facts::Fact::PreviousTag.of(&self.facts).unwrap_or("the image before");
            actions.push((
                format!("/deployments/confirm?procedure=rollback&digest={digest}"),
                format!("Roll back to {tag}"),
            ));
        }
        actions
    }

    /// After a staging run: production next when it passed; otherwise try again, or staging
    /// back to what ran before it.
    fn staging_next_actions(&self, p: &params::StagingParams) -> Vec<(String, String)> {
        let procedure = self.procedure.as_str();
        if self.status == RunStatus::Succeeded {
            return vec![(
                format!("/deployments/confirm?procedure=deploy&digest={}", p.digest),
                format!("Deploy {} to production…", p.tag),
            )];
        }
        let mut actions =
            vec![(format!("/deployments/confirm?procedure={procedure}&digest={}", p.digest), "Try again".to_owned())];
        if let Some(previous) = facts::Fact::PreviousTag.of(&self.facts).filter(|t| *t != p.tag && *t != "untagged") {
            actions.push((
                format!("/deployments/confirm?procedure=staging_rollback&tag={previous}"),
                format!("Roll staging back to {previous}"),
            ));
        }
        actions
    }

    /// A production deploy: how its image got past staging.
    pub fn staging_check(&self) -> Option<&params::StagingCheck> {
        self.params.image()?.staging.as_ref()
    }

    /// How long it ran, or has been running: "3 min 12 s".
    pub fn elapsed(&self) -> String {
        let end = self.finished_at.unwrap_or_else(Utc::now);
        duration_text((end - self.created_at).num_seconds())
    }
}

pub fn duration_text(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    pub position: i32,
    pub name: String,
    pub title: String,
    pub status: StepStatus,
    pub always: bool,
    pub state: Value,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub intent_id: Option<i64>,
}

impl Step {
    pub fn elapsed(&self) -> Option<String> {
        let start = self.started_at?;
        Some(duration_text((self.finished_at.unwrap_or_else(Utc::now) - start).num_seconds()))
    }
}

#[derive(Clone, Debug)]
pub struct LogLine {
    pub id: i64,
    pub position: Option<i32>,
    pub at: DateTime<Utc>,
    pub line: String,
}

/// What starting a run needs besides its plan.
pub struct NewRun {
    pub id: RunId,
    pub target: String,
    pub environment: String,
    /// What it runs with; the variant is the procedure.
    pub params: RunParams,
    pub facts: Value,
    /// Bounded by the one rule of reasons; set when the confirmation is posted.
    pub reason: Option<Reason>,
    pub plan: Plan,
}

impl NewRun {
    /// A production run on `target` with what it runs with and its plan; nothing learned yet,
    /// and no reason until the confirmation is posted.
    pub fn production(id: RunId, target: String, params: RunParams, plan: Plan) -> Self {
        Self {
            id,
            target,
            environment: "production".into(),
            params,
            facts: Value::Object(Default::default()),
            reason: None,
            plan,
        }
    }

    /// A run on Fly.io staging (`target` is [`crate::config::Config::staging_target`]).
    pub fn staging(id: RunId, target: String, params: RunParams, plan: Plan) -> Self {
        Self { environment: "staging".into(), ..Self::production(id, target, params, plan) }
    }
}

/// Create a run and its steps: audited, and refused with a link to the run in the way when
/// the target already has an active one.
pub async fn start(state: &AppState, ctx: &AuditContext, user: &CurrentUser, new: NewRun) -> Result<Uuid, AppError> {
    let pool = &state.pool;
    let id = new.id.uuid();
    let procedure = new
        .params
        .procedure()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a new run was given parameters it cannot store")))?;
    let intent = Intent {
        action: "run_started",
        resource_type: Resource::Run,
        resource_id: id.to_string(),
        reason: new.reason.clone(),
        details: json!({
            "procedure": procedure.as_str(),
            "target": new.target,
            "environment": new.environment,
            "params": new.params,
            "steps": new.plan.steps.iter().map(|s| s.title.clone()).collect::<Vec<_>>(),
        }),
    };
    let inserted = audit::audited(pool, ctx, intent, async |tx, token| {
        db::insert_run(tx, token, id, user, procedure, &new).await?;
        db::note(&mut *tx, id, None, &format!("{} started by {}", capitalise(procedure.label()), user.name)).await?;
        let notice = Notice::RunStarted { run: new.id, procedure, by: StaffName::of(user) };
        crate::notify::queue(&mut *tx, state, &notice).await?;
        Ok(())
    })
    .await;
    match inserted {
        Ok(()) => Ok(id),
        // The same confirmation submitted again: the run it started is the answer.
        Err(e) if e.violates(RUN_ID) && get(pool, id).await?.is_some_and(|r| r.started_by == user.staff_id) => Ok(id),
        Err(e) if e.violates(ONE_ACTIVE_PER_TARGET) => Err(already_running(pool, &new.target).await),
        Err(e) => Err(e),
    }
}

/// The primary key of runs: a confirmation's run id is used once.
const RUN_ID: &str = "runs_pkey";

/// The unique partial index that allows one active run per target.
const ONE_ACTIVE_PER_TARGET: &str = "runs_one_active_per_target_idx";

/// "A deploy by Kari Nordmann is already running — view it", with the link.
async fn already_running(pool: &PgPool, target: &str) -> AppError {
    match active_on(pool, target).await {
        Ok(Some(run)) => AppError::ConflictWith(
            format!(
                "A {} by {} is already running on {} (started {} UTC). Only one run at a time may change it.",
                run.label(),
                run.started_by_name,
                run.target,
                run.created_at.format("%H:%M"),
            ),
            format!("/runs/{}", run.id),
        ),
        _ => AppError::Conflict(format!("Another run is already changing {target}; try again when it has ended.")),
    }
}

pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Why a run may no longer be cancelled, if it may not: a step past its point of no return
/// has started (see [`StepKind::commits`]). The run then finishes on its own.
pub fn too_late_to_cancel(steps: &[Step]) -> Option<String> {
    steps.iter().find_map(|s| {
        let consequence = StepKind::parse(&s.name)?.commits()?;
        (s.status != StepStatus::Pending).then(|| {
            format!(
                "Too late to cancel: \"{}\" has started. Stopping now would leave production inconsistent ({consequence}), so the run finishes its remaining steps on its own. Follow it here; if it fails, the run page offers the repair.",
                s.title
            )
        })
    })
}

/// Ask a run to stop before its next step. Audited; the worker does the stopping. Refused once
/// a step past its point of no return has started: stopping then would hurt production.
pub async fn request_cancel(pool: &PgPool, ctx: &AuditContext, user: &CurrentUser, id: Uuid) -> Result<(), AppError> {
    let intent = Intent {
        action: "run_cancel_requested",
        resource_type: Resource::Run,
        resource_id: id.to_string(),
        reason: None,
        details: json!({}),
    };
    audit::audited(pool, ctx, intent, async |tx, token| {
        let (status, cancel_requested_by) = db::lock_for_cancel(tx, id).await?.ok_or(AppError::NotFound)?;
        if !status.active() || cancel_requested_by.is_some() {
            return Err(AppError::Conflict("This run has already ended or is already being cancelled.".into()));
        }
        let steps = db::steps_in(&mut *tx, id).await?;
        if let Some(why) = too_late_to_cancel(&steps) {
            return Err(AppError::Conflict(why));
        }
        db::request_cancel(tx, token, id, &user.name).await?;
        db::note(&mut *tx, id, None, &format!("{} asked to cancel: the run stops before its next step", user.name))
            .await?;
        Ok(())
    })
    .await
}

/// Carry on a failed run from the step that failed: its state (what it already did) is kept,
/// so the step resumes rather than starts over. A wait that failed because its operation
/// failed (a redeploy that did not come up) also redoes the step that started the operation:
/// waiting again for a failed operation would fail again on every press. Audited; refused
/// when something else now runs on the same target.
pub async fn request_resume(pool: &PgPool, ctx: &AuditContext, user: &CurrentUser, run: &Run) -> Result<(), AppError> {
    let id = run.id;
    let intent = Intent {
        action: "run_resumed",
        resource_type: Resource::Run,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "procedure": run.procedure }),
    };
    let resumed = audit::audited(pool, ctx, intent, async |tx, token| {
        let steps = db::steps_in(&mut *tx, id).await?;
        let redo: Vec<i32> = steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .filter_map(|failed| {
                let starters = StepKind::parse(&failed.name)?.started_by();
                steps
                    .iter()
                    .rev()
                    .find(|s| s.position < failed.position && starters.iter().any(|k| k.as_str() == s.name))
                    .map(|s| s.position)
            })
            .collect();
        crate::error::changed(db::requeue(tx, token, id, &redo).await?, "This run is no longer failed.")?;
        let line = if redo.is_empty() {
            format!("{} resumed the run from the step that failed", user.name)
        } else {
            format!("{} resumed the run: the operation that failed is started again", user.name)
        };
        db::note(&mut *tx, id, None, &line).await?;
        Ok(())
    })
    .await;
    match resumed {
        Err(e) if e.violates(ONE_ACTIVE_PER_TARGET) => Err(already_running(pool, &run.target).await),
        other => other,
    }
}

/// A database password rotation that ended (failed or cancelled) after RDS was asked for the
/// new password but before health was verified with it: production may be unable to
/// connect, now or on its next restart. Resuming the run repairs it.
pub fn half_finished(run: &Run, steps: &[Step]) -> bool {
    let status = |kind: StepKind| steps.iter().find(|s| s.name == kind.as_str()).map(|s| s.status);
    run.procedure() == Some(Procedure::RotateDbPassword)
        && run.status != RunStatus::Succeeded
        && matches!(
            status(StepKind::SetDbPassword),
            Some(StepStatus::Running | StepStatus::Succeeded | StepStatus::Failed)
        )
        && status(StepKind::VerifyHealth) != Some(StepStatus::Succeeded)
}

/// Ended runs that left production inconsistent and are not yet repaired (a later run of the
/// same procedure on the same target that succeeded repairs them): the dashboard's and the
/// secrets page's red notice.
/// The newest run of `procedure`, whatever its outcome.
pub async fn last_of(pool: &PgPool, procedure: Procedure) -> Result<Option<Run>, sqlx::Error> {
    Ok(history(pool, &[procedure.as_str()], None, 1).await?.pop())
}

pub async fn needing_repair(pool: &PgPool) -> Result<Vec<Run>, sqlx::Error> {
    let candidates = db::unrepaired_rotations(pool).await?;
    let ids: Vec<Uuid> = candidates.iter().map(|r| r.id).collect();
    let steps = db::steps_of(pool, &ids).await?;
    Ok(candidates
        .into_iter()
        .filter(|run| {
            let of_run: Vec<Step> = steps.iter().filter(|(id, _)| *id == run.id).map(|(_, s)| s.clone()).collect();
            half_finished(run, &of_run)
        })
        .collect())
}

/// `?before=<cursor>`: the page of a run history after the last run shown.
#[derive(serde::Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    pub before: String,
}

/// One page of a run history and the cursor of the next, if there is one.
pub struct HistoryPage {
    pub runs: Vec<Run>,
    pub next: Option<String>,
}

/// A page of the history of some procedures, newest first (keyset on created_at, id).
pub async fn history_page(
    pool: &PgPool,
    area: crate::web::Area,
    q: &HistoryQuery,
    size: i64,
) -> Result<HistoryPage, sqlx::Error> {
    use crate::web::paging::{next_page, parse_time_cursor, time_cursor};
    let after = parse_time_cursor(&q.before).and_then(|(at, id)| id.parse::<Uuid>().ok().map(|id| (at, id)));
    let mut runs = history(pool, &Procedure::of_area(area), after, size + 1).await?;
    let next = next_page(&mut runs, size).map(|r| time_cursor(r.created_at, &r.id.to_string()));
    Ok(HistoryPage { runs, next })
}

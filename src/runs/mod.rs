//! Runs: the runbook's procedures that touch the outside world (deploy, rollback, restart,
//! scale, secret rotation) as ordered lists of steps kept in PostgreSQL.
//!
//! A run is created with all its steps in one audited transaction; the unique partial index on
//! `console.runs (target)` makes a second active run on the same service impossible, whatever
//! the number of replicas. The [`worker`] of any replica claims it, holds a lease it renews,
//! and drives the steps; each step writes its audit intent before acting and its outcome
//! after, reads the current state before acting, and so can be resumed by another replica
//! after a crash without repeating a side effect.

pub mod pages;
pub mod params;
pub mod rotation;
pub mod steps;
pub mod worker;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::Resource;
use crate::audit::{self, AuditContext, AuditToken, Intent, Reason};
use crate::auth::CurrentUser;
use crate::error::AppError;

pub use params::RunParams;
pub use steps::{Plan, StepKind};

/// The procedures, as stored in `console.runs.procedure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Procedure {
    Deploy,
    Rollback,
    Restart,
    EmergencyRestart,
    Scale,
    RotateJwtSecret,
    RotateDbPassword,
    Snapshot,
    RestoreDrill,
}

impl Procedure {
    pub const ALL: [Procedure; 9] = [
        Procedure::Deploy,
        Procedure::Rollback,
        Procedure::Restart,
        Procedure::EmergencyRestart,
        Procedure::Scale,
        Procedure::RotateJwtSecret,
        Procedure::RotateDbPassword,
        Procedure::Snapshot,
        Procedure::RestoreDrill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Procedure::Deploy => "deploy",
            Procedure::Rollback => "rollback",
            Procedure::Restart => "restart",
            Procedure::EmergencyRestart => "emergency_restart",
            Procedure::Scale => "scale",
            Procedure::RotateJwtSecret => "rotate_jwt_secret",
            Procedure::RotateDbPassword => "rotate_db_password",
            Procedure::Snapshot => "snapshot",
            Procedure::RestoreDrill => "restore_drill",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

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
        }
    }

    /// Where the run page's "back" link goes.
    /// The area of the console the procedure belongs to: its runs are shown under it.
    pub fn area(self) -> crate::web::Area {
        use crate::web::Area;
        match self {
            Procedure::RotateJwtSecret | Procedure::RotateDbPassword => Area::Secrets,
            Procedure::Snapshot | Procedure::RestoreDrill => Area::Database,
            _ => Area::Deployments,
        }
    }

    /// The page of that area, to go back to.
    pub fn home(self) -> &'static str {
        self.area().href()
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

/// A run as stored (`console.runs`), before its parameters are read by its procedure.
pub(crate) struct RunRow {
    pub id: Uuid,
    pub procedure: String,
    pub target: String,
    pub environment: String,
    pub params: Value,
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

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Self {
            params: RunParams::read(&r.procedure, r.params),
            id: r.id,
            procedure: r.procedure,
            target: r.target,
            environment: r.environment,
            facts: r.facts,
            status: r.status,
            reason: r.reason,
            started_by: r.started_by,
            started_by_name: r.started_by_name,
            created_at: r.created_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            cancel_requested_by: r.cancel_requested_by,
        }
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
            Some(Procedure::Rollback) => format!("{label} to {}", self.subject()),
            Some(Procedure::RotateJwtSecret | Procedure::RotateDbPassword) => label,
            _ if self.subject().is_empty() => label,
            _ => format!("{label} {}", self.subject()),
        }
    }

    /// What to do next with a finished deploy or rollback: try it again, or roll back to the
    /// image that ran before it (by digest). Links to the confirmation, never a button.
    pub fn next_actions(&self) -> Vec<(String, String)> {
        let mut actions = vec![];
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
        let previous = self.facts["previous_image"].as_str().and_then(|i| i.split_once('@')).map(|(_, d)| d);
        let rolled_back = self.outcome.as_deref().is_some_and(|o| o.contains("Rolled back automatically"));
        if let (Some(digest), false) = (previous, rolled_back) {
            let tag = self.facts["previous_tag"].as_str().unwrap_or("the image before");
            actions.push((
                format!("/deployments/confirm?procedure=rollback&digest={digest}"),
                format!("Roll back to {tag}"),
            ));
        }
        actions
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

/// Create a run and its steps: audited, and refused with a link to the run in the way when
/// the target already has an active one.
pub async fn start(pool: &PgPool, ctx: &AuditContext, user: &CurrentUser, new: NewRun) -> Result<Uuid, AppError> {
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
        insert_run(tx, token, id, user, procedure, &new).await.map_err(AppError::from)
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

async fn insert_run(
    tx: &mut PgConnection,
    _audited: &AuditToken,
    id: Uuid,
    user: &CurrentUser,
    procedure: Procedure,
    new: &NewRun,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.runs (id, procedure, target, environment, params, facts, reason, started_by, started_by_name)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        procedure.as_str(),
        new.target,
        new.environment,
        new.params.to_json(),
        new.facts,
        new.reason.as_ref().map(Reason::as_str),
        user.staff_id,
        user.name
    )
    .execute(&mut *tx)
    .await?;
    insert_steps(tx, id, 0, &new.plan).await?;
    note(&mut *tx, id, None, &format!("{} started by {}", capitalise(procedure.label()), user.name)).await?;
    Ok(())
}

pub(crate) async fn insert_steps(tx: &mut PgConnection, run: Uuid, from: i32, plan: &Plan) -> Result<(), sqlx::Error> {
    for (i, step) in plan.steps.iter().enumerate() {
        sqlx::query!(
            "insert into console.run_steps (run_id, position, name, title, always) values ($1, $2, $3, $4, $5)",
            run,
            from + i as i32,
            step.kind.as_str(),
            step.title,
            step.always
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Append a line to a run's log (`position`: the step it is about, if any).
pub(crate) async fn note(
    db: impl sqlx::PgExecutor<'_>,
    run: Uuid,
    position: Option<i32>,
    line: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!("insert into console.run_log (run_id, position, line) values ($1, $2, $3)", run, position, line)
        .execute(db)
        .await?;
    Ok(())
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
    audit::audited(pool, ctx, intent, async |tx, _token| {
        // The run's row lock orders this against the worker starting a step (its fence).
        let run = sqlx::query!(
            r#"select status as "status: RunStatus", cancel_requested_by from console.runs where id = $1 for update"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
        if !run.status.active() || run.cancel_requested_by.is_some() {
            return Err(AppError::Conflict("This run has already ended or is already being cancelled.".into()));
        }
        let steps = steps_in(&mut *tx, id).await?;
        if let Some(why) = too_late_to_cancel(&steps) {
            return Err(AppError::Conflict(why));
        }
        sqlx::query!("update console.runs set cancel_requested_by = $2 where id = $1", id, user.name)
            .execute(&mut *tx)
            .await?;
        note(&mut *tx, id, None, &format!("{} asked to cancel: the run stops before its next step", user.name)).await?;
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
    let resumed = audit::audited(pool, ctx, intent, async |tx, _token| {
        let done = sqlx::query!(
            "update console.runs set status = 'queued', finished_at = null, outcome = null, lease_owner = null,
                    lease_until = null, cancel_requested_by = null
              where id = $1 and status in ('failed', 'cancelled')",
            id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        crate::error::changed(done, "This run is no longer failed.")?;
        let steps = steps_in(&mut *tx, id).await?;
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
        sqlx::query!(
            "update console.run_steps set status = 'pending', finished_at = null, started_at = null, intent_id = null,
                    state = state - 'error'
              where run_id = $1 and status in ('failed', 'skipped', 'cancelled')",
            id
        )
        .execute(&mut *tx)
        .await?;
        // The operation it started is kept as `previous_operation_id`: followed if it still
        // runs, replaced by a new one if it ended.
        sqlx::query!(
            r#"update console.run_steps
                  set status = 'pending', finished_at = null, started_at = null, intent_id = null,
                      state = (state - 'operation_id' - 'rollback_operation_id' - 'pause_operation_id'
                                     - 'resume_operation_id' - 'adopted' - 'resumed')
                              || jsonb_build_object('previous_operation_id',
                                     coalesce(state ->> 'operation_id', state ->> 'rollback_operation_id',
                                              state ->> 'pause_operation_id', state ->> 'resume_operation_id'))
                where run_id = $1 and position = any($2)"#,
            id,
            &redo
        )
        .execute(&mut *tx)
        .await?;
        let line = if redo.is_empty() {
            format!("{} resumed the run from the step that failed", user.name)
        } else {
            format!("{} resumed the run: the operation that failed is started again", user.name)
        };
        note(&mut *tx, id, None, &line).await?;
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
pub async fn needing_repair(pool: &PgPool) -> Result<Vec<Run>, sqlx::Error> {
    let candidates: Vec<Run> = sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs r
          where procedure = 'rotate_db_password' and status in ('failed', 'cancelled')
            and not exists (select 1 from console.runs later
                             where later.procedure = r.procedure and later.target = r.target
                               and later.created_at > r.created_at and later.status = 'succeeded')
          order by created_at desc limit 5"#
    )
    .fetch_all(pool)
    .await
    .map(|rows| rows.into_iter().map(Run::from).collect())?;
    let ids: Vec<Uuid> = candidates.iter().map(|r| r.id).collect();
    let steps = sqlx::query!(
        r#"select run_id, position, name, title, status as "status: StepStatus", always, state, started_at, finished_at, intent_id
           from console.run_steps where run_id = any($1) order by run_id, position"#,
        &ids
    )
    .fetch_all(pool)
    .await?;
    Ok(candidates
        .into_iter()
        .filter(|run| {
            let of_run: Vec<Step> = steps
                .iter()
                .filter(|s| s.run_id == run.id)
                .map(|s| Step {
                    position: s.position,
                    name: s.name.clone(),
                    title: s.title.clone(),
                    status: s.status,
                    always: s.always,
                    state: s.state.clone(),
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                    intent_id: s.intent_id,
                })
                .collect();
            half_finished(run, &of_run)
        })
        .collect())
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs where id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
    .map(|row| row.map(Run::from))
}

/// The active run on a target, if any.
pub async fn active_on(pool: &PgPool, target: &str) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs where target = $1 and status in ('queued', 'running')"#,
        target
    )
    .fetch_optional(pool)
    .await
    .map(|row| row.map(Run::from))
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
    procedures: &[&str],
    q: &HistoryQuery,
    size: i64,
) -> Result<HistoryPage, sqlx::Error> {
    use crate::web::forms::{parse_time_cursor, time_cursor};
    let after = parse_time_cursor(&q.before).and_then(|(at, id)| id.parse::<Uuid>().ok().map(|id| (at, id)));
    let mut runs = history(pool, procedures, after, size + 1).await?;
    let next = if runs.len() as i64 > size {
        runs.truncate(size as usize);
        runs.last().map(|r| time_cursor(r.created_at, &r.id.to_string()))
    } else {
        None
    };
    Ok(HistoryPage { runs, next })
}

/// Runs of some procedures, newest first, after a (created_at, id) cursor.
pub async fn history(
    pool: &PgPool,
    procedures: &[&str],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Run>, sqlx::Error> {
    let procedures: Vec<String> = procedures.iter().map(|p| (*p).to_owned()).collect();
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs
          where procedure = any($1)
            and ($2::timestamptz is null or (created_at, id) < ($2, $3))
          order by created_at desc, id desc
          limit $4"#,
        &procedures,
        after.map(|(at, _)| at),
        after.map(|(_, id)| id),
        limit
    )
    .fetch_all(pool)
    .await
    .map(|rows| rows.into_iter().map(Run::from).collect())
}

pub async fn steps(pool: &PgPool, run: Uuid) -> Result<Vec<Step>, sqlx::Error> {
    steps_in(pool, run).await
}

async fn steps_in(db: impl sqlx::PgExecutor<'_>, run: Uuid) -> Result<Vec<Step>, sqlx::Error> {
    sqlx::query_as!(
        Step,
        r#"select position, name, title, status as "status: StepStatus", always, state, started_at, finished_at, intent_id
           from console.run_steps where run_id = $1 order by position"#,
        run
    )
    .fetch_all(db)
    .await
}

pub async fn log(pool: &PgPool, run: Uuid) -> Result<Vec<LogLine>, sqlx::Error> {
    sqlx::query_as!(
        LogLine,
        "select id, position, at, line from console.run_log where run_id = $1 order by id limit 2000",
        run
    )
    .fetch_all(pool)
    .await
}

/// The newest finished run that put a given image in place (who deployed what runs now): a
/// deploy or rollback to it, a restart or rotation that redeployed it, or a failed deploy whose
/// automatic rollback brought it back.
pub async fn last_success_with_tag(pool: &PgPool, tag: &str) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs r
          where (status = 'succeeded' and params ->> 'tag' = $1
                 and procedure in ('deploy', 'rollback', 'restart', 'rotate_jwt_secret', 'rotate_db_password'))
             or (procedure = 'deploy' and status = 'failed' and facts ->> 'previous_tag' = $1
                 and exists (select 1 from console.run_steps s
                              where s.run_id = r.id and s.name = 'verify_rollback' and s.status = 'succeeded'))
          order by created_at desc limit 1"#,
        tag
    )
    .fetch_optional(pool)
    .await
    .map(|row| row.map(Run::from))
}

/// Whether another run already follows this App Runner operation: a resumed step must not
/// adopt an operation that is not its own.
pub async fn operation_followed_elsewhere(pool: &PgPool, operation: &str, run: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (
               select 1 from console.run_steps
                where run_id <> $2
                  and $1 in (state ->> 'operation_id', state ->> 'rollback_operation_id',
                             state ->> 'pause_operation_id', state ->> 'resume_operation_id')
           ) as "followed!""#,
        operation,
        run
    )
    .fetch_one(pool)
    .await
}

/// Every run in progress, oldest first (the health dashboard's notice).
pub async fn active(pool: &PgPool) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs where status in ('queued', 'running') order by created_at limit 20"#
    )
    .fetch_all(pool)
    .await
    .map(|rows| rows.into_iter().map(Run::from).collect())
}

/// When each open maintenance window ends.
pub async fn open_windows(pool: &PgPool) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select ends_at from console.maintenance_windows where closed_at is null and ends_at > now() order by ends_at"
    )
    .fetch_all(pool)
    .await
}

/// What /metrics says about runs.
pub struct Activity {
    /// Active runs by procedure.
    pub active: Vec<(String, i64)>,
    /// Active runs older than 5 minutes whose lease is empty or lapsed 5 minutes ago.
    pub unattended: i64,
}

pub async fn activity(pool: &PgPool) -> Result<Activity, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select procedure, count(*) as "count!",
                  count(*) filter (where created_at < now() - interval '5 minutes'
                                     and (lease_until is null or lease_until < now() - interval '5 minutes'))
                      as "unattended!"
             from console.runs where status in ('queued', 'running') group by procedure"#
    )
    .fetch_all(pool)
    .await?;
    Ok(Activity {
        unattended: rows.iter().map(|r| r.unattended).sum(),
        active: rows.into_iter().map(|r| (r.procedure, r.count)).collect(),
    })
}

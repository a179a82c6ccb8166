//! Runs' SQL: `console.runs`, `console.run_steps`, `console.run_log` and
//! `console.maintenance_windows`. Writes a person asks for take their [`AuditToken`]; writes
//! the worker makes about a run it drives take a [`Fenced`], the proof that it holds the run's
//! lease with the epoch it claimed, checked under the run's row lock in the same transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::plan::Plan;
use super::{LogLine, NewRun, Procedure, Run, RunParams, RunStatus, Step, StepStatus};
use crate::audit::{AuditToken, Reason};
use crate::auth::CurrentUser;

/// A run as stored (`console.runs`), before its parameters are read by its procedure.
pub(super) struct RunRow {
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

/// Create a run and its steps. Needs its audit token.
pub(super) async fn insert_run(
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
    insert_steps(tx, id, 0, &new.plan).await
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

pub(super) async fn steps_in(db: impl sqlx::PgExecutor<'_>, run: Uuid) -> Result<Vec<Step>, sqlx::Error> {
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
        r#"select id as "id!", procedure as "procedure!", target as "target!", environment as "environment!",
                params as "params!", facts as "facts!", status as "status!: RunStatus", reason,
                started_by as "started_by!", started_by_name as "started_by_name!", created_at as "created_at!",
                finished_at, outcome, cancel_requested_by
           from ((select * from console.runs
                   where status = 'succeeded' and params ->> 'tag' = $1
                     and procedure in ('deploy', 'rollback', 'restart', 'rotate_jwt_secret', 'rotate_db_password')
                   order by params ->> 'tag', created_at desc limit 1)
                 union all
                 (select * from console.runs r
                   where procedure = 'deploy' and status = 'failed' and facts ->> 'previous_tag' = $1
                     and exists (select 1 from console.run_steps s
                                  where s.run_id = r.id and s.name = 'verify_rollback' and s.status = 'succeeded')
                   order by facts ->> 'previous_tag', created_at desc limit 1)) r
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

/// Proof that the worker holds a run's lease: made only by [`fence`], inside the transaction
/// whose writes it guards.
#[derive(Debug)]
pub(super) struct Fenced {
    /// Who asked to cancel the run, if anyone.
    pub cancel_requested_by: Option<String>,
}

/// The fence: lock the run's row and check that `owner` still holds its lease with `epoch`.
/// `None` when the lease was lost (lapsed and claimed by another worker, or released).
pub(super) async fn fence(
    tx: &mut PgConnection,
    run: Uuid,
    owner: Uuid,
    epoch: i64,
) -> Result<Option<Fenced>, sqlx::Error> {
    let held = sqlx::query_scalar!(
        "select cancel_requested_by from console.runs
          where id = $1 and lease_owner = $2 and lease_epoch = $3 and status = 'running'
            and lease_until > clock_timestamp()
            for update",
        run,
        owner,
        epoch
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(held.map(|cancel_requested_by| Fenced { cancel_requested_by }))
}

/// Take the oldest runnable run whose lease is free or lapsed, with a new epoch: (run, epoch).
pub(super) async fn claim(pool: &PgPool, owner: Uuid, lease_ms: i64) -> Result<Option<(Uuid, i64)>, sqlx::Error> {
    let claimed = sqlx::query!(
        "update console.runs r
            set status = 'running', lease_owner = $1, lease_epoch = r.lease_epoch + 1,
                lease_until = now() + $2::bigint * interval '1 millisecond'
          where r.id = (select id from console.runs
                         where status in ('queued', 'running') and (lease_until is null or lease_until < now())
                         order by created_at limit 1
                         for update skip locked)
         returning r.id, r.lease_epoch",
        owner,
        lease_ms
    )
    .fetch_optional(pool)
    .await?;
    Ok(claimed.map(|c| (c.id, c.lease_epoch)))
}

/// Extend a lease, if `owner` still holds it with `epoch`.
pub(super) async fn renew(
    pool: &PgPool,
    run: Uuid,
    owner: Uuid,
    epoch: i64,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let renewed = sqlx::query!(
        "update console.runs set lease_until = now() + $4::bigint * interval '1 millisecond'
          where id = $1 and lease_owner = $2 and lease_epoch = $3 and status = 'running'",
        run,
        owner,
        epoch,
        lease_ms
    )
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Give a run back, if `owner` still holds it with `epoch`.
pub(super) async fn release(pool: &PgPool, run: Uuid, owner: Uuid, epoch: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.runs set lease_owner = null, lease_until = null
          where id = $1 and lease_owner = $2 and lease_epoch = $3 and status = 'running'",
        run,
        owner,
        epoch
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The steps that will not run now: `status` is skipped (after a failure) or cancelled.
pub(super) async fn stop_pending(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    run: Uuid,
    status: StepStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.run_steps set status = $2, finished_at = now()
          where run_id = $1 and status = 'pending' and not always",
        run,
        status.as_str()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Mark a step found in progress as resumed here, so the line saying so is written once.
pub(super) async fn mark_resumed(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    run: Uuid,
    position: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.run_steps set state = state || '{\"resumed\": true}' where run_id = $1 and position = $2",
        run,
        position
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A step starts, under the audit intent that says so.
pub(super) async fn step_started(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    intent: &AuditToken,
    run: Uuid,
    position: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.run_steps set status = 'running', started_at = now(), intent_id = $3
          where run_id = $1 and position = $2 and status = 'pending'",
        run,
        position,
        intent.intent_id()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A step is done: what it learned goes to its state and to the run's facts.
pub(super) async fn step_succeeded(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    run: Uuid,
    position: i32,
    learned: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.run_steps set status = 'succeeded', finished_at = now(), state = state || $3
          where run_id = $1 and position = $2",
        run,
        position,
        learned
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("update console.runs set facts = facts || $2 where id = $1", run, learned).execute(&mut *tx).await?;
    Ok(())
}

pub(super) async fn step_failed(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    run: Uuid,
    position: i32,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.run_steps set status = 'failed', finished_at = now(), state = state || jsonb_build_object('error', $3::text)
          where run_id = $1 and position = $2",
        run,
        position,
        error
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Make room for `gap` steps after `position` (two moves: positions are a primary key).
pub(super) async fn open_gap(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    run: Uuid,
    position: i32,
    gap: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.run_steps set position = -position - $3 where run_id = $1 and position > $2",
        run,
        position,
        gap
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("update console.run_steps set position = -position where run_id = $1 and position < 0", run)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// How the run ended; its lease is released with it.
pub(super) async fn finish(
    tx: &mut PgConnection,
    _fenced: &Fenced,
    run: Uuid,
    status: RunStatus,
    outcome: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.runs set status = $2, outcome = $3, finished_at = now(), lease_owner = null, lease_until = null
          where id = $1",
        run,
        status.as_str(),
        outcome
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Who a run acts for in the audit log: (issuer, subject, email, name) of who started it.
pub(super) struct Starter {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub display_name: String,
}

pub(super) async fn starter(pool: &PgPool, staff: Uuid) -> Result<Starter, sqlx::Error> {
    sqlx::query_as!(Starter, "select issuer, subject, email, display_name from console.staff where id = $1", staff)
        .fetch_one(pool)
        .await
}

/// Lock a run to ask it to stop: its status and whether someone already asked. The row lock
/// orders this against the worker starting a step (its fence).
pub(super) async fn lock_for_cancel(
    tx: &mut PgConnection,
    run: Uuid,
) -> Result<Option<(RunStatus, Option<String>)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select status as "status: RunStatus", cancel_requested_by from console.runs where id = $1 for update"#,
        run
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| (r.status, r.cancel_requested_by)))
}

/// Record who asked a run to stop. Needs its audit token.
pub(super) async fn request_cancel(
    tx: &mut PgConnection,
    _audited: &AuditToken,
    run: Uuid,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!("update console.runs set cancel_requested_by = $2 where id = $1", run, by).execute(&mut *tx).await?;
    Ok(())
}

/// Queue a failed or cancelled run again, with its failed, skipped and cancelled steps
/// pending; the steps at `redo` start their operation afresh (the one they started is kept as
/// `previous_operation_id`: followed if it still runs, replaced if it ended). False when the
/// run was not failed or cancelled. Needs its audit token.
pub(super) async fn requeue(
    tx: &mut PgConnection,
    _audited: &AuditToken,
    run: Uuid,
    redo: &[i32],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update console.runs set status = 'queued', finished_at = null, outcome = null, lease_owner = null,
                lease_until = null, cancel_requested_by = null
          where id = $1 and status in ('failed', 'cancelled')",
        run
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !done {
        return Ok(false);
    }
    sqlx::query!(
        "update console.run_steps set status = 'pending', finished_at = null, started_at = null, intent_id = null,
                state = state - 'error'
          where run_id = $1 and status in ('failed', 'skipped', 'cancelled')",
        run
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"update console.run_steps
              set status = 'pending', finished_at = null, started_at = null, intent_id = null,
                  state = (state - 'operation_id' - 'rollback_operation_id' - 'pause_operation_id'
                                 - 'resume_operation_id' - 'adopted' - 'resumed')
                          || jsonb_build_object('previous_operation_id',
                                 coalesce(state ->> 'operation_id', state ->> 'rollback_operation_id',
                                          state ->> 'pause_operation_id', state ->> 'resume_operation_id'))
            where run_id = $1 and position = any($2)"#,
        run,
        redo
    )
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

/// Database password rotations that ended failed or cancelled and that no later successful
/// rotation of the same target repaired: the candidates for the "needs repair" notice.
pub(super) async fn unrepaired_rotations(pool: &PgPool) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by,
                  started_by_name, created_at, finished_at, outcome, cancel_requested_by
           from console.runs r
          where procedure = 'rotate_db_password' and status in ('failed', 'cancelled')
            and not exists (select 1 from console.runs later
                             where later.procedure = r.procedure and later.target = r.target
                               and later.created_at > r.created_at and later.status = 'succeeded')
          order by created_at desc limit 5"#
    )
    .fetch_all(pool)
    .await
    .map(|rows| rows.into_iter().map(Run::from).collect())
}

/// The steps of several runs, each with its run's id, in one query.
pub(super) async fn steps_of(pool: &PgPool, runs: &[Uuid]) -> Result<Vec<(Uuid, Step)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select run_id, position, name, title, status as "status: StepStatus", always, state, started_at, finished_at,
                  intent_id
             from console.run_steps where run_id = any($1) order by run_id, position"#,
        runs
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|s| {
            let step = Step {
                position: s.position,
                name: s.name,
                title: s.title,
                status: s.status,
                always: s.always,
                state: s.state,
                started_at: s.started_at,
                finished_at: s.finished_at,
                intent_id: s.intent_id,
            };
            (s.run_id, step)
        })
        .collect())
}

/// Record a run's maintenance window (once: a repeated step keeps the first end); its end.
pub(super) async fn open_window(pool: &PgPool, run: Uuid, minutes: i32) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into console.maintenance_windows (run_id, ends_at)
         values ($1, now() + $2::int * interval '1 minute')
         on conflict (run_id) do update set ends_at = console.maintenance_windows.ends_at
         returning ends_at",
        run,
        minutes
    )
    .fetch_one(pool)
    .await
}

/// The BetterStack monitors a run's window paused (written before each pause).
pub(super) async fn window_monitors(pool: &PgPool, run: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let paused = sqlx::query_scalar!("select paused_monitors from console.maintenance_windows where run_id = $1", run)
        .fetch_optional(pool)
        .await?;
    Ok(paused.unwrap_or_default())
}

/// Note that the run's window is about to pause monitor `id`.
pub(super) async fn note_paused(pool: &PgPool, run: Uuid, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.maintenance_windows set paused_monitors = array_append(paused_monitors, $2)
          where run_id = $1 and not ($2 = any(paused_monitors))",
        run,
        id
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Close a run's maintenance window; false when it had none open.
pub(super) async fn close_window(pool: &PgPool, run: Uuid) -> Result<bool, sqlx::Error> {
    let closed = sqlx::query!(
        "update console.maintenance_windows set closed_at = coalesce(closed_at, now()) where run_id = $1",
        run
    )
    .execute(pool)
    .await?;
    Ok(closed.rows_affected() > 0)
}

/// Runs that were going on at any time in `[from, to)`: started before `to`, and not ended
/// before `from`. Oldest first.
pub async fn overlapping(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, procedure, target, environment, params, facts, status as "status: RunStatus", reason, started_by, started_by_name,
                created_at, finished_at, outcome, cancel_requested_by
           from console.runs
          where created_at < $2 and (finished_at is null or finished_at >= $1)
          order by created_at, id
          limit $3"#,
        from,
        to,
        limit
    )
    .fetch_all(pool)
    .await
    .map(|rows| rows.into_iter().map(Run::from).collect())
}

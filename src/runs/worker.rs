//! The in-process worker. Every replica runs one; a run is claimed with `FOR UPDATE SKIP
//! LOCKED` and held by a lease the worker renews before every attempt. A replica that dies
//! stops renewing; when the lease lapses another replica claims the run and carries on from
//! the step that was in progress, which then looks for what it may already have done.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::steps::{self, Plan, Progress, StepContext, StepKind};
use super::{Procedure, Run, Step};
use crate::audit::{self, Actor, AuditContext, Intent, Outcome, RequestMeta};
use crate::error::AppError;
use crate::state::AppState;

/// Where a test may stop the worker dead, as a crash would: before a step acts, or after it
/// acted but before the result was written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    BeforeAct,
    AfterAct,
}

pub type Halt = Arc<dyn Fn(i32, Phase) -> bool + Send + Sync>;

/// How a drive of one run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Driven {
    Finished,
    /// Another worker holds the run now.
    LostLease,
    /// Stopped by the test hook, as if the process had died.
    Halted,
}

pub struct Worker {
    state: AppState,
    id: Uuid,
    halt: Option<Halt>,
}

/// Runs driven at once by one replica.
const CONCURRENT_RUNS: usize = 4;

impl Worker {
    pub fn new(state: AppState) -> Self {
        Self { state, id: Uuid::new_v4(), halt: None }
    }

    /// Stop dead where `halt` says (kill tests).
    pub fn halting(mut self, halt: Halt) -> Self {
        self.halt = Some(halt);
        self
    }

    /// The background loop of a replica: claim what is runnable, drive it, look again.
    pub fn spawn(self) {
        let worker = Arc::new(self);
        tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_RUNS));
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                match worker.claim().await {
                    Ok(Some(run)) => {
                        let worker = worker.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            if let Err(e) = worker.drive(run).await {
                                tracing::error!(error = %e, %run, "run interrupted; it resumes when its lease lapses");
                            }
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot look for runs"),
                }
                drop(permit);
                tokio::time::sleep(worker.state.config.runs.poll_interval.min(Duration::from_secs(1))).await;
            }
        });
    }

    /// Drive runs one after another until none is left to claim (tests, and `dropops` CLI use).
    pub async fn run_until_idle(&self) -> Result<Driven, sqlx::Error> {
        while let Some(run) = self.claim().await? {
            let driven = self.drive(run).await?;
            if driven == Driven::Halted {
                return Ok(Driven::Halted);
            }
        }
        Ok(Driven::Finished)
    }

    /// Take the oldest runnable run whose lease is free or lapsed.
    pub async fn claim(&self) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar!(
            "update console.runs r
                set status = 'running', lease_owner = $1, lease_until = now() + $2::bigint * interval '1 millisecond'
              where r.id = (select id from console.runs
                             where status in ('queued', 'running') and (lease_until is null or lease_until < now())
                             order by created_at limit 1
                             for update skip locked)
             returning r.id",
            self.id,
            self.state.config.runs.lease.as_millis() as i64
        )
        .fetch_optional(&self.state.pool)
        .await
    }

    async fn renew(&self, run: Uuid) -> Result<bool, sqlx::Error> {
        let renewed = sqlx::query!(
            "update console.runs set lease_until = now() + $3::bigint * interval '1 millisecond'
              where id = $1 and lease_owner = $2 and status = 'running'",
            run,
            self.id,
            self.state.config.runs.lease.as_millis() as i64
        )
        .execute(&self.state.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    fn halted(&self, position: i32, phase: Phase) -> bool {
        self.halt.as_ref().is_some_and(|h| h(position, phase))
    }

    /// Drive one claimed run until it ends, the lease is lost, or the test hook stops it.
    pub async fn drive(&self, id: Uuid) -> Result<Driven, sqlx::Error> {
        let pool = &self.state.pool;
        let mut last_wait: Option<(i32, String)> = None;
        let mut resumed_here = std::collections::HashSet::new();
        loop {
            if !self.renew(id).await? {
                return Ok(Driven::LostLease);
            }
            let Some(run) = super::get(pool, id).await? else { return Ok(Driven::Finished) };
            let steps = super::steps(pool, id).await?;
            let ctx = acting_for(pool, &run).await?;
            let failed = steps.iter().any(|s| s.status == "failed");
            let stopping = failed || run.cancel_requested_by.is_some();
            // Steps that will not run now: skipped after a failure, cancelled on request.
            if stopping {
                let status = if failed { "skipped" } else { "cancelled" };
                sqlx::query!(
                    "update console.run_steps set status = $2, finished_at = now()
                      where run_id = $1 and status = 'pending' and not always",
                    id,
                    status
                )
                .execute(pool)
                .await?;
            }
            let current =
                steps.iter().find(|s| s.status == "running" || (s.status == "pending" && (!stopping || s.always)));
            let Some(step) = current else {
                self.finish(&run, &ctx).await?;
                return Ok(Driven::Finished);
            };
            let Some(kind) = StepKind::parse(&step.name) else {
                self.fail_step(&run, &ctx, step, "the console does not know this step (a newer version wrote it)")
                    .await?;
                continue;
            };
            let mut step = step.clone();
            if step.status == "pending" {
                if let Err(e) = self.start_step(&run, &ctx, &step, kind).await {
                    tracing::error!(error = %e, "audit intent not written; the step waits");
                    tokio::time::sleep(self.state.config.runs.poll_interval).await;
                    continue;
                }
                step = super::steps(pool, id).await?.into_iter().find(|s| s.position == step.position).unwrap_or(step);
                resumed_here.insert(step.position);
            } else if resumed_here.insert(step.position) && step.state["resumed"].as_bool() != Some(true) {
                // Found in progress: another replica (or this one before a restart) started it.
                self.note(&run, Some(step.position), "Resumed after an interruption: checking what was already done")
                    .await?;
                sqlx::query!(
                    "update console.run_steps set state = state || '{\"resumed\": true}' where run_id = $1 and position = $2",
                    id,
                    step.position
                )
                .execute(pool)
                .await?;
                step.state["resumed"] = json!(true);
            }
            if self.halted(step.position, Phase::BeforeAct) {
                return Ok(Driven::Halted);
            }
            let progress = steps::attempt(&StepContext { state: &self.state, run: &run, step: &step }, kind).await;
            if self.halted(step.position, Phase::AfterAct) {
                return Ok(Driven::Halted);
            }
            match progress {
                Progress::Done(learned) => self.complete_step(&run, &ctx, &step, kind, learned).await?,
                Progress::Waiting(why) => {
                    if last_wait.as_ref() != Some(&(step.position, why.clone())) {
                        self.note(&run, Some(step.position), &why).await?;
                        last_wait = Some((step.position, why));
                    }
                    tokio::time::sleep(self.state.config.runs.poll_interval).await;
                }
                Progress::Failed(why) => {
                    self.fail_step(&run, &ctx, &step, &why).await?;
                    if kind == StepKind::VerifyHealth {
                        self.roll_back_automatically(&run, &step).await?;
                    }
                }
            }
        }
    }

    async fn note(&self, run: &Run, position: Option<i32>, line: &str) -> Result<(), sqlx::Error> {
        super::note(&self.state.pool, run.id, position, line).await
    }

    /// The step's audit intent and its start, in one transaction: no step runs unaudited.
    async fn start_step(&self, run: &Run, ctx: &AuditContext, step: &Step, kind: StepKind) -> Result<(), AppError> {
        let mut tx = self.state.pool.begin().await?;
        let token = audit::intent(&mut tx, ctx, step_intent(run, step, kind)).await?;
        sqlx::query!(
            "update console.run_steps set status = 'running', started_at = now(), intent_id = $3
              where run_id = $1 and position = $2 and status = 'pending'",
            run.id,
            step.position,
            token.intent_id()
        )
        .execute(&mut *tx)
        .await?;
        super::note(&mut *tx, run.id, Some(step.position), &format!("Started: {}", step.title)).await?;
        // The outcome is written when the step ends, perhaps by another replica: it finds the
        // intent again through `intent_id` (audit::open_intent).
        tx.commit().await?;
        Ok(())
    }

    async fn complete_step(
        &self,
        run: &Run,
        ctx: &AuditContext,
        step: &Step,
        kind: StepKind,
        learned: Value,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.state.pool.begin().await?;
        if let Some(token) = audit::open_intent(&mut tx, step.intent_id).await? {
            audit::outcome(&mut tx, ctx, token, Outcome::Succeeded).await.map_err(audit_failed)?;
        }
        sqlx::query!(
            "update console.run_steps set status = 'succeeded', finished_at = now(), state = state || $3
              where run_id = $1 and position = $2",
            run.id,
            step.position,
            learned
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("update console.runs set facts = facts || $2 where id = $1", run.id, learned)
            .execute(&mut *tx)
            .await?;
        let line = if learned["adopted"].as_bool() == Some(true) {
            format!("Done: {} (the operation started before the interruption was found and followed)", step.title)
        } else {
            format!("Done: {}", step.title)
        };
        super::note(&mut *tx, run.id, Some(step.position), &line).await?;
        tx.commit().await?;
        tracing::info!(run = %run.id, step = kind.as_str(), "run step done");
        Ok(())
    }

    async fn fail_step(&self, run: &Run, ctx: &AuditContext, step: &Step, why: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.state.pool.begin().await?;
        if let Some(token) = audit::open_intent(&mut tx, step.intent_id).await? {
            audit::outcome(&mut tx, ctx, token, Outcome::Failed(why.to_owned())).await.map_err(audit_failed)?;
        }
        sqlx::query!(
            "update console.run_steps set status = 'failed', finished_at = now(), state = state || $3
              where run_id = $1 and position = $2",
            run.id,
            step.position,
            json!({ "error": why })
        )
        .execute(&mut *tx)
        .await?;
        super::note(&mut *tx, run.id, Some(step.position), &format!("Failed: {} — {why}", step.title)).await?;
        tx.commit().await?;
        tracing::warn!(run = %run.id, step = %step.name, reason = why, "run step failed");
        Ok(())
    }

    /// After a deploy's health check failed: add the steps that put the previous image back,
    /// before the maintenance window closes.
    async fn roll_back_automatically(&self, run: &Run, failed: &Step) -> Result<(), sqlx::Error> {
        if run.procedure() != Some(Procedure::Deploy) {
            return Ok(());
        }
        let previous = run.facts["previous_tag"].as_str().unwrap_or_default().to_owned();
        if !self.state.config.runs.auto_rollback || run.facts["previous_image"].as_str().is_none() {
            return self
                .note(run, Some(failed.position), "Automatic rollback is off: roll back from the deployments page")
                .await;
        }
        let service = self.state.config.drop.apprunner_service_name.clone().unwrap_or_else(|| "the service".into());
        let plan = Plan::automatic_rollback(&service, &previous);
        let gap = plan.steps.len() as i32;
        let mut tx = self.state.pool.begin().await?;
        // Move the later steps out of the way (two moves: positions are a primary key).
        sqlx::query!(
            "update console.run_steps set position = -position - $3 where run_id = $1 and position > $2",
            run.id,
            failed.position,
            gap
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("update console.run_steps set position = -position where run_id = $1 and position < 0", run.id)
            .execute(&mut *tx)
            .await?;
        super::insert_steps(&mut tx, run.id, failed.position + 1, &plan).await?;
        super::note(
            &mut *tx,
            run.id,
            Some(failed.position),
            &format!("Rolling back automatically to the image that ran before, {previous}"),
        )
        .await?;
        tx.commit().await
    }

    /// No step left: record how the run ended, release it, and say so in the audit log.
    async fn finish(&self, run: &Run, ctx: &AuditContext) -> Result<(), sqlx::Error> {
        let steps = super::steps(&self.state.pool, run.id).await?;
        let first_failure = steps.iter().find(|s| s.status == "failed");
        let (status, outcome) = match first_failure {
            Some(step) => {
                let why = step.state["error"].as_str().unwrap_or("it failed");
                let rolled_back =
                    steps.iter().any(|s| s.name == StepKind::VerifyRollback.as_str() && s.status == "succeeded");
                let mut outcome = format!("{}: {why}", step.title);
                if rolled_back {
                    outcome.push_str(&format!(
                        ". Rolled back automatically: {} runs again and is healthy.",
                        run.facts["previous_tag"].as_str().unwrap_or("the previous image")
                    ));
                }
                ("failed", Some(outcome))
            }
            None if run.cancel_requested_by.is_some() && steps.iter().any(|s| s.status == "cancelled") => {
                ("cancelled", Some(format!("Cancelled by {}", run.cancel_requested_by.as_deref().unwrap_or("someone"))))
            }
            None => ("succeeded", None),
        };
        let ended = sqlx::query!(
            "update console.runs set status = $3, outcome = $4, finished_at = now(), lease_owner = null, lease_until = null
              where id = $1 and lease_owner = $2 and status = 'running'",
            run.id,
            self.id,
            status,
            outcome
        )
        .execute(&self.state.pool)
        .await?;
        if ended.rows_affected() == 1 {
            self.note(
                run,
                None,
                &format!("Run {status}{}", outcome.as_ref().map(|o| format!(": {o}")).unwrap_or_default()),
            )
            .await?;
            let event = audit::Event {
                action: "run_finished",
                resource_type: "run",
                resource_id: run.id.to_string(),
                reason: None,
                details: json!({ "procedure": run.procedure, "status": status, "outcome": outcome }),
            };
            if let Err(e) = audit::event(&self.state.pool, ctx, event).await {
                tracing::error!(error = %e, run = %run.id, "run_finished not audited");
            }
        }
        Ok(())
    }
}

fn audit_failed(e: AppError) -> sqlx::Error {
    sqlx::Error::Protocol(format!("audit outcome not written: {e}"))
}

/// The audit intent of a step: what it is about to do, on whose behalf.
fn step_intent(run: &Run, step: &Step, kind: StepKind) -> Intent {
    if kind == StepKind::PromoteSecret {
        // runbook §4: action secret_rotated, resource_type secret, resource_id JWT_SECRET.
        return Intent {
            action: kind.action(),
            resource_type: "secret",
            resource_id: run.params["env_name"].as_str().unwrap_or("secret").to_owned(),
            reason: run.reason.clone(),
            details: json!({
                "rotated_at": chrono::Utc::now(),
                "secret_id": run.params["secret_id"],
                "fingerprint": run.facts["fingerprint"],
                "run_id": run.id,
            }),
        };
    }
    Intent {
        action: kind.action(),
        resource_type: "run",
        resource_id: run.id.to_string(),
        reason: None,
        details: json!({
            "procedure": run.procedure,
            "step": step.position,
            "title": step.title,
            "target": run.target,
            "environment": run.environment,
        }),
    }
}

/// The audit identity a run acts under: the person who started it.
async fn acting_for(pool: &PgPool, run: &Run) -> Result<AuditContext, sqlx::Error> {
    let staff =
        sqlx::query!("select issuer, subject, email, display_name from console.staff where id = $1", run.started_by)
            .fetch_one(pool)
            .await?;
    Ok(AuditContext {
        actor: Actor {
            name: staff.display_name,
            issuer: Some(staff.issuer),
            subject: Some(staff.subject),
            email: staff.email,
            roles: vec![],
            session_fingerprint: None,
        },
        meta: RequestMeta {
            request_id: Some(format!("run-{}", run.id)),
            client_ip: None,
            user_agent: Some("dropops worker".into()),
        },
    })
}

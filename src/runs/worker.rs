//! The in-process worker. Every replica runs one; a run is claimed with `FOR UPDATE SKIP
//! LOCKED` and held by a lease that a task of its own renews while the steps act, so a slow
//! step never starves it. A replica that dies stops renewing; when the lease lapses another
//! replica claims the run and carries on from the step that was in progress, which then
//! looks for what it may already have done.
//!
//! Fencing: every claim increments the run's `lease_epoch`, and every write the worker makes
//! about a run (step status, facts, log, audit intents and outcomes) is made in a transaction
//! that first checks, under the run's row lock, that it still holds the lease with its epoch
//! ([`Worker::fence`]). A worker that cannot renew stops acting at once: a step in progress is
//! abandoned when the lease's local deadline passes, and nothing it learned is written.
//! On shutdown a worker stops between steps and releases its leases, so another replica
//! continues at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::db::{self, Fenced};
use super::facts::Fact;
use super::plan::{Plan, StepKind};
use super::steps::{self, Progress, StepContext};
use super::{Procedure, Run, RunId, RunStatus, Step, StepStatus};
use crate::audit::Resource;
use crate::audit::{self, Actor, AuditContext, Intent, Outcome, Reason, RequestMeta};
use crate::error::AppError;
use crate::notify::Notice;
use crate::state::AppState;

/// Where a test may stop the worker dead, as a crash would: before a step acts, or after it
/// acted but before the result was written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    BeforeAct,
    AfterAct,
}

pub type Halt = Arc<dyn Fn(i32, Phase) -> bool + Send + Sync>;

/// Where a test may freeze the whole worker (its lease renewal included), as a GC pause or a
/// stopped VM would, until the returned future completes.
pub type Stall = Arc<dyn Fn(i32, Phase) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> + Send + Sync>;

/// How a drive of one run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Driven {
    Finished,
    /// Another worker holds the run now, or this one could not renew its lease in time.
    LostLease,
    /// Stopped by the test hook, as if the process had died.
    Halted,
    /// Stopped between steps on shutdown; the lease was released for another replica.
    Released,
}

/// A run this worker claimed, with the epoch that fences its writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub run: Uuid,
    pub epoch: i64,
}

/// Why a drive stopped short.
enum Interrupt {
    /// The fence refused a write: the lease is gone.
    LeaseLost,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Interrupt {
    fn from(e: sqlx::Error) -> Self {
        Interrupt::Db(e)
    }
}

type Driving<T> = Result<T, Interrupt>;

pub struct Worker {
    state: AppState,
    id: Uuid,
    halt: Option<Halt>,
    stall: Option<Stall>,
    /// Set while a [`Stall`] holds the worker: renewals are frozen too.
    frozen: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
}

/// Runs driven at once by one replica.
const CONCURRENT_RUNS: usize = 4;

/// The running worker of a replica: [`WorkerHandle::stop`] hands its runs over.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Stop claiming, let each run in hand reach the end of its step, release the leases.
    /// Bounded: a step still acting after `grace` is left to the lease.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.done).await.is_err() {
            tracing::warn!("runs still in a step at shutdown: another replica takes them over when their lease lapses");
        }
    }
}

/// The lease on one run while it is driven: renewed by a task of its own.
struct Lease {
    claim: Claim,
    /// Until when acting is safe; `None` once the lease is known to be lost.
    held: watch::Receiver<Option<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Lease {
    fn valid(&self) -> bool {
        matches!(*self.held.borrow(), Some(until) if until > Instant::now())
    }

    /// Resolves when acting is no longer safe: the lease was lost or its deadline passed
    /// without a renewal.
    async fn lapsed(&self) {
        let mut held = self.held.clone();
        loop {
            let until = *held.borrow_and_update();
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        changed = held.changed() => if changed.is_err() { return },
                    }
                }
                _ => return,
            }
        }
    }
}

impl Worker {
    pub fn new(state: AppState) -> Self {
        let (_, stop) = watch::channel(false);
        Self { state, id: Uuid::new_v4(), halt: None, stall: None, frozen: Arc::default(), stop }
    }

    /// Stop dead where `halt` says (kill tests).
    pub fn halting(mut self, halt: Halt) -> Self {
        self.halt = Some(halt);
        self
    }

    /// Freeze where `stall` says (stalled-worker tests).
    pub fn stalling(mut self, stall: Stall) -> Self {
        self.stall = Some(stall);
        self
    }

    /// Stop between steps and release the lease once `stop` turns true (shutdown).
    pub fn stopping_on(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = stop;
        self
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The background loop of a replica: claim what is runnable, drive it, look again.
    pub fn spawn(self) -> WorkerHandle {
        let (stop, rx) = watch::channel(false);
        let worker = Arc::new(self.stopping_on(rx));
        let done = tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_RUNS));
            let mut stop = worker.stop.clone();
            while !worker.stopping() {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                match worker.claim().await {
                    Ok(Some(claim)) => {
                        let worker = worker.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            if let Err(e) = worker.drive(claim).await {
                                tracing::error!(error = %e, run = %claim.run, "run interrupted");
                                // Let a passing trouble pass, then hand the run to whoever can.
                                tokio::time::sleep(worker.state.config.runs.poll_interval).await;
                                worker.release(claim).await;
                            }
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot look for runs"),
                }
                drop(permit);
                let pause = worker.state.config.runs.poll_interval.min(Duration::from_secs(1));
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
            // Shutting down: wait for every run in hand to release its lease.
            let _ = slots.acquire_many(CONCURRENT_RUNS as u32).await;
        });
        WorkerHandle { stop, done }
    }

    /// Drive runs one after another until none is left to claim (tests, and `dropops` CLI use).
    pub async fn run_until_idle(&self) -> Result<Driven, sqlx::Error> {
        while let Some(claim) = self.claim().await? {
            let driven = self.drive(claim).await?;
            if matches!(driven, Driven::Halted | Driven::Released) {
                return Ok(driven);
            }
        }
        Ok(Driven::Finished)
    }

    /// Take the oldest runnable run whose lease is free or lapsed, with a new epoch.
    pub async fn claim(&self) -> Result<Option<Claim>, sqlx::Error> {
        let lease_ms = self.state.config.runs.lease.as_millis() as i64;
        let claimed = db::claim(&self.state.pool, self.id, lease_ms).await?;
        Ok(claimed.map(|(run, epoch)| Claim { run, epoch }))
    }

    /// Hold a claimed run's lease: renew it every quarter lease while the run is driven. Acting
    /// is safe until three quarters of a lease after the last renewal was sent.
    fn hold(&self, claim: Claim, claimed_at: Instant) -> Lease {
        let lease = self.state.config.runs.lease;
        let safe = lease * 3 / 4;
        let (tx, held) = watch::channel(Some(claimed_at + safe));
        let (pool, owner, frozen) = (self.state.pool.clone(), self.id, self.frozen.clone());
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 4).await;
                if frozen.load(Ordering::SeqCst) {
                    continue;
                }
                let sent = Instant::now();
                match renew(&pool, claim, owner, lease).await {
                    Ok(true) => {
                        let _ = tx.send(Some(sent + safe));
                    }
                    Ok(false) => {
                        let _ = tx.send(None);
                        return;
                    }
                    // The deadline stays where it was: it runs out unless a later renewal works.
                    Err(e) => tracing::warn!(error = %e, run = %claim.run, "lease not renewed"),
                }
            }
        });
        Lease { claim, held, renewer }
    }

    /// Give a run back (shutdown, or after an interruption), fenced like every other write.
    async fn release(&self, claim: Claim) {
        if let Err(e) = db::release(&self.state.pool, claim.run, self.id, claim.epoch).await {
            tracing::warn!(error = %e, run = %claim.run, "lease not released: it lapses on its own");
        }
    }

    /// The fence: lock the run's row and check that this worker still holds its lease with
    /// the claimed epoch. Every write about a run goes through it, in the same transaction.
    /// The proof it returns is what the run's writers take, and says who asked to cancel.
    async fn fence(&self, tx: &mut PgConnection, lease: &Lease) -> Driving<Fenced> {
        db::fence(tx, lease.claim.run, self.id, lease.claim.epoch).await?.ok_or(Interrupt::LeaseLost)
    }

    fn halted(&self, position: i32, phase: Phase) -> bool {
        self.halt.as_ref().is_some_and(|h| h(position, phase))
    }

    /// The stall hook: freeze everything, renewals included, until the test lets go.
    async fn stall(&self, position: i32, phase: Phase) {
        if let Some(frozen) = self.stall.as_ref().and_then(|s| s(position, phase)) {
            self.frozen.store(true, Ordering::SeqCst);
            frozen.await;
            self.frozen.store(false, Ordering::SeqCst);
        }
    }

    /// Drive one claimed run until it ends, the lease is lost, the test hook stops it, or the
    /// replica shuts down.
    pub async fn drive(&self, claim: Claim) -> Result<Driven, sqlx::Error> {
        let lease = self.hold(claim, Instant::now());
        match self.drive_held(&lease).await {
            Ok(Driven::Released) => {
                self.release(claim).await;
                Ok(Driven::Released)
            }
            Ok(driven) => Ok(driven),
            Err(Interrupt::LeaseLost) => {
                tracing::warn!(run = %claim.run, "lease lost: this worker stops acting on the run");
                Ok(Driven::LostLease)
            }
            Err(Interrupt::Db(e)) => Err(e),
        }
    }

    async fn drive_held(&self, lease: &Lease) -> Driving<Driven> {
        let pool = &self.state.pool;
        let id = lease.claim.run;
        let mut last_wait: Option<(i32, String)> = None;
        let mut resumed_here = std::collections::HashSet::new();
        loop {
            if !lease.valid() {
                return Err(Interrupt::LeaseLost);
            }
            if self.stopping() {
                return Ok(Driven::Released);
            }
            let Some(run) = super::get(pool, id).await? else { return Ok(Driven::Finished) };
            let steps = super::steps(pool, id).await?;
            let ctx = acting_for(pool, &run).await?;
            let failed = steps.iter().any(|s| s.status == StepStatus::Failed);
            let stopping = failed || run.cancel_requested_by.is_some();
            // Steps that will not run now: skipped after a failure, cancelled on request.
            if stopping {
                let status = if failed { StepStatus::Skipped } else { StepStatus::Cancelled };
                let mut tx = pool.begin().await?;
                let fenced = self.fence(&mut tx, lease).await?;
                db::stop_pending(&mut tx, &fenced, id, status).await?;
                tx.commit().await?;
            }
            let current = steps.iter().find(|s| {
                s.status == StepStatus::Running || (s.status == StepStatus::Pending && (!stopping || s.always))
            });
            let Some(step) = current else {
                self.finish(lease, &run, &ctx).await?;
                return Ok(Driven::Finished);
            };
            let Some(kind) = StepKind::parse(&step.name) else {
                self.fail_step(
                    lease,
                    &run,
                    &ctx,
                    step,
                    "the console does not know this step (a newer version wrote it)",
                )
                .await?;
                continue;
            };
            let mut step = step.clone();
            if step.status == StepStatus::Pending {
                match self.start_step(lease, &run, &ctx, &step, kind).await {
                    Ok(true) => {}
                    // A cancel arrived before a step past the point of no return: it stops here.
                    Ok(false) => continue,
                    Err(Interrupt::Db(e)) => {
                        tracing::error!(error = %e, "audit intent not written; the step waits");
                        tokio::time::sleep(self.state.config.runs.poll_interval).await;
                        continue;
                    }
                    Err(lost) => return Err(lost),
                }
                step = super::steps(pool, id).await?.into_iter().find(|s| s.position == step.position).unwrap_or(step);
                resumed_here.insert(step.position);
            } else if resumed_here.insert(step.position) && step.state["resumed"].as_bool() != Some(true) {
                // Found in progress: another replica (or this one before a restart) started it.
                let mut tx = pool.begin().await?;
                let fenced = self.fence(&mut tx, lease).await?;
                super::note(
                    &mut *tx,
                    id,
                    Some(step.position),
                    "Resumed after an interruption: checking what was already done",
                )
                .await?;
                db::mark_resumed(&mut tx, &fenced, id, step.position).await?;
                tx.commit().await?;
                step.state["resumed"] = json!(true);
            }
            if self.halted(step.position, Phase::BeforeAct) {
                return Ok(Driven::Halted);
            }
            self.stall(step.position, Phase::BeforeAct).await;
            if !lease.valid() {
                return Err(Interrupt::LeaseLost);
            }
            let cx = StepContext { state: &self.state, run: &run, step: &step };
            // The step is abandoned the moment acting stops being safe.
            let progress = tokio::select! {
                biased;
                () = lease.lapsed() => return Err(Interrupt::LeaseLost),
                progress = steps::attempt(&cx, kind) => progress,
            };
            if self.halted(step.position, Phase::AfterAct) {
                return Ok(Driven::Halted);
            }
            self.stall(step.position, Phase::AfterAct).await;
            match progress {
                Progress::Done(learned) => self.complete_step(lease, &run, &ctx, &step, kind, learned).await?,
                Progress::Waiting(why) => {
                    if last_wait.as_ref() != Some(&(step.position, why.clone())) {
                        self.note(lease, Some(step.position), &why).await?;
                        last_wait = Some((step.position, why));
                    }
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        () = tokio::time::sleep(self.state.config.runs.poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                }
                Progress::Failed(why) => {
                    self.fail_step(lease, &run, &ctx, &step, &why).await?;
                    if kind == StepKind::VerifyHealth {
                        self.roll_back_automatically(lease, &run, &step).await?;
                    }
                }
            }
        }
    }

    /// A line in the run's log, fenced.
    async fn note(&self, lease: &Lease, position: Option<i32>, line: &str) -> Driving<()> {
        let mut tx = self.state.pool.begin().await?;
        self.fence(&mut tx, lease).await?;
        super::note(&mut *tx, lease.claim.run, position, line).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The step's audit intent and its start, in one fenced transaction: no step runs
    /// unaudited. `false`: not started, because a cancel arrived before a step past the point
    /// of no return.
    async fn start_step(
        &self,
        lease: &Lease,
        run: &Run,
        ctx: &AuditContext,
        step: &Step,
        kind: StepKind,
    ) -> Driving<bool> {
        let mut tx = self.state.pool.begin().await?;
        // The audit chain's lock first, then the run's row, as every audited request does.
        let token = audit::intent(&mut tx, ctx, step_intent(run, step, kind)).await.map_err(app_failed)?;
        let fenced = self.fence(&mut tx, lease).await?;
        if fenced.cancel_requested_by.is_some() && kind.commits().is_some() {
            return Ok(false);
        }
        db::step_started(&mut tx, &fenced, &token, run.id, step.position).await?;
        // The outcome is written when the step ends, perhaps by another replica: it finds the
        // intent again through `intent_id` (audit::open_intent).
        tx.commit().await?;
        Ok(true)
    }

    async fn complete_step(
        &self,
        lease: &Lease,
        run: &Run,
        ctx: &AuditContext,
        step: &Step,
        kind: StepKind,
        learned: Value,
    ) -> Driving<()> {
        let mut tx = self.state.pool.begin().await?;
        if let Some(token) = audit::open_intent(&mut tx, step.intent_id).await? {
            audit::outcome(&mut tx, ctx, token, Outcome::Succeeded).await.map_err(app_failed)?;
        }
        let fenced = self.fence(&mut tx, lease).await?;
        db::step_succeeded(&mut tx, &fenced, run.id, step.position, &learned).await?;
        // One line per event: what was done, with its evidence.
        let mut line = format!("Done: {}", step.title);
        if let Some(version) = learned["health_version"].as_str() {
            line = format!("Done: health ok, version {version}");
        }
        if let Some(did) = Fact::Did.of(&learned) {
            line = format!("Done: {did}");
        }
        if learned["adopted"].as_bool() == Some(true) {
            line.push_str(" (the operation started before the interruption was found and followed)");
        }
        super::note(&mut *tx, run.id, Some(step.position), &line).await?;
        if let Some(notice) = window_notice(&self.state, run, kind) {
            crate::notify::queue(&mut tx, &self.state, &notice).await?;
        }
        tx.commit().await?;
        tracing::info!(run = %run.id, step = kind.as_str(), "run step done");
        Ok(())
    }

    async fn fail_step(&self, lease: &Lease, run: &Run, ctx: &AuditContext, step: &Step, why: &str) -> Driving<()> {
        let mut tx = self.state.pool.begin().await?;
        if let Some(token) = audit::open_intent(&mut tx, step.intent_id).await? {
            audit::outcome(&mut tx, ctx, token, Outcome::Failed(why.to_owned())).await.map_err(app_failed)?;
        }
        let fenced = self.fence(&mut tx, lease).await?;
        db::step_failed(&mut tx, &fenced, run.id, step.position, why).await?;
        tx.commit().await?;
        tracing::warn!(run = %run.id, step = %step.name, reason = why, "run step failed");
        Ok(())
    }

    /// After a deploy's health check failed: add the steps that put the previous image back,
    /// before the maintenance window closes.
    async fn roll_back_automatically(&self, lease: &Lease, run: &Run, failed: &Step) -> Driving<()> {
        if run.procedure() != Some(Procedure::Deploy) {
            return Ok(());
        }
        let previous = Fact::PreviousTag.of(&run.facts).unwrap_or_default().to_owned();
        if Fact::PreviousImage.of(&run.facts).is_none() {
            let line = "The image that ran before could not be identified in ECR, so there is no automatic rollback: choose an image to roll back to on the deployments page";
            return self.note(lease, Some(failed.position), line).await;
        }
        if !self.state.config.runs.auto_rollback {
            return self
                .note(lease, Some(failed.position), "Automatic rollback is off: roll back from the deployments page")
                .await;
        }
        let service = self.state.config.drop.service_name().to_owned();
        let plan = Plan::automatic_rollback(&service, &previous);
        let gap = plan.steps.len() as i32;
        let mut tx = self.state.pool.begin().await?;
        let fenced = self.fence(&mut tx, lease).await?;
        db::open_gap(&mut tx, &fenced, run.id, failed.position, gap).await?;
        db::insert_steps(&mut tx, run.id, failed.position + 1, &plan).await?;
        super::note(
            &mut *tx,
            run.id,
            Some(failed.position),
            &format!("Rolling back automatically to the image that ran before, {previous}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// No step left: record how the run ended, release it, and say so in the audit log.
    async fn finish(&self, lease: &Lease, run: &Run, ctx: &AuditContext) -> Driving<()> {
        let steps = super::steps(&self.state.pool, run.id).await?;
        let first_failure = steps.iter().find(|s| s.status == StepStatus::Failed);
        let (status, outcome) = match first_failure {
            Some(step) => {
                let why = step.state["error"].as_str().unwrap_or("it failed");
                let rolled_back = steps
                    .iter()
                    .any(|s| s.name == StepKind::VerifyRollback.as_str() && s.status == StepStatus::Succeeded);
                let mut outcome = format!("{}: {why}", step.title);
                if rolled_back {
                    outcome.push_str(&format!(
                        ". Rolled back automatically: {} runs again and is healthy.",
                        Fact::PreviousTag.of(&run.facts).unwrap_or("the previous image")
                    ));
                }
                (RunStatus::Failed, Some(outcome))
            }
            None if run.cancel_requested_by.is_some() && steps.iter().any(|s| s.status == StepStatus::Cancelled) => {
                (RunStatus::Cancelled, Some(cancelled_outcome(run, &steps)))
            }
            None => (RunStatus::Succeeded, None),
        };
        let mut tx = self.state.pool.begin().await?;
        let fenced = self.fence(&mut tx, lease).await?;
        db::finish(&mut tx, &fenced, run.id, status, outcome.as_deref()).await?;
        super::note(
            &mut *tx,
            run.id,
            None,
            &format!("Run {status}{}", outcome.as_ref().map(|o| format!(": {o}")).unwrap_or_default()),
        )
        .await?;
        if let Some(procedure) = run.procedure() {
            let id = RunId::stored(run.id);
            let rolled_back =
                steps.iter().any(|s| s.name == StepKind::VerifyRollback.as_str() && s.status == StepStatus::Succeeded);
            let notice = Notice::RunEnded { run: id, procedure, status, rolled_back };
            crate::notify::queue(&mut tx, &self.state, &notice).await?;
        }
        tx.commit().await?;
        let event = audit::Event {
            action: "run_finished",
            resource_type: Resource::Run,
            resource_id: run.id.to_string(),
            reason: None,
            details: json!({ "procedure": run.procedure, "status": status, "outcome": outcome }),
        };
        if let Err(e) = audit::event(&self.state.pool, ctx, event).await {
            tracing::error!(error = %e, run = %run.id, "run_finished not audited");
        }
        Ok(())
    }
}

/// The Slack notice of a maintenance window opening or closing, for those steps.
fn window_notice(state: &AppState, run: &Run, kind: StepKind) -> Option<Notice> {
    let (procedure, id) = (run.procedure()?, RunId::stored(run.id));
    match kind {
        StepKind::OpenWindow => {
            Some(Notice::WindowOpened { run: id, procedure, minutes: state.config.runs.maintenance_window_minutes })
        }
        StepKind::CloseWindow => Some(Notice::WindowClosed { run: id, procedure }),
        _ => None,
    }
}

/// What a cancelled run left behind, in words: whether anything changed, what serves now, what
/// was skipped. "Cancelled by Ola before anything changed: 7f3c2a1 still serves."
fn cancelled_outcome(run: &Run, steps: &[Step]) -> String {
    let who = run.cancel_requested_by.as_deref().unwrap_or("someone");
    let changed: Vec<&str> = steps
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded)
        .filter(|s| {
            StepKind::parse(&s.name)
                .is_some_and(|k| k.commits().is_some() || matches!(k, StepKind::Pause | StepKind::Resume))
        })
        .map(|s| s.title.as_str())
        .collect();
    let skipped: Vec<&str> =
        steps.iter().filter(|s| s.status == StepStatus::Cancelled).map(|s| s.title.as_str()).collect();
    let serving = Fact::PreviousTag.of(&run.facts).filter(|t| *t != "unknown");
    if changed.is_empty() {
        let still = serving.map(|t| format!(": {t} still serves")).unwrap_or_default();
        format!("Cancelled by {who} before anything changed{still}.")
    } else {
        format!(
            "Cancelled by {who} after: {}. Skipped: {}. Check the health dashboard before doing anything else.",
            changed.join("; "),
            skipped.join("; ")
        )
    }
}

/// Extend the lease, if this worker still holds it with the claimed epoch.
async fn renew(pool: &PgPool, claim: Claim, owner: Uuid, lease: Duration) -> Result<bool, sqlx::Error> {
    db::renew(pool, claim.run, owner, claim.epoch, lease.as_millis() as i64).await
}

/// An audit write that failed stops the step like a database error does.
fn app_failed(e: AppError) -> Interrupt {
    Interrupt::Db(audit_failed(e))
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
            resource_type: Resource::Secret,
            resource_id: run.params.rotation().map_or("secret", |p| p.env_name.as_str()).to_owned(),
            reason: run.reason.as_deref().map(Reason::cut),
            details: json!({
                "rotated_at": chrono::Utc::now(),
                "secret_id": run.params.rotation().map(|p| p.secret_id.as_str()),
                "fingerprint": Fact::Fingerprint.of(&run.facts),
                "run_id": run.id,
            }),
        };
    }
    Intent {
        action: kind.action(),
        resource_type: Resource::Run,
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
    let staff = db::starter(pool, run.started_by).await?;
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

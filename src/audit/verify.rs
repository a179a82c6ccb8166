//! Verifying the hash chain at any size. A verification walks the chain in stretches of
//! [`STRETCH`] rows (one index range, one result row each: bounded memory whatever the log's
//! length), records its progress after each, and ends as the new checkpoint when the chain
//! holds. The audit page verifies onward from the checkpoint; a full verification, from the
//! first row, is an explicit audited action (the page's "Re-verify everything", the CLI).

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use super::db::{self, Verification};
use super::{AuditContext, Chain, Intent, Outcome, Resource};
use crate::error::AppError;

/// Rows recomputed per statement.
pub const STRETCH: i64 = 20_000;

/// A running verification whose progress has not moved for this long was interrupted (its
/// replica stopped); the next one starts again from the checkpoint.
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// From the last checkpoint (or the first row when there is none) to the head.
    SinceCheckpoint,
    /// From the first row to the head, whatever earlier verifications found.
    Full,
}

/// A verification as the page and the CLI report it.
#[derive(Clone, Debug)]
pub struct Report {
    pub verification: Verification,
    /// A break an earlier verification found that no full verification has cleared since.
    pub standing_break: Option<Verification>,
}

impl Report {
    pub fn running(&self) -> bool {
        self.verification.finished_at.is_none()
    }

    /// Running, but its progress stopped moving: the replica doing it went away.
    pub fn stalled(&self) -> bool {
        self.running() && (Utc::now() - self.verification.updated_at).to_std().is_ok_and(|quiet| quiet > STALLED_AFTER)
    }

    pub fn intact(&self) -> bool {
        !self.running() && self.verification.problem.is_none() && self.standing_break.is_none()
    }

    /// Entries recomputed per second so far.
    pub fn rows_per_second(&self) -> f64 {
        let v = &self.verification;
        let end = v.finished_at.unwrap_or(v.updated_at);
        let secs = (end - v.started_at).num_milliseconds().max(1) as f64 / 1000.0;
        v.rows as f64 / secs
    }

    /// Share done, 0–100.
    pub fn percent(&self) -> i64 {
        let v = &self.verification;
        let span = (v.target_seq - v.from_seq).max(1);
        ((v.checked_seq - v.from_seq) * 100 / span).clamp(0, 100)
    }
}

/// Register a verification of one chain's `scope` up to its current head; [`walk`] does the work.
pub async fn begin(pool: &PgPool, chain: Chain, started_by: &str, scope: Scope) -> Result<i64, sqlx::Error> {
    let (head_seq, _) = db::chain_head(pool, chain).await?;
    let from = match scope {
        Scope::Full => (0, None),
        Scope::SinceCheckpoint => {
            db::checkpoint(pool, chain).await?.map_or((0, None), |c| (c.checked_seq.min(head_seq), c.checked_hash))
        }
    };
    db::start_verification(pool, chain, started_by, scope == Scope::Full, (from.0, from.1.as_deref()), head_seq).await
}

/// Recompute a registered verification's rows to its target, recording progress after each
/// stretch and the first broken row, if any, at the end.
pub async fn walk(pool: &PgPool, id: i64) -> Result<Report, sqlx::Error> {
    let v = db::verification(pool, id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let (mut seq, mut hash, mut rows) = (v.checked_seq, v.checked_hash.clone(), v.rows);
    let mut broken: Option<(Option<i64>, String)> = None;
    while seq < v.target_seq {
        let size = (v.target_seq - seq).min(STRETCH);
        let stretch = db::verify_stretch(pool, v.chain, seq, hash.as_deref(), size).await?;
        rows += stretch.rows;
        if let Some((row, problem)) = stretch.first_broken {
            broken = Some((Some(row), problem));
            break;
        }
        let Some((last_seq, last_hash)) = stretch.last else {
            // Nothing at all in this stretch: rows were removed here.
            broken = Some(match db::next_after(pool, v.chain, seq).await? {
                Some((row, _)) => (Some(row), "a row before it is missing".to_owned()),
                None => (None, format!("the newest entries, up to number {}, are missing", v.target_seq)),
            });
            break;
        };
        seq = last_seq;
        hash = Some(last_hash);
        db::advance_verification(pool, id, seq, hash.as_deref(), rows).await?;
    }
    db::finish_verification(pool, id, broken.as_ref().map(|(row, problem)| (*row, problem.as_str()))).await?;
    report(pool, id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// A verification and any standing break, for display.
pub async fn report(pool: &PgPool, id: i64) -> Result<Option<Report>, sqlx::Error> {
    let Some(verification) = db::verification(pool, id).await? else { return Ok(None) };
    let standing_break = db::standing_break(pool, verification.chain).await?.filter(|b| b.id != verification.id);
    Ok(Some(Report { verification, standing_break }))
}

/// The audit intent of a verification: a full one is an explicit action, recorded as such.
/// A verification of the casework chain is recorded in that chain: its result may name a row.
fn intent(chain: Chain, scope: Scope) -> Intent {
    Intent {
        action: if scope == Scope::Full { "audit_chain_full_verification" } else { "audit_chain_verification" },
        resource_type: Resource::log_of(chain),
        resource_id: "chain".into(),
        reason: None,
        details: serde_json::json!({ "scope": if scope == Scope::Full { "full" } else { "since_checkpoint" } }),
    }
}

fn outcome_of(report: &Report) -> Outcome {
    match &report.verification.problem {
        None => Outcome::Succeeded,
        Some(problem) => Outcome::Failed(match report.verification.broken_id {
            Some(row) => format!("chain broken at entry {row}: {problem}"),
            None => format!("chain broken: {problem}"),
        }),
    }
}

/// Audited verification, walked in this task: for the command line.
pub async fn run(pool: &PgPool, ctx: &AuditContext, chain: Chain, scope: Scope) -> Result<Report, AppError> {
    let token = super::intent_committed(pool, ctx, intent(chain, scope)).await?;
    let id = begin(pool, chain, &ctx.actor.name, scope).await?;
    let report = walk(pool, id).await?;
    let mut conn = pool.acquire().await?;
    super::outcome(&mut conn, ctx, token, outcome_of(&report)).await?;
    Ok(report)
}

/// Audited verification walked in the background: the page waits up to `wait` for it, then
/// shows its progress and polls. The intent is committed before any row is read.
pub async fn start(
    pool: &PgPool,
    ctx: &AuditContext,
    chain: Chain,
    scope: Scope,
    wait: Duration,
) -> Result<Report, AppError> {
    let token = super::intent_committed(pool, ctx, intent(chain, scope)).await?;
    let id = begin(pool, chain, &ctx.actor.name, scope).await?;
    let (pool_, ctx_) = (pool.clone(), ctx.clone());
    let task = tokio::spawn(async move {
        let walked = walk(&pool_, id).await;
        let outcome = match &walked {
            Ok(report) => outcome_of(report),
            Err(e) => Outcome::Failed(format!("the verification stopped: {e}")),
        };
        let mut conn = pool_.acquire().await?;
        super::outcome(&mut conn, &ctx_, token, outcome).await?;
        walked.map_err(AppError::from)
    });
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(done)) => done,
        Ok(Err(join)) => Err(AppError::Internal(anyhow::anyhow!("verification task: {join}"))),
        Err(_) => Ok(report(pool, id).await?.ok_or(AppError::NotFound)?),
    }
}

/// Where a chain stands: when it was last found intact, and a break no full verification
/// has cleared since (for the risk page).
pub struct Standing {
    pub chain: Chain,
    pub verified_at: Option<chrono::DateTime<Utc>>,
    pub verified_rows_to: Option<i64>,
    pub broken: Option<String>,
}

pub async fn standing(pool: &PgPool, chain: Chain) -> Result<Standing, sqlx::Error> {
    let checkpoint = db::checkpoint(pool, chain).await?;
    let broken = db::standing_break(pool, chain).await?;
    Ok(Standing {
        chain,
        verified_at: checkpoint.as_ref().and_then(|c| c.finished_at),
        verified_rows_to: checkpoint.map(|c| c.checked_seq),
        broken: broken.and_then(|b| b.problem),
    })
}

/// A stretch of a chain as an inspection sees it: its rows, first and last hash, and whether
/// every row in it recomputes and links to the one before.
pub struct Range {
    pub chain: Chain,
    pub first_seq: i64,
    pub last_seq: i64,
    pub rows: i64,
    /// The hash the first row links to (the row before the range), hex.
    pub before_hash: Option<String>,
    pub first_hash: Option<String>,
    pub last_hash: Option<String>,
    /// The first row that does not recompute or link, and why.
    pub broken: Option<(i64, String)>,
}

/// Recompute rows `first_seq..=last_seq` of `chain` in stretches (bounded memory).
pub async fn range(pool: &PgPool, chain: Chain, first_seq: i64, last_seq: i64) -> Result<Range, sqlx::Error> {
    let before = if first_seq > 1 { db::row_hash(pool, chain, first_seq - 1).await? } else { None };
    let first = db::row_hash(pool, chain, first_seq).await?;
    let mut report = Range {
        chain,
        first_seq,
        last_seq,
        rows: 0,
        before_hash: before.as_deref().map(hex::encode),
        first_hash: first.as_deref().map(hex::encode),
        last_hash: None,
        broken: None,
    };
    let (mut after, mut after_hash) = (first_seq - 1, before);
    while after < last_seq && report.broken.is_none() {
        let size = STRETCH.min(last_seq - after);
        let stretch = db::verify_stretch(pool, chain, after, after_hash.as_deref(), size).await?;
        report.rows += stretch.rows;
        report.broken = stretch.first_broken;
        match stretch.last {
            Some((seq, hash)) => {
                report.last_hash = Some(hex::encode(&hash));
                (after, after_hash) = (seq, Some(hash));
            }
            None => break,
        }
    }
    Ok(report)
}

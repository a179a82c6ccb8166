//! Staging first: an image goes to Fly.io staging as a run of its own target
//! ([`crate::config::Config::staging_target`]) — staging's machines updated one at a time,
//! each started with its checks passing before the next, then staging's health endpoint
//! checked for the image's version. A run that ends there records the pass, which the
//! production deploy's confirmation reads.
//!
//! Every step reads staging as it is before acting: a machine already on the image is not
//! updated again, so a run resumed after a crash carries on where it stopped.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::facts::{Fact, learned};
use super::params::StagingParams;
use super::plan::StepKind;
use super::steps::{Progress, StepContext, trouble, verify_health};
use crate::cloud::Environment;
use crate::cloud::fly::Staging;

/// Attempt a staging step once.
pub async fn attempt(cx: &StepContext<'_>, kind: StepKind) -> Progress {
    let Some(fly) = cx.state.cloud.staging.clone() else {
        return Progress::Failed("Fly.io is not connected (fly.token), so staging cannot be changed".into());
    };
    let Some(p) = cx.run.params.staging() else {
        return Progress::Failed("the run names no image for staging".into());
    };
    match kind {
        StepKind::StagingPrecheck => precheck(cx, fly.as_ref(), p).await,
        StepKind::StagingUpdate => update(cx, fly.as_ref(), p).await,
        _ => verify(cx, p).await,
    }
}

/// Staging has machines; what they run now is what a rollback of this run goes back to.
async fn precheck(cx: &StepContext<'_>, fly: &dyn Staging, p: &StagingParams) -> Progress {
    let machines = match fly.machines().await {
        Ok(machines) => machines,
        Err(e) => return trouble(cx, cx.state.config.runs.retry_limit, e),
    };
    let Some(first) = machines.first() else {
        return Progress::Failed(format!(
            "{} has no machines: create them with `fly deploy -a {}` first; nothing was changed",
            p.app, p.app
        ));
    };
    Progress::Done(learned([
        (Fact::PreviousImage, first.image.clone().into()),
        (Fact::PreviousTag, first.tag.clone().unwrap_or_else(|| "untagged".into()).into()),
        (Fact::Did, format!("staging runs {}", crate::cloud::fly::summary(&machines)).into()),
    ]))
}

/// One machine at a time: the first not on the image is updated; one on it that is not yet
/// started with its checks passing is waited for before the next is touched.
async fn update(cx: &StepContext<'_>, fly: &dyn Staging, p: &StagingParams) -> Progress {
    let limits = &cx.state.config.runs;
    let mut machines = match fly.machines().await {
        Ok(machines) => machines,
        Err(e) => return trouble(cx, limits.deploy_timeout, e),
    };
    if machines.is_empty() {
        return Progress::Failed(format!("{} has no machines any more", p.app));
    }
    machines.sort_by(|a, b| a.id.cmp(&b.id));
    for m in &machines {
        if m.image != p.image {
            return match fly.set_image(&m.id, &p.image).await {
                Ok(()) => Progress::Waiting(format!(
                    "machine {} ({}) is being replaced with {}; waiting for it to start and pass its checks",
                    m.id, m.region, p.tag
                )),
                Err(e) => trouble(cx, limits.retry_limit, e),
            };
        }
        if !m.healthy() {
            if cx.overdue(limits.deploy_timeout) {
                return Progress::Failed(format!(
                    "machine {} ({}) on {} is {} after {} min; the machines after it were left as they are. Read `fly logs -a {}`, then roll staging back",
                    m.id,
                    m.region,
                    p.tag,
                    m.describe(),
                    limits.deploy_timeout.as_secs() / 60,
                    p.app
                ));
            }
            return Progress::Waiting(format!("machine {} ({}) on {} is {}", m.id, m.region, p.tag, m.describe()));
        }
    }
    Progress::Done(json!({
        "machines": machines.len(),
        Fact::Did.key(): format!("{} machine(s) run {}, every check passing", machines.len(), p.tag),
    }))
}

/// Staging's health reports the version; the pass is recorded (once per run).
async fn verify(cx: &StepContext<'_>, p: &StagingParams) -> Progress {
    match verify_health(cx, Environment::Staging, Some(&p.tag)).await {
        Progress::Done(mut found) => match record_pass(&cx.state.pool, cx.run.id, p).await {
            Ok(()) => {
                found[Fact::Did.key()] = format!("staging is healthy on {}: recorded as passed staging", p.tag).into();
                Progress::Done(found)
            }
            Err(e) => Progress::Waiting(format!("the pass could not be recorded ({e}); trying again")),
        },
        other => other,
    }
}

async fn record_pass(pool: &PgPool, run: Uuid, p: &StagingParams) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.staging_passes (run_id, tag, digest, image) values ($1, $2, $3, $4)
         on conflict (run_id) do nothing",
        run,
        p.tag,
        p.digest,
        p.image
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// The newest pass on staging of an ECR image, if it has one.
#[derive(Clone, Debug)]
pub struct Pass {
    pub run_id: Uuid,
    pub digest: String,
    pub passed_at: DateTime<Utc>,
}

/// The newest pass of each of these images (by digest), newest first.
pub async fn passes(pool: &PgPool, digests: &[String]) -> Result<Vec<Pass>, sqlx::Error> {
    sqlx::query_as!(
        Pass,
        "select distinct on (digest) run_id, digest, passed_at
           from console.staging_passes
          where digest = any($1)
          order by digest, passed_at desc",
        digests
    )
    .fetch_all(pool)
    .await
}

//! The simulated Drop environment: an App Runner service, an RDS instance with nightly
//! snapshots and drifting storage, the app's health endpoint and its certificate, CI and the
//! monitoring relay — derived from the clock and from the faults someone switched on (kept in
//! `console.sim_faults`, so a restart keeps them). Used by demo mode and for on-call training;
//! never the only test of the AWS adapter.
//!
//! One file per port it plays: `apprunner`, `rds`, `observe` (CloudWatch, probes, logs),
//! `registry` (ECR, Secrets Manager), `hooks` (CI, relay); its state is in `db`.

mod apprunner;
mod db;
mod faults;
mod hooks;
mod observe;
mod rds;
mod registry;

use chrono::{DateTime, Duration as Span, Timelike, Utc};
use sqlx::PgPool;

use super::{CloudError, CloudResult, Image, Scaling};
use crate::config::{Config, Secret};

pub use faults::{FAULTS, Fault};
pub use hooks::{STATUS_PAGE, STATUS_RESOURCE};

/// How long simulated operations take at time scale 1: App Runner and RDS as on-call sees them.
const DEPLOY_SECS: f64 = 150.0;
const PAUSE_SECS: f64 = 40.0;
const RESUME_SECS: f64 = 60.0;
const SCALING_SECS: f64 = 20.0;
/// A Fly machine replaced with a new image until its checks pass.
const FLY_MACHINE_SECS: f64 = 25.0;
const SNAPSHOT_SECS: f64 = 45.0;
const RESTORE_SECS: f64 = 300.0;

pub struct Simulator {
    pool: PgPool,
    service_name: String,
    region: String,
    account: String,
    repository: String,
    instance: String,
    database: String,
    database_url_secret: Option<String>,
    booted: DateTime<Utc>,
    /// Multiplies every simulated duration: 1.0 is realistic; tests use a small fraction.
    time_scale: f64,
    /// BetterStack's paused monitors (until the console restarts).
    paused_monitors: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Alerts raised by hand at BetterStack (until the console restarts).
    alerts: std::sync::Mutex<Vec<hooks::SimAlert>>,
    /// Fly.io staging's machines: the image each runs and when it was last updated (until the
    /// console restarts).
    staging: std::sync::Mutex<Vec<hooks::SimMachine>>,
    /// Where staging pulls images from, as configured (`fly.image_repository`).
    staging_repository: String,
}

/// An AWS-style refusal, worded as the adapter words real ones.
fn refused(service: &str, code: &str, message: &str) -> CloudError {
    CloudError::Unavailable(format!("{service} refused the request: {code} ({message})"))
}

impl Simulator {
    pub fn new(pool: PgPool, config: &Config) -> Self {
        let d = &config.drop;
        Self {
            pool,
            service_name: d.service_name().to_owned(),
            region: config.aws.region.clone().unwrap_or_else(|| "eu-west-1".into()),
            account: config.aws.account_id.clone().unwrap_or_else(|| "324480209768".into()),
            repository: d.repository().to_owned(),
            instance: d.instance().to_owned(),
            database: d.database().to_owned(),
            database_url_secret: d.database_url_secret_id.clone(),
            booted: Utc::now() - Span::hours(26),
            time_scale: config.simulator_time_scale,
            paused_monitors: Default::default(),
            alerts: Default::default(),
            staging: std::sync::Mutex::new(hooks::SimMachine::initial(&config.staging_image(SIM_TAGS[0]))),
            staging_repository: config.staging_repository(),
        }
    }

    async fn active(&self) -> CloudResult<Vec<String>> {
        db::active_faults(&self.pool).await
    }

    async fn has(&self, fault: &str) -> CloudResult<bool> {
        Ok(self.active().await?.iter().any(|f| f == fault))
    }

    /// What every simulated AWS call goes through: throttling and slowness.
    async fn aws_call(&self) -> CloudResult<()> {
        let faults = self.active().await?;
        if faults.iter().any(|f| f == "slow_responses") {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        if faults.iter().any(|f| f == "throttling") {
            return Err(CloudError::Throttled);
        }
        Ok(())
    }

    /// A simulated duration, scaled.
    fn takes(&self, secs: f64) -> Span {
        Span::milliseconds((secs * self.time_scale * 1000.0).round() as i64)
    }

    /// Last night's 03:00 UTC: when RDS takes its automated snapshot.
    fn last_nightly(now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_hms_opt(3, 0, 0).map_or(now, |t| t.and_utc());
        if now.hour() >= 3 { today } else { today - Span::days(1) }
    }

    fn repository_uri(&self) -> String {
        super::ecr_repository_uri(&self.account, &self.region, &self.repository)
    }

    /// The simulated ECR repository: the newest image was pushed an hour ago and is not
    /// deployed yet; the one before it runs.
    fn image_list(&self) -> Vec<Image> {
        let mut images: Vec<Image> = SIM_TAGS
            .iter()
            .enumerate()
            .map(|(i, tag)| Image {
                tags: vec![(*tag).to_owned()],
                digest: sim_digest(i as i64),
                pushed_at: if i == 0 {
                    self.booted + Span::hours(25)
                } else {
                    self.booted - Span::minutes(5) - Span::days(2 * (i as i64 - 1))
                },
                size_bytes: 180_000_000 + (noise(i as i64, 6) % 20_000_000) as i64,
            })
            .collect();
        // Two layers of an old build lost their tag when it was pushed again: cleanup candidates.
        for n in 0..2 {
            images.push(Image {
                tags: vec![],
                digest: sim_digest(100 + n),
                pushed_at: self.booted - Span::days(20 + n),
                size_bytes: 175_000_000,
            });
        }
        images
    }

    /// The tag an image reference (`repo:tag` or `repo@sha256:…`) points at, if any.
    fn tag_of(&self, reference: &str) -> Option<String> {
        let images = self.image_list();
        super::tag_of(&images, reference)
    }

    /// Seed the service on first use, then settle operations whose time is up: what the
    /// service runs, whether it is paused and its scaling follow from them.
    async fn service(&self) -> CloudResult<db::ServiceRow> {
        let first_image = format!("{}:{}", self.repository_uri(), SIM_TAGS[1]);
        let password = Secret::random_base64(32, true);
        db::service(&self.pool, &self.service_name, &first_image, password.expose()).await
    }

    /// Start an App Runner operation, refused as App Runner refuses it while another runs.
    async fn start_operation(
        &self,
        kind: &str,
        image: Option<&str>,
        scaling: Option<Scaling>,
        secs: f64,
    ) -> CloudResult<String> {
        self.aws_call().await?;
        let service = self.service().await?;
        if service.busy {
            return Err(refused(
                "App Runner",
                "InvalidStateException",
                "the service is in OPERATION_IN_PROGRESS state",
            ));
        }
        match kind {
            "PAUSE_SERVICE" if service.paused => {
                return Err(refused("App Runner", "InvalidStateException", "the service is already paused"));
            }
            "RESUME_SERVICE" if !service.paused => {
                return Err(refused("App Runner", "InvalidStateException", "the service is not paused"));
            }
            "START_DEPLOYMENT" | "UPDATE_SERVICE" if service.paused => {
                return Err(refused("App Runner", "InvalidStateException", "the service is paused"));
            }
            _ => {}
        }
        let deploys = matches!(kind, "START_DEPLOYMENT" | "UPDATE_SERVICE");
        let fails = deploys && self.has("deploy_fails").await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let op =
            db::NewOperation { id: &id, kind, image, scaling, takes_ms: self.takes(secs).num_milliseconds(), fails };
        db::start_operation(&self.pool, &self.service_name, op).await?;
        Ok(id)
    }

    /// The master password RDS has now (training and tests compare it with the secret).
    pub async fn master_password(&self) -> CloudResult<Secret> {
        self.service().await?;
        db::master_password(&self.pool, &self.service_name).await.map(Secret::new)
    }

    /// Give a secret its first version, dated as if it had been set long ago.
    async fn seed_secret(&self, id: &str) -> CloudResult<()> {
        let value = if self.database_url_secret.as_deref() == Some(id) {
            let password = self.master_password().await?;
            database_url(&self.instance, &self.region, &self.database, password.expose())
        } else {
            Secret::random_base64(48, false).expose().to_owned()
        };
        // The JWT secret was last rotated 60 days ago; anything else 40.
        let days = if id.contains("jwt") { 60 } else { 40 };
        db::seed_secret(&self.pool, id, &value, self.booted - Span::days(days)).await
    }
}

/// Where the simulated app finds its database.
fn database_url(instance: &str, region: &str, database: &str, password: &str) -> String {
    format!("postgres://drop:{password}@{instance}.c8xyzqrt.{region}.rds.amazonaws.com:5432/{database}")
}

/// A stable, realistic-looking image digest (64 hex digits).
fn sim_digest(n: i64) -> String {
    format!("sha256:{:016x}{:016x}{:016x}{:016x}", noise(n, 5), noise(n, 7), noise(n, 11), noise(n, 13))
}

/// A stable pseudo-random number for a moment: the same minute always logs the same lines.
fn noise(seed: i64, salt: u64) -> u64 {
    let mut x = (seed as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// The simulated repository's tags, newest first: the first is pushed but not deployed, the
/// second runs when the simulator starts.
const SIM_TAGS: [&str; 7] = ["b2e9f14", "7f3c2a1", "c0ffee4", "5d1e9b2", "a4b8c03", "9e77d10", "31f0a6e"];

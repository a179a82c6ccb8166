//! The simulated Drop environment: an App Runner service, an RDS instance with nightly
//! snapshots and drifting storage, the app's health endpoint and its certificate — derived
//! from the clock and from the faults someone switched on (kept in `console.sim_faults`, so
//! a restart keeps them). Used by demo mode and for on-call training; never the only test of
//! the AWS adapter.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, Timelike, Utc};
use sqlx::PgPool;

use super::{
    AppHealth, AppMetrics, AppRunner, CloudError, CloudResult, CloudWatch, DbInstance, Ecr, Environment, Image,
    LogEvent, LogQuery, Logs, Operation, Probes, Rds, Scaling, SecretInfo, Secrets, ServiceStatus, Snapshot,
    pattern_terms,
};
use crate::config::{Config, Secret};

/// A fault that can be injected, and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub name: &'static str,
    pub label: &'static str,
    pub effect: &'static str,
}

pub const FAULTS: [Fault; 10] = [
    Fault {
        name: "health_red",
        label: "App health turns red",
        effect: "The health endpoint answers with status error.",
    },
    Fault {
        name: "db_unreachable",
        label: "Database unreachable",
        effect: "Health answers 503: the app cannot reach RDS.",
    },
    Fault { name: "storage_low", label: "Storage almost full", effect: "FreeStorageSpace drops to 1.4 GB." },
    Fault {
        name: "snapshot_missing",
        label: "Nightly snapshot missing",
        effect: "The newest automated snapshot is 30 hours old.",
    },
    Fault { name: "service_down", label: "Service paused", effect: "App Runner reports PAUSED." },
    Fault { name: "throttling", label: "AWS throttling", effect: "Every AWS call is throttled." },
    Fault {
        name: "slow_responses",
        label: "Slow responses",
        effect: "AWS calls take 5 s (past the console's limit); DB latency 350 ms.",
    },
    Fault {
        name: "certificate_expiring",
        label: "Certificate expiring",
        effect: "The TLS certificate expires in 12 days.",
    },
    Fault {
        name: "deploy_fails",
        label: "Deployments fail",
        effect: "Every App Runner deployment started from now ends FAILED; the old image keeps running.",
    },
    Fault {
        name: "release_unhealthy",
        label: "Newest image is broken",
        effect: "The newest image in ECR deploys, but its health check answers status error.",
    },
];

/// How long simulated operations take at time scale 1: App Runner and RDS as on-call sees them.
const DEPLOY_SECS: f64 = 150.0;
const PAUSE_SECS: f64 = 40.0;
const RESUME_SECS: f64 = 60.0;
const SCALING_SECS: f64 = 20.0;
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
}

fn sim_error(e: sqlx::Error) -> CloudError {
    CloudError::Unavailable(format!("the simulator's state cannot be read: {e}"))
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
        }
    }

    async fn active(&self) -> CloudResult<Vec<String>> {
        sqlx::query_scalar!("select name from console.sim_faults where active")
            .fetch_all(&self.pool)
            .await
            .map_err(sim_error)
    }

    async fn has(&self, fault: &str) -> CloudResult<bool> {
        Ok(self.active().await?.iter().any(|f| f == fault))
    }

    /// What every simulated AWS call goes through: throttling and slowness.
    async fn aws_call(&self) -> CloudResult<()> {
        let faults = self.active().await?;
        if faults.iter().any(|f| f == "slow_responses") {
            tokio::time::sleep(Duration::from_secs(5)).await;
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
    async fn service(&self) -> CloudResult<SimService> {
        let password = Secret::random_base64(32, true);
        sqlx::query!(
            "insert into console.sim_service (name, image, db_password) values ($1, $2, $3) on conflict (name) do nothing",
            self.service_name,
            format!("{}:{}", self.repository_uri(), SIM_TAGS[1]),
            password.expose()
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        sqlx::query!(
            r#"with done as (
                   update console.sim_operations
                      set status = case when fails then 'FAILED' else 'SUCCEEDED' end, ended_at = ends_at
                    where service = $1 and status is null and ends_at <= now()
                returning kind, image, min_size, max_size, fails, ends_at)
               update console.sim_service s set
                   image = coalesce((select image from done where not fails and image is not null
                                     order by ends_at desc limit 1), s.image),
                   paused = coalesce((select kind = 'PAUSE_SERVICE' from done
                                      where not fails and kind in ('PAUSE_SERVICE', 'RESUME_SERVICE')
                                      order by ends_at desc limit 1), s.paused),
                   min_size = coalesce((select min_size from done where not fails and min_size is not null
                                        order by ends_at desc limit 1), s.min_size),
                   max_size = coalesce((select max_size from done where not fails and max_size is not null
                                        order by ends_at desc limit 1), s.max_size),
                   updated_at = now()
                where s.name = $1 and exists (select 1 from done)"#,
            self.service_name
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        let row = sqlx::query!(
            r#"select image, paused, min_size, max_size,
                      exists (select 1 from console.sim_operations o where o.service = s.name and o.status is null)
                          as "busy!"
                 from console.sim_service s where name = $1"#,
            self.service_name
        )
        .fetch_one(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(SimService {
            image: row.image,
            paused: row.paused,
            scaling: Scaling { min: row.min_size, max: row.max_size },
            busy: row.busy,
        })
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
        sqlx::query!(
            "insert into console.sim_operations (id, service, kind, image, min_size, max_size, ends_at, fails)
             values ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 millisecond', $8)",
            id,
            self.service_name,
            kind,
            image,
            scaling.map(|s| s.min),
            scaling.map(|s| s.max),
            self.takes(secs).num_milliseconds(),
            fails
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(id)
    }

    /// The master password RDS has now (training and tests compare it with the secret).
    pub async fn master_password(&self) -> CloudResult<Secret> {
        self.service().await?;
        sqlx::query_scalar!("select db_password from console.sim_service where name = $1", self.service_name)
            .fetch_one(&self.pool)
            .await
            .map(Secret::new)
            .map_err(sim_error)
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
        sqlx::query!(
            "insert into console.sim_secret_versions (secret_id, version_id, value, current, created_at)
             select $1, 'initial', $2, true, $3
              where not exists (select 1 from console.sim_secret_versions where secret_id = $1)
             on conflict do nothing",
            id,
            value,
            self.booted - Span::days(days)
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(())
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

struct SimService {
    image: String,
    paused: bool,
    scaling: Scaling,
    busy: bool,
}

#[async_trait]
impl AppRunner for Simulator {
    async fn service_status(&self) -> CloudResult<ServiceStatus> {
        self.aws_call().await?;
        let service = self.service().await?;
        let status = if service.paused || self.has("service_down").await? {
            "PAUSED"
        } else if service.busy {
            "OPERATION_IN_PROGRESS"
        } else {
            "RUNNING"
        };
        Ok(ServiceStatus {
            status: status.into(),
            image: service.image,
            url: format!("https://{}.sim.awsapprunner.com", self.service_name),
        })
    }

    async fn recent_operations(&self) -> CloudResult<Vec<Operation>> {
        self.aws_call().await?;
        self.service().await?;
        let mut operations: Vec<Operation> = sqlx::query!(
            "select id, kind, status, started_at, ended_at from console.sim_operations
              where service = $1 order by started_at desc limit 20",
            self.service_name
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sim_error)?
        .into_iter()
        .map(|o| Operation {
            id: o.id,
            kind: o.kind,
            status: o.status.unwrap_or_else(|| "IN_PROGRESS".into()),
            started_at: o.started_at,
            ended_at: o.ended_at,
        })
        .collect();
        // The deployment that put the first image in place, before the simulator kept records.
        operations.push(Operation {
            id: "initial".into(),
            kind: "START_DEPLOYMENT".into(),
            status: "SUCCEEDED".into(),
            started_at: self.booted - Span::minutes(4),
            ended_at: Some(self.booted),
        });
        Ok(operations)
    }

    async fn start_deployment(&self) -> CloudResult<String> {
        self.start_operation("START_DEPLOYMENT", None, None, DEPLOY_SECS).await
    }

    async fn deploy_image(&self, image: &str) -> CloudResult<String> {
        if !image.starts_with(&self.repository_uri()) || self.tag_of(image).is_none() {
            return Err(refused(
                "App Runner",
                "InvalidRequestException",
                &format!("{image} is not an image in the repository"),
            ));
        }
        self.start_operation("UPDATE_SERVICE", Some(image), None, DEPLOY_SECS).await
    }

    async fn pause(&self) -> CloudResult<String> {
        self.start_operation("PAUSE_SERVICE", None, None, PAUSE_SECS).await
    }

    async fn resume(&self) -> CloudResult<String> {
        self.start_operation("RESUME_SERVICE", None, None, RESUME_SECS).await
    }

    async fn scaling(&self) -> CloudResult<Scaling> {
        self.aws_call().await?;
        Ok(self.service().await?.scaling)
    }

    async fn set_scaling(&self, scaling: Scaling) -> CloudResult<String> {
        self.start_operation("UPDATE_SERVICE", None, Some(scaling), SCALING_SECS).await
    }
}

#[async_trait]
impl Rds for Simulator {
    async fn instance_status(&self) -> CloudResult<DbInstance> {
        self.aws_call().await?;
        Ok(DbInstance { status: "available".into(), engine: "postgres 16.4".into(), allocated_gb: 50 })
    }

    async fn snapshots(&self) -> CloudResult<Vec<Snapshot>> {
        self.aws_call().await?;
        let now = Utc::now();
        let newest = if self.has("snapshot_missing").await? { now - Span::hours(30) } else { Self::last_nightly(now) };
        let mut snapshots: Vec<Snapshot> = (0..7)
            .map(|day| {
                let at = newest - Span::days(day);
                Snapshot {
                    id: format!("rds:{}-{}", self.instance, at.format("%Y-%m-%d-%H-%M")),
                    automated: true,
                    status: "available".into(),
                    created_at: at,
                }
            })
            .collect();
        snapshots.extend(
            sqlx::query!(
                r#"select id, created_at, available_at <= now() as "available!" from console.sim_snapshots
                    where instance = $1 order by created_at desc limit 50"#,
                self.instance
            )
            .fetch_all(&self.pool)
            .await
            .map_err(sim_error)?
            .into_iter()
            .map(|s| Snapshot {
                id: s.id,
                automated: false,
                status: if s.available { "available" } else { "creating" }.into(),
                created_at: s.created_at,
            }),
        );
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(snapshots)
    }

    async fn create_snapshot(&self, id: &str) -> CloudResult<()> {
        self.aws_call().await?;
        sqlx::query!(
            "insert into console.sim_snapshots (id, instance, available_at)
             values ($1, $2, now() + $3::bigint * interval '1 millisecond') on conflict (id) do nothing",
            id,
            self.instance,
            self.takes(SNAPSHOT_SECS).num_milliseconds()
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(())
    }

    async fn snapshot(&self, id: &str) -> CloudResult<Option<Snapshot>> {
        Ok(self.snapshots().await?.into_iter().find(|s| s.id == id))
    }

    async fn set_master_password(&self, password: &Secret) -> CloudResult<()> {
        self.aws_call().await?;
        self.service().await?;
        sqlx::query!(
            "update console.sim_service set db_password = $2, updated_at = now() where name = $1",
            self.service_name,
            password.expose()
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(())
    }

    async fn restore_to_instance(&self, snapshot: &str, instance: &str) -> CloudResult<()> {
        if self.snapshot(snapshot).await?.is_none() {
            return Err(refused("RDS", "DBSnapshotNotFound", &format!("DBSnapshot {snapshot} not found")));
        }
        sqlx::query!(
            "insert into console.sim_instances (id, from_snapshot, available_at)
             values ($1, $2, now() + $3::bigint * interval '1 millisecond') on conflict (id) do nothing",
            instance,
            snapshot,
            self.takes(RESTORE_SECS).num_milliseconds()
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(())
    }

    async fn instance_named(&self, instance: &str) -> CloudResult<Option<DbInstance>> {
        self.aws_call().await?;
        if instance == self.instance {
            return self.instance_status().await.map(Some);
        }
        let row = sqlx::query!(
            r#"select available_at <= now() as "available!" from console.sim_instances where id = $1 and deleted_at is null"#,
            instance
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(row.map(|r| DbInstance {
            status: if r.available { "available" } else { "creating" }.into(),
            engine: "postgres 16.4".into(),
            allocated_gb: 50,
        }))
    }

    async fn delete_instance(&self, instance: &str) -> CloudResult<()> {
        self.aws_call().await?;
        if instance == self.instance {
            return Err(refused("RDS", "InvalidParameterValue", "the console does not delete Drop's database"));
        }
        sqlx::query!(
            "update console.sim_instances set deleted_at = now() where id = $1 and deleted_at is null",
            instance
        )
        .execute(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(())
    }
}

#[async_trait]
impl CloudWatch for Simulator {
    async fn free_storage_bytes(&self) -> CloudResult<f64> {
        self.aws_call().await?;
        if self.has("storage_low").await? {
            return Ok(1.4 * 1024f64.powi(3));
        }
        // Drifts between 18 and 22 GB over the day, as WAL and temp files come and go.
        let minute = f64::from(Utc::now().hour() * 60 + Utc::now().minute());
        Ok(20e9 + 2e9 * (minute / 1440.0 * std::f64::consts::TAU).sin())
    }

    async fn cpu_percent(&self) -> CloudResult<f64> {
        self.aws_call().await?;
        // Busy when the app is slow, calm otherwise.
        Ok(if self.has("slow_responses").await? { 97.0 } else { 22.0 + f64::from(Utc::now().minute() % 12) })
    }

    async fn app_metrics(&self) -> CloudResult<Option<AppMetrics>> {
        self.aws_call().await?;
        let faults = self.active().await?;
        let has = |f: &str| faults.iter().any(|a| a == f);
        let requests = 1100.0 + f64::from(Utc::now().minute() * 7 % 200);
        let error_share = if has("health_red") || has("db_unreachable") { 0.08 } else { 0.002 };
        Ok(Some(AppMetrics {
            requests,
            errors_5xx: (requests * error_share).round(),
            latency_ms: if has("slow_responses") { 2400.0 } else { 310.0 },
            latency_is_p99: true,
        }))
    }
}

#[async_trait]
impl Probes for Simulator {
    async fn app_health(&self, environment: Environment) -> CloudResult<AppHealth> {
        if environment == Environment::Staging {
            // Staging runs what was pushed last.
            return Ok(AppHealth {
                ok: true,
                version: SIM_TAGS[0].into(),
                uptime: Duration::from_secs(3 * 3600),
                db_latency_ms: 9.0,
            });
        }
        let faults = self.active().await?;
        let has = |f: &str| faults.iter().any(|a| a == f);
        let service = self.service().await?;
        if service.paused {
            return Err(CloudError::Unavailable("the health endpoint did not answer: the service is paused".into()));
        }
        if has("db_unreachable") {
            return Err(CloudError::Down("the health endpoint answered 503: database unreachable".into()));
        }
        let version = self.tag_of(&service.image).unwrap_or_else(|| "unknown".into());
        let broken_release = has("release_unhealthy") && version == SIM_TAGS[0];
        Ok(AppHealth {
            ok: !has("health_red") && !broken_release,
            version,
            uptime: (Utc::now() - self.booted).to_std().unwrap_or_default(),
            db_latency_ms: if has("slow_responses") { 350.0 } else { 18.0 + f64::from(Utc::now().second() % 20) },
        })
    }

    async fn certificate_expiry(&self) -> CloudResult<DateTime<Utc>> {
        let days = if self.has("certificate_expiring").await? { 12 } else { 64 };
        Ok(Utc::now() + Span::days(days))
    }
}

/// A stable pseudo-random number for a moment: the same minute always logs the same lines.
fn noise(seed: i64, salt: u64) -> u64 {
    let mut x = (seed as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// The lines the simulated app writes in one minute, given the active faults.
fn minute_lines(minute: i64, faults: &[String]) -> Vec<LogEvent> {
    let base = DateTime::from_timestamp(minute * 60, 0).unwrap_or_default();
    let user = |n: u64| format!("usr_sim{:08x}", n % 0xffff_ffff);
    let request = |n: u64| format!("req_{:012x}", n % 0xffff_ffff_ffff);
    let mut lines = Vec::new();
    for i in 0..4u64 {
        let n = noise(minute, i);
        let (path, status, ms) =
            [("/api/transfers", 201, 84), ("/api/quotes", 200, 31), ("/api/me", 200, 12), ("/api/health", 200, 4)]
                [(n % 4) as usize];
        lines.push((i * 13 % 60, format!(
            r#"{{"level":"info","msg":"request completed","path":"{path}","status":{status},"ms":{},"request_id":"{}","user_id":"{}"}}"#,
            ms + (n % 40),
            request(n),
            user(n >> 8)
        )));
    }
    if minute % 7 == 0 {
        let n = noise(minute, 99);
        lines.push((
            41,
            format!(
                r#"{{"level":"error","msg":"payout failed: recipient bank timeout","request_id":"{}","user_id":"{}"}}"#,
                request(n),
                user(n >> 8)
            ),
        ));
    }
    if minute % 11 == 0 {
        let n = noise(minute, 77);
        lines.push((
            23,
            format!(
                r#"{{"level":"warn","msg":"BankID authentication failed: user cancelled","request_id":"{}"}}"#,
                request(n)
            ),
        ));
    }
    let has = |f: &str| faults.iter().any(|a| a == f);
    if has("db_unreachable") {
        lines.push((
            5,
            r#"{"level":"error","msg":"error connecting to database: connection timed out (drop-db)"}"#.into(),
        ));
    }
    if has("health_red") {
        lines.push((9, r#"{"level":"error","msg":"unhandled exception in request handler: TypeError: cannot read properties of undefined"}"#.into()));
    }
    lines.into_iter().map(|(second, message)| LogEvent { at: base + Span::seconds(second as i64), message }).collect()
}

#[async_trait]
impl Logs for Simulator {
    async fn filter_events(&self, query: &LogQuery) -> CloudResult<Vec<LogEvent>> {
        self.aws_call().await?;
        let faults = self.active().await?;
        let terms = pattern_terms(&query.pattern);
        let first = query.start.timestamp().div_euclid(60);
        let last = query.end.timestamp().div_euclid(60);
        let mut found = Vec::new();
        // Newest minute first, until the limit: a 24-hour window reads at most what it shows.
        for minute in (first..=last).rev() {
            let mut lines = minute_lines(minute, &faults);
            lines.sort_by_key(|l| std::cmp::Reverse(l.at));
            for line in lines {
                if line.at < query.start
                    || line.at > query.end
                    || !terms.iter().all(|t| line.message.contains(t.as_str()))
                {
                    continue;
                }
                found.push(line);
                if found.len() >= query.limit {
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }
}

/// The simulated repository's tags, newest first: the first is pushed but not deployed, the
/// second runs when the simulator starts.
const SIM_TAGS: [&str; 7] = ["b2e9f14", "7f3c2a1", "c0ffee4", "5d1e9b2", "a4b8c03", "9e77d10", "31f0a6e"];

#[async_trait]
impl Ecr for Simulator {
    async fn images(&self) -> CloudResult<Vec<Image>> {
        self.aws_call().await?;
        Ok(self.image_list())
    }
}

#[async_trait]
impl Secrets for Simulator {
    async fn secret_info(&self, id: &str) -> CloudResult<SecretInfo> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        let changed = sqlx::query_scalar!(
            "select created_at from console.sim_secret_versions where secret_id = $1 and current",
            id
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(SecretInfo { id: id.to_owned(), last_changed: changed })
    }

    async fn stage_value(&self, id: &str, version: &str, value: &Secret) -> CloudResult<()> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        let stored = sqlx::query_scalar!(
            "with put as (
                 insert into console.sim_secret_versions (secret_id, version_id, value) values ($1, $2, $3)
                 on conflict (secret_id, version_id) do nothing returning value)
             select value as \"value!\" from put
             union all select value from console.sim_secret_versions where secret_id = $1 and version_id = $2",
            id,
            version,
            value.expose()
        )
        .fetch_one(&self.pool)
        .await
        .map_err(sim_error)?;
        if stored != value.expose() {
            return Err(refused(
                "Secrets Manager",
                "ResourceExistsException",
                "a version with this token already exists with another value",
            ));
        }
        Ok(())
    }

    async fn value(&self, id: &str, version: Option<&str>) -> CloudResult<Option<Secret>> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        let value = sqlx::query_scalar!(
            "select value from console.sim_secret_versions
              where secret_id = $1 and (($2::text is null and current) or version_id = $2)",
            id,
            version
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(sim_error)?;
        Ok(value.map(Secret::new))
    }

    async fn promote(&self, id: &str, version: &str) -> CloudResult<()> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        let mut tx = self.pool.begin().await.map_err(sim_error)?;
        let exists = sqlx::query_scalar!(
            "select current from console.sim_secret_versions where secret_id = $1 and version_id = $2 for update",
            id,
            version
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(sim_error)?;
        match exists {
            None => return Err(refused("Secrets Manager", "ResourceNotFoundException", "no such version")),
            Some(true) => return Ok(()),
            Some(false) => {}
        }
        sqlx::query!("update console.sim_secret_versions set current = false where secret_id = $1 and current", id)
            .execute(&mut *tx)
            .await
            .map_err(sim_error)?;
        sqlx::query!(
            "update console.sim_secret_versions set current = true, created_at = now()
              where secret_id = $1 and version_id = $2",
            id,
            version
        )
        .execute(&mut *tx)
        .await
        .map_err(sim_error)?;
        tx.commit().await.map_err(sim_error)
    }
}

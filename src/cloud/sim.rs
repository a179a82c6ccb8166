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
    AppHealth, AppRunner, CloudError, CloudResult, CloudWatch, DbInstance, Ecr, Environment, Image, LogEvent, LogQuery,
    Logs, Operation, Probes, Rds, SecretInfo, Secrets, ServiceStatus, Snapshot, pattern_terms,
};
use crate::audit::AuditToken;

/// A fault that can be injected, and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub name: &'static str,
    pub label: &'static str,
    pub effect: &'static str,
}

pub const FAULTS: [Fault; 8] = [
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
];

pub struct Simulator {
    pool: PgPool,
    service_name: String,
    region: String,
    booted: DateTime<Utc>,
}

pub struct FaultState {
    pub fault: Fault,
    pub active: bool,
    pub changed_by: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
}

impl Simulator {
    pub fn new(pool: PgPool, service_name: String, region: String) -> Self {
        Self { pool, service_name, region, booted: Utc::now() - Span::hours(26) }
    }

    async fn active(&self) -> CloudResult<Vec<String>> {
        sqlx::query_scalar!("select name from console.sim_faults where active")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| CloudError::Unavailable(format!("the simulator's state cannot be read: {e}")))
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

    pub async fn faults(&self) -> Result<Vec<FaultState>, sqlx::Error> {
        let rows = sqlx::query!("select name, active, changed_by, changed_at from console.sim_faults")
            .fetch_all(&self.pool)
            .await?;
        Ok(FAULTS
            .iter()
            .map(|f| {
                let row = rows.iter().find(|r| r.name == f.name);
                FaultState {
                    fault: *f,
                    active: row.is_some_and(|r| r.active),
                    changed_by: row.map(|r| r.changed_by.clone()),
                    changed_at: row.map(|r| r.changed_at),
                }
            })
            .collect())
    }

    /// Switch a fault on or off. Needs its audit token.
    pub async fn set_fault(
        conn: &mut sqlx::PgConnection,
        _audited: &AuditToken,
        name: &str,
        active: bool,
        by: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "insert into console.sim_faults (name, active, changed_by) values ($1, $2, $3)
             on conflict (name) do update set active = excluded.active, changed_by = excluded.changed_by, changed_at = now()",
            name,
            active,
            by
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Last night's 03:00 UTC: when RDS takes its automated snapshot.
    fn last_nightly(now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_hms_opt(3, 0, 0).map_or(now, |t| t.and_utc());
        if now.hour() >= 3 { today } else { today - Span::days(1) }
    }
}

#[async_trait]
impl AppRunner for Simulator {
    async fn service_status(&self) -> CloudResult<ServiceStatus> {
        self.aws_call().await?;
        let status = if self.has("service_down").await? { "PAUSED" } else { "RUNNING" };
        Ok(ServiceStatus {
            status: status.into(),
            image: format!("324480209768.dkr.ecr.{}.amazonaws.com/{}:{}", self.region, self.service_name, SIM_TAGS[0]),
            url: format!("https://{}.sim.awsapprunner.com", self.service_name),
        })
    }

    async fn recent_operations(&self) -> CloudResult<Vec<Operation>> {
        self.aws_call().await?;
        let deployed = self.booted;
        Ok(vec![Operation {
            kind: "START_DEPLOYMENT".into(),
            status: "SUCCEEDED".into(),
            started_at: deployed - Span::minutes(4),
            ended_at: Some(deployed),
        }])
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
        Ok((0..7)
            .map(|day| {
                let at = newest - Span::days(day);
                Snapshot {
                    id: format!("rds:drop-db-{}", at.format("%Y-%m-%d-%H-%M")),
                    automated: true,
                    status: "available".into(),
                    created_at: at,
                }
            })
            .collect())
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
}

#[async_trait]
impl Probes for Simulator {
    async fn app_health(&self, environment: Environment) -> CloudResult<AppHealth> {
        let faults = if environment == Environment::Production { self.active().await? } else { vec![] };
        let has = |f: &str| faults.iter().any(|a| a == f);
        if has("db_unreachable") {
            return Err(CloudError::Unavailable("the health endpoint answered 503: database unreachable".into()));
        }
        Ok(AppHealth {
            ok: !has("health_red"),
            version: if environment == Environment::Production { "7f3c2a1".into() } else { "9d41e07".into() },
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

/// The tag of the image the simulated service runs, and the ones pushed before it.
const SIM_TAGS: [&str; 6] = ["7f3c2a1", "c0ffee4", "5d1e9b2", "a4b8c03", "9e77d10", "31f0a6e"];

#[async_trait]
impl Ecr for Simulator {
    async fn images(&self) -> CloudResult<Vec<Image>> {
        self.aws_call().await?;
        let mut images: Vec<Image> = SIM_TAGS
            .iter()
            .enumerate()
            .map(|(i, tag)| Image {
                tags: vec![(*tag).to_owned()],
                digest: format!("sha256:{:064x}", noise(i as i64, 5) as u128 * 0x1_0000_0001),
                pushed_at: self.booted - Span::minutes(5) - Span::days(2 * i as i64),
                size_bytes: 180_000_000 + (noise(i as i64, 6) % 20_000_000) as i64,
            })
            .collect();
        // Two layers of an old build lost their tag when it was pushed again: cleanup candidates.
        for n in 0..2 {
            images.push(Image {
                tags: vec![],
                digest: format!("sha256:{:064x}", noise(100 + n, 5) as u128 * 0x1_0000_0001),
                pushed_at: self.booted - Span::days(20 + n),
                size_bytes: 175_000_000,
            });
        }
        Ok(images)
    }
}

#[async_trait]
impl Secrets for Simulator {
    async fn secret_info(&self, id: &str) -> CloudResult<SecretInfo> {
        self.aws_call().await?;
        // The JWT secret was last rotated 80 days ago; anything else 40.
        let days = if id.contains("jwt") { 80 } else { 40 };
        Ok(SecretInfo { id: id.to_owned(), last_changed: Some(self.booted - Span::days(days)) })
    }
}

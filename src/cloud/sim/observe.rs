//! What on-call watches, simulated: CloudWatch metrics, the app's health endpoint and
//! certificate, and the app's log lines, minute by minute, shaped by the active faults.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration as Span, Timelike, Utc};

use super::{SIM_TAGS, Simulator, noise};
use crate::cloud::{
    AppHealth, AppMetrics, Capacity, CloudError, CloudResult, CloudWatch, DayMetrics, Environment, LogEvent, LogQuery,
    Logs, Probes, VendorStatus, pattern_terms,
};

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

    /// App Runner keeps the minimum provisioned and grows to the maximum when busy (the
    /// `slow_responses` fault).
    async fn capacity(&self) -> CloudResult<Option<Capacity>> {
        self.aws_call().await?;
        let busy = self.has("slow_responses").await?;
        let stuck = self.has("instances_stuck").await?;
        let scaling = self.service().await?.scaling;
        let minute = f64::from(Utc::now().minute() % 10);
        let active = if stuck {
            1
        } else if busy {
            scaling.max
        } else {
            scaling.min.max(1)
        };
        Ok(Some(Capacity {
            active_instances: f64::from(active),
            cpu_percent: Some(if busy { 93.0 } else { 31.0 + minute }),
            memory_percent: Some(if busy { 78.0 } else { 44.0 + minute / 2.0 }),
        }))
    }

    /// A plausible month: traffic with a weekly rhythm, a bad day now and then, nothing after
    /// today.
    async fn daily_app_metrics(&self, from: DateTime<Utc>, days: u32) -> CloudResult<Vec<DayMetrics>> {
        self.aws_call().await?;
        let today = Utc::now().date_naive();
        Ok((0..days)
            .filter_map(|n| {
                let day = (from + Span::days(i64::from(n))).date_naive();
                (day <= today).then_some(day)
            })
            .map(|day| {
                let seed = u32::try_from(day.num_days_from_ce()).unwrap_or_default();
                let weekend = day.weekday().number_from_monday() >= 6;
                let requests = f64::from(if weekend { 210_000 } else { 160_000 } + seed % 30_000);
                let bad = seed % 13 == 0;
                DayMetrics {
                    day,
                    requests,
                    errors_5xx: (requests * if bad { 0.012 } else { 0.0008 + f64::from(seed % 5) / 10_000.0 }).round(),
                    p99_ms: Some(if bad { 1850.0 } else { 290.0 + f64::from(seed % 90) }),
                }
            })
            .collect())
    }
}

#[async_trait]
impl Probes for Simulator {
    async fn app_health(&self, environment: Environment) -> CloudResult<AppHealth> {
        if environment == Environment::Staging {
            let (version, ok) = self.staging_health().await?;
            return Ok(AppHealth { ok, version, uptime: Duration::from_secs(3 * 3600), db_latency_ms: 9.0 });
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

    /// BankID's status page, played: all operational, unless `bankid_degraded` is on.
    async fn vendor_status(&self, _url: &str) -> CloudResult<VendorStatus> {
        Ok(if self.has("bankid_degraded").await? {
            VendorStatus { indicator: "major".into(), description: "Partial outage: BankID on mobile".into() }
        } else {
            VendorStatus { indicator: "none".into(), description: "All Systems Operational".into() }
        })
    }

    async fn certificate_expiry(&self) -> CloudResult<DateTime<Utc>> {
        let days = if self.has("certificate_expiring").await? { 12 } else { 64 };
        Ok(Utc::now() + Span::days(days))
    }
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

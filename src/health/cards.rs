//! Reading every health card at once, each bounded in time, each judged against the
//! thresholds in `[drop]`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::CardsFragment;
use crate::cloud::{CloudError, DbInstance, Environment, Operation, ServiceStatus, Snapshot, bounded};
use crate::contract::Report;
use crate::db;
use crate::state::AppState;

/// A read gets this long; past it, the card is unknown and says so.
const READ_LIMIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Green,
    Amber,
    Red,
    Unknown,
}

impl Tone {
    pub fn class(self) -> &'static str {
        match self {
            Tone::Green => "green",
            Tone::Amber => "amber",
            Tone::Red => "red",
            Tone::Unknown => "grey",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tone::Green => "OK",
            Tone::Amber => "Attention",
            Tone::Red => "Alert",
            Tone::Unknown => "Unknown",
        }
    }
}

/// One thing on the dashboard.
#[derive(Clone, Debug)]
pub struct Card {
    pub key: &'static str,
    pub title: &'static str,
    pub tone: Tone,
    pub value: String,
    pub detail: String,
    /// Anchor on the playbook page, shown when the card is red or unknown.
    pub playbook: &'static str,
}

impl Card {
    fn new(key: &'static str, title: &'static str, playbook: &'static str) -> Self {
        Self { key, title, tone: Tone::Unknown, value: String::new(), detail: String::new(), playbook }
    }

    fn judged(mut self, tone: Tone, value: impl Into<String>, detail: impl Into<String>) -> Self {
        self.tone = tone;
        self.value = value.into();
        self.detail = detail.into();
        self
    }

    fn unknown(self, why: CloudError) -> Self {
        // The badge already says "Unknown".
        self.judged(Tone::Unknown, "Cannot be read", why.to_string())
    }

    pub fn needs_playbook(&self) -> bool {
        matches!(self.tone, Tone::Red | Tone::Unknown)
    }
}

/// Storage as AWS's console shows it (GiB, written "GB").
pub fn gigabytes(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1024f64.powi(3))
}

pub fn since(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    if hours >= 48 { format!("{} days", hours / 24) } else { format!("{hours} h {} min", d.as_secs() / 60 % 60) }
}

fn app_health_card(
    key: &'static str,
    title: &'static str,
    result: Result<crate::cloud::AppHealth, CloudError>,
    latency_alert_ms: f64,
) -> Card {
    let card = Card::new(key, title, "service-down");
    match result {
        // Drop answered 503: its database check failed (runbook: "health 503").
        Err(CloudError::Down(why)) => {
            Card { playbook: "database-unreachable", ..card }.judged(Tone::Red, "Database unreachable", why)
        }
        Err(e) => card.unknown(e),
        Ok(h) if !h.ok => card.judged(Tone::Red, "Error", format!("status not ok · version {}", h.version)),
        Ok(h) => {
            let tone = if h.db_latency_ms > latency_alert_ms { Tone::Red } else { Tone::Green };
            let card = Card { playbook: if tone == Tone::Red { "slow-database" } else { "service-down" }, ..card };
            card.judged(
                tone,
                format!("DB {:.0} ms", h.db_latency_ms),
                format!("version {} · up {}", h.version, since(h.uptime)),
            )
        }
    }
}

/// What the outside world said — AWS, Fly.io, BetterStack, BankID's status page, Drop's
/// endpoints — made into cards. Shared between viewers for `outside_readings_secs`
/// ([`crate::cloud::shared`]).
pub struct OutsideCards {
    production: Vec<Card>,
    staging: Vec<Card>,
    operations: Result<Vec<Operation>, String>,
}

/// Read every outside card concurrently. Never fails: what cannot be read is unknown, with
/// the reason.
async fn read_outside(state: &AppState) -> OutsideCards {
    let cloud = &state.cloud;
    let d = &state.config.drop;
    let (
        prod_health,
        staging_health,
        service,
        operations,
        instance,
        snapshots,
        storage,
        cpu,
        certificate,
        secrets,
        traffic,
        monitors,
        bankid,
        capacity,
    ) = tokio::join!(
        bounded(READ_LIMIT, cloud.probes.app_health(Environment::Production)),
        bounded(READ_LIMIT, cloud.probes.app_health(Environment::Staging)),
        bounded(READ_LIMIT, cloud.app_runner.service_status()),
        bounded(READ_LIMIT, cloud.app_runner.recent_operations()),
        bounded(READ_LIMIT, cloud.rds.instance_status()),
        bounded(READ_LIMIT, cloud.rds.snapshots()),
        bounded(READ_LIMIT, cloud.cloudwatch.free_storage_bytes()),
        bounded(READ_LIMIT, cloud.cloudwatch.cpu_percent()),
        bounded(READ_LIMIT, cloud.probes.certificate_expiry()),
        crate::secrets::managed(state),
        bounded(READ_LIMIT, cloud.cloudwatch.app_metrics()),
        async {
            match &cloud.monitoring {
                Some(m) => bounded(READ_LIMIT, m.monitors()).await,
                None => Err(CloudError::NotConnected("BetterStack")),
            }
        },
        read_bankid(state),
        bounded(READ_LIMIT, cloud.cloudwatch.capacity()),
    );
    let latency_alert = d.health_db_latency_alert_ms.unwrap_or(100) as f64;
    let now = Utc::now();
    let max_snapshot_age = chrono::Duration::hours(i64::from(d.snapshot_max_age_hours.unwrap_or(24)));
    let storage_floor = d.free_storage_alert_bytes.unwrap_or(2_000_000_000) as f64;
    let certificate_warning = Warning {
        days: i64::from(d.certificate_alert_days.unwrap_or(30)),
        domain: d.public_domain.as_deref().unwrap_or("the public domain"),
    };
    OutsideCards {
        production: vec![
            app_health_card("app", "App health", prod_health, latency_alert),
            traffic_card(traffic),
            capacity_card(capacity),
            service_card(service),
            database_card(instance),
            snapshot_card(snapshots, max_snapshot_age, now),
            storage_card(storage, storage_floor),
            cpu_card(cpu),
            certificate_card(certificate, &certificate_warning, now),
            secrets_card(secrets),
            monitors_card(monitors),
            bankid_card(bankid, &state.config.bankid),
        ],
        staging: vec![app_health_card("staging-app", "App health (Fly.io)", staging_health, latency_alert)],
        operations: operations.map_err(|e| e.to_string()),
    }
}

/// Every card: the outside ones as last read (at most `outside_readings_secs` ago), the
/// console's own database and runs as they are now. Never fails.
pub async fn read_all(state: &AppState) -> CardsFragment {
    let outside = &state.outside;
    // All at once, each on its own connection: the page waits for the slowest read.
    let (reading, console, contract, last_submitted, active_runs, needing_repair, open_windows) = tokio::join!(
        outside.dashboard.get(&outside.changes, read_outside(state)),
        db::readiness(&state.probe_pool),
        state.contract(),
        super::schedule::last_submitted(&state.pool),
        crate::runs::active(&state.pool),
        crate::runs::needing_repair(&state.pool),
        crate::runs::open_windows(&state.pool),
    );
    let cards = &reading.value;
    CardsFragment {
        production: cards.production.clone(),
        staging: cards.staging.clone(),
        console: console_card(console, contract.as_deref().map_err(ToString::to_string)),
        overdue_checks: match last_submitted {
            Ok(last) => super::schedule::overdue(&last),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read routine checks");
                vec![]
            }
        },
        active_runs: active_runs.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read active runs");
            vec![]
        }),
        needing_repair: needing_repair.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read runs needing repair");
            vec![]
        }),
        open_windows: open_windows.unwrap_or_default(),
        may_follow_runs: false,
        operations_error: cards.operations.as_ref().err().cloned(),
        operations: cards.operations.clone().unwrap_or_default(),
        checked_at: reading.taken_at,
    }
}

/// The app's own capacity (App Runner): busy CPU or memory is amber from 80 %, red from 95 %.
pub fn capacity_card(capacity: Result<Option<crate::cloud::Capacity>, CloudError>) -> Card {
    let card = Card::new("capacity", "App capacity", "high-cpu");
    match capacity {
        Err(e) => card.unknown(e),
        Ok(None) => card.judged(Tone::Unknown, "No data", "App Runner published no instance metrics recently"),
        Ok(Some(c)) => {
            let busiest = c.cpu_percent.unwrap_or_default().max(c.memory_percent.unwrap_or_default());
            let tone = if busiest >= 95.0 {
                Tone::Red
            } else if busiest >= 80.0 {
                Tone::Amber
            } else {
                Tone::Green
            };
            let percent = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0} %"));
            card.judged(
                tone,
                format!("{:.0} instance(s)", c.active_instances),
                format!("CPU {} · memory {}", percent(c.cpu_percent), percent(c.memory_percent)),
            )
        }
    }
}

/// What the BankID card is judged on: the vendor's status page, the last hour's BankID errors
/// in the application log, and the service's environment variable names.
pub struct BankIdReads {
    pub vendor: Result<crate::cloud::VendorStatus, CloudError>,
    pub errors: Result<usize, CloudError>,
    pub names: Result<Vec<String>, CloudError>,
}

/// Log events counted at most (more reads as "1000+").
const BANKID_EVENTS: usize = 1000;

async fn read_bankid(state: &AppState) -> BankIdReads {
    let cloud = &state.cloud;
    let now = Utc::now();
    let query = crate::cloud::LogQuery {
        pattern: "BankID".into(),
        start: now - chrono::Duration::hours(1),
        end: now,
        limit: BANKID_EVENTS,
    };
    let (vendor, errors, names) = tokio::join!(
        bounded(READ_LIMIT, cloud.probes.vendor_status(&state.config.bankid.status_url)),
        bounded(READ_LIMIT, async { Ok(cloud.logs.filter_events(&query).await?.len()) }),
        bounded(READ_LIMIT, cloud.app_runner.environment_names()),
    );
    BankIdReads { vendor, errors, names }
}

/// BankID (runbook §7: login failing): red when the vendor reports a major outage or the
/// service misses a BankID variable, amber on a minor one, maintenance or many errors.
pub fn bankid_card(reads: BankIdReads, config: &crate::config::BankIdConfig) -> Card {
    let card = Card::new("bankid", "BankID login", "bankid");
    let mut tone = Tone::Green;
    let mut raise = |t: Tone| {
        let rank = |t: Tone| match t {
            Tone::Green => 0,
            Tone::Unknown => 1,
            Tone::Amber => 2,
            Tone::Red => 3,
        };
        if rank(t) > rank(tone) {
            tone = t;
        }
    };
    let vendor = match &reads.vendor {
        Ok(v) => {
            raise(match v.indicator.as_str() {
                "none" => Tone::Green,
                "minor" | "maintenance" => Tone::Amber,
                _ => Tone::Red,
            });
            format!("Vendor: {}", v.description)
        }
        Err(e) => {
            raise(Tone::Unknown);
            format!("Vendor status unknown: {e}")
        }
    };
    let errors = match &reads.errors {
        Ok(n) => {
            if *n >= config.errors_per_hour_alert as usize {
                raise(Tone::Amber);
            }
            if *n >= BANKID_EVENTS {
                format!("{BANKID_EVENTS}+ errors in the last hour")
            } else {
                format!("{n} errors in the last hour")
            }
        }
        Err(e) => {
            raise(Tone::Unknown);
            format!("errors unknown: {e}")
        }
    };
    let configuration = match &reads.names {
        Ok(names) => {
            let missing: Vec<&str> =
                config.env_vars.iter().filter(|v| !names.contains(v)).map(String::as_str).collect();
            if missing.is_empty() {
                format!("{} defined on the service", config.env_vars.join(", "))
            } else {
                raise(Tone::Red);
                format!("Missing on the service: {}", missing.join(", "))
            }
        }
        Err(e) => {
            raise(Tone::Unknown);
            format!("configuration unknown: {e}")
        }
    };
    let value = match (&reads.vendor, tone) {
        (_, Tone::Red) if configuration.starts_with("Missing") => "Configuration incomplete".to_owned(),
        (Ok(v), _) if v.indicator != "none" => v.description.clone(),
        (_, _) => errors.clone(),
    };
    card.judged(tone, value, format!("{vendor} · {errors} · {configuration}"))
}

/// BetterStack's monitors (runbook §1: health, landing, US east): all up is green, one down
/// red, paused (a maintenance window), validating or still pending amber.
fn monitors_card(monitors: Result<Vec<crate::cloud::Monitor>, CloudError>) -> Card {
    use crate::cloud::MonitorStatus as S;
    let card = Card::new("monitors", "BetterStack monitors", "service-down");
    let monitors = match monitors {
        Err(e) => return card.unknown(e),
        Ok(m) if m.is_empty() => {
            return card.judged(Tone::Amber, "none", "the token sees no monitor: check betterstack.monitors");
        }
        Ok(m) => m,
    };
    let count = |s: S| monitors.iter().filter(|m| m.status == Some(s)).count();
    let (down, up) = (count(S::Down), count(S::Up));
    let detail = monitors
        .iter()
        .map(|m| format!("{}: {}", m.name, m.status.map_or("unknown", |s| s.as_str())))
        .collect::<Vec<_>>()
        .join(" · ");
    let (tone, value) = match () {
        () if down > 0 => (Tone::Red, format!("{down} down")),
        () if up == monitors.len() => (Tone::Green, format!("{up} of {up} up")),
        () if count(S::Paused) + count(S::Maintenance) > 0 => {
            (Tone::Amber, format!("{} paused", count(S::Paused) + count(S::Maintenance)))
        }
        () => (Tone::Amber, format!("{up} of {} up", monitors.len())),
    };
    card.judged(tone, value, detail)
}

/// App Runner's own status: RUNNING is green, an operation under way amber, anything else red.
fn service_card(service: Result<ServiceStatus, CloudError>) -> Card {
    let card = Card::new("apprunner", "App Runner", "service-down");
    match service {
        Err(e) => card.unknown(e),
        Ok(s) => {
            let tone = match s.status.as_str() {
                "RUNNING" => Tone::Green,
                "OPERATION_IN_PROGRESS" => Tone::Amber,
                _ => Tone::Red,
            };
            card.judged(tone, s.status, s.image)
        }
    }
}

/// The RDS instance: available is green, a backup, change or maintenance amber.
fn database_card(instance: Result<DbInstance, CloudError>) -> Card {
    let card = Card::new("rds", "RDS instance", "database-unreachable");
    match instance {
        Err(e) => card.unknown(e),
        Ok(i) => {
            let tone = match i.status.as_str() {
                "available" => Tone::Green,
                "backing-up" | "modifying" | "maintenance" => Tone::Amber,
                _ => Tone::Red,
            };
            card.judged(tone, i.status, format!("{} · {} GB allocated", i.engine, i.allocated_gb))
        }
    }
}

/// The newest available automated snapshot, red when older than `max_age` or missing.
fn snapshot_card(snapshots: Result<Vec<Snapshot>, CloudError>, max_age: chrono::Duration, now: DateTime<Utc>) -> Card {
    let card = Card::new("snapshot", "Newest automated snapshot", "snapshot-missing");
    let list = match snapshots {
        Err(e) => return card.unknown(e),
        Ok(list) => list,
    };
    match list.iter().filter(|s| s.automated && s.status == "available").map(|s| s.created_at).max() {
        None => card.judged(Tone::Red, "None", "no automated snapshot exists"),
        Some(at) => {
            let age = now - at;
            card.judged(
                if age > max_age { Tone::Red } else { Tone::Green },
                format!("{} old", since(age.to_std().unwrap_or_default())),
                format!("taken {}", at.format("%Y-%m-%d %H:%M UTC")),
            )
        }
    }
}

/// Free storage of the instance, red under `floor` bytes.
fn storage_card(storage: Result<f64, CloudError>, floor: f64) -> Card {
    let card = Card::new("storage", "Free storage", "disk-almost-full");
    match storage {
        Err(e) => card.unknown(e),
        Ok(bytes) => card.judged(
            if bytes < floor { Tone::Red } else { Tone::Green },
            gigabytes(bytes),
            format!("alert under {}", gigabytes(floor)),
        ),
    }
}

/// The database's CPU: amber over 80 %, red over 95 % (runbook: HighCPU).
fn cpu_card(cpu: Result<f64, CloudError>) -> Card {
    let card = Card::new("cpu", "Database CPU", "high-cpu");
    match cpu {
        Err(e) => card.unknown(e),
        Ok(percent) => {
            let tone = if percent > 95.0 {
                Tone::Red
            } else if percent > 80.0 {
                Tone::Amber
            } else {
                Tone::Green
            };
            card.judged(tone, format!("{percent:.0} %"), "5-minute average")
        }
    }
}

/// When the public domain's certificate should worry us.
struct Warning<'a> {
    /// Amber under this many days left (red under 7).
    days: i64,
    domain: &'a str,
}

fn certificate_card(expiry: Result<DateTime<Utc>, CloudError>, warning: &Warning<'_>, now: DateTime<Utc>) -> Card {
    let card = Card::new("certificate", "TLS certificate", "certificate-expiring");
    match expiry {
        Err(e) => card.unknown(e),
        Ok(expires) => {
            let days = (expires - now).num_days();
            let tone = if days < 7 {
                Tone::Red
            } else if days < warning.days {
                Tone::Amber
            } else {
                Tone::Green
            };
            card.judged(
                tone,
                format!("{days} days left"),
                format!("{} expires {}", warning.domain, expires.format("%Y-%m-%d")),
            )
        }
    }
}

/// The console itself: its database answers, its migrations are applied, and Drop's tables
/// hold what the schema contract needs (amber when an optional column is absent: a page shows
/// less).
fn console_card(readiness: Result<(), String>, contract: Result<&Report, String>) -> Card {
    let card = Card::new("console", "This console", "console");
    if let Err(reason) = readiness {
        return card.judged(Tone::Red, "Not ready", reason);
    }
    let report = match contract {
        Ok(report) => report,
        Err(e) => {
            return card.judged(Tone::Unknown, "Schema unknown", format!("Drop's tables cannot be inspected: {e}"));
        }
    };
    let (blocking, degraded) = (report.blocking(), report.degraded());
    if !blocking.is_empty() {
        card.judged(Tone::Red, "Not ready", format!("{}; see `dropops check-db`", blocking.join("; ")))
    } else if !degraded.is_empty() {
        card.judged(Tone::Amber, "Ready, shows less", format!("{}; see `dropops check-db`", degraded.join("; ")))
    } else {
        card.judged(Tone::Green, "Ready", "database reachable, migrations applied, Drop's tables as expected")
    }
}

/// Rotation schedule of the managed secrets: the worst of them decides the tone.
fn secrets_card(secrets: Vec<crate::secrets::ManagedSecret>) -> Card {
    use crate::secrets::Due;
    let card = Card::new("secrets", "Secret rotation", "secret-due");
    let names = |wanted: fn(&Due) -> bool| -> Vec<&str> {
        secrets.iter().filter(|s| s.secret_id.is_some() && wanted(&s.due)).map(|s| s.name).collect()
    };
    let overdue = names(|d| matches!(d, Due::Overdue(_) | Due::Never));
    let soon = names(|d| matches!(d, Due::Soon(_)));
    let unknown: Vec<String> = secrets
        .iter()
        .filter_map(|s| match &s.due {
            Due::Unknown(why) if s.secret_id.is_some() => Some(format!("{}: {why}", s.name)),
            _ => None,
        })
        .collect();
    if !overdue.is_empty() {
        card.judged(Tone::Red, "Overdue", format!("{} past the maximum age", overdue.join(", ")))
    } else if !unknown.is_empty() {
        card.judged(Tone::Unknown, "Dates cannot be read", unknown.join("; "))
    } else if !soon.is_empty() {
        card.judged(Tone::Amber, "Due soon", format!("{} due within the warning period", soon.join(", ")))
    } else {
        card.judged(Tone::Green, "Up to date", "every managed secret is within its maximum age")
    }
}

/// Requests, 5xx share and latency App Runner measured: red over 5 % errors or a p99 over
/// 2 s, amber over 1 % or 1 s.
fn traffic_card(metrics: Result<Option<crate::cloud::AppMetrics>, CloudError>) -> Card {
    let window = crate::cloud::APP_METRICS_WINDOW_MINUTES;
    let card = Card::new("traffic", "App traffic", "high-error-rate");
    match metrics {
        Err(e) => card.unknown(e),
        Ok(None) => card.judged(
            Tone::Unknown,
            "No data",
            format!("App Runner published no request metrics in the last {window} minutes"),
        ),
        Ok(Some(m)) => {
            let errors = m.error_percent();
            let tone = if errors > 5.0 || m.latency_ms > 2000.0 {
                Tone::Red
            } else if errors > 1.0 || m.latency_ms > 1000.0 {
                Tone::Amber
            } else {
                Tone::Green
            };
            let card = Card {
                playbook: if errors <= 1.0 && m.latency_ms > 1000.0 { "slow-database" } else { "high-error-rate" },
                ..card
            };
            card.judged(
                tone,
                format!("{errors:.1} % 5xx"),
                format!(
                    "{:.0} requests in {window} min · {} latency {:.0} ms",
                    m.requests,
                    if m.latency_is_p99 { "p99" } else { "average" },
                    m.latency_ms
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::AppMetrics;
    use crate::runs::rotation::Rotated;
    use crate::secrets::{Due, ManagedSecret};

    fn bankid(vendor: &str, errors: usize, names: &[&str]) -> Card {
        let config = crate::config::BankIdConfig {
            status_url: "https://status.example/api/v2/status.json".into(),
            env_vars: vec!["BANKID_CLIENT_ID".into(), "BANKID_CLIENT_SECRET".into()],
            errors_per_hour_alert: 20,
        };
        let reads = BankIdReads {
            vendor: Ok(crate::cloud::VendorStatus { indicator: vendor.into(), description: format!("said {vendor}") }),
            errors: Ok(errors),
            names: Ok(names.iter().map(|n| n.to_string()).collect()),
        };
        bankid_card(reads, &config)
    }

    #[test]
    fn bankid_is_judged_on_the_vendor_the_errors_and_the_configuration() {
        let all = ["BANKID_CLIENT_ID", "BANKID_CLIENT_SECRET", "NODE_ENV"];
        assert_eq!(bankid("none", 2, &all).tone, Tone::Green);
        assert_eq!(bankid("minor", 2, &all).tone, Tone::Amber);
        assert_eq!(bankid("maintenance", 2, &all).tone, Tone::Amber);
        assert_eq!(bankid("major", 2, &all).tone, Tone::Red);
        assert_eq!(bankid("none", 20, &all).tone, Tone::Amber, "many errors in an hour");
        let missing = bankid("none", 0, &["BANKID_CLIENT_ID"]);
        assert_eq!(missing.tone, Tone::Red);
        assert!(missing.detail.contains("Missing on the service: BANKID_CLIENT_SECRET"));
        let unknown = bankid_card(
            BankIdReads {
                vendor: Err(CloudError::Unreachable("no answer".into())),
                errors: Ok(0),
                names: Ok(all.iter().map(|n| n.to_string()).collect()),
            },
            &crate::config::BankIdConfig { status_url: String::new(), env_vars: vec![], errors_per_hour_alert: 20 },
        );
        assert_eq!(unknown.tone, Tone::Unknown);
        assert!(unknown.detail.contains("Vendor status unknown"));
    }

    #[test]
    fn capacity_is_judged_on_the_busier_of_cpu_and_memory() {
        let card = |cpu: f64, memory: f64| {
            capacity_card(Ok(Some(crate::cloud::Capacity {
                active_instances: 2.0,
                cpu_percent: Some(cpu),
                memory_percent: Some(memory),
            })))
        };
        assert_eq!(card(40.0, 50.0).tone, Tone::Green);
        assert_eq!(card(85.0, 50.0).tone, Tone::Amber);
        assert_eq!(card(40.0, 96.0).tone, Tone::Red);
        assert_eq!(card(40.0, 50.0).value, "2 instance(s)");
        assert_eq!(capacity_card(Ok(None)).tone, Tone::Unknown);
    }

    #[test]
    fn a_statuspage_feed_is_read_and_anything_else_refused() {
        let ok = crate::cloud::http::parse_vendor_status(
            &serde_json::json!({ "page": {}, "status": { "indicator": "minor", "description": "Degraded performance" } }),
        )
        .unwrap();
        assert_eq!((ok.indicator.as_str(), ok.description.as_str()), ("minor", "Degraded performance"));
        assert!(crate::cloud::http::parse_vendor_status(&serde_json::json!({ "status": "up" })).is_err());
    }

    fn traffic(requests: f64, errors: f64, latency_ms: f64) -> Tone {
        traffic_card(Ok(Some(AppMetrics { requests, errors_5xx: errors, latency_ms, latency_is_p99: true }))).tone
    }

    #[test]
    fn traffic_is_judged_on_errors_and_latency() {
        assert_eq!(traffic(1000.0, 2.0, 300.0), Tone::Green);
        assert_eq!(traffic(1000.0, 20.0, 300.0), Tone::Amber, "2 % errors");
        assert_eq!(traffic(1000.0, 2.0, 1500.0), Tone::Amber, "p99 1.5 s");
        assert_eq!(traffic(1000.0, 80.0, 300.0), Tone::Red, "8 % errors");
        assert_eq!(traffic(1000.0, 0.0, 2500.0), Tone::Red, "p99 2.5 s");
        assert_eq!(traffic(0.0, 0.0, 0.0), Tone::Green, "no traffic is no error rate");
        assert_eq!(traffic_card(Ok(None)).tone, Tone::Unknown);
        assert_eq!(traffic_card(Err(CloudError::Throttled)).tone, Tone::Unknown);
        let slow = traffic_card(Ok(Some(AppMetrics {
            requests: 10.0,
            errors_5xx: 0.0,
            latency_ms: 1500.0,
            latency_is_p99: true,
        })));
        assert_eq!(slow.playbook, "slow-database", "slow, not failing: the latency playbook");
    }

    fn secret(due: Due) -> ManagedSecret {
        ManagedSecret {
            rotated: Rotated::JwtSecret,
            name: "JWT_SECRET",
            secret_id: Some("drop/production/jwt-secret".into()),
            location: String::new(),
            generated: "",
            impact: "",
            max_age_days: 90,
            last_changed: Ok(None),
            due,
        }
    }

    #[test]
    fn the_worst_secret_decides_the_rotation_card() {
        let at = Utc::now();
        assert_eq!(secrets_card(vec![secret(Due::Fine(at))]).tone, Tone::Green);
        assert_eq!(secrets_card(vec![secret(Due::Fine(at)), secret(Due::Soon(at))]).tone, Tone::Amber);
        assert_eq!(secrets_card(vec![secret(Due::Soon(at)), secret(Due::Overdue(at))]).tone, Tone::Red);
        assert_eq!(secrets_card(vec![secret(Due::Never)]).tone, Tone::Red);
        assert_eq!(secrets_card(vec![secret(Due::Unknown("throttled".into()))]).tone, Tone::Unknown);
        let unconfigured = ManagedSecret { secret_id: None, ..secret(Due::Unknown("not configured".into())) };
        assert_eq!(
            secrets_card(vec![unconfigured]).tone,
            Tone::Green,
            "a secret not managed here is not a problem here"
        );
    }

    #[test]
    fn each_card_judges_its_own_reading() {
        let now = Utc::now();
        let snapshot = |hours: i64, automated: bool| Snapshot {
            id: "rds:drop-production-2026".into(),
            created_at: now - chrono::Duration::hours(hours),
            status: "available".into(),
            automated,
        };
        let day = chrono::Duration::hours(24);
        assert_eq!(snapshot_card(Ok(vec![snapshot(3, true)]), day, now).tone, Tone::Green);
        assert_eq!(snapshot_card(Ok(vec![snapshot(30, true), snapshot(1, false)]), day, now).tone, Tone::Red);
        assert_eq!(snapshot_card(Ok(vec![]), day, now).value, "None");
        assert_eq!(cpu_card(Ok(81.0)).tone, Tone::Amber);
        assert_eq!(cpu_card(Ok(96.0)).tone, Tone::Red);
        let warning = Warning { days: 30, domain: "drop.no" };
        let expires = |days: i64| Ok(now + chrono::Duration::days(days) + chrono::Duration::hours(1));
        assert_eq!(certificate_card(expires(60), &warning, now).tone, Tone::Green);
        assert_eq!(certificate_card(expires(20), &warning, now).tone, Tone::Amber);
        assert_eq!(certificate_card(expires(3), &warning, now).tone, Tone::Red);
        assert!(certificate_card(expires(3), &warning, now).detail.starts_with("drop.no expires"));
        assert_eq!(storage_card(Ok(1e9), 2e9).tone, Tone::Red);
        assert_eq!(console_card(Err("migrations pending".into()), Ok(&Report::assume_complete())).tone, Tone::Red);
        assert_eq!(console_card(Ok(()), Ok(&Report::assume_complete())).tone, Tone::Green);
        assert_eq!(service_card(Err(CloudError::Throttled)).tone, Tone::Unknown);
    }
}

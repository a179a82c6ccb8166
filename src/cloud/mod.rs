//! The cloud port: what the runbook needs from AWS (and from Drop's public endpoints), named
//! after what it tells an operator. Demo mode plugs in the simulator ([`sim`]); production
//! plugs in the AWS adapter. Every read is bounded in time, and a failure is a value with a
//! reason a person can act on, never a crash.

pub mod aws;
pub mod betterstack;
pub mod dropapi;
pub mod fly;
pub mod hooks;
pub mod http;
pub mod shared;
pub mod sim;
pub mod slack;
pub mod sumsub;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::Secret;

/// Why something could not be read, in words for the person on call.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CloudError {
    #[error("{0} is not connected in this console")]
    NotConnected(&'static str),
    #[error("AWS is throttling requests; the next refresh will try again")]
    Throttled,
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// The network did not get through; trying again may work.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Unavailable(String),
    /// The service answered, and what it said is that it is down: Drop's health endpoint's
    /// 503 (its database check failed). A definite red, not an unknown.
    #[error("{0}")]
    Down(String),
}

pub type CloudResult<T> = Result<T, CloudError>;

impl CloudError {
    /// A passing trouble (throttling, no answer in time, the network): trying again may work.
    pub fn is_passing(&self) -> bool {
        matches!(self, CloudError::Throttled | CloudError::TimedOut(_) | CloudError::Unreachable(_))
    }
}

/// The App Runner service as it runs now.
#[derive(Clone, Debug)]
pub struct ServiceStatus {
    /// RUNNING, OPERATION_IN_PROGRESS, PAUSED, CREATE_FAILED…
    pub status: String,
    pub image: String,
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub id: String,
    /// START_DEPLOYMENT, UPDATE_SERVICE, PAUSE_SERVICE, RESUME_SERVICE…
    pub kind: String,
    /// PENDING, IN_PROGRESS, SUCCEEDED, FAILED, ROLLBACK_SUCCEEDED…
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Where a database instance accepts connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    At {
        host: String,
        port: u16,
    },
    /// The simulator's restored copy is the demo's own database.
    Simulated,
}

#[derive(Clone, Debug)]
pub struct DbInstance {
    /// available, backing-up, modifying, stopped…
    pub status: String,
    pub engine: String,
    pub allocated_gb: i32,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub id: String,
    pub automated: bool,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// What the app's `/api/health` says.
#[derive(Clone, Debug)]
pub struct AppHealth {
    pub ok: bool,
    pub version: String,
    pub uptime: Duration,
    pub db_latency_ms: f64,
}

impl Operation {
    /// Still running: neither succeeded nor failed.
    pub fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "IN_PROGRESS")
    }

    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

/// The service's auto-scaling bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scaling {
    pub min: i32,
    pub max: i32,
}

#[async_trait]
pub trait AppRunner: Send + Sync {
    /// Service.Status and the image it runs.
    async fn service_status(&self) -> CloudResult<ServiceStatus>;
    /// The latest deployments, pauses and resumes, newest first.
    async fn recent_operations(&self) -> CloudResult<Vec<Operation>>;
    /// Redeploy the image the service is set to (a rolling restart). Returns the operation id.
    async fn start_deployment(&self) -> CloudResult<String>;
    /// Point the service at another image (`repo:tag` or `repo@sha256:…`); App Runner deploys
    /// it at once. Returns the operation id.
    async fn deploy_image(&self, image: &str) -> CloudResult<String>;
    /// Stop serving (emergency restart, first half). Returns the operation id.
    async fn pause(&self) -> CloudResult<String>;
    /// Serve again after a pause. Returns the operation id.
    async fn resume(&self) -> CloudResult<String>;
    /// The auto-scaling bounds in force.
    async fn scaling(&self) -> CloudResult<Scaling>;
    /// The **names** of the environment variables and secrets the service's runtime defines
    /// (DescribeService's runtime configuration). Values are never read.
    async fn environment_names(&self) -> CloudResult<Vec<String>>;
    /// Change the auto-scaling bounds. Returns the operation id.
    async fn set_scaling(&self, scaling: Scaling) -> CloudResult<String>;

    /// One operation, by id, from the recent ones.
    async fn operation(&self, id: &str) -> CloudResult<Option<Operation>> {
        Ok(self.recent_operations().await?.into_iter().find(|o| o.id == id))
    }
}

#[async_trait]
pub trait Rds: Send + Sync {
    /// DBInstanceStatus, engine and allocated storage.
    async fn instance_status(&self) -> CloudResult<DbInstance>;
    /// Automated and manual snapshots, newest first.
    async fn snapshots(&self) -> CloudResult<Vec<Snapshot>>;
    /// Start a manual snapshot of the instance. The id is the client token: asking again for
    /// a snapshot that exists is not an error and takes no second snapshot.
    async fn create_snapshot(&self, id: &str) -> CloudResult<()>;
    /// One snapshot by id; `None` when there is none.
    async fn snapshot(&self, id: &str) -> CloudResult<Option<Snapshot>>;
    /// Set the master password, applied immediately.
    async fn set_master_password(&self, password: &Secret) -> CloudResult<()>;
    /// Restore a snapshot to a new instance (restore drills). Asking again is not an error.
    async fn restore_to_instance(&self, snapshot: &str, instance: &str) -> CloudResult<()>;
    /// Another instance's status (a drill's temporary one); `None` when it does not exist.
    async fn instance_named(&self, instance: &str) -> CloudResult<Option<DbInstance>>;
    /// Where an instance (a drill's temporary one) accepts connections; `None` while it has
    /// no endpoint yet.
    async fn instance_endpoint(&self, instance: &str) -> CloudResult<Option<Endpoint>>;
    /// Delete an instance without a final snapshot (a drill's temporary one). Deleting one
    /// that is gone is not an error.
    async fn delete_instance(&self, instance: &str) -> CloudResult<()>;
}

/// What App Runner measured of Drop's traffic over a recent window.
#[derive(Clone, Debug, PartialEq)]
pub struct AppMetrics {
    pub requests: f64,
    pub errors_5xx: f64,
    /// The worst 5-minute p99 request latency, or the average where no percentile is published.
    pub latency_ms: f64,
    pub latency_is_p99: bool,
}

impl AppMetrics {
    pub fn error_percent(&self) -> f64 {
        if self.requests > 0.0 { self.errors_5xx / self.requests * 100.0 } else { 0.0 }
    }
}

/// How far back the application metrics look.
pub const APP_METRICS_WINDOW_MINUTES: i64 = 15;

#[async_trait]
pub trait CloudWatch: Send + Sync {
    /// The instance's FreeStorageSpace, in bytes (latest datapoint).
    async fn free_storage_bytes(&self) -> CloudResult<f64>;
    /// The instance's CPUUtilization, percent (latest 5-minute average).
    async fn cpu_percent(&self) -> CloudResult<f64>;
    /// The App Runner service's requests, 5xx responses and latency over the last
    /// [`APP_METRICS_WINDOW_MINUTES`]; `None` when none are published.
    async fn app_metrics(&self) -> CloudResult<Option<AppMetrics>>;
    /// The service's requests, 5xx responses and p99 latency per UTC day, `days` days from
    /// `from` (a UTC midnight); days without data are left out.
    async fn daily_app_metrics(&self, from: DateTime<Utc>, days: u32) -> CloudResult<Vec<DayMetrics>>;
    /// The service's active instances and their CPU and memory (`AWS/AppRunner`, the latest
    /// 5-minute datapoints of the last [`APP_METRICS_WINDOW_MINUTES`]); `None` when none are
    /// published.
    async fn capacity(&self) -> CloudResult<Option<Capacity>>;
}

/// The App Runner service's capacity now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    pub active_instances: f64,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
}

/// One UTC day of the App Runner service's traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct DayMetrics {
    pub day: chrono::NaiveDate,
    pub requests: f64,
    pub errors_5xx: f64,
    /// The day's p99 request latency, where CloudWatch computed one.
    pub p99_ms: Option<f64>,
}

/// An image in the ECR repository.
#[derive(Clone, Debug)]
pub struct Image {
    /// Short git shas; empty for an untagged image.
    pub tags: Vec<String>,
    pub digest: String,
    pub pushed_at: DateTime<Utc>,
    pub size_bytes: i64,
}

#[async_trait]
pub trait Ecr: Send + Sync {
    /// Every image of Drop's repository, newest push first.
    async fn images(&self) -> CloudResult<Vec<Image>>;
}

/// What Secrets Manager says about a secret: never its value.
#[derive(Clone, Debug)]
pub struct SecretInfo {
    pub id: String,
    pub last_changed: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Secrets: Send + Sync {
    /// When the secret last changed.
    async fn secret_info(&self, id: &str) -> CloudResult<SecretInfo>;
    /// Store a new value as the pending version `version` (a UUID: Secrets Manager's client
    /// request token). Storing the same version again is not an error; the app keeps reading
    /// the current value until [`Secrets::promote`].
    async fn stage_value(&self, id: &str, version: &str, value: &Secret) -> CloudResult<()>;
    /// The value of one version, or of the current one; `None` when that version does not exist.
    async fn value(&self, id: &str, version: Option<&str>) -> CloudResult<Option<Secret>>;
    /// Make `version` the current value. Promoting the current version again is not an error.
    async fn promote(&self, id: &str, version: &str) -> CloudResult<()>;
}

/// One line of the application log.
#[derive(Clone, Debug)]
pub struct LogEvent {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// A log search: terms that must all appear, within a time window.
#[derive(Clone, Debug)]
pub struct LogQuery {
    /// CloudWatch filter pattern; plain words and "quoted phrases" must all match.
    pub pattern: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub limit: usize,
}

#[async_trait]
pub trait Logs: Send + Sync {
    /// Application log events matching the query, newest first.
    async fn filter_events(&self, query: &LogQuery) -> CloudResult<Vec<LogEvent>>;
}

crate::db::text_enum! {
    /// What BetterStack says of a monitor (its `status` attribute).
    pub enum MonitorStatus {
        Up = "up",
        Down = "down",
        /// Checks are passing again, but the recovery period has not passed.
        Validating = "validating",
        Paused = "paused",
        /// Paused by its own maintenance period.
        Maintenance = "maintenance",
        /// Just created, waiting for its first check.
        Pending = "pending",
    }
}

/// An uptime monitor of Drop's at BetterStack.
#[derive(Clone, Debug)]
pub struct Monitor {
    pub id: String,
    pub name: String,
    pub url: String,
    /// `None`: a status this console does not know.
    pub status: Option<MonitorStatus>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub paused: bool,
}

#[async_trait]
pub trait Monitoring: Send + Sync {
    /// Drop's monitors (those configured, or every one the token sees).
    async fn monitors(&self) -> CloudResult<Vec<Monitor>>;
    /// Pause a monitor (no checks, no alerts) or resume it. Asking for what is already so is
    /// not an error.
    async fn set_paused(&self, id: &str, paused: bool) -> CloudResult<()>;
    /// Raise an alert by hand (a BetterStack incident): it pages the on-call through the
    /// escalation policy as a monitor's would. `name` is unique per test, so a retry finds
    /// the alert it raised (see [`Monitoring::find_alert`]). Returns its id.
    async fn raise_alert(&self, name: &str, summary: &str, requester_email: &str) -> CloudResult<String>;
    /// A monitor's availability (percent) from `from` to `to`, both days included (its SLA).
    async fn availability(&self, monitor: &str, from: chrono::NaiveDate, to: chrono::NaiveDate) -> CloudResult<f64>;
    /// The alert raised today under `name`, if any.
    async fn find_alert(&self, name: &str) -> CloudResult<Option<String>>;
    /// Where a raised alert stands.
    async fn alert(&self, id: &str) -> CloudResult<RaisedAlert>;
    /// Resolve it; resolving a resolved alert is not an error.
    async fn resolve_alert(&self, id: &str, by: &str) -> CloudResult<()>;
    /// Publish a report on the public status page `page` about its `resources`; its id.
    async fn publish_report(&self, page: &str, resources: &[String], report: &StatusReport) -> CloudResult<String>;
    /// Add an update to a published report.
    async fn update_report(
        &self,
        page: &str,
        report: &str,
        resources: &[String],
        message: &crate::notify::PublicText,
        status: ResourceStatus,
    ) -> CloudResult<()>;
}

crate::db::text_enum! {
    /// How a status page shows Drop while a report is open.
    pub enum ResourceStatus {
        Downtime = "downtime",
        Degraded = "degraded",
        Resolved = "resolved",
        Maintenance = "maintenance",
    }
}

/// A report for the public status page: an incident's, or scheduled maintenance (its window).
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub title: crate::notify::PublicText,
    pub message: crate::notify::PublicText,
    pub status: ResourceStatus,
    pub maintenance: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// An alert (BetterStack incident) and who has answered it.
#[derive(Clone, Debug, Default)]
pub struct RaisedAlert {
    pub id: String,
    pub started_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Drop's public endpoints, read over HTTPS.
/// Somewhere outside the database that the database's owner cannot rewrite, where the audit
/// chain's signed heads are published: CloudWatch Logs in production, a file in demo. Lines
/// are opaque here; the audit module writes and reads them.
#[async_trait]
pub trait AuditAnchors: Send + Sync {
    /// Append one line.
    async fn publish(&self, line: &str) -> CloudResult<()>;
    /// Every line published, oldest first.
    async fn published(&self) -> CloudResult<Vec<String>>;
}

/// The configured anchor file, or nothing connected.
pub fn file_anchors(config: &crate::config::Config) -> Arc<dyn AuditAnchors> {
    match &config.audit.anchor_file {
        Some(path) => Arc::new(FileAnchors::new(path)),
        None => Arc::new(Disconnected),
    }
}

/// Anchors in a local file, one line each (demo and tests). Appended with a flush to disk.
pub struct FileAnchors {
    path: std::path::PathBuf,
}

impl FileAnchors {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[async_trait]
impl AuditAnchors for FileAnchors {
    async fn publish(&self, line: &str) -> CloudResult<()> {
        use tokio::io::AsyncWriteExt;
        let failed =
            |e: std::io::Error| CloudError::Unreachable(format!("the anchor file {}: {e}", self.path.display()));
        let mut file =
            tokio::fs::OpenOptions::new().create(true).append(true).open(&self.path).await.map_err(failed)?;
        file.write_all(format!("{line}\n").as_bytes()).await.map_err(failed)?;
        file.sync_all().await.map_err(failed)
    }

    async fn published(&self) -> CloudResult<Vec<String>> {
        match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => Ok(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(CloudError::Unreachable(format!("the anchor file {}: {e}", self.path.display()))),
        }
    }
}

#[async_trait]
pub trait Probes: Send + Sync {
    /// The production or staging health JSON.
    async fn app_health(&self, environment: Environment) -> CloudResult<AppHealth>;
    /// When the public domain's TLS certificate expires.
    async fn certificate_expiry(&self) -> CloudResult<DateTime<Utc>>;
    /// A vendor's public status page as an Atlassian Statuspage feed (`/api/v2/status.json`:
    /// `{"status": {"indicator": "none|minor|major|critical|maintenance", "description"}}`).
    async fn vendor_status(&self, url: &str) -> CloudResult<VendorStatus>;
}

/// What a vendor's public status page says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorStatus {
    /// none, minor, major, critical or maintenance.
    pub indicator: String,
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Production,
    Staging,
}

/// Everything the console reads or changes outside itself.
#[derive(Clone)]
pub struct Cloud {
    pub app_runner: Arc<dyn AppRunner>,
    pub rds: Arc<dyn Rds>,
    pub cloudwatch: Arc<dyn CloudWatch>,
    pub probes: Arc<dyn Probes>,
    pub logs: Arc<dyn Logs>,
    pub ecr: Arc<dyn Ecr>,
    pub secrets: Arc<dyn Secrets>,
    pub anchors: Arc<dyn AuditAnchors>,
    /// CI's commit statuses, when configured (`runs.ci_status_url`).
    pub ci: Option<Arc<dyn hooks::Ci>>,
    /// The monitoring relay for maintenance windows, when configured.
    pub relay: Option<Arc<dyn hooks::MaintenanceRelay>>,
    /// BetterStack Uptime, when a token is configured (the simulator plays it in demo mode).
    pub monitoring: Option<Arc<dyn Monitoring>>,
    /// Slack, when a token is configured (the simulator plays it in demo mode).
    pub chat: Option<Arc<dyn slack::Chat>>,
    /// Drop's own data-export API, when configured (the simulator plays it in demo mode).
    pub exports: Option<Arc<dyn dropapi::DataExports>>,
    /// Sumsub (KYC), when configured (the simulator plays it in demo mode).
    pub kyc: Option<Arc<dyn sumsub::Kyc>>,
    /// Fly.io staging's machines, when a token is configured (the simulator plays it).
    pub staging: Option<Arc<dyn fly::Staging>>,
    /// Whether the simulator is what is plugged in (demo and training).
    simulated: bool,
}

impl Cloud {
    pub fn simulated(sim: Arc<sim::Simulator>, anchors: Arc<dyn AuditAnchors>) -> Self {
        Self {
            anchors,
            app_runner: sim.clone(),
            rds: sim.clone(),
            cloudwatch: sim.clone(),
            probes: sim.clone(),
            logs: sim.clone(),
            ecr: sim.clone(),
            secrets: sim.clone(),
            ci: Some(sim.clone()),
            relay: Some(sim.clone()),
            monitoring: Some(sim.clone()),
            exports: Some(sim.clone()),
            kyc: Some(sim.clone()),
            staging: Some(sim.clone()),
            chat: Some(sim),
            simulated: true,
        }
    }

    /// Production: AWS through the official SDK, Drop's endpoints over HTTPS.
    pub fn aws(aws: aws::AwsCloud, probes: http::HttpProbes) -> Self {
        let aws = Arc::new(aws);
        Self {
            app_runner: aws.clone(),
            rds: aws.clone(),
            cloudwatch: aws.clone(),
            probes: Arc::new(probes),
            logs: aws.clone(),
            ecr: aws.clone(),
            secrets: aws.clone(),
            anchors: aws,
            ci: None,
            relay: None,
            monitoring: None,
            chat: None,
            exports: None,
            kyc: None,
            staging: None,
            simulated: false,
        }
    }

    /// Whether the simulator is plugged in (demo and training): its fault switches exist.
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    /// CI, the monitoring relay, BetterStack, Slack and Drop's export API as configured; without a configuration, what
    /// was plugged in (the simulator plays them in demo mode).
    pub fn with_hooks(mut self, config: &crate::config::Config) -> Self {
        self.ci = hooks::ci_from(&config.runs).or(self.ci);
        self.relay = hooks::relay_from(&config.runs).or(self.relay);
        self.monitoring = betterstack::from_config(&config.betterstack).or(self.monitoring);
        self.chat = slack::from_config(&config.slack).or(self.chat);
        self.exports = dropapi::from_config(&config.compliance).or(self.exports);
        self.kyc = sumsub::from_config(&config.sumsub).or(self.kyc);
        self.staging = fly::from_config(&config.fly, config.drop.staging_app()).or(self.staging);
        self
    }

    /// Nothing connected: every read says so plainly (a production console whose AWS settings
    /// are still being set up).
    pub fn disconnected() -> Self {
        let none = Arc::new(Disconnected);
        Self {
            app_runner: none.clone(),
            rds: none.clone(),
            cloudwatch: none.clone(),
            probes: none.clone(),
            logs: none.clone(),
            ecr: none.clone(),
            secrets: none.clone(),
            anchors: none,
            ci: None,
            relay: None,
            monitoring: None,
            chat: None,
            exports: None,
            kyc: None,
            staging: None,
            simulated: false,
        }
    }
}

/// Run a read with a time limit; a late answer becomes [`CloudError::TimedOut`].
pub async fn bounded<T>(limit: Duration, read: impl Future<Output = CloudResult<T>>) -> CloudResult<T> {
    tokio::time::timeout(limit, read).await.unwrap_or(Err(CloudError::TimedOut(limit)))
}

struct Disconnected;

#[async_trait]
impl AppRunner for Disconnected {
    async fn service_status(&self) -> CloudResult<ServiceStatus> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn environment_names(&self) -> CloudResult<Vec<String>> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn recent_operations(&self) -> CloudResult<Vec<Operation>> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn start_deployment(&self) -> CloudResult<String> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn deploy_image(&self, _: &str) -> CloudResult<String> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn pause(&self) -> CloudResult<String> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn resume(&self) -> CloudResult<String> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn scaling(&self) -> CloudResult<Scaling> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
    async fn set_scaling(&self, _: Scaling) -> CloudResult<String> {
        Err(CloudError::NotConnected("AWS App Runner"))
    }
}

#[async_trait]
impl Rds for Disconnected {
    async fn instance_status(&self) -> CloudResult<DbInstance> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn snapshots(&self) -> CloudResult<Vec<Snapshot>> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn create_snapshot(&self, _: &str) -> CloudResult<()> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn snapshot(&self, _: &str) -> CloudResult<Option<Snapshot>> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn set_master_password(&self, _: &Secret) -> CloudResult<()> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn restore_to_instance(&self, _: &str, _: &str) -> CloudResult<()> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn instance_named(&self, _: &str) -> CloudResult<Option<DbInstance>> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn instance_endpoint(&self, _: &str) -> CloudResult<Option<Endpoint>> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
    async fn delete_instance(&self, _: &str) -> CloudResult<()> {
        Err(CloudError::NotConnected("Amazon RDS"))
    }
}

#[async_trait]
impl CloudWatch for Disconnected {
    async fn free_storage_bytes(&self) -> CloudResult<f64> {
        Err(CloudError::NotConnected("Amazon CloudWatch"))
    }
    async fn cpu_percent(&self) -> CloudResult<f64> {
        Err(CloudError::NotConnected("Amazon CloudWatch"))
    }
    async fn app_metrics(&self) -> CloudResult<Option<AppMetrics>> {
        Err(CloudError::NotConnected("Amazon CloudWatch"))
    }
    async fn daily_app_metrics(&self, _: DateTime<Utc>, _: u32) -> CloudResult<Vec<DayMetrics>> {
        Err(CloudError::NotConnected("Amazon CloudWatch"))
    }
    async fn capacity(&self) -> CloudResult<Option<Capacity>> {
        Err(CloudError::NotConnected("Amazon CloudWatch"))
    }
}

#[async_trait]
impl AuditAnchors for Disconnected {
    async fn publish(&self, _: &str) -> CloudResult<()> {
        Err(CloudError::NotConnected("The audit anchor log"))
    }
    async fn published(&self) -> CloudResult<Vec<String>> {
        Err(CloudError::NotConnected("The audit anchor log"))
    }
}

#[async_trait]
impl Probes for Disconnected {
    async fn app_health(&self, _: Environment) -> CloudResult<AppHealth> {
        Err(CloudError::NotConnected("The health probe"))
    }
    async fn certificate_expiry(&self) -> CloudResult<DateTime<Utc>> {
        Err(CloudError::NotConnected("The certificate probe"))
    }
    async fn vendor_status(&self, _: &str) -> CloudResult<VendorStatus> {
        Err(CloudError::NotConnected("The status page probe"))
    }
}

#[async_trait]
impl Logs for Disconnected {
    async fn filter_events(&self, _: &LogQuery) -> CloudResult<Vec<LogEvent>> {
        Err(CloudError::NotConnected("CloudWatch Logs"))
    }
}

#[async_trait]
impl Ecr for Disconnected {
    async fn images(&self) -> CloudResult<Vec<Image>> {
        Err(CloudError::NotConnected("Amazon ECR"))
    }
}

#[async_trait]
impl Secrets for Disconnected {
    async fn secret_info(&self, _: &str) -> CloudResult<SecretInfo> {
        Err(CloudError::NotConnected("AWS Secrets Manager"))
    }
    async fn stage_value(&self, _: &str, _: &str, _: &Secret) -> CloudResult<()> {
        Err(CloudError::NotConnected("AWS Secrets Manager"))
    }
    async fn value(&self, _: &str, _: Option<&str>) -> CloudResult<Option<Secret>> {
        Err(CloudError::NotConnected("AWS Secrets Manager"))
    }
    async fn promote(&self, _: &str, _: &str) -> CloudResult<()> {
        Err(CloudError::NotConnected("AWS Secrets Manager"))
    }
}

/// The image an image reference (`repo:tag` or `repo@sha256:…`) points to, looked up in ECR:
/// by digest, or by the tag (which names one image). `None` when ECR has no such image —
/// never a guess.
/// The address of an ECR repository, as App Runner names an image in it (`…/repo@digest`,
/// `…/repo:tag`). The adapter and the simulator both name images so.
pub fn ecr_repository_uri(account: &str, region: &str, repository: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com/{repository}")
}

pub fn image_of<'a>(images: &'a [Image], reference: &str) -> Option<&'a Image> {
    match reference.split_once('@') {
        Some((_, digest)) => images.iter().find(|i| i.digest == digest),
        None => {
            let (_, tag) = reference.rsplit_once(':').filter(|(_, t)| !t.contains('/'))?;
            images.iter().find(|i| i.tags.iter().any(|t| t == tag))
        }
    }
}

/// The tag of an image reference, looked up in ECR: the referenced tag, or the first tag of
/// the image a digest names. `None` when ECR does not have it.
pub fn tag_of(images: &[Image], reference: &str) -> Option<String> {
    let image = image_of(images, reference)?;
    match reference.split_once('@') {
        Some(_) => image.tags.first().cloned(),
        None => reference.rsplit_once(':').map(|(_, tag)| tag.to_owned()),
    }
}

/// The tag written in a `repo:tag` reference, whether or not ECR still has it: what a redeploy
/// of the same reference will report as its version.
pub fn reference_tag(reference: &str) -> Option<String> {
    if reference.contains('@') {
        return None;
    }
    reference.rsplit_once(':').map(|(_, tag)| tag.to_owned()).filter(|t| !t.contains('/'))
}

/// The digest form (`repo@sha256:…`) of a reference ECR can resolve: what a rollback should
/// point at, since a tag may be moved.
pub fn pinned(images: &[Image], reference: &str) -> Option<String> {
    let image = image_of(images, reference)?;
    let repository = match reference.split_once('@') {
        Some((repo, _)) => repo,
        None => reference.rsplit_once(':').map_or(reference, |(repo, _)| repo),
    };
    Some(format!("{repository}@{}", image.digest))
}

/// The terms of a filter pattern: words, and "quoted phrases" kept whole.
pub fn pattern_terms(pattern: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for (i, part) in pattern.split('"').enumerate() {
        if i % 2 == 1 {
            if !part.trim().is_empty() {
                terms.push(part.to_owned());
            }
        } else {
            terms.extend(part.split_whitespace().map(str::to_owned));
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::pattern_terms;

    #[test]
    fn quoted_phrases_stay_whole() {
        assert_eq!(pattern_terms(r#"error "BankID failed" usr_1"#), ["error", "BankID failed", "usr_1"]);
        assert!(pattern_terms("  ").is_empty());
    }
}

//! Configuration: a TOML file (`--config` / `DROPOPS_CONFIG`) overlaid with `DROPOPS_*`
//! environment variables, checked once at start into one typed [`Config`].
//!
//! Loading never stops at the first problem: every missing or invalid setting is collected so
//! `dropops check-config` can list them all at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod load;
mod secret;

pub use load::ConfigErrors;
pub use secret::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Embedded database, simulated AWS, dev sign-in, demo data. Loopback only.
    Demo,
    /// Real PostgreSQL, AWS and OIDC; every setting required.
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A console role. Provider groups are mapped onto these in `[oidc.roles]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Oncall,
    Compliance,
    Mlro,
    Admin,
    /// Reads casework (the CEO's review of AML and STR cases) and acts on nothing.
    Oversight,
}

impl Role {
    pub const ALL: [Role; 6] = [Role::Viewer, Role::Oncall, Role::Compliance, Role::Mlro, Role::Admin, Role::Oversight];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Oncall => "oncall",
            Role::Compliance => "compliance",
            Role::Mlro => "mlro",
            Role::Admin => "admin",
            Role::Oversight => "oversight",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// How the role reads on a page.
    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Oncall => "On-call engineer",
            Role::Compliance => "Compliance",
            Role::Mlro => "MLRO",
            Role::Admin => "Admin",
            Role::Oversight => "Oversight (read-only casework)",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub mode: Mode,
    pub bind: SocketAddr,
    pub public_url: Option<String>,
    /// Bearer token a Prometheus scrape of `/metrics` must send. Required in production; in
    /// demo mode, without one, `/metrics` answers anyone on the loopback address.
    pub metrics_token: Option<Secret>,
    /// How many proxies in front of the console append to `X-Forwarded-For` (App Runner's
    /// front end is one). The client address is the hop the outermost trusted proxy saw;
    /// anything further left was written by the client and is not believed.
    pub trusted_proxy_hops: usize,
    pub log_format: LogFormat,
    #[serde(rename = "request_timeout_secs", serialize_with = "as_secs")]
    pub request_timeout: Duration,
    /// How long the dashboard's, the deployments page's and the KYC page's readings of AWS,
    /// Fly.io, BetterStack, Sumsub and Drop's endpoints are shared between viewers (0: every
    /// look asks again).
    /// Any change made through the console reads again at once ([`crate::cloud::shared`]).
    #[serde(rename = "outside_readings_secs", serialize_with = "as_secs")]
    pub outside_readings: Duration,
    pub max_body_bytes: usize,
    /// Apply pending migrations when `serve` starts. Off in production when the console's
    /// database role may not change the schema (run `dropops migrate` as the owner instead).
    pub migrate_on_start: bool,
    pub database: DatabaseConfig,
    pub oidc: OidcConfig,
    pub aws: AwsConfig,
    pub drop: DropEnvironment,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub compliance: ComplianceConfig,
    pub runs: RunsConfig,
    pub betterstack: BetterStackConfig,
    pub slack: SlackConfig,
    pub sumsub: SumsubConfig,
    pub bankid: BankIdConfig,
    pub fly: FlyConfig,
    pub oncall: OncallConfig,
    /// Demo and training: how fast simulated AWS operations go (1.0 = as long as on AWS).
    pub simulator_time_scale: f64,
}

/// BetterStack Uptime (runbook §1: three monitors — health, landing, US east): read for the
/// dashboard and the daily check, paused for the maintenance window of every disruptive run.
#[derive(Clone, Debug, Serialize)]
pub struct BetterStackConfig {
    /// An Uptime API token (DROPOPS_BETTERSTACK__TOKEN). Not set: BetterStack is not connected
    /// (the simulator plays it in demo mode).
    pub token: Option<Secret>,
    /// The API's origin: `https://uptime.betterstack.com`.
    pub api_url: String,
    /// The ids of Drop's monitors; empty: every monitor the token sees.
    pub monitors: Vec<String>,
    /// The BetterStack user the monthly escalation test raises its test alert as (a member of
    /// the team's account, as BetterStack requires).
    pub requester_email: Option<String>,
    /// The public status page incidents and maintenance are published to, and the resources
    /// on it that stand for Drop. Not set: the incident page offers no status page update.
    pub status_page_id: Option<String>,
    pub status_page_resources: Vec<String>,
}

/// Fly.io, where Drop's staging app runs (runbook §1: `drop-staging`).
#[derive(Clone, Debug, Serialize)]
pub struct FlyConfig {
    /// A Fly.io token that may read the staging app (DROPOPS_FLY__TOKEN). Not set: staging's
    /// machines are not shown (the simulator plays them in demo mode).
    pub token: Option<Secret>,
    /// `https://api.machines.dev`.
    pub api_url: String,
    /// `https://api.fly.io/graphql`: the staging app's releases.
    pub graphql_url: String,
    /// The repository staging pulls images from, tagged with the short git sha as ECR's are
    /// (default `registry.fly.io/<staging app>`).
    pub image_repository: Option<String>,
}

/// BankID, Drop's login (runbook §7: BankID login failing — logs, configuration, the vendor's
/// status page): what the dashboard's BankID card reads.
#[derive(Clone, Debug, Serialize)]
pub struct BankIdConfig {
    /// The vendor's status page as a Statuspage feed (`…/api/v2/status.json`).
    pub status_url: String,
    /// The environment variable names the App Runner service must define for BankID (only the
    /// names are checked; values are never read).
    pub env_vars: Vec<String>,
    /// BankID errors in the application log in one hour that make the card amber.
    pub errors_per_hour_alert: u32,
}

/// Sumsub, Drop's KYC vendor (runbook §7: KYC stuck in pending): read for the KYC list,
/// asked to re-check an applicant.
#[derive(Clone, Debug, Serialize)]
pub struct SumsubConfig {
    /// An app token with "View applicants" and "Request check" (DROPOPS_SUMSUB__APP_TOKEN) and
    /// its secret key (DROPOPS_SUMSUB__SECRET_KEY). Not set: Sumsub is not connected (the
    /// simulator plays it in demo mode).
    pub app_token: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// `https://api.sumsub.com`.
    pub api_url: String,
}

/// Slack (runbook §1: alerts go to a Slack channel): what the console posts, by channel.
#[derive(Clone, Debug, Serialize)]
pub struct SlackConfig {
    /// A bot token with `chat:write` (DROPOPS_SLACK__TOKEN). Not set: nothing is posted, and
    /// the messages page lists what would have been (the simulator plays Slack in demo mode).
    pub token: Option<Secret>,
    /// Slack's Web API: `https://slack.com/api`.
    pub api_url: String,
    /// Runs and their maintenance windows.
    pub runs_channel: String,
    /// Incidents.
    pub incidents_channel: String,
    /// On-call: hand-offs, overdue checklists, break-glass.
    pub oncall_channel: String,
    /// Break-glass uses for compliance to review: `#compliance`.
    pub compliance_channel: String,
}

/// Who to call (runbook §7: escalation contacts). Staff contact details, so they live in the
/// configuration Drop controls, not in code; the incident page answers "who do I call now"
/// from them and the escalation matrix.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OncallConfig {
    pub contacts: Vec<Contact>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    OncallPrimary,
    OncallBackup,
    TechLead,
    EngineeringManager,
    Cto,
    Ceo,
    /// Owns the payment system (runbook: payment system down → on-call + payment owner).
    PaymentOwner,
    /// The payment provider's support line.
    PaymentProvider,
    /// Drop's named operations contact.
    Operations,
    /// Drop's AI operations contact.
    AiOperations,
}

impl ContactRole {
    pub const ALL: [ContactRole; 10] = [
        ContactRole::OncallPrimary,
        ContactRole::OncallBackup,
        ContactRole::TechLead,
        ContactRole::EngineeringManager,
        ContactRole::Cto,
        ContactRole::Ceo,
        ContactRole::PaymentOwner,
        ContactRole::PaymentProvider,
        ContactRole::Operations,
        ContactRole::AiOperations,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ContactRole::OncallPrimary => "On-call (primary)",
            ContactRole::OncallBackup => "On-call (backup)",
            ContactRole::TechLead => "Tech lead",
            ContactRole::EngineeringManager => "Engineering manager",
            ContactRole::Cto => "CTO",
            ContactRole::Ceo => "CEO",
            ContactRole::PaymentOwner => "Payment system owner",
            ContactRole::PaymentProvider => "Payment provider support",
            ContactRole::Operations => "Operations contact",
            ContactRole::AiOperations => "AI operations contact",
        }
    }
}

/// One person or line to call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub role: ContactRole,
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// When or how to reach them ("office hours", "Slack first").
    #[serde(default)]
    pub note: Option<String>,
}

/// How procedures run (runbook §3, §4).
#[derive(Clone, Debug, Serialize)]
pub struct RunsConfig {
    /// How often a waiting step asks AWS again.
    #[serde(rename = "poll_interval_ms", serialize_with = "as_millis")]
    pub poll_interval: Duration,
    /// A deployment not RUNNING after this long has failed.
    #[serde(rename = "deploy_timeout_secs", serialize_with = "as_secs")]
    pub deploy_timeout: Duration,
    /// How long health may take to report ok and the new version after a deployment.
    #[serde(rename = "health_timeout_secs", serialize_with = "as_secs")]
    pub health_timeout: Duration,
    /// A snapshot not available after this long has failed.
    #[serde(rename = "snapshot_timeout_secs", serialize_with = "as_secs")]
    pub snapshot_timeout: Duration,
    /// Roll back to the previous image when health fails after a deploy.
    pub auto_rollback: bool,
    /// The monitoring maintenance window a deploy opens.
    pub maintenance_window_minutes: u32,
    /// Told when a maintenance window opens and closes (POST JSON), e.g. a BetterStack relay.
    pub maintenance_webhook: Option<String>,
    /// Where a deploy asks whether CI passed for the image's commit: `{sha}` is replaced by
    /// the image tag. The answer is JSON with `state` ("success" when green), as GitHub's
    /// combined commit status gives it. Not set: the deploy does not check CI.
    pub ci_status_url: Option<String>,
    /// Bearer token for `ci_status_url` (DROPOPS_RUNS__CI_TOKEN).
    pub ci_token: Option<Secret>,
    /// How long an action step keeps retrying throttling, timeouts and network errors.
    #[serde(rename = "retry_limit_secs", serialize_with = "as_secs")]
    pub retry_limit: Duration,
    /// A worker that has not renewed its lease for this long is presumed dead.
    #[serde(rename = "lease_secs", serialize_with = "as_secs")]
    pub lease: Duration,
    /// The read-only role a restore drill checks its copy as: one that exists in production,
    /// and so in every restored snapshot (DROPOPS_RUNS__DRILL_PASSWORD). Not set: drills stop
    /// at the data check and say so.
    pub drill_user: Option<String>,
    pub drill_password: Option<Secret>,
    /// How far a drill's copy may differ from production, percent of a table's rows.
    pub drill_tolerance_percent: f64,
}

/// Compliance rules (runbook §6).
#[derive(Clone, Debug, Serialize)]
pub struct ComplianceConfig {
    /// An open alert older than this is overdue.
    pub alert_sla_hours: u32,
    /// An STR not filed this many days after the suspicion arose (its alert) is overdue.
    pub str_filing_days: u32,
    /// "Large transaction" threshold per send currency (NOK 50,000 and equivalents).
    pub large_transaction: BTreeMap<String, rust_decimal::Decimal>,
    /// Years records are kept after the relationship ends (hvitvaskingsloven: 5).
    pub aml_retention_years: u32,
    /// Drop's own data-export API (`https://getdrop.no/api/user/data-export`) and the service
    /// token it takes (DROPOPS_COMPLIANCE__DATA_EXPORT_TOKEN). Not set: GDPR exports are the
    /// console's own reading of Drop's tables, and say so.
    pub data_export_url: Option<String>,
    pub data_export_token: Option<Secret>,
    /// How long an on-call engineer's emergency access to a customer's account lasts.
    #[serde(rename = "break_glass_minutes")]
    pub break_glass: u32,
}

/// Sign-in and session rules.
#[derive(Clone, Debug, Serialize)]
pub struct AuthConfig {
    /// A sign-in unused this long ends.
    #[serde(rename = "idle_timeout_secs", serialize_with = "as_secs")]
    pub idle_timeout: Duration,
    /// A sign-in ends this long after it started, however busy.
    #[serde(rename = "max_lifetime_secs", serialize_with = "as_secs")]
    pub max_lifetime: Duration,
    /// The maximum for a sign-in holding the compliance or MLRO role (casework, personal
    /// data): a group revoked at the provider takes effect at the latest after this long.
    #[serde(rename = "casework_max_lifetime_secs", serialize_with = "as_secs")]
    pub casework_max_lifetime: Duration,
    /// Sensitive actions need a sign-in (`auth_time`) at most this old.
    #[serde(rename = "step_up_max_age_secs", serialize_with = "as_secs")]
    pub step_up_max_age: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditConfig {
    /// Key of the HMAC fingerprints that prove which secret value was set. Not stored in the
    /// database, so a database reader cannot test guesses against the fingerprints.
    pub fingerprint_key: Option<Secret>,
    /// An intent with no outcome after this long is marked `unknown` by the reconciler.
    #[serde(rename = "outcome_timeout_secs", serialize_with = "as_secs")]
    pub outcome_timeout: Duration,
    /// CloudWatch Logs group the chain heads are published to (production), signed with a key
    /// derived from `fingerprint_key`; the database's owner cannot rewrite log events.
    pub anchor_log_group: Option<String>,
    /// File the chain heads are appended to instead (demo; default
    /// `.dropops-audit-anchors.jsonl` there).
    pub anchor_file: Option<PathBuf>,
    /// How often a serving replica publishes the heads (when they moved).
    #[serde(rename = "anchor_interval_secs", serialize_with = "as_secs")]
    pub anchor_interval: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct DatabaseConfig {
    /// `None` means: start the embedded database (feature `embedded-db`).
    pub url: Option<Secret>,
    pub max_connections: u32,
    /// Where the embedded database keeps its files.
    pub data_dir: PathBuf,
    /// Roles whose backends the database page never cancels or terminates (RDS's own, the
    /// migrating role…).
    pub protected_roles: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OidcConfig {
    pub issuer_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub groups_claim: String,
    pub roles: BTreeMap<String, Role>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AwsConfig {
    pub region: Option<String>,
    pub account_id: Option<String>,
    /// Per-service endpoint overrides, for emulators (`[aws.endpoints] rds = "http://…"`).
    pub endpoints: AwsEndpoints,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsEndpoints {
    pub apprunner: Option<String>,
    pub rds: Option<String>,
    pub cloudwatch: Option<String>,
    pub logs: Option<String>,
    pub ecr: Option<String>,
    pub secretsmanager: Option<String>,
}

/// The identifiers of Drop's environment (runbook.md §1). Never hard-coded elsewhere.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DropEnvironment {
    pub apprunner_service_name: Option<String>,
    pub apprunner_service_arn: Option<String>,
    pub ecr_repository: Option<String>,
    pub rds_instance: Option<String>,
    pub database_name: Option<String>,
    pub log_group: Option<String>,
    pub health_url: Option<String>,
    pub health_db_latency_alert_ms: Option<u64>,
    pub public_domain: Option<String>,
    pub certificate_alert_days: Option<u32>,
    pub free_storage_alert_bytes: Option<u64>,
    pub snapshot_max_age_hours: Option<u32>,
    pub staging_fly_app: Option<String>,
    pub staging_health_url: Option<String>,
    pub jwt_secret_id: Option<String>,
    /// The Secrets Manager secret holding the app's DATABASE_URL (rotated with the password).
    pub database_url_secret_id: Option<String>,
    /// Rotate JWT_SECRET at least this often (days; default 90).
    pub jwt_secret_max_age_days: Option<u32>,
    /// Rotate the database master password at least this often (days; default 90).
    pub database_password_max_age_days: Option<u32>,
    /// A secret this close to its maximum age is "due soon" (days; default 14).
    pub secret_due_soon_days: Option<u32>,
}

/// Drop's names, resolved once: the configured value, or (demo mode; production requires
/// each, see `check_production`) the name the runbook gives it. Nothing else spells them.
impl DropEnvironment {
    /// The App Runner service: `drop-web`.
    pub fn service_name(&self) -> &str {
        self.apprunner_service_name.as_deref().unwrap_or("drop-web")
    }

    /// The ECR repository the service's images are in: `drop-web`.
    pub fn repository(&self) -> &str {
        self.ecr_repository.as_deref().unwrap_or("drop-web")
    }

    /// The RDS instance: `drop-db`.
    pub fn instance(&self) -> &str {
        self.rds_instance.as_deref().unwrap_or("drop-db")
    }

    /// The Fly.io staging app: `drop-staging`.
    pub fn staging_app(&self) -> &str {
        self.staging_fly_app.as_deref().unwrap_or("drop-staging")
    }

    /// The application's database on that instance: `dropapp`.
    pub fn database(&self) -> &str {
        self.database_name.as_deref().unwrap_or("dropapp")
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Config {
    /// Drop's App Runner service as runs name their target: one active run per target.
    pub fn service_target(&self) -> String {
        format!("apprunner:{}", self.drop.service_name())
    }

    /// Drop's staging app as runs name their target: `fly:drop-staging`.
    pub fn staging_target(&self) -> String {
        format!("fly:{}", self.drop.staging_app())
    }

    /// The repository staging pulls from: `registry.fly.io/drop-staging` unless configured.
    pub fn staging_repository(&self) -> String {
        match &self.fly.image_repository {
            Some(repository) => repository.trim_end_matches('/').to_owned(),
            None => format!("registry.fly.io/{}", self.drop.staging_app()),
        }
    }

    /// The image staging runs for a tag: `registry.fly.io/drop-staging:b2e9f14`.
    pub fn staging_image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.staging_repository())
    }

    /// "production — App Runner service drop-web in eu-west-1": said on every confirmation.
    pub fn service_environment(&self) -> String {
        format!(
            "production — App Runner service {} in {}",
            self.drop.service_name(),
            self.aws.region.as_deref().unwrap_or("an unconfigured region")
        )
    }

    /// The effective configuration as TOML, secrets redacted: what `check-config` prints.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }

    /// The address people use to reach the console: `public_url`, else the bind address.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    /// The `Host` values the console answers to: the public URL's host (with and without its
    /// port), and, when that is a loopback address (demo mode), every loopback name on the same
    /// port. Anything else is a DNS-rebinding attempt or a misrouted request.
    pub fn accepted_hosts(&self) -> Vec<String> {
        let Ok(url) = url::Url::parse(&self.base_url()) else { return Vec::new() };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return Vec::new() };
        let port = url.port_or_known_default();
        let loopback = ["127.0.0.1", "localhost", "[::1]"];
        let names: Vec<String> = if loopback.contains(&host.as_str()) {
            loopback.iter().map(|h| h.to_string()).collect()
        } else {
            vec![host]
        };
        let mut hosts = Vec::new();
        for name in names {
            if let Some(port) = port {
                hosts.push(format!("{name}:{port}"));
            }
            if url.port().is_none() {
                hosts.push(name);
            }
        }
        hosts
    }

    /// The origins a browser on an accepted host sends.
    pub fn accepted_origins(&self) -> Vec<String> {
        let scheme = if self.is_https() { "https" } else { "http" };
        let default_port = if self.is_https() { ":443" } else { ":80" };
        self.accepted_hosts()
            .into_iter()
            .map(|h| format!("{scheme}://{}", h.strip_suffix(default_port).unwrap_or(&h)))
            .collect()
    }

    /// Served over HTTPS (directly or behind App Runner's TLS front end).
    pub fn is_https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

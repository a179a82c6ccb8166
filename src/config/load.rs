//! Loading: the file, the environment overlay, and every check, with every problem collected.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::*;

/// Drop's identifiers; demo mode simulates this environment when no `[drop]` table is given.
const EXAMPLE_CONFIG: &str = include_str!("../../config/drop.example.toml");

/// Every problem found while loading, in the order found.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// ":3:5", line and column of a byte offset, as an editor counts them (from 1).
fn line_and_column(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(":{line}:{column}")
}

impl Config {
    /// Load from an optional TOML file and the given environment (pass `std::env::vars()`).
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut table = match file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => text.parse::<toml::Table>().unwrap_or_else(|e| {
                    let at = e.span().map(|span| line_and_column(&text, span.start)).unwrap_or_default();
                    errors.push(format!("{}{at}: not valid TOML: {}", path.display(), e.message()));
                    toml::Table::new()
                }),
                Err(e) => {
                    errors.push(format!("{}: cannot be read: {e}", path.display()));
                    toml::Table::new()
                }
            },
            None => toml::Table::new(),
        };
        apply_env(&mut table, env, &mut errors);
        let config = Self::from_table(table, &mut errors);
        if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
    }

    /// Demo mode with everything defaulted: what `cargo run` uses.
    pub fn demo() -> Self {
        Self::load(None, std::iter::empty()).expect("the built-in demo configuration is valid")
    }

    fn from_table(mut t: toml::Table, errors: &mut Vec<String>) -> Self {
        let mode = take(&mut t, "mode", errors).unwrap_or(Mode::Demo);
        let bind_text: String = take(&mut t, "bind", errors).unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!("bind: {bind_text:?} is not an address like 127.0.0.1:8080"));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let public_url: Option<String> = take(&mut t, "public_url", errors);
        let metrics_token: Option<Secret> = take(&mut t, "metrics_token", errors);
        let trusted_proxy_hops: Option<usize> = take(&mut t, "trusted_proxy_hops", errors);
        let log_format = take(&mut t, "log_format", errors).unwrap_or(match mode {
            Mode::Demo => LogFormat::Pretty,
            Mode::Production => LogFormat::Json,
        });
        let request_timeout = take_secs(&mut t, "request_timeout_secs", 30, 1..=600, errors);
        let outside_readings = take_secs(&mut t, "outside_readings_secs", 5, 0..=300, errors);
        let max_body_bytes: usize = take(&mut t, "max_body_bytes", errors).unwrap_or(64 * 1024);
        if !(1024..=10 * 1024 * 1024).contains(&max_body_bytes) {
            errors.push(format!("max_body_bytes: {max_body_bytes} is outside 1024..=10485760"));
        }
        let migrate_on_start = take(&mut t, "migrate_on_start", errors).unwrap_or(true);
        let database = DatabaseConfig {
            url: take(&mut t, "database_url", errors),
            max_connections: take(&mut t, "database_max_connections", errors).unwrap_or(10),
            data_dir: take(&mut t, "data_dir", errors).unwrap_or_else(|| PathBuf::from(".dropops")),
            protected_roles: take(&mut t, "database_protected_roles", errors)
                .unwrap_or_else(|| vec!["rdsadmin".to_owned(), "rds_superuser".to_owned()]),
        };

        let mut oidc_t = take_table(&mut t, "oidc", errors);
        let oidc = OidcConfig {
            issuer_url: take(&mut oidc_t, "oidc.issuer_url", errors),
            client_id: take(&mut oidc_t, "oidc.client_id", errors),
            client_secret: take(&mut oidc_t, "oidc.client_secret", errors),
            groups_claim: take(&mut oidc_t, "oidc.groups_claim", errors).unwrap_or_else(|| "groups".into()),
            roles: take(&mut oidc_t, "oidc.roles", errors).unwrap_or_default(),
        };
        unknown_keys(oidc_t, "oidc.", errors);

        let example = EXAMPLE_CONFIG.parse::<toml::Table>().expect("the example configuration parses");
        let mut aws_t = match (t.contains_key("aws"), mode) {
            (false, Mode::Demo) => example.get("aws").and_then(|v| v.as_table()).cloned().unwrap_or_default(),
            _ => take_table(&mut t, "aws", errors),
        };
        let aws = AwsConfig {
            region: take(&mut aws_t, "aws.region", errors),
            account_id: take(&mut aws_t, "aws.account_id", errors),
            endpoints: take(&mut aws_t, "aws.endpoints", errors).unwrap_or_default(),
        };
        unknown_keys(aws_t, "aws.", errors);

        let drop = match (t.remove("drop"), mode) {
            (None, Mode::Demo) => example.get("drop").cloned().and_then(|v| v.try_into().ok()).unwrap_or_default(),
            (None, Mode::Production) => DropEnvironment::default(),
            // Demo mode: what is given changes the simulated environment's identifiers, the
            // rest stay Drop's.
            (Some(toml::Value::Table(given)), Mode::Demo) => {
                let mut merged = example.get("drop").and_then(|v| v.as_table()).cloned().unwrap_or_default();
                merged.extend(given);
                toml::Value::Table(merged).try_into().unwrap_or_else(|e: toml::de::Error| {
                    errors.push(format!("drop: {}", e.message()));
                    DropEnvironment::default()
                })
            }
            (Some(v), _) => v.try_into().unwrap_or_else(|e: toml::de::Error| {
                errors.push(format!("drop: {}", e.message()));
                DropEnvironment::default()
            }),
        };
        let mut auth_t = take_table(&mut t, "auth", errors);
        let auth = AuthConfig {
            idle_timeout: take_secs(&mut auth_t, "auth.idle_timeout_secs", 30 * 60, 1..=24 * 3600, errors),
            max_lifetime: take_secs(&mut auth_t, "auth.max_lifetime_secs", 12 * 3600, 1..=7 * 24 * 3600, errors),
            casework_max_lifetime: take_secs(
                &mut auth_t,
                "auth.casework_max_lifetime_secs",
                4 * 3600,
                1..=7 * 24 * 3600,
                errors,
            ),
            step_up_max_age: take_secs(&mut auth_t, "auth.step_up_max_age_secs", 10 * 60, 1..=24 * 3600, errors),
        };
        unknown_keys(auth_t, "auth.", errors);
        let mut audit_t = take_table(&mut t, "audit", errors);
        let fingerprint_key: Option<Secret> = take(&mut audit_t, "audit.fingerprint_key", errors);
        let audit = AuditConfig {
            fingerprint_key,
            outcome_timeout: take_secs(&mut audit_t, "audit.outcome_timeout_secs", 15 * 60, 10..=7 * 24 * 3600, errors),
            anchor_log_group: take(&mut audit_t, "audit.anchor_log_group", errors),
            anchor_file: take(&mut audit_t, "audit.anchor_file", errors)
                .or_else(|| (mode == Mode::Demo).then(|| PathBuf::from(".dropops-audit-anchors.jsonl"))),
            anchor_interval: take_secs(&mut audit_t, "audit.anchor_interval_secs", 5 * 60, 10..=24 * 3600, errors),
        };
        unknown_keys(audit_t, "audit.", errors);
        let mut compliance_t = take_table(&mut t, "compliance", errors);
        let compliance = ComplianceConfig {
            alert_sla_hours: take(&mut compliance_t, "compliance.alert_sla_hours", errors).unwrap_or(48),
            str_filing_days: take(&mut compliance_t, "compliance.str_filing_days", errors).unwrap_or(14),
            large_transaction: take(&mut compliance_t, "compliance.large_transaction", errors).unwrap_or_else(|| {
                [("NOK", 50_000), ("EUR", 4_300), ("USD", 4_700), ("PLN", 18_500)]
                    .into_iter()
                    .map(|(c, v)| (c.to_owned(), rust_decimal::Decimal::from(v)))
                    .collect()
            }),
            aml_retention_years: take(&mut compliance_t, "compliance.aml_retention_years", errors).unwrap_or(5),
            data_export_url: take(&mut compliance_t, "compliance.data_export_url", errors),
            data_export_token: take(&mut compliance_t, "compliance.data_export_token", errors),
            break_glass: take(&mut compliance_t, "compliance.break_glass_minutes", errors).unwrap_or(60),
        };
        if let Some(url) = &compliance.data_export_url
            && !url.starts_with("https://")
            && !url.starts_with("http://127.0.0.1")
        {
            errors.push(format!("compliance.data_export_url: {url:?} must start with https://"));
        }
        if compliance.data_export_url.is_some() != compliance.data_export_token.is_some() {
            errors.push("compliance.data_export_url and compliance.data_export_token: set both or neither".into());
        }
        if !(5..=240).contains(&compliance.break_glass) {
            errors.push("compliance.break_glass_minutes: between 5 and 240".into());
        }
        if compliance.aml_retention_years < 5 {
            errors.push("compliance.aml_retention_years: hvitvaskingsloven requires at least 5".into());
        }
        unknown_keys(compliance_t, "compliance.", errors);
        let mut runs_t = take_table(&mut t, "runs", errors);
        let poll_ms: u64 = take(&mut runs_t, "runs.poll_interval_ms", errors).unwrap_or(3000);
        if !(10..=60_000).contains(&poll_ms) {
            errors.push(format!("runs.poll_interval_ms: {poll_ms} is outside 10..=60000"));
        }
        let runs = RunsConfig {
            poll_interval: Duration::from_millis(poll_ms),
            deploy_timeout: take_secs(&mut runs_t, "runs.deploy_timeout_secs", 15 * 60, 1..=3600, errors),
            health_timeout: take_secs(&mut runs_t, "runs.health_timeout_secs", 120, 1..=1800, errors),
            snapshot_timeout: take_secs(&mut runs_t, "runs.snapshot_timeout_secs", 30 * 60, 1..=4 * 3600, errors),
            auto_rollback: take(&mut runs_t, "runs.auto_rollback", errors).unwrap_or(true),
            maintenance_window_minutes: take(&mut runs_t, "runs.maintenance_window_minutes", errors).unwrap_or(30),
            maintenance_webhook: take(&mut runs_t, "runs.maintenance_webhook", errors),
            ci_status_url: take(&mut runs_t, "runs.ci_status_url", errors),
            ci_token: take(&mut runs_t, "runs.ci_token", errors),
            retry_limit: take_secs(&mut runs_t, "runs.retry_limit_secs", 300, 1..=3600, errors),
            lease: take_secs(&mut runs_t, "runs.lease_secs", 60, 1..=3600, errors),
            drill_user: take(&mut runs_t, "runs.drill_user", errors),
            drill_password: take(&mut runs_t, "runs.drill_password", errors),
            drill_tolerance_percent: take(&mut runs_t, "runs.drill_tolerance_percent", errors).unwrap_or(0.1),
        };
        if runs.drill_user.is_some() != runs.drill_password.is_some() {
            errors.push("runs.drill_user and runs.drill_password: set both or neither".into());
        }
        if !(0.0..=10.0).contains(&runs.drill_tolerance_percent) {
            errors.push("runs.drill_tolerance_percent: between 0 and 10".into());
        }
        unknown_keys(runs_t, "runs.", errors);
        let mut betterstack_t = take_table(&mut t, "betterstack", errors);
        let betterstack = BetterStackConfig {
            token: take(&mut betterstack_t, "betterstack.token", errors),
            api_url: take(&mut betterstack_t, "betterstack.api_url", errors)
                .unwrap_or_else(|| "https://uptime.betterstack.com".into()),
            monitors: take_ids(&mut betterstack_t, "betterstack.monitors", errors),
            requester_email: take(&mut betterstack_t, "betterstack.requester_email", errors),
            status_page_id: take_ids(&mut betterstack_t, "betterstack.status_page_id", errors).into_iter().next(),
            status_page_resources: take_ids(&mut betterstack_t, "betterstack.status_page_resources", errors),
        };
        if betterstack.status_page_id.is_some() && betterstack.status_page_resources.is_empty() {
            errors.push("betterstack.status_page_resources: name the status page resources that stand for Drop".into());
        }
        if !betterstack.api_url.starts_with("https://") && !betterstack.api_url.starts_with("http://127.0.0.1") {
            errors.push(format!("betterstack.api_url: {:?} must start with https://", betterstack.api_url));
        }
        unknown_keys(betterstack_t, "betterstack.", errors);
        let mut fly_t = take_table(&mut t, "fly", errors);
        let fly = FlyConfig {
            token: take(&mut fly_t, "fly.token", errors),
            api_url: take(&mut fly_t, "fly.api_url", errors).unwrap_or_else(|| "https://api.machines.dev".into()),
            graphql_url: take(&mut fly_t, "fly.graphql_url", errors)
                .unwrap_or_else(|| "https://api.fly.io/graphql".into()),
            image_repository: take(&mut fly_t, "fly.image_repository", errors),
        };
        for (key, url) in [("fly.api_url", &fly.api_url), ("fly.graphql_url", &fly.graphql_url)] {
            if !url.starts_with("https://") && !url.starts_with("http://127.0.0.1") {
                errors.push(format!("{key}: {url:?} must start with https://"));
            }
        }
        unknown_keys(fly_t, "fly.", errors);
        let mut bankid_t = take_table(&mut t, "bankid", errors);
        let bankid = BankIdConfig {
            status_url: take(&mut bankid_t, "bankid.status_url", errors)
                .unwrap_or_else(|| "https://status.bankid.no/api/v2/status.json".into()),
            env_vars: take(&mut bankid_t, "bankid.env_vars", errors).unwrap_or_else(|| {
                ["BANKID_CLIENT_ID", "BANKID_CLIENT_SECRET", "BANKID_ISSUER"].map(str::to_owned).to_vec()
            }),
            errors_per_hour_alert: take(&mut bankid_t, "bankid.errors_per_hour_alert", errors).unwrap_or(20),
        };
        if !bankid.status_url.starts_with("https://") && !bankid.status_url.starts_with("http://127.0.0.1") {
            errors.push(format!("bankid.status_url: {:?} must start with https://", bankid.status_url));
        }
        unknown_keys(bankid_t, "bankid.", errors);
        let mut sumsub_t = take_table(&mut t, "sumsub", errors);
        let sumsub = SumsubConfig {
            app_token: take(&mut sumsub_t, "sumsub.app_token", errors),
            secret_key: take(&mut sumsub_t, "sumsub.secret_key", errors),
            api_url: take(&mut sumsub_t, "sumsub.api_url", errors).unwrap_or_else(|| "https://api.sumsub.com".into()),
        };
        if !sumsub.api_url.starts_with("https://") && !sumsub.api_url.starts_with("http://127.0.0.1") {
            errors.push(format!(
                "sumsub.api_url: {:?} must start with https:// (Sumsub refuses plain HTTP)",
                sumsub.api_url
            ));
        }
        if sumsub.app_token.is_some() != sumsub.secret_key.is_some() {
            errors.push("sumsub.app_token and sumsub.secret_key: set both or neither".into());
        }
        unknown_keys(sumsub_t, "sumsub.", errors);
        let mut slack_t = take_table(&mut t, "slack", errors);
        let mut channel = |key: &str, default: &str| {
            let name: String = take(&mut slack_t, key, errors).unwrap_or_else(|| default.into());
            if name.trim().is_empty() || name.len() > 80 {
                errors.push(format!("{key}: {name:?} is not a channel name"));
            }
            name
        };
        let slack = SlackConfig {
            runs_channel: channel("slack.runs_channel", "#drop-ops"),
            incidents_channel: channel("slack.incidents_channel", "#drop-alerts"),
            oncall_channel: channel("slack.oncall_channel", "#ops"),
            compliance_channel: channel("slack.compliance_channel", "#compliance"),
            token: take(&mut slack_t, "slack.token", errors),
            api_url: take(&mut slack_t, "slack.api_url", errors).unwrap_or_else(|| "https://slack.com/api".into()),
        };
        if !slack.api_url.starts_with("https://") && !slack.api_url.starts_with("http://127.0.0.1") {
            errors.push(format!("slack.api_url: {:?} must start with https://", slack.api_url));
        }
        unknown_keys(slack_t, "slack.", errors);
        let mut oncall_t = take_table(&mut t, "oncall", errors);
        let oncall = OncallConfig {
            // Demo mode without contacts shows the example's, so the incident page has someone to call.
            contacts: take(&mut oncall_t, "oncall.contacts", errors).unwrap_or_else(|| match mode {
                Mode::Demo => example
                    .get("oncall")
                    .and_then(|o| o.get("contacts"))
                    .cloned()
                    .and_then(|v| v.try_into().ok())
                    .unwrap_or_default(),
                Mode::Production => Vec::new(),
            }),
        };
        for contact in &oncall.contacts {
            if contact.name.trim().is_empty() || contact.name.len() > 200 {
                errors.push(format!("oncall.contacts: {:?} needs a name (up to 200 characters)", contact.role.label()));
            }
        }
        unknown_keys(oncall_t, "oncall.", errors);
        let simulator_time_scale: f64 = take(&mut t, "simulator_time_scale", errors).unwrap_or(1.0);
        if !(0.0..=10.0).contains(&simulator_time_scale) {
            errors.push(format!("simulator_time_scale: {simulator_time_scale} is outside 0..=10"));
        }
        unknown_keys(t, "", errors);

        let config = Config {
            mode,
            bind,
            public_url,
            metrics_token,
            trusted_proxy_hops: trusted_proxy_hops.unwrap_or(if mode == Mode::Production { 1 } else { 0 }),
            log_format,
            request_timeout,
            outside_readings,
            max_body_bytes,
            migrate_on_start,
            database,
            oidc,
            aws,
            drop,
            auth,
            audit,
            compliance,
            runs,
            betterstack,
            slack,
            sumsub,
            bankid,
            fly,
            oncall,
            simulator_time_scale,
        };
        config.check(errors);
        config
    }

    /// Rules that span settings; pushes one line per problem.
    fn check(&self, errors: &mut Vec<String>) {
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                errors.push(format!("public_url: {url:?} must start with https://"));
            }
        }
        if let Some(url) = &self.database.url {
            if !url.expose().starts_with("postgres://") && !url.expose().starts_with("postgresql://") {
                errors.push("database_url: must be a postgres:// URL".into());
            }
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.expose().len() < 32) {
            errors.push("metrics_token: must be at least 32 characters".into());
        }
        if let Some(key) = &self.audit.fingerprint_key {
            if key.expose().len() < 32 {
                errors.push("audit.fingerprint_key: must be at least 32 characters".into());
            }
        }
        for (group, role) in &self.oidc.roles {
            if group.trim().is_empty() {
                errors.push(format!("oidc.roles: an empty group name maps to {role:?}"));
            }
        }
        if self.database.max_connections == 0 {
            errors.push("database_max_connections: must be at least 1".into());
        }
        match self.mode {
            Mode::Demo => {
                if !self.bind.ip().is_loopback() {
                    errors.push(format!(
                        "bind: demo mode has a dev sign-in and fake data, so it only listens on a loopback address (got {})",
                        self.bind
                    ));
                }
            }
            Mode::Production => self.check_production(errors),
        }
    }

    fn check_production(&self, errors: &mut Vec<String>) {
        let mut require = |present: bool, what: &str| {
            if !present {
                errors.push(format!("{what}: required in production mode"));
            }
        };
        require(self.database.url.is_some(), "database_url (or DATABASE_URL)");
        require(self.oidc.issuer_url.is_some(), "oidc.issuer_url");
        require(self.oidc.client_id.is_some(), "oidc.client_id");
        require(self.oidc.client_secret.is_some(), "oidc.client_secret");
        require(!self.oidc.roles.is_empty(), "oidc.roles");
        require(self.aws.region.is_some(), "aws.region");
        // The ECR image reference App Runner pulls names the account: never a made-up one.
        require(self.aws.account_id.is_some(), "aws.account_id");
        require(self.public_url.is_some(), "public_url");
        require(self.audit.fingerprint_key.is_some(), "audit.fingerprint_key");
        require(self.audit.anchor_log_group.is_some(), "audit.anchor_log_group");
        require(self.metrics_token.is_some(), "metrics_token");
        let d = &self.drop;
        for (present, key) in [
            (d.apprunner_service_arn.is_some(), "drop.apprunner_service_arn"),
            (d.apprunner_service_name.is_some(), "drop.apprunner_service_name"),
            (d.ecr_repository.is_some(), "drop.ecr_repository"),
            (d.rds_instance.is_some(), "drop.rds_instance"),
            (d.log_group.is_some(), "drop.log_group"),
            (d.health_url.is_some(), "drop.health_url"),
            (d.jwt_secret_id.is_some(), "drop.jwt_secret_id"),
        ] {
            require(present, key);
        }
        if let Some(account) = &self.aws.account_id {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(format!("aws.account_id: an AWS account id is 12 digits (got {account:?})"));
            }
        }
        if let Some(url) = &self.public_url {
            if !url.starts_with("https://") {
                errors.push("public_url: production is served over HTTPS only".into());
            }
        }
        if let Some(url) = &self.oidc.issuer_url {
            if !url.starts_with("https://") {
                errors.push("oidc.issuer_url: must be https:// in production".into());
            }
        }
    }
}

/// Remove `key` from `table` and deserialize it, recording a readable error instead of failing.
fn take<T: DeserializeOwned>(table: &mut toml::Table, key: &str, errors: &mut Vec<String>) -> Option<T> {
    let local = key.rsplit('.').next().unwrap_or(key);
    let value = table.remove(local)?;
    match value.clone().try_into() {
        Ok(v) => Some(v),
        Err(e) => {
            let e: toml::de::Error = e;
            errors.push(format!("{key}: {} (got {value})", e.message()));
            None
        }
    }
}

/// Ids of a service's resources (BetterStack's are numbers): a string, a number, a list of
/// either, or — as an environment variable gives it — text with commas between ids.
fn take_ids(table: &mut toml::Table, key: &str, errors: &mut Vec<String>) -> Vec<String> {
    let local = key.rsplit('.').next().unwrap_or(key);
    let one = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(s.trim().to_owned()),
        toml::Value::Integer(n) => Some(n.to_string()),
        _ => None,
    };
    let ids = match table.remove(local) {
        None => return vec![],
        Some(toml::Value::String(s)) => {
            s.trim_matches(|c| c == '[' || c == ']').split(',').map(|i| i.trim().trim_matches('"').to_owned()).collect()
        }
        Some(toml::Value::Array(items)) => items.iter().map(one).collect::<Option<Vec<_>>>().unwrap_or_else(|| {
            errors.push(format!("{key}: ids are strings or numbers"));
            vec![]
        }),
        Some(other) => one(&other).into_iter().collect(),
    };
    ids.into_iter().filter(|i| !i.is_empty()).collect()
}

/// A number of seconds within `range`.
fn take_secs(
    table: &mut toml::Table,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    errors: &mut Vec<String>,
) -> Duration {
    let value: u64 = take(table, key, errors).unwrap_or(default);
    if !range.contains(&value) {
        errors.push(format!("{key}: {value} is outside {}..={}", range.start(), range.end()));
    }
    Duration::from_secs(value)
}

fn take_table(table: &mut toml::Table, key: &str, errors: &mut Vec<String>) -> toml::Table {
    match table.remove(key) {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(other) => {
            errors.push(format!("{key}: expected a table, got {other}"));
            toml::Table::new()
        }
    }
}

fn unknown_keys(table: toml::Table, prefix: &str, errors: &mut Vec<String>) {
    for key in table.keys() {
        errors.push(format!("{prefix}{key}: unknown setting"));
    }
}

/// Overlay `DROPOPS_SECTION__KEY=value` variables (and plain `DATABASE_URL`) on the file.
/// Values that read as TOML numbers or booleans become those; anything else is a string.
fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>, errors: &mut Vec<String>) {
    let mut vars: Vec<(String, String)> = env.into_iter().collect();
    // DROPOPS_DATABASE_URL wins over DATABASE_URL: apply the generic one first.
    vars.sort_by_key(|(k, _)| k != "DATABASE_URL");
    for (name, raw) in vars {
        let path = if name == "DATABASE_URL" {
            "database_url".to_owned()
        } else if let Some(rest) = name.strip_prefix("DROPOPS_") {
            if rest == "CONFIG" || rest.is_empty() {
                continue;
            }
            rest.to_ascii_lowercase()
        } else {
            continue;
        };
        let parts: Vec<&str> = path.split("__").collect();
        if let Err(problem) = insert_path(table, &parts, typed_env_value(&raw)) {
            errors.push(format!("{name}: {problem}"));
        }
    }
}

fn insert_path(table: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), String> {
    match parts {
        [] => Ok(()),
        [leaf] => {
            table.insert((*leaf).to_owned(), value);
            Ok(())
        }
        [section, rest @ ..] => {
            match table.entry((*section).to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
                toml::Value::Table(inner) => insert_path(inner, rest, value),
                _ => Err(format!("{section} is not a section")),
            }
        }
    }
}

fn typed_env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if raw.contains('.') {
        if let Ok(f) = raw.parse::<f64>() {
            return toml::Value::Float(f);
        }
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn nothing_configured_means_demo_on_loopback_with_drops_identifiers() {
        let c = Config::demo();
        assert_eq!(c.mode, Mode::Demo);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.drop.rds_instance.as_deref(), Some("drop-db"));
        assert!(c.database.url.is_none());
    }

    #[test]
    fn production_lists_every_missing_setting_at_once() {
        let err =
            Config::load(None, env(&[("DROPOPS_MODE", "production"), ("DROPOPS_BIND", "0.0.0.0:8080")])).unwrap_err();
        let text = err.to_string();
        for key in [
            "database_url",
            "oidc.issuer_url",
            "oidc.client_id",
            "oidc.client_secret",
            "aws.region",
            "aws.account_id",
            "drop.rds_instance",
            "public_url",
        ] {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
        assert!(err.0.len() >= 10, "{text}");
    }

    #[test]
    fn production_refuses_an_account_id_that_is_not_one() {
        let err = Config::load(None, env(&[("DROPOPS_MODE", "production"), ("DROPOPS_AWS__ACCOUNT_ID", "drop-prod")]))
            .unwrap_err();
        assert!(err.to_string().contains("aws.account_id: an AWS account id is 12 digits"), "{err}");
    }

    #[test]
    fn demo_mode_refuses_a_public_bind() {
        let err = Config::load(None, env(&[("DROPOPS_BIND", "0.0.0.0:8080")])).unwrap_err();
        assert!(err.to_string().contains("loopback"));
    }

    #[test]
    fn environment_overrides_the_file_and_types_numbers() {
        let c = Config::load(
            None,
            env(&[
                ("DROPOPS_REQUEST_TIMEOUT_SECS", "12"),
                ("DATABASE_URL", "postgres://a/b"),
                ("DROPOPS_OIDC__GROUPS_CLAIM", "roles"),
            ]),
        )
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(12));
        assert_eq!(c.database.url.as_ref().map(Secret::expose), Some("postgres://a/b"));
        assert_eq!(c.oidc.groups_claim, "roles");
    }

    #[test]
    fn unknown_and_mistyped_settings_are_all_reported() {
        let err = Config::load(
            None,
            env(&[
                ("DROPOPS_COLOUR", "blue"),
                ("DROPOPS_REQUEST_TIMEOUT_SECS", "soon"),
                ("DROPOPS_OIDC__ROLES__OPS", "wizard"),
            ]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("colour: unknown setting"), "{text}");
        assert!(text.contains("request_timeout_secs"), "{text}");
        assert!(text.contains("oidc.roles"), "{text}");
    }

    #[test]
    fn secrets_are_redacted_everywhere_they_could_be_printed() {
        let c = Config::load(
            None,
            env(&[("DATABASE_URL", "postgres://u:hunter2@db/x"), ("DROPOPS_OIDC__CLIENT_SECRET", "s3cr3t-value")]),
        )
        .unwrap();
        for shown in [format!("{c:?}"), c.redacted_toml()] {
            assert!(!shown.contains("hunter2") && !shown.contains("s3cr3t-value"), "{shown}");
            assert!(shown.contains("[redacted]"));
        }
    }

    #[test]
    fn the_example_configuration_is_complete_for_production() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/drop.example.toml");
        let c = Config::load(
            Some(&path),
            env(&[
                ("DATABASE_URL", "postgres://dropops@db/dropapp"),
                ("DROPOPS_OIDC__CLIENT_SECRET", "x"),
                ("DROPOPS_AUDIT__FINGERPRINT_KEY", "0123456789abcdef0123456789abcdef"),
                ("DROPOPS_METRICS_TOKEN", "metrics-0123456789abcdef0123456789"),
            ]),
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Production);
        assert_eq!(c.trusted_proxy_hops, 1, "App Runner's front end appends one X-Forwarded-For hop");
        assert_eq!(c.drop.jwt_secret_id.as_deref(), Some("drop/production/jwt-secret"));
        assert!(c.is_https());
    }

    #[test]
    fn durations_print_under_the_keys_they_are_set_with() {
        let config =
            Config::load(None, env(&[("DROPOPS_RUNS__POLL_INTERVAL_MS", "250"), ("DROPOPS_RUNS__CI_TOKEN", "t0ken")]))
                .unwrap();
        let printed = config.redacted_toml();
        for line in [
            "request_timeout_secs = 30",
            "outside_readings_secs = 5",
            "idle_timeout_secs = 1800",
            "outcome_timeout_secs = 900",
            "poll_interval_ms = 250",
            "lease_secs = 60",
        ] {
            assert!(printed.contains(line), "{line} in:\n{printed}");
        }
        assert!(printed.contains("ci_token = \"[redacted]\"") && !printed.contains("t0ken"));
    }
}

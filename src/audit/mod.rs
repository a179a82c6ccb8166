//! The audit core. Nothing changes through the console without passing through here first:
//! a mutating operation needs an [`AuditToken`], and only [`intent`] can make one — after the
//! intent row is written. The outcome is appended after the action. The database stamps the
//! time, chains every row to the one before (sha256) and refuses UPDATE, DELETE and TRUNCATE.
//!
//! Secret values never enter the log: [`fingerprint`] gives an HMAC that proves which value
//! was set without revealing it.

pub mod anchor;
mod db;
pub use db::{AuditLine, operations_between};
mod pages;
mod reason;
mod resource;
pub mod verify;

use std::net::SocketAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::auth::CurrentUser;
use crate::config::{Config, Role};
use crate::error::AppError;

use db::NewRow;
pub use db::{AuditEntry, AuditFilter, Verification};
pub use pages::{csv_safe, routes};
pub use reason::Reason;
pub use resource::Resource;
pub use verify::Scope;

/// The audit log keeps two hash chains. Casework (alerts, STRs, people, and what compliance
/// staff search for in the log) is chained apart from operations, with its own gap-free
/// numbers and ids, so a role that may not see casework reads a whole chain in which nothing
/// is missing: no gap, count or verification result tells it when casework happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    Operations,
    Casework,
}

/// Casework ids start here; operations ids stay below (see the casework chain migration).
const CASEWORK_FIRST_ID: i64 = 1_000_000_000_000_000;

impl Chain {
    pub const ALL: [Chain; 2] = [Chain::Operations, Chain::Casework];

    /// The chain an id belongs to.
    pub fn of_id(id: i64) -> Self {
        if id >= CASEWORK_FIRST_ID { Self::Casework } else { Self::Operations }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operations => "operations",
            Self::Casework => "casework",
        }
    }

    /// Where the chain's pages live.
    pub fn base(self) -> &'static str {
        match self {
            Self::Operations => "/audit",
            Self::Casework => "/audit/casework",
        }
    }

    /// The ids of the chain's rows, `[first, end)`: one primary-key range.
    pub fn ids(self) -> (i64, i64) {
        match self {
            Self::Operations => (1, CASEWORK_FIRST_ID),
            Self::Casework => (CASEWORK_FIRST_ID, i64::MAX),
        }
    }
}

/// Who acts. Staff are identified by issuer + subject; the name and email are for reading.
#[derive(Clone, Debug)]
pub struct Actor {
    pub name: String,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub session_fingerprint: Option<String>,
}

impl Actor {
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            issuer: None,
            subject: None,
            email: None,
            roles: vec![],
            session_fingerprint: None,
        }
    }

    pub fn system() -> Self {
        Self { name: "system".into(), ..Self::anonymous() }
    }

    /// Someone at the command line of a console machine (`dropops audit verify`).
    pub fn command_line() -> Self {
        let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self { name: format!("command line ({who})"), ..Self::anonymous() }
    }

    pub fn staff(user: &CurrentUser) -> Self {
        Self {
            name: user.name.clone(),
            issuer: Some(user.issuer.clone()),
            subject: Some(user.subject.clone()),
            email: user.email.clone(),
            roles: user.roles.clone(),
            session_fingerprint: Some(session_fingerprint(&user.session_id.to_string())),
        }
    }

    fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.as_str().to_owned()).collect()
    }
}

/// Where a request came from, for the audit row.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    pub fn from_parts(parts: &Parts) -> Self {
        Self::new(&parts.headers, &parts.extensions)
    }

    pub fn new(headers: &axum::http::HeaderMap, extensions: &axum::http::Extensions) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Both set by the console itself (web::layers): never what the client claims.
        let client_ip = extensions.get::<ClientAddress>().map(|a| a.0.clone());
        let request_id = extensions.get::<crate::web::RequestId>().map(|r| r.0.clone());
        Self { request_id, client_ip, user_agent: header("user-agent").map(|ua| ua.chars().take(300).collect()) }
    }
}

/// The client's address as the trusted proxies saw it (or the socket's peer without any).
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

impl ClientAddress {
    /// The address `hops` trusted proxies vouch for: the `hops`-th `X-Forwarded-For` entry
    /// from the right. With no proxies, or fewer entries than proxies, the socket's peer.
    pub fn of(headers: &axum::http::HeaderMap, peer: Option<SocketAddr>, hops: usize) -> Option<Self> {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let vouched = hops.checked_sub(1).and_then(|i| forwarded.len().checked_sub(i + 1)).map(|at| forwarded[at]);
        match vouched.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
            Some(ip) => Some(Self(ip.to_string())),
            None => peer.map(|p| Self(p.ip().to_string())),
        }
    }
}

/// Actor and request: everything an audit row needs besides the action.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub actor: Actor,
    pub meta: RequestMeta,
}

impl<S: Send + Sync> FromRequestParts<S> for AuditContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let actor = parts.extensions.get::<CurrentUser>().map_or_else(Actor::anonymous, Actor::staff);
        Ok(Self { actor, meta: RequestMeta::from_parts(parts) })
    }
}

/// What is about to be done.
#[derive(Clone, Debug)]
pub struct Intent {
    pub action: &'static str,
    pub resource_type: Resource,
    pub resource_id: String,
    pub reason: Option<Reason>,
    pub details: Value,
}

/// Something that happened and needs no outcome: a sign-in, a denial, a view of personal data.
pub type Event = Intent;

/// Proof that an intent is in the audit log. It cannot be built outside this module, so an
/// operation that takes one cannot run before its intent is written.
#[derive(Debug)]
#[must_use = "an intent needs its outcome"]
pub struct AuditToken {
    intent_id: i64,
}

impl AuditToken {
    pub fn intent_id(&self) -> i64 {
        self.intent_id
    }

    /// A token for a unit test of an adapter (no intent behind it).
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self { intent_id: 0 }
    }
}

/// The actions the operations chain records, for the audit page's action list.
pub const OPERATIONS_ACTIONS: [&str; 59] = [
    "access_denied",
    "apprunner_deploy_image",
    "apprunner_pause",
    "apprunner_resume",
    "apprunner_rollback_image",
    "apprunner_set_scaling",
    "apprunner_start_deployment",
    "audit_chain_full_verification",
    "audit_chain_verification",
    "audit_exported",
    "audit_searched",
    "betterstack_alert_raise",
    "betterstack_alert_resolve",
    "checklist_submitted",
    "db_backend_cancel",
    "db_backend_terminate",
    "db_statements_reset",
    "db_vacuum",
    "fly_machines_update",
    "handoff_acknowledged",
    "handoff_written",
    "incident_declared",
    "incident_joined",
    "incident_report_saved",
    "incident_updated",
    "maintenance_ended",
    "maintenance_planned",
    "maintenance_started",
    "maintenance_step_done",
    "maintenance_window_close",
    "maintenance_window_open",
    "personal_data_viewed",
    "rds_master_password_set",
    "rds_restore_drill_delete",
    "rds_restore_drill_start",
    "rds_restore_drill_verify",
    "rds_snapshot_create",
    "run_cancel_requested",
    "run_finished",
    "run_precheck",
    "run_resumed",
    "run_started",
    "run_verify_health",
    "run_verify_instances",
    "run_wait",
    "secret_rotated",
    "secret_value_staged",
    "serving_role_granted",
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "sim_fault_off",
    "sim_fault_on",
    "staff_disabled",
    "staff_enabled",
    "staff_session_ended",
    "status_page_published",
    "str_four_eyes_refused",
    "user_sessions_revoked",
];

/// The actions the casework chain records (listed only to those who may read it).
pub const CASEWORK_ACTIONS: [&str; 25] = [
    "access_denied",
    "aml_alert_assigned",
    "aml_alert_closed",
    "aml_alert_reopened",
    "audit_exported",
    "audit_searched",
    "break_glass_ended",
    "break_glass_opened",
    "break_glass_reviewed",
    "data_access_request_extended",
    "data_access_request_fulfilled",
    "evidence_pack_created",
    "kyc_check_requested",
    "personal_data_erased",
    "personal_data_exported",
    "personal_data_viewed",
    "retention_purge",
    "str_approved",
    "str_drafted",
    "str_filed",
    "str_four_eyes_refused",
    "str_returned",
    "str_submitted",
    "str_updated",
    "user_sessions_revoked",
];

pub enum Outcome {
    Succeeded,
    /// The error as an operator should read it; never a secret.
    Failed(String),
}

const UNAVAILABLE: &str = "The audit log cannot be written right now, so nothing was done. Try again in a moment.";

/// Write the intent inside the caller's transaction: for database-only actions, whose change
/// and outcome commit (or roll back) together with it.
pub async fn intent(conn: &mut PgConnection, ctx: &AuditContext, intent: Intent) -> Result<AuditToken, AppError> {
    let id = db::insert(conn, ctx, NewRow::of("intent", &intent)).await.map_err(|e| {
        tracing::error!(error = %e, action = intent.action, "audit intent not written; action refused");
        match AppError::from(e) {
            // The chain's head held past the lock timeout by a slow transaction: say so.
            AppError::Unavailable(busy) if busy == crate::error::BUSY => AppError::Unavailable(busy),
            _ => AppError::Unavailable(UNAVAILABLE.into()),
        }
    })?;
    Ok(AuditToken { intent_id: id })
}

/// Write and commit the intent on its own: for actions on the outside world (AWS), which
/// cannot roll back with a database transaction.
pub async fn intent_committed(pool: &PgPool, ctx: &AuditContext, what: Intent) -> Result<AuditToken, AppError> {
    let mut tx = pool.begin().await.map_err(|_| AppError::Unavailable(UNAVAILABLE.into()))?;
    let token = intent(&mut tx, ctx, what).await?;
    tx.commit().await.map_err(|_| AppError::Unavailable(UNAVAILABLE.into()))?;
    Ok(token)
}

/// The token of an intent written earlier that has no outcome yet: a run step, resumed by this
/// or another replica, ends with the intent its start wrote. `None` when there is nothing open.
pub async fn open_intent(conn: &mut PgConnection, intent_id: Option<i64>) -> Result<Option<AuditToken>, sqlx::Error> {
    let Some(id) = intent_id else { return Ok(None) };
    Ok(db::is_open_intent(conn, id).await?.then_some(AuditToken { intent_id: id }))
}

/// Append the outcome of an intent. Consumes the token: one outcome per action.
pub async fn outcome(
    conn: &mut PgConnection,
    ctx: &AuditContext,
    token: AuditToken,
    outcome: Outcome,
) -> Result<(), AppError> {
    let (result, error) = match &outcome {
        Outcome::Succeeded => ("succeeded", None),
        Outcome::Failed(e) => ("failed", Some(e.chars().take(2000).collect::<String>())),
    };
    let of = db::intent_summary(&mut *conn, token.intent_id).await?;
    let row = NewRow {
        kind: "outcome",
        intent_id: Some(token.intent_id),
        action: &of.action,
        resource_type: &of.resource_type,
        chain: of.chain,
        resource_id: &of.resource_id,
        reason: None,
        details: &Value::Object(Default::default()),
        outcome: Some(result),
        error: error.as_deref(),
    };
    db::insert(conn, ctx, row).await?;
    Ok(())
}

/// A database-only action, audited: intent, change and outcome commit together, or nothing
/// does (an error from `change` rolls the intent back with it).
pub async fn audited<T>(
    pool: &PgPool,
    ctx: &AuditContext,
    what: Intent,
    change: impl AsyncFnOnce(&mut PgConnection, &AuditToken) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let mut tx = pool.begin().await?;
    let token = intent(&mut tx, ctx, what).await?;
    let value = change(&mut tx, &token).await?;
    outcome(&mut tx, ctx, token, Outcome::Succeeded).await?;
    tx.commit().await?;
    Ok(value)
}

/// Record an event (no outcome) in its own transaction.
pub async fn event(pool: &PgPool, ctx: &AuditContext, event: Event) -> Result<(), AppError> {
    let mut conn = pool.acquire().await.map_err(|_| AppError::Unavailable(UNAVAILABLE.into()))?;
    db::insert(&mut conn, ctx, NewRow::of("event", &event)).await.map_err(|e| {
        tracing::error!(error = %e, action = event.action, "audit event not written");
        AppError::Unavailable(UNAVAILABLE.into())
    })?;
    Ok(())
}

/// Record that someone saw a person's data (a page, a list, an export). Fails closed: when
/// the record cannot be written, the caller must not show the data.
pub async fn viewed(
    pool: &PgPool,
    ctx: &AuditContext,
    resource_type: Resource,
    resource_id: String,
    details: Value,
) -> Result<(), AppError> {
    event(pool, ctx, Event { action: "personal_data_viewed", resource_type, resource_id, reason: None, details }).await
}

/// Read a page's personal data while its view is recorded: the record and the read run at
/// once, on their own connections, and the data is handed back only once the record is written
/// — when it cannot be, the caller gets the error and shows nothing (as with [`viewed`]). A list
/// page then waits for the slower of the two, not for both one after the other.
pub async fn viewing<T>(
    pool: &PgPool,
    ctx: &AuditContext,
    resource_type: Resource,
    resource_id: String,
    details: Value,
    read: impl Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    let (seen, data) = tokio::join!(viewed(pool, ctx, resource_type, resource_id, details), read);
    seen?;
    data
}

/// Mark intents that have had no outcome for `timeout` as `unknown`; returns how many.
pub async fn reconcile(pool: &PgPool, timeout: std::time::Duration) -> Result<u64, sqlx::Error> {
    db::mark_unknown_outcomes(pool, timeout).await
}

/// `hmac-sha256:<hex>` of a secret value, keyed by `audit.fingerprint_key`.
pub fn fingerprint(config: &Config, secret_value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(audit_key(config).as_bytes()).expect("HMAC takes a key of any length");
    mac.update(secret_value.as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

/// The key the audit module signs with: `audit.fingerprint_key`, never in the database.
fn audit_key(config: &Config) -> &str {
    const DEMO_KEY: &str = "dropops demo mode fingerprint key (production requires its own)";
    config.audit.fingerprint_key.as_ref().map_or(DEMO_KEY, |k| k.expose())
}

/// A stable, non-reversible tag for a sign-in: links audit rows of one session without
/// putting anything usable as a credential in the log.
pub fn session_fingerprint(session_id: &str) -> String {
    hex::encode(&Sha256::digest(session_id.as_bytes())[..8])
}

/// The reconciler: a background loop in every replica (the SQL is safe to run concurrently).
pub fn spawn_reconciler(pool: PgPool, timeout: std::time::Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            match reconcile(&pool, timeout).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(count = n, "audit intents without outcome marked unknown"),
                Err(e) => tracing::warn!(error = %e, "audit reconciler failed; will retry"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_of_a_run_can_be_found_by_its_action_on_the_audit_page() {
        for kind in crate::runs::plan::StepKind::ALL {
            assert!(OPERATIONS_ACTIONS.contains(&kind.action()), "{} is not in the action list", kind.action());
        }
        assert!(OPERATIONS_ACTIONS.is_sorted(), "the list reads alphabetically");
    }

    #[test]
    fn fingerprints_identify_a_value_without_revealing_it() {
        let config = Config::demo();
        let a = fingerprint(&config, "correct horse battery staple");
        assert_eq!(a, fingerprint(&config, "correct horse battery staple"));
        assert_ne!(a, fingerprint(&config, "correct horse battery stapler"));
        assert!(a.starts_with("hmac-sha256:") && !a.contains("horse"));
        let mut other = Config::demo();
        other.audit.fingerprint_key = Some(crate::config::Secret::new("another key of at least thirty-two chars"));
        assert_ne!(a, fingerprint(&other, "correct horse battery staple"), "the key matters");
    }
}

//! Firefighting the database (runbook §2.3, §5): who is connected and for how long, what has
//! been running too long, who blocks whom — and cancelling or terminating one backend, each
//! behind a confirmation with a reason, audited intent first, and never a backend the console
//! must not touch (its own, a superuser's, PostgreSQL's own processes, a protected role's).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::db::{self, Backend, Powers};
use crate::audit::{self, AuditContext, Intent, Outcome, Reason, Resource};
use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::Fields;
use crate::web::{Area, Shell, render};

/// Idle this long (5 minutes), a connection is one the runbook says may be terminated.
pub const DEFAULT_IDLE_SECS: i64 = 300;
/// Running this long by default, a query is listed as long-running.
pub const DEFAULT_RUNNING_SECS: i64 = 60;

/// The database's backends as the page shows them.
pub struct Backends {
    pub all: Vec<Backend>,
    pub powers: Powers,
    /// The long-running threshold, in seconds.
    pub over: i64,
    /// How long idle counts as too long, in seconds.
    pub idle_secs: i64,
}

/// A threshold in seconds from the query string: a bad one falls back to the default (the
/// page is for reading, not for an error).
pub fn seconds(text: Option<&str>, default: i64) -> i64 {
    text.and_then(|t| t.trim().parse::<i64>().ok()).filter(|s| (1..=86_400).contains(s)).unwrap_or(default)
}

/// "5 minutes", "90 s".
pub fn duration_words(secs: i64) -> String {
    if secs % 60 == 0 { format!("{} minutes", secs / 60) } else { format!("{secs} s") }
}

impl Backends {
    pub async fn read(state: &AppState, over: i64, idle_secs: i64) -> Result<Self, AppError> {
        let activity = &state.activity;
        let (all, powers) = tokio::try_join!(activity.backends(), activity.powers())?;
        Ok(Self { all, powers, over, idle_secs })
    }

    /// Client connections by state (active, idle, idle in transaction…), most first.
    pub fn by_state(&self) -> Vec<db::ConnectionCount> {
        let mut counts: Vec<db::ConnectionCount> = Vec::new();
        for b in self.clients() {
            let state = b.state.clone().unwrap_or_else(|| "unknown".into());
            match counts.iter_mut().find(|c| c.state == state) {
                Some(c) => c.count += 1,
                None => counts.push(db::ConnectionCount { state, count: 1 }),
            }
        }
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.state.cmp(&b.state)));
        counts
    }

    pub fn idle_words(&self) -> String {
        duration_words(self.idle_secs)
    }

    /// Client connections, the list the runbook's "connections by state" means.
    pub fn clients(&self) -> Vec<&Backend> {
        self.all.iter().filter(|b| b.is_client()).collect()
    }

    /// Idle for longer than the threshold (runbook: five minutes; terminate them).
    pub fn idle(&self) -> Vec<&Backend> {
        let before = Utc::now() - Duration::seconds(self.idle_secs);
        self.clients()
            .into_iter()
            .filter(|b| b.state.as_deref() == Some("idle") && b.state_change < Some(before))
            .collect()
    }

    /// Queries running longer than the threshold, longest first.
    pub fn running(&self) -> Vec<&Backend> {
        let before = Utc::now() - Duration::seconds(self.over);
        let mut running: Vec<&Backend> = self
            .clients()
            .into_iter()
            .filter(|b| !b.own && b.state.as_deref() == Some("active") && b.query_start < Some(before))
            .collect();
        running.sort_by_key(|b| b.query_start);
        running
    }

    /// The root blockers: backends others wait for that wait for nobody, each with the
    /// backends waiting on it (directly or behind another waiter).
    pub fn blocking(&self) -> Vec<(&Backend, Vec<&Backend>)> {
        let blocks = |pid: i32| self.all.iter().any(|w| w.blocked_by.contains(&pid));
        self.all
            .iter()
            .filter(|b| b.blocked_by.is_empty() && blocks(b.pid))
            .map(|root| {
                let mut waiting: Vec<&Backend> = Vec::new();
                let mut frontier = vec![root.pid];
                while let Some(pid) = frontier.pop() {
                    for w in self.all.iter().filter(|w| w.blocked_by.contains(&pid)) {
                        if !waiting.iter().any(|seen| seen.pid == w.pid) {
                            waiting.push(w);
                            frontier.push(w.pid);
                        }
                    }
                }
                (root, waiting)
            })
            .collect()
    }

    /// Why the page shows less than everything, if it does.
    pub fn unknown_because(&self) -> Option<&'static str> {
        (!self.powers.read_all_stats).then_some(
            "other roles' queries and states are unknown, because the console's role is not a member of pg_read_all_stats",
        )
    }
}

/// The database's upkeep: its biggest tables, replication and WAL, its slowest statements.
pub struct Upkeep {
    pub tables: Vec<db::TableStat>,
    pub recovery: db::Recovery,
    pub replicas: Vec<db::Replica>,
    /// The WAL directory's size, or why it is unknown.
    pub wal: Result<String, String>,
    pub statements: Result<Vec<db::Statement>, String>,
    pub order: db::StatementOrder,
    /// Vacuums and analyzes running now, autovacuum's too.
    pub vacuums: Vec<crate::runs::vacuum::VacuumProgress>,
}

impl Upkeep {
    /// The page's address with the statements ranked by `order` and the thresholds kept.
    pub fn ranked_href(&self, backends: &Backends, order: &db::StatementOrder) -> String {
        format!("/database?over={}&idle={}&by={}#statements", backends.over, backends.idle_secs, order.as_str())
    }

    pub async fn read(state: &AppState, powers: &Powers, order: db::StatementOrder) -> Result<Self, AppError> {
        let pool = &state.pool;
        let (tables, recovery, replicas, statements, vacuums) = tokio::try_join!(
            db::biggest_tables(pool),
            db::recovery(pool),
            db::replicas(pool),
            db::top_statements(pool, order),
            crate::runs::vacuum::in_progress(pool, None)
        )?;
        let wal = if powers.monitor {
            db::wal_bytes(pool).await?.map(db::bytes).ok_or_else(|| "the WAL directory is empty".to_owned())
        } else {
            Err("unknown, because the console's role is not a member of pg_monitor".into())
        };
        Ok(Self { tables, recovery, replicas, wal, statements, order, vacuums })
    }

    pub fn lag_words(secs: &Option<f64>) -> String {
        match *secs {
            None => "unknown".into(),
            Some(s) if s < 1.0 => "under a second".into(),
            Some(s) => format!("{s:.0} s"),
        }
    }
}

impl db::Statement {
    pub fn short(&self) -> String {
        one_line(&self.query)
    }
}

/// A query on one line, cut for a table cell.
fn one_line(query: &str) -> String {
    let line: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// A backend's start as a link or form carries it (microseconds since the epoch).
fn start_of(text: &str) -> Option<DateTime<Utc>> {
    text.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros)
}

/// What PostgreSQL shows for another role's query without pg_read_all_stats.
const HIDDEN: &str = "<insufficient privilege>";

impl Backend {
    pub fn is_client(&self) -> bool {
        self.backend_type == "client backend"
    }

    /// The key of this backend in a link or form: when it started (with its pid), so that a
    /// pid reused by a later connection is never mistaken for it. Unknown without
    /// pg_read_all_stats for another role's backend: then it cannot be signalled from here.
    pub fn key(&self) -> Option<String> {
        self.backend_start.map(|start| start.timestamp_micros().to_string())
    }

    pub fn hidden(&self) -> bool {
        self.query.as_deref() == Some(HIDDEN)
    }

    /// The query, cut for a table cell.
    pub fn query_short(&self) -> String {
        one_line(self.query.as_deref().unwrap_or(""))
    }

    pub fn idle_for(&self) -> Option<String> {
        (self.state.as_deref() == Some("idle")).then(|| ago(self.state_change)).flatten()
    }

    pub fn running_for(&self) -> Option<String> {
        (self.state.as_deref() == Some("active")).then(|| ago(self.query_start)).flatten()
    }

    pub fn transaction_for(&self) -> Option<String> {
        ago(self.xact_start)
    }

    /// Why the console will not signal this backend, if it will not.
    pub fn refusal(&self, protected: &[String]) -> Option<String> {
        // A vacuum the console started is a job, not one of its connections: it may be stopped.
        if self.own_role && self.application == crate::runs::vacuum::APPLICATION && !self.own {
            return None;
        }
        if self.own || self.application == crate::db::APPLICATION_NAME {
            return Some("it is one of the console's own connections".into());
        }
        if !self.is_client() {
            return Some(format!("it is PostgreSQL's own process ({})", self.backend_type));
        }
        if self.superuser {
            return Some("it belongs to a superuser".into());
        }
        match &self.user_name {
            Some(user) if protected.iter().any(|p| p == user) => {
                Some(format!("the role {user} is protected (database_protected_roles)"))
            }
            _ => None,
        }
    }
}

/// How long ago, in the words a run's duration uses.
fn ago(since: Option<DateTime<Utc>>) -> Option<String> {
    Some(crate::runs::duration_text((Utc::now() - since?).num_seconds()))
}

crate::db::text_enum! {
    /// Cancel (the running query) or terminate (the whole connection), as the path names it.
    pub enum Signal {
        Cancel = "cancel",
        Terminate = "terminate",
    }
}

impl Signal {
    fn action(self) -> &'static str {
        match self {
            Signal::Cancel => "db_backend_cancel",
            Signal::Terminate => "db_backend_terminate",
        }
    }

    pub fn is_terminate(self) -> bool {
        self == Signal::Terminate
    }
}

#[derive(Deserialize, Default)]
pub struct Which {
    #[serde(default)]
    start: String,
}

#[derive(Deserialize, Default)]
pub struct SignalForm {
    #[serde(default)]
    start: String,
    #[serde(default)]
    pub reason: String,
    /// "yes": terminate although no cancel was tried first.
    #[serde(default)]
    pub now: String,
}

#[derive(Template)]
#[template(path = "database/signal.html")]
pub struct SignalPage {
    pub shell: Shell,
    pub backend: Backend,
    pub signal: Signal,
    /// For a terminate: whether a cancel of this backend was already tried.
    pub cancel_tried: bool,
    pub refusal: Option<String>,
    pub form: SignalForm,
    pub reason_error: Option<String>,
    pub now_error: Option<String>,
}

/// The backend `pid` that started at `start` (microseconds since the epoch), or why not.
async fn find(state: &AppState, pid: &str, start: &str) -> Result<Backend, AppError> {
    let (Ok(pid), Some(started)) = (pid.parse::<i32>(), start_of(start)) else {
        return Err(AppError::NotFound);
    };
    let backends = state.activity.backends().await?;
    backends.into_iter().find(|b| b.pid == pid && b.backend_start == Some(started)).ok_or_else(|| {
        AppError::Conflict(format!(
            "Backend {pid} has ended (or its pid now belongs to another connection). Nothing was done."
        ))
    })
}

fn resource_id(backend: &Backend) -> String {
    format!("{}@{}", backend.pid, backend.key().unwrap_or_default())
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    backend: Backend,
    signal: Signal,
    form: SignalForm,
) -> Result<SignalPage, AppError> {
    let cancel_tried = signal.is_terminate() && db::cancel_tried(&state.pool, &resource_id(&backend)).await?;
    let heading =
        format!("{} backend {}", if signal.is_terminate() { "Terminate" } else { "Cancel the query of" }, backend.pid);
    Ok(SignalPage {
        shell: Shell::new(state, user, Area::Database, heading),
        refusal: backend.refusal(&state.config.database.protected_roles),
        backend,
        signal,
        cancel_tried,
        form,
        reason_error: None,
        now_error: None,
    })
}

/// `GET /database/backends/{pid}/{cancel|terminate}?start=…`: what will be signalled, and why not.
pub async fn confirm_signal(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((pid, signal)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> Result<Html<String>, AppError> {
    let signal = Signal::parse(&signal).ok_or(AppError::NotFound)?;
    let backend = find(&state, &pid, &which.start).await?;
    let form = SignalForm { start: which.start, ..SignalForm::default() };
    render(&page(&state, &user, backend, signal, form).await?)
}

/// `POST /database/backends/{pid}/{cancel|terminate}`: checked again, audited intent first,
/// signalled only if the same backend still runs, outcome after.
pub async fn send_signal(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Path((pid, signal)): Path<(String, String)>,
    Form(form): Form<SignalForm>,
) -> Result<Response, AppError> {
    let signal = Signal::parse(&signal).ok_or(AppError::NotFound)?;
    let backend = find(&state, &pid, &form.start).await?;
    let started = backend.backend_start.ok_or(AppError::NotFound)?;
    let mut page = page(&state, &user, backend, signal, form).await?;
    if let Some(why) = &page.refusal {
        return Err(AppError::Conflict(format!("The console does not signal this backend: {why}.")));
    }
    let reason = Reason::parse(&page.form.reason, "why (it goes to the audit log)");
    if let Err(e) = &reason {
        page.reason_error = Some(e.clone());
    }
    if signal.is_terminate() && !page.cancel_tried && page.form.now != "yes" {
        page.now_error = Some("Cancel its query first, or tick the box to terminate the connection now.".into());
    }
    let reason = match reason {
        Ok(reason) if page.now_error.is_none() => reason,
        _ => return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response()),
    };
    deliver(&state, &ctx, &page.backend, started, signal, reason).await?;
    Ok(Redirect::to("/database#backends").into_response())
}

/// Signal one backend: the intent committed first (what it was running, why), the signal sent
/// only if `pid` still has `started`, the outcome after. An error says what happened.
async fn deliver(
    state: &AppState,
    ctx: &AuditContext,
    b: &Backend,
    started: DateTime<Utc>,
    signal: Signal,
    reason: Reason,
) -> Result<(), AppError> {
    let query = b.query.as_deref().unwrap_or("");
    let intent = Intent {
        action: signal.action(),
        resource_type: Resource::DatabaseBackend,
        resource_id: resource_id(b),
        reason: Some(reason),
        details: json!({
            "pid": b.pid,
            "backend_start": started.to_rfc3339(),
            "user": b.user_name,
            "application": b.application,
            "state": b.state,
            "query_sha256": hex::encode(Sha256::digest(query.as_bytes())),
            "query": query.chars().take(200).collect::<String>(),
        }),
    };
    let token = audit::intent_committed(&state.pool, ctx, intent).await?;
    let sent = state.activity.signal(&token, b.pid, started, signal.is_terminate()).await;
    let outcome = match &sent {
        Ok(Some(true)) => Outcome::Succeeded,
        Ok(Some(false)) => {
            Outcome::Failed("PostgreSQL did not deliver the signal (the role may lack pg_signal_backend)".into())
        }
        Ok(None) => Outcome::Failed("the backend ended before the signal".into()),
        Err(e) => Outcome::Failed(format!("the signal could not be sent: {e}")),
    };
    audit::outcome(&mut *state.pool.acquire().await?, ctx, token, outcome).await?;
    match sent? {
        Some(true) => Ok(()),
        Some(false) => Err(AppError::Conflict(format!(
            "PostgreSQL did not {} backend {}: the console's role may lack pg_signal_backend.",
            signal.as_str(),
            b.pid
        ))),
        None => Err(AppError::Conflict(format!("Backend {} ended before the signal.", b.pid))),
    }
}

#[derive(Deserialize, Default)]
pub struct IdleQuery {
    #[serde(default)]
    idle: Option<String>,
}

/// What became of one backend of a terminate-all.
pub struct Ended {
    pub pid: i32,
    pub result: String,
}

#[derive(Template)]
#[template(path = "database/idle.html")]
pub struct IdlePage {
    pub shell: Shell,
    pub idle_secs: i64,
    /// Idle backends the console may terminate, and those it will not (with why).
    pub listed: Vec<Backend>,
    pub refused: Vec<(Backend, String)>,
    pub reason: String,
    pub reason_error: Option<String>,
    /// After the terminate: what became of each.
    pub ended: Vec<Ended>,
}

impl IdlePage {
    pub fn idle_words(&self) -> String {
        duration_words(self.idle_secs)
    }
}

/// The confirmation of a terminate-all, from one read of the backends.
fn idle_page(state: &AppState, user: &CurrentUser, backends: &Backends) -> IdlePage {
    let protected = &state.config.database.protected_roles;
    let (mut listed, mut refused) = (Vec::new(), Vec::new());
    for b in backends.idle() {
        let b = b.clone();
        match (b.refusal(protected), b.key()) {
            (Some(why), _) => refused.push((b, why)),
            (None, None) => refused.push((b, "its start is unknown to the console's role".into())),
            (None, Some(_)) => listed.push(b),
        }
    }
    IdlePage {
        shell: Shell::new(state, user, Area::Database, "Terminate idle connections"),
        idle_secs: backends.idle_secs,
        listed,
        refused,
        reason: String::new(),
        reason_error: None,
        ended: vec![],
    }
}

/// `GET /database/backends/idle?idle=SECONDS`: exactly which idle connections would end.
pub async fn confirm_idle(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<IdleQuery>,
) -> Result<Html<String>, AppError> {
    let backends = Backends::read(&state, DEFAULT_RUNNING_SECS, seconds(q.idle.as_deref(), DEFAULT_IDLE_SECS)).await?;
    render(&idle_page(&state, &user, &backends))
}

/// `POST /database/backends/idle/terminate`: each backend the confirmation listed (`pid@start`)
/// that is still that backend, still idle and not refused, terminated one by one, each audited.
pub async fn terminate_idle(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    fields: Fields,
) -> Result<Response, AppError> {
    let idle_secs = seconds(Some(fields.one("idle")), DEFAULT_IDLE_SECS);
    // One read serves the re-shown confirmation and the checks of each chosen backend.
    let backends = Backends::read(&state, DEFAULT_RUNNING_SECS, idle_secs).await?;
    let mut page = idle_page(&state, &user, &backends);
    page.reason = fields.one("reason").to_owned();
    let reason = match Reason::parse(&page.reason, "why (it goes to the audit log)") {
        Ok(reason) => reason,
        Err(e) => {
            page.reason_error = Some(e);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let now = &backends.all;
    let protected = &state.config.database.protected_roles;
    for chosen in fields.all("backend") {
        let Some((pid, start)) = chosen.split_once('@') else { continue };
        let (Ok(pid), Some(started)) = (pid.parse::<i32>(), start_of(start)) else {
            continue;
        };
        let result = match now.iter().find(|b| b.pid == pid && b.backend_start == Some(started)) {
            None => "had ended already".to_owned(),
            Some(b) if b.state.as_deref() != Some("idle") => "is busy again: left alone".to_owned(),
            Some(b) => match b.refusal(protected) {
                Some(why) => format!("not terminated: {why}"),
                None => match deliver(&state, &ctx, b, started, Signal::Terminate, reason.clone()).await {
                    Ok(()) => "terminated".to_owned(),
                    Err(AppError::Conflict(why)) => why,
                    Err(e) => return Err(e),
                },
            },
        };
        page.ended.push(Ended { pid, result });
    }
    page.listed.clear();
    page.refused.clear();
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "database/reset.html")]
pub struct ResetPage {
    pub shell: Shell,
    pub reason: String,
    pub reason_error: Option<String>,
    /// Why it cannot be done, when it cannot.
    pub unavailable: Option<String>,
}

async fn reset_page(state: &AppState, user: &CurrentUser, reason: String) -> Result<ResetPage, AppError> {
    let unavailable = (!db::statements_installed(&state.pool).await?)
        .then(|| "pg_stat_statements is not installed in this database".to_owned());
    Ok(ResetPage {
        shell: Shell::new(state, user, Area::Database, "Reset the statement statistics"),
        reason,
        reason_error: None,
        unavailable,
    })
}

/// `GET /database/statements/reset`: what a reset does, and the button.
pub async fn confirm_reset(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    render(&reset_page(&state, &user, String::new()).await?)
}

#[derive(Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    reason: String,
}

/// `POST /database/statements/reset`: audited intent first, the reset, the outcome after.
pub async fn reset_statements(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    let mut page = reset_page(&state, &user, form.reason).await?;
    if let Some(why) = &page.unavailable {
        return Err(AppError::Conflict(format!("Nothing to reset: {why}.")));
    }
    let reason = match Reason::parse(&page.reason, "why (it goes to the audit log)") {
        Ok(reason) => reason,
        Err(e) => {
            page.reason_error = Some(e);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let intent = Intent {
        action: "db_statements_reset",
        resource_type: Resource::DatabaseStatistics,
        resource_id: "pg_stat_statements".into(),
        reason: Some(reason),
        details: json!({}),
    };
    let token = audit::intent_committed(&state.pool, &ctx, intent).await?;
    let mut conn = state.pool.acquire().await?;
    let reset = db::reset_statements(&mut *conn, &token).await;
    let why = reset.as_ref().err().map(crate::db::postgres_words);
    let outcome = match &why {
        None => Outcome::Succeeded,
        Some(why) => Outcome::Failed(format!("PostgreSQL refused: {why}")),
    };
    audit::outcome(&mut conn, &ctx, token, outcome).await?;
    match why {
        None => Ok(Redirect::to("/database#statements").into_response()),
        Some(why) => Err(AppError::Conflict(format!("The statistics were not reset: PostgreSQL refused ({why})."))),
    }
}

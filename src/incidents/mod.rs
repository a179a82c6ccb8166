//! Incident response (runbook §7): declare an incident with a severity, move it through its
//! statuses to resolved, and let its timeline fill itself from what happened meanwhile (runs,
//! the operations audit trail, health changes) and what people wrote; who to call now, by the
//! escalation matrix; a printable report. Hand-offs and planned maintenance live alongside.
//!
//! Incidents are operations: nothing here reads casework, and what goes to Slack is a typed
//! notice (see [`crate::notify`]), never the incident's free text.

pub mod db;
pub mod escalation;
mod handoff;
pub mod kinds;
mod maintenance;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use self::db::{Entry, Incident, NewIncident};
use self::escalation::CallNow;
use self::kinds::{AlertKind, EntryKind, IncidentStatus, Severity};
use crate::audit::{self, AuditContext, Intent, Resource};
use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::cloud::{ResourceStatus, StatusReport};
use crate::error::AppError;
use crate::notify::{self, Message, Notice, PublicText, StaffName};
use crate::runs::confirm::{self, Impact, Proposal, Proposer, ReasonRule, RunForm, Understand};
use crate::runs::params::EscalationParams;
use crate::runs::{NewRun, Plan, Procedure, RunId, RunParams};
use crate::state::AppState;
use crate::web::forms::Fields;
use crate::web::once::{self, Once};
use crate::web::tabs::Tab;
use crate::web::{PathId, Shell, paging, render};

const PAGE_SIZE: i64 = 25;
/// Longest note, title or report field.
const MAX_TEXT: usize = 5000;
const MAX_TITLE: usize = 200;

pub fn routes() -> Vec<Route> {
    let mut routes = vec![
        Route::get("/incidents", Access::Roles(OPS), list_incidents),
        Route::get("/incidents/new", Access::Roles(ONCALL), new_incident),
        Route::post("/incidents", Access::Roles(ONCALL), declare_incident),
        Route::get("/incidents/{id}", Access::Roles(OPS), show_incident),
        Route::post("/incidents/{id}/update", Access::Roles(ONCALL), update_incident),
        Route::post("/incidents/{id}/join", Access::Roles(ONCALL), join_incident),
        Route::get("/incidents/{id}/report", Access::Roles(OPS), show_report),
        Route::post("/incidents/{id}/report", Access::Roles(ONCALL), save_report),
        Route::post("/incidents/{id}/status-page", Access::Roles(ONCALL), publish_status),
        Route::get("/incidents/contacts", Access::Roles(OPS), show_contacts),
        Route::get("/incidents/messages", Access::Roles(OPS), list_messages),
        Route::get(EscalationTest::PAGE, Access::Roles(ONCALL), confirm::confirmation::<EscalationTest>),
        Route::post("/incidents/runs", Access::Roles(ONCALL), confirm::confirmed::<EscalationTest>),
    ];
    routes.extend(handoff::routes());
    routes.extend(maintenance::routes());
    routes
}

fn may_act(user: &CurrentUser) -> bool {
    ONCALL.iter().any(|r| user.has(*r))
}

/// The message for `field` among a form's errors, shown next to it.
fn error_of(errors: &[(&'static str, String)], field: &str) -> Option<String> {
    errors.iter().find(|(f, _)| *f == field).map(|(_, e)| e.clone())
}

/// A text field, trimmed and bounded; the error names the field.
fn bounded(text: &str, max: usize, what: &str) -> Result<String, String> {
    let text = text.trim();
    if text.chars().count() > max {
        return Err(format!("{what} is too long: at most {max} characters."));
    }
    Ok(text.to_owned())
}

// --- the list ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "incidents/index.html")]
pub struct ListPage {
    pub shell: Shell,
    pub open: Vec<Incident>,
    pub resolved: Vec<Incident>,
    pub next: Option<String>,
    pub paged: bool,
    pub may_act: bool,
}

fn cursor(text: &str) -> Option<(DateTime<Utc>, i64)> {
    paging::parse_time_cursor(text).and_then(|(at, id)| id.parse().ok().map(|id| (at, id)))
}

pub async fn list_incidents(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, AppError> {
    let after = cursor(&q.after);
    let open = if after.is_none() { db::open_incidents(&state.pool).await? } else { vec![] };
    let mut resolved = db::resolved_incidents(&state.pool, after, PAGE_SIZE + 1).await?;
    let next =
        paging::next_page(&mut resolved, PAGE_SIZE).map(|i| paging::time_cursor(i.declared_at, &i.id.to_string()));
    render(&ListPage {
        shell: Shell::new(&state, &user, Tab::Incidents, "Incidents"),
        open,
        resolved,
        next,
        paged: after.is_some(),
        may_act: may_act(&user),
    })
}

// --- declaring -----------------------------------------------------------------------------

#[derive(Default)]
pub struct DeclareForm {
    pub title: String,
    pub severity: String,
    pub alert: String,
    pub payments_down: bool,
    pub note: String,
}

#[derive(Template)]
#[template(path = "incidents/new.html")]
pub struct NewPage {
    pub shell: Shell,
    pub form: DeclareForm,
    pub errors: Vec<(&'static str, String)>,
    pub once: Once,
}

impl NewPage {
    pub fn error(&self, field: &str) -> Option<String> {
        error_of(&self.errors, field)
    }

    pub fn alerts(&self) -> &'static [AlertKind] {
        AlertKind::ALL
    }

    pub fn severities(&self) -> &'static [Severity] {
        Severity::ALL
    }
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    #[serde(default)]
    alert: String,
}

/// `GET /incidents/new`: the form, with the triage table as guidance. `?alert=` preselects an
/// alert and its suggested severity (links from the dashboard and playbook).
pub async fn new_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<NewQuery>,
) -> Result<Html<String>, AppError> {
    let alert = AlertKind::parse(&q.alert);
    let form = DeclareForm {
        alert: alert.map(|a| a.as_str().to_owned()).unwrap_or_default(),
        severity: alert.map(|a| a.suggested().as_str().to_owned()).unwrap_or_default(),
        ..DeclareForm::default()
    };
    render(&NewPage {
        shell: Shell::new(&state, &user, Tab::Incidents, "Declare an incident"),
        form,
        errors: vec![],
        once: Once::new(),
    })
}

/// `POST /incidents`: declare. Audited; the incidents channel is told (severity and number
/// only: the title is free text and stays in the console).
pub async fn declare_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    fields: Fields,
) -> Result<Response, AppError> {
    let once = Once::of(fields.one(once::FIELD));
    if let Some(went_to) = once::already(&state.pool, once, user.staff_id).await? {
        return Ok(Redirect::to(&went_to).into_response());
    }
    let form = DeclareForm {
        title: fields.one("title").trim().to_owned(),
        severity: fields.one("severity").to_owned(),
        alert: fields.one("alert").to_owned(),
        payments_down: fields.one("payments_down") == "on",
        note: fields.one("note").to_owned(),
    };
    let mut errors = vec![];
    if form.title.is_empty() {
        errors.push(("title", "Give the incident a short title: what is wrong, as people see it.".to_owned()));
    } else if form.title.chars().count() > MAX_TITLE {
        errors.push(("title", format!("At most {MAX_TITLE} characters.")));
    }
    let severity = Severity::parse(&form.severity);
    if severity.is_none() {
        errors.push(("severity", "Choose a severity: SEV1, SEV2 or SEV3.".to_owned()));
    }
    let alert = if form.alert.is_empty() { None } else { AlertKind::parse(&form.alert) };
    if !form.alert.is_empty() && alert.is_none() {
        errors.push(("alert", "Choose one of the listed alerts, or none.".to_owned()));
    }
    let note = bounded(&form.note, MAX_TEXT, "The note").unwrap_or_else(|e| {
        errors.push(("note", e));
        String::new()
    });
    let Some(severity) = severity.filter(|_| errors.is_empty()) else {
        let page = NewPage {
            shell: Shell::new(&state, &user, Tab::Incidents, "Declare an incident"),
            form,
            errors,
            once: once.unwrap_or_default(),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let id = db::next_incident_id(&state.pool).await?;
    let new = NewIncident { title: &form.title, severity, alert, payments_down: form.payments_down };
    let intent = Intent {
        action: "incident_declared",
        resource_type: Resource::Incident,
        resource_id: id.to_string(),
        reason: None,
        details: json!({
            "title": form.title,
            "severity": severity,
            "alert": alert,
            "payments_down": form.payments_down,
        }),
    };
    let went_to = format!("/incidents/{id}");
    let declared = audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        once::record(tx, once, user.staff_id, &went_to).await?;
        db::insert_incident(tx, id, &new, user.staff_id, &user.name).await?;
        db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::Declared, &note).await?;
        let notice = Notice::IncidentDeclared { incident: id, severity, by: StaffName::of(&user) };
        notify::queue(tx, &state, &notice).await?;
        Ok(())
    })
    .await;
    match declared {
        Err(e) if once::was_repeat(&e) => {}
        other => other?,
    }
    Ok(Redirect::to(&went_to).into_response())
}

// --- one incident --------------------------------------------------------------------------

/// One moment of an incident's timeline.
pub struct Moment {
    pub at: DateTime<Utc>,
    /// "note", "status", "run", "audit", "health".
    pub source: &'static str,
    pub tone: &'static str,
    pub text: String,
    pub who: Option<String>,
    pub href: Option<String>,
    /// Before the incident was declared: what led up to it.
    pub before: bool,
}

/// How far back the timeline looks before the declaration: the deploy that caused it.
const LOOK_BACK: Duration = Duration::hours(1);
/// Moments of each kind read at most.
const TIMELINE_LIMIT: i64 = 300;

fn entry_moment(incident: &Incident, e: &Entry) -> Moment {
    let (tone, text) = match e.kind {
        EntryKind::Declared if e.body.is_empty() => ("red", format!("Declared {}", incident_summary(incident))),
        EntryKind::Declared => ("red", format!("Declared {}: {}", incident_summary(incident), e.body)),
        EntryKind::Status => {
            let status = IncidentStatus::parse(&e.body).map_or_else(|| e.body.clone(), |s| s.label().to_owned());
            ("blue", format!("Status: {status}"))
        }
        EntryKind::Severity => {
            let severity = Severity::parse(&e.body).map_or_else(|| e.body.clone(), |s| s.label().to_owned());
            ("amber", format!("Severity: {severity}"))
        }
        EntryKind::Note => ("grey", e.body.clone()),
        EntryKind::Joined => ("grey", "Joined the response".to_owned()),
        EntryKind::Report => ("grey", "Updated the report".to_owned()),
        EntryKind::StatusPage => ("blue", format!("Published {}", e.body)),
    };
    Moment {
        at: e.at,
        source: if e.kind == EntryKind::Note { "note" } else { "status" },
        tone,
        text,
        who: Some(e.staff_name.clone()),
        href: None,
        before: false,
    }
}

fn incident_summary(i: &Incident) -> String {
    let mut s = i.severity.label().to_owned();
    if let Some(alert) = i.alert {
        s.push_str(&format!(" ({})", alert.label()));
    }
    if i.payments_down {
        s.push_str(", payment system down");
    }
    s
}

/// The timeline: what people wrote, the runs going on, the operations audit trail and health
/// changes from an hour before the declaration until it was resolved.
async fn timeline(state: &AppState, incident: &Incident, entries: &[Entry]) -> Result<Vec<Moment>, AppError> {
    let from = incident.declared_at - LOOK_BACK;
    let to = incident.resolved_at.unwrap_or_else(Utc::now) + Duration::minutes(1);
    let (runs, audit_lines, health) = tokio::try_join!(
        crate::runs::overlapping(&state.pool, from, to, TIMELINE_LIMIT),
        audit::operations_between(&state.pool, from, to, TIMELINE_LIMIT),
        crate::health::changes_between(&state.pool, from, to, TIMELINE_LIMIT),
    )?;
    let before = |at: DateTime<Utc>| at < incident.declared_at;
    let mut moments: Vec<Moment> = entries.iter().map(|e| entry_moment(incident, e)).collect();
    for run in &runs {
        let href = Some(format!("/runs/{}", run.id));
        moments.push(Moment {
            at: run.created_at,
            source: "run",
            tone: "blue",
            text: format!("{} started ({})", crate::runs::capitalise(run.label()), run.subject()),
            who: Some(run.started_by_name.clone()),
            href: href.clone(),
            before: before(run.created_at),
        });
        if let Some(ended) = run.finished_at.filter(|at| *at >= from && *at < to) {
            moments.push(Moment {
                at: ended,
                source: "run",
                tone: run.status.tone(),
                text: format!(
                    "{} {}{}",
                    crate::runs::capitalise(run.label()),
                    run.status.label().to_lowercase(),
                    run.outcome.as_ref().map(|o| format!(": {o}")).unwrap_or_default()
                ),
                who: None,
                href,
                before: before(ended),
            });
        }
    }
    // Runs speak for their steps; the incident's own rows are its entries.
    for line in audit_lines.iter().filter(|l| !matches!(l.resource_type.as_str(), "run" | "incident")) {
        let tone = match line.result.as_deref() {
            Some("failed") => "red",
            Some("unknown") => "amber",
            _ => "grey",
        };
        moments.push(Moment {
            at: line.created_at,
            source: "audit",
            tone,
            text: format!(
                "{} on {} {}",
                line.action.replace('_', " "),
                line.resource_type.replace('_', " "),
                line.resource_id
            ),
            who: Some(line.actor.clone()),
            href: Some(format!("/audit/{}", line.id)),
            before: before(line.created_at),
        });
    }
    for change in &health {
        moments.push(Moment {
            at: change.at,
            source: "health",
            tone: match change.tone.as_str() {
                "green" => "green",
                "amber" => "amber",
                "red" => "red",
                _ => "grey",
            },
            text: format!("{}: {}", change.title, change.value),
            who: None,
            href: Some("/health".into()),
            before: before(change.at),
        });
    }
    moments.sort_by_key(|m| m.at);
    Ok(moments)
}

/// Everyone who took part: who declared, joined, wrote or changed it, and who ran something
/// during it. In order of first appearance.
fn people(incident: &Incident, entries: &[Entry], moments: &[Moment]) -> Vec<String> {
    let mut names = vec![incident.declared_by_name.clone()];
    let from_entries = entries.iter().map(|e| e.staff_name.clone());
    let from_runs = moments.iter().filter(|m| m.source == "run" && !m.before).filter_map(|m| m.who.clone());
    for name in from_entries.chain(from_runs) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[derive(Default)]
pub struct UpdateForm {
    pub status: String,
    pub severity: String,
    pub note: String,
}

/// What the status page form sends.
#[derive(Default)]
pub struct PublicForm {
    pub title: String,
    pub message: String,
    pub status: String,
}

#[derive(Default)]
pub struct ReportForm {
    pub impact: String,
    pub cause: String,
    pub follow_ups: String,
}

#[derive(Template)]
#[template(path = "incidents/show.html")]
pub struct IncidentPage {
    pub shell: Shell,
    pub incident: Incident,
    pub timeline: Vec<Moment>,
    pub people: Vec<String>,
    pub call: CallNow,
    pub messages: Vec<Message>,
    pub may_act: bool,
    pub joined: bool,
    pub update: UpdateForm,
    pub report: ReportForm,
    pub public: PublicForm,
    /// A status page is there to publish to.
    pub status_page: bool,
    pub errors: Vec<(&'static str, String)>,
    pub now: DateTime<Utc>,
}

impl IncidentPage {
    pub fn error(&self, field: &str) -> Option<String> {
        error_of(&self.errors, field)
    }

    pub fn statuses(&self) -> &'static [IncidentStatus] {
        IncidentStatus::ALL
    }

    pub fn severities(&self) -> &'static [Severity] {
        Severity::ALL
    }

    pub fn public_statuses(&self) -> [(ResourceStatus, &'static str); 3] {
        [
            (ResourceStatus::Downtime, "Down"),
            (ResourceStatus::Degraded, "Degraded"),
            (ResourceStatus::Resolved, "Resolved"),
        ]
    }

    /// "1 h 20 min" since it was declared (until resolved).
    pub fn age(&self) -> String {
        let end = self.incident.resolved_at.unwrap_or(self.now);
        crate::runs::duration_text((end - self.incident.declared_at).num_seconds())
    }
}

async fn incident_page(state: &AppState, user: &CurrentUser, incident: Incident) -> Result<IncidentPage, AppError> {
    let entries = db::entries(&state.pool, incident.id).await?;
    let moments = timeline(state, &incident, &entries).await?;
    let now = Utc::now();
    let call = escalation::call_now(
        incident.severity,
        incident.payments_down,
        incident.status,
        incident.declared_at,
        now,
        &state.config.oncall.contacts,
    );
    Ok(IncidentPage {
        shell: Shell::new(state, user, Tab::Incidents, format!("Incident #{}", incident.id)),
        people: people(&incident, &entries, &moments),
        joined: incident.declared_by == user.staff_id || entries.iter().any(|e| e.staff_id == user.staff_id),
        messages: notify::db::of_source(&state.pool, &notify::incident_source(incident.id)).await?,
        update: UpdateForm {
            status: incident.status.as_str().to_owned(),
            severity: incident.severity.as_str().to_owned(),
            note: String::new(),
        },
        report: ReportForm {
            impact: incident.impact.clone(),
            cause: incident.cause.clone(),
            follow_ups: incident.follow_ups.clone(),
        },
        public: PublicForm {
            status: if incident.status == IncidentStatus::Resolved { "resolved" } else { "degraded" }.into(),
            ..PublicForm::default()
        },
        status_page: status_page(state).is_some(),
        timeline: moments,
        call,
        may_act: may_act(user),
        errors: vec![],
        now,
        incident,
    })
}

pub async fn show_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId<i64>,
) -> Result<Html<String>, AppError> {
    let incident = db::incident(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    render(&incident_page(&state, &user, incident).await?)
}

/// `POST /incidents/{id}/update`: a new status, a new severity, a note — any of them, at once.
pub async fn update_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
    fields: Fields,
) -> Result<Response, AppError> {
    let incident = db::incident(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let form = UpdateForm {
        status: fields.one("status").to_owned(),
        severity: fields.one("severity").to_owned(),
        note: fields.one("note").to_owned(),
    };
    let mut errors = vec![];
    let status = IncidentStatus::parse(&form.status);
    if status.is_none() {
        errors.push(("status", "Choose a status.".to_owned()));
    }
    let severity = Severity::parse(&form.severity);
    if severity.is_none() {
        errors.push(("severity", "Choose a severity.".to_owned()));
    }
    let note = bounded(&form.note, MAX_TEXT, "The note").unwrap_or_else(|e| {
        errors.push(("note", e));
        String::new()
    });
    let status = status.unwrap_or(incident.status);
    let severity = severity.unwrap_or(incident.severity);
    let (status_changed, severity_changed) = (status != incident.status, severity != incident.severity);
    if errors.is_empty() && !status_changed && !severity_changed && note.is_empty() {
        errors.push(("note", "Nothing changed: choose a new status or severity, or write a note.".to_owned()));
    }
    if errors.is_empty() && status_changed && status == IncidentStatus::Resolved && note.is_empty() {
        errors.push(("note", "Say how it was resolved: it goes on the timeline and into the report.".to_owned()));
    }
    if !errors.is_empty() {
        let mut page = incident_page(&state, &user, incident).await?;
        page.update = form;
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let intent = Intent {
        action: "incident_updated",
        resource_type: Resource::Incident,
        resource_id: id.to_string(),
        reason: None,
        details: json!({
            "status": {"from": incident.status, "to": status},
            "severity": {"from": incident.severity, "to": severity},
            "note_chars": note.chars().count(),
        }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        // Two people updating at once: the row lock orders them, the later one wins.
        db::incident_for_update(tx, id).await?.ok_or(AppError::NotFound)?;
        db::set_status(tx, id, status, severity).await?;
        let mut changed = None;
        if severity_changed {
            changed =
                Some(db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::Severity, severity.as_str()).await?);
        }
        if status_changed {
            changed = Some(db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::Status, status.as_str()).await?);
        }
        if !note.is_empty() {
            db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::Note, &note).await?;
        }
        if let Some(entry) = changed {
            let notice = Notice::IncidentChanged { incident: id, entry, severity, status, by: StaffName::of(&user) };
            notify::queue(tx, &state, &notice).await?;
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/incidents/{id}#timeline")).into_response())
}

/// `POST /incidents/{id}/join`: "I am on it" — the people list shows who is.
pub async fn join_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
) -> Result<Response, AppError> {
    db::incident(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let intent = Intent {
        action: "incident_joined",
        resource_type: Resource::Incident,
        resource_id: id.to_string(),
        reason: None,
        details: json!({}),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::Joined, "").await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}

/// `POST /incidents/{id}/report`: the report's impact, cause and follow-ups.
pub async fn save_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
    fields: Fields,
) -> Result<Response, AppError> {
    let incident = db::incident(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let form = ReportForm {
        impact: fields.one("impact").to_owned(),
        cause: fields.one("cause").to_owned(),
        follow_ups: fields.one("follow_ups").to_owned(),
    };
    let mut errors = vec![];
    let mut field = |name: &'static str, text: &str, what: &str| {
        bounded(text, MAX_TEXT, what).unwrap_or_else(|e| {
            errors.push((name, e));
            String::new()
        })
    };
    let impact = field("impact", &form.impact, "Impact");
    let cause = field("cause", &form.cause, "Cause");
    let follow_ups = field("follow_ups", &form.follow_ups, "Follow-ups");
    if !errors.is_empty() {
        let mut page = incident_page(&state, &user, incident).await?;
        page.report = form;
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let intent = Intent {
        action: "incident_report_saved",
        resource_type: Resource::Incident,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "impact_chars": impact.len(), "cause_chars": cause.len(), "follow_ups_chars": follow_ups.len() }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        db::set_report(tx, id, &impact, &cause, &follow_ups).await?;
        db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::Report, "").await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/incidents/{id}#report")).into_response())
}

/// The status page incidents and maintenance publish to and its resources standing for Drop:
/// the configured one, or in demo mode the simulator's.
/// The status page to post to, or the refusal that says none is configured.
pub(crate) fn configured_status_page(state: &AppState) -> Result<(String, Vec<String>), AppError> {
    status_page(state)
        .ok_or_else(|| AppError::Conflict("No status page is configured (betterstack.status_page_id).".into()))
}

pub(crate) fn status_page(state: &AppState) -> Option<(String, Vec<String>)> {
    state.cloud.monitoring.as_ref()?;
    let b = &state.config.betterstack;
    match &b.status_page_id {
        Some(page) => Some((page.clone(), b.status_page_resources.clone())),
        None if state.cloud.is_simulated() && b.token.is_none() => {
            Some((crate::cloud::sim::STATUS_PAGE.into(), vec![crate::cloud::sim::STATUS_RESOURCE.into()]))
        }
        None => None,
    }
}

/// A post to the status page as an audited outside call: the intent is committed before
/// BetterStack is called; the outcome and what a success changes (`record`, given the
/// report's id) are written in one transaction after. BetterStack's refusal is the inner error.
pub(crate) async fn published_audited(
    state: &AppState,
    ctx: &AuditContext,
    intent: Intent,
    call: impl Future<Output = crate::cloud::CloudResult<String>>,
    record: impl AsyncFnOnce(&mut sqlx::PgConnection, &str) -> Result<(), AppError>,
) -> Result<crate::cloud::CloudResult<String>, AppError> {
    let token = audit::intent_committed(&state.pool, ctx, intent).await?;
    let published = call.await;
    let mut tx = state.pool.begin().await?;
    match &published {
        Ok(report) => {
            audit::outcome(&mut tx, ctx, token, audit::Outcome::Succeeded).await?;
            record(&mut tx, report).await?;
        }
        Err(e) => audit::outcome(&mut tx, ctx, token, audit::Outcome::Failed(e.to_string())).await?,
    }
    tx.commit().await?;
    Ok(published)
}

/// `POST /incidents/{id}/status-page`: tell the public. The first post opens a report on
/// BetterStack's status page; later ones add updates to it. The text is checked for what
/// must never be public (see [`PublicText`]); the call is audited, its failure shown.
pub async fn publish_status(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
    fields: Fields,
) -> Result<Response, AppError> {
    let incident = db::incident(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let (page, resources) = configured_status_page(&state)?;
    let form = PublicForm {
        title: fields.one("title").to_owned(),
        message: fields.one("message").to_owned(),
        status: fields.one("public_status").to_owned(),
    };
    let mut errors = vec![];
    let first = incident.status_report_id.is_none();
    let title = if first {
        PublicText::parse(&form.title, MAX_TITLE).map_err(|e| errors.push(("public_title", e))).ok()
    } else {
        None
    };
    let message = PublicText::parse(&form.message, 2000).map_err(|e| errors.push(("public_message", e))).ok();
    let status = ResourceStatus::parse(&form.status).filter(|s| *s != ResourceStatus::Maintenance);
    if status.is_none() {
        errors.push(("public_status", "Choose how Drop shows: down, degraded or resolved.".into()));
    }
    let (Some(message), Some(status), true) = (message, status, errors.is_empty()) else {
        let mut page = incident_page(&state, &user, incident).await?;
        page.public = form;
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    // Opening a report needs its title (checked above); later posts update the report.
    let post = match (incident.status_report_id.clone(), title) {
        (Some(report), _) => Err(report),
        (None, Some(title)) => Ok(StatusReport { title, message: message.clone(), status, maintenance: None }),
        (None, None) => return Err(AppError::Validation("Give the status page report a title.".into())),
    };
    let monitoring =
        state.cloud.monitoring.clone().ok_or_else(|| AppError::Conflict("BetterStack is not connected.".into()))?;
    let intent = Intent {
        action: "status_page_published",
        resource_type: Resource::Incident,
        resource_id: id.to_string(),
        reason: None,
        details: json!({
            "status_page": page,
            "report": incident.status_report_id,
            "status": status,
            "title": post.as_ref().ok().map(|r| r.title.as_str()),
            "message": message.as_str(),
        }),
    };
    let call = async {
        match &post {
            Err(report) => {
                monitoring.update_report(&page, report, &resources, &message, status).await.map(|()| report.clone())
            }
            Ok(report) => monitoring.publish_report(&page, &resources, report).await,
        }
    };
    let published = published_audited(&state, &ctx, intent, call, async |tx, report| {
        db::set_status_report(tx, id, report).await?;
        let said = format!("{} on the status page: {}", status.as_str(), message.as_str());
        db::add_entry(tx, id, user.staff_id, &user.name, EntryKind::StatusPage, &said).await?;
        Ok(())
    })
    .await?;
    match published {
        Ok(_) => Ok(Redirect::to(&format!("/incidents/{id}#public")).into_response()),
        Err(e) => {
            let mut page = incident_page(&state, &user, incident).await?;
            page.public = form;
            page.errors = vec![("public_message", format!("Not published: {e}. Nothing was posted; try again."))];
            Ok((StatusCode::BAD_GATEWAY, render(&page)?).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "incidents/report.html")]
pub struct ReportPage {
    pub shell: Shell,
    pub incident: Incident,
    pub timeline: Vec<Moment>,
    pub people: Vec<String>,
    pub duration: String,
    pub printed_at: DateTime<Utc>,
}

/// `GET /incidents/{id}/report`: the post-incident report, to print or save as PDF.
pub async fn show_report(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId<i64>,
) -> Result<Html<String>, AppError> {
    let incident = db::incident(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let entries = db::entries(&state.pool, id).await?;
    let moments = timeline(&state, &incident, &entries).await?;
    let now = Utc::now();
    render(&ReportPage {
        shell: Shell::new(&state, &user, Tab::Incidents, format!("Incident #{id} report")),
        people: people(&incident, &entries, &moments),
        duration: crate::runs::duration_text(
            (incident.resolved_at.unwrap_or(now) - incident.declared_at).num_seconds(),
        ),
        timeline: moments,
        printed_at: now,
        incident,
    })
}

// --- contacts and messages ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "incidents/contacts.html")]
pub struct ContactsPage {
    pub shell: Shell,
    pub contacts: Vec<crate::config::Contact>,
    pub missing: Vec<crate::config::ContactRole>,
    pub ladders: Vec<(&'static str, &'static [escalation::Rung])>,
}

impl ContactsPage {
    pub fn who(&self, role: &crate::config::ContactRole) -> String {
        match self.contacts.iter().find(|c| c.role == *role) {
            Some(c) => format!("{} ({})", role.label(), c.name),
            None => format!("{} (not configured)", role.label()),
        }
    }
}

/// `GET /incidents/contacts`: the escalation matrix and who is behind each role.
pub async fn show_contacts(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let contacts = state.config.oncall.contacts.clone();
    let missing =
        crate::config::ContactRole::ALL.into_iter().filter(|r| !contacts.iter().any(|c| c.role == *r)).collect();
    render(&ContactsPage {
        shell: Shell::new(&state, &user, Tab::Contacts, "Escalation and contacts"),
        contacts,
        missing,
        ladders: vec![
            ("SEV1", escalation::ladder(Severity::Sev1, false)),
            ("SEV2", escalation::ladder(Severity::Sev2, false)),
            ("SEV3", escalation::ladder(Severity::Sev3, false)),
            ("Payment system down", escalation::ladder(Severity::Sev1, true)),
        ],
    })
}

#[derive(Deserialize, Default)]
pub struct MessagesQuery {
    #[serde(default)]
    before: String,
}

#[derive(Template)]
#[template(path = "incidents/messages.html")]
pub struct MessagesPage {
    pub shell: Shell,
    pub messages: Vec<Message>,
    pub next: Option<String>,
    pub paged: bool,
    pub connected: bool,
    pub simulated: bool,
    pub channels: [(&'static str, String); 3],
}

/// `GET /incidents/messages`: everything the console posted to Slack, or would have.
pub async fn list_messages(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<MessagesQuery>,
) -> Result<Html<String>, AppError> {
    let before = q.before.parse::<i64>().ok();
    let mut messages = notify::db::page(&state.pool, before, PAGE_SIZE * 2 + 1).await?;
    let next = paging::next_page(&mut messages, PAGE_SIZE * 2).map(|m| m.id.to_string());
    let slack = &state.config.slack;
    render(&MessagesPage {
        shell: Shell::new(&state, &user, Tab::Messages, "Slack messages"),
        messages,
        next,
        paged: before.is_some(),
        connected: state.cloud.chat.is_some(),
        simulated: state.cloud.is_simulated() && slack.token.is_none(),
        channels: [
            ("Runs and maintenance windows", slack.runs_channel.clone()),
            ("Incidents", slack.incidents_channel.clone()),
            ("On-call", slack.oncall_channel.clone()),
        ],
    })
}

// --- the monthly escalation test ------------------------------------------------------------

/// How long the on-call has to acknowledge the test alert.
const ANSWER_WITHIN_MINUTES: u32 = 30;

/// The monthly alert escalation test (runbook §2), a run through the confirmation page.
pub struct EscalationTest;

impl Proposer for EscalationTest {
    const PAGE: &'static str = "/incidents/escalation-test";

    async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
        let run = RunId::from_form(&form.run)?;
        if state.cloud.monitoring.is_none() {
            return Err(AppError::Conflict(
                "BetterStack is not connected (betterstack.token), so the console cannot raise a test alert.".into(),
            ));
        }
        let requester = state
            .config
            .betterstack
            .requester_email
            .clone()
            .or_else(|| state.cloud.is_simulated().then(|| "oncall-demo@getdrop.no".to_owned()))
            .ok_or_else(|| {
                AppError::Conflict(
                    "Set betterstack.requester_email (a BetterStack user of Drop's team): BetterStack raises alerts in a user's name.".into(),
                )
            })?;
        let alert = format!("dropops escalation test {}", run.stamp());
        let primary = state.config.oncall.contacts.iter().find(|c| c.role == crate::config::ContactRole::OncallPrimary);
        Ok(Proposal {
            procedure: Procedure::EscalationTest,
            heading: "Test that alerts escalate".into(),
            impact: Impact::EscalationTest { within_minutes: ANSWER_WITHIN_MINUTES },
            environment: if state.cloud.is_simulated() {
                "BetterStack (simulated)".into()
            } else {
                "BetterStack".into()
            },
            facts: vec![
                confirm::Fact::Code("Test alert", alert.clone()),
                confirm::Fact::Text("Raised as", requester.clone()),
                confirm::Fact::Text(
                    "Paged",
                    primary.map_or_else(
                        || "whoever BetterStack's on-call calendar names now".to_owned(),
                        |c| format!("whoever BetterStack's on-call calendar names now (primary: {})", c.name),
                    ),
                ),
                confirm::Fact::Text("Passes when", format!("acknowledged within {ANSWER_WITHIN_MINUTES} minutes")),
            ],
            understand: Some(Understand {
                statement: "I have told the on-call that the alert they are about to get is a test.",
                missing: "Tell the on-call first: they will be paged.",
            }),
            reason: ReasonRule::Optional,
            reason_example: "e.g. monthly test, December",
            scale: None,
            staging: None,
            action: "/incidents/runs",
            new: NewRun::production(
                run,
                "betterstack:escalation-test".into(),
                RunParams::EscalationTest(EscalationParams {
                    alert_name: alert.clone(),
                    requester_email: requester,
                    answer_within_minutes: ANSWER_WITHIN_MINUTES,
                }),
                Plan::escalation_test(&alert, ANSWER_WITHIN_MINUTES),
            ),
        })
    }
}

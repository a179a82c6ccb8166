//! The AML alert queue and the alert page: review, assign, close with an outcome, reopen.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::alerts_db::{self, AlertDetail, AlertEvent, AlertRow, QueueQuery};
use super::people_db::{self, Person, TxRow};
use super::reports_db;
use super::status::AlertStatus;
use super::{age, money};
use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent, Reason};
use crate::auth::CurrentUser;
use crate::contract::Optional;
use crate::error::{AppError, changed};
use crate::ids::AlertId;
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::{non_empty, query_string};
use crate::web::paging::{next_page, parse_time_cursor, time_cursor};
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

const PAGE_SIZE: i64 = 50;

pub const OUTCOMES: [(&str, &str); 3] =
    [("false_positive", "False positive"), ("legitimate", "Legitimate"), (ESCALATED, "Escalated to STR")];

/// The outcome that sends an alert to a suspicious transaction report.
const ESCALATED: &str = "escalated_to_str";

pub fn outcome_label(outcome: &str) -> &'static str {
    OUTCOMES.iter().find(|(v, _)| *v == outcome).map_or("Unknown", |(_, l)| l)
}

impl AlertRow {
    pub fn amount(&self) -> String {
        match (&self.send_amount, &self.send_currency) {
            (Some(a), Some(c)) => money(*a, c),
            _ => "—".into(),
        }
    }

    pub fn age(&self) -> String {
        age(self.created_at)
    }
}

#[derive(Deserialize, Default, Clone, serde::Serialize)]
pub struct QueueParams {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub min_amount: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub older_than_hours: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub after: String,
}

#[derive(Default)]
pub struct QueueErrors {
    pub min_amount: Option<&'static str>,
    pub older_than_hours: Option<&'static str>,
    pub currency: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "compliance/alerts.html")]
pub struct AlertsPage {
    pub shell: Shell,
    pub params: QueueParams,
    pub errors: QueueErrors,
    pub rules: Vec<String>,
    pub alerts: Vec<AlertRow>,
    pub sla: DateTime<Utc>,
    pub sla_hours: u32,
    pub next: Option<String>,
    pub query: String,
}

impl AlertsPage {
    pub fn overdue(&self, alert: &AlertRow) -> bool {
        alert.status == AlertStatus::Open && alert.created_at < self.sla
    }
}

fn parse_queue(p: &QueueParams, user: &CurrentUser) -> Result<QueueQuery, QueueErrors> {
    let mut errors = QueueErrors::default();
    let min_amount = non_empty(&p.min_amount).and_then(|a| {
        a.replace([',', ' '], "").parse::<Decimal>().ok().filter(|d| *d >= Decimal::ZERO).or_else(|| {
            errors.min_amount = Some("Enter an amount like 50000.");
            None
        })
    });
    let older_than_hours = non_empty(&p.older_than_hours).and_then(|h| {
        h.parse::<i32>().ok().filter(|h| (0..=24 * 365).contains(h)).or_else(|| {
            errors.older_than_hours = Some("Enter whole hours, like 48.");
            None
        })
    });
    let currency = non_empty(&p.currency).map(|c| c.to_uppercase());
    if currency.as_deref().is_some_and(|c| c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_alphabetic())) {
        errors.currency = Some("Use a currency code like NOK.");
    }
    if errors.min_amount.is_some() || errors.older_than_hours.is_some() || errors.currency.is_some() {
        return Err(errors);
    }
    let status = match p.status.as_str() {
        "" => Some(AlertStatus::Open),
        other => AlertStatus::parse(other),
    };
    let after = parse_time_cursor(&p.after);
    Ok(QueueQuery {
        status,
        rule: non_empty(&p.rule),
        assignee: non_empty(&p.assignee).filter(|a| a == "me" || a == "unassigned"),
        me: user.staff_id,
        min_amount,
        currency,
        older_than_hours,
        newest_first: p.sort == "newest",
        after,
    })
}

fn queue_query(p: &QueueParams) -> String {
    query_string(&[
        ("status", &p.status),
        ("rule", &p.rule),
        ("assignee", &p.assignee),
        ("min_amount", &p.min_amount),
        ("currency", &p.currency),
        ("older_than_hours", &p.older_than_hours),
        ("sort", &p.sort),
    ])
}

pub async fn list_alerts(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(mut params): Query<QueueParams>,
) -> Result<Response, AppError> {
    let shell = Shell::new(&state, &user, Tab::Alerts, "AML alerts");
    // The rule filter exists where Drop records which rule raised an alert.
    let has_rules = state.contract().await?.has(Optional::AlertRule);
    let rules = async { Ok::<_, AppError>(if has_rules { alerts_db::rules(&state.pool).await? } else { vec![] }) };
    let sla_hours = state.config.compliance.alert_sla_hours;
    let sla = Utc::now() - Duration::hours(i64::from(sla_hours));
    let query = queue_query(&params);
    let q = match parse_queue(&params, &user) {
        Ok(q) => q,
        Err(errors) => {
            params.after.clear();
            let rules = rules.await?;
            let page = AlertsPage { shell, params, errors, rules, alerts: vec![], sla, sla_hours, next: None, query };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    // The queue lists customers' emails and amounts: a view of personal data.
    let (rules, mut alerts) = tokio::try_join!(
        rules,
        audit::viewing(&state.pool, &ctx, Resource::AmlAlertQueue, "list".into(), json!({ "filter": params }), async {
            Ok(alerts_db::queue(&state.pool, &q, PAGE_SIZE + 1).await?)
        }),
    )?;
    let next = next_page(&mut alerts, PAGE_SIZE).map(|a| {
        let after = time_cursor(a.created_at, &a.id);
        if query.is_empty() { format!("after={after}") } else { format!("{query}&after={after}") }
    });
    let page = AlertsPage { shell, params, errors: QueueErrors::default(), rules, alerts, sla, sla_hours, next, query };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "compliance/alert.html")]
pub struct AlertPage {
    pub shell: Shell,
    pub alert: AlertDetail,
    pub person: Person,
    pub transaction: Option<TxRow>,
    pub history: Vec<TxRow>,
    pub earlier: Vec<AlertRow>,
    pub events: Vec<AlertEvent>,
    pub outcomes: [(&'static str, &'static str); 3],
    pub form: CloseForm,
    pub outcome_error: Option<String>,
    pub notes_error: Option<String>,
    pub reopen_error: Option<String>,
    pub mine: bool,
    /// Just closed by the reader: the page confirms it and offers the next alert.
    pub just_closed: bool,
}

impl super::Casework for AlertPage {
    fn seen(&self) -> super::Seen {
        super::Seen {
            resource_type: Resource::Person,
            resource_id: self.person.id.clone(),
            details: json!({ "via": "aml_alert", "alert": self.alert.id }),
        }
    }
}

impl AlertPage {
    pub fn label(&self, outcome: &str) -> &'static str {
        outcome_label(outcome)
    }

    /// What in Drop's data made the rule fire: the transaction it names and, for a rule about
    /// new accounts, how old the account was.
    pub fn triggered_by(&self) -> String {
        let mut facts = Vec::new();
        if let Some(t) = &self.transaction {
            let to = t.recipient_country.as_deref().map(|c| format!(" to {c}")).unwrap_or_default();
            facts.push(format!("{}{to} on {} ({})", t.amount(), t.created_at.format("%Y-%m-%d %H:%M UTC"), t.id));
        }
        if super::rules::about_account_age(self.alert.rule.as_deref()) {
            let days = (self.alert.created_at - self.person.created_at).num_days().max(0);
            facts.push(format!("the account was {days} days old"));
        }
        if facts.is_empty() {
            "The alert names no transaction: see the person's history below.".into()
        } else {
            facts.join("; ")
        }
    }
}

#[derive(Deserialize, Default)]
pub struct CloseForm {
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub reason: String,
}

async fn alert_page(state: &AppState, user: &CurrentUser, id: &str, form: CloseForm) -> Result<AlertPage, AppError> {
    let alert = alerts_db::find(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let person = people_db::find(&state.pool, &alert.user_id).await?.ok_or(AppError::NotFound)?;
    let transaction = match &alert.transaction_id {
        Some(tx) => people_db::transaction(&state.pool, tx).await?,
        None => None,
    };
    let history = people_db::history(&state.pool, &alert.user_id, None, 20).await?;
    let earlier = alerts_db::for_person(&state.pool, &alert.user_id, &alert.id).await?;
    let events = alerts_db::events(&state.pool, &alert.id).await?;
    let mine = alert.assignee_id == Some(user.staff_id);
    Ok(AlertPage {
        shell: Shell::new(state, user, Tab::Alerts, format!("Alert {}", alert.id)),
        alert,
        person,
        transaction,
        history,
        earlier,
        events,
        outcomes: OUTCOMES,
        form,
        outcome_error: None,
        notes_error: None,
        reopen_error: None,
        mine,
        just_closed: false,
    })
}

#[derive(Deserialize, Default)]
pub struct AlertQuery {
    #[serde(default)]
    closed: Option<String>,
}

pub async fn show_alert(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<AlertId>,
    axum::extract::Query(q): axum::extract::Query<AlertQuery>,
) -> Result<Response, AppError> {
    let mut page = alert_page(&state, &user, &id, CloseForm::default()).await?;
    page.just_closed = q.closed.is_some() && page.alert.status != AlertStatus::Open;
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

fn staff(user: &CurrentUser) -> (uuid::Uuid, &str) {
    (user.staff_id, user.name.as_str())
}

#[derive(Deserialize, Default)]
pub struct AssignForm {
    /// "yes": the reader confirmed taking the alert over from the colleague who holds it.
    #[serde(default)]
    takeover: String,
}

pub async fn assign_alert(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<AlertId>,
    Form(form): Form<AssignForm>,
) -> Result<Response, AppError> {
    let alert = alerts_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    // Held by a colleague: taken over only when confirmed, and recorded as a takeover.
    let held_by = alert.assignee_id.filter(|a| *a != user.staff_id).map(|_| alert.assignee_name.clone());
    if held_by.is_some() && form.takeover != "yes" {
        return Err(AppError::Conflict(format!(
            "{} is working on this alert. Confirm on the alert page that you take it over.",
            held_by.flatten().unwrap_or_else(|| "A colleague".into())
        )));
    }
    let intent = Intent {
        action: "aml_alert_assigned",
        resource_type: Resource::AmlAlert,
        resource_id: id.to_string(),
        reason: None,
        details: match &held_by {
            Some(from) => json!({ "to": user.name, "takeover": true, "from": from }),
            None => json!({ "to": user.name }),
        },
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(alerts_db::assign(tx, token, &id, staff(&user)).await?, "Only open alerts can be assigned.")
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/alerts/{id}")).into_response())
}

/// "Next unassigned": take the oldest open alert nobody has, and open it. Written out rather
/// than through `audit::audited` because the intent names the alert the locked read found.
pub async fn take_next_alert(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
) -> Result<Response, AppError> {
    let mut tx = state.pool.begin().await?;
    let Some(id) = alerts_db::oldest_unassigned(&mut tx).await? else {
        return Err(AppError::Conflict("Every open alert is assigned. Nothing to take.".into()));
    };
    let intent = Intent {
        action: "aml_alert_assigned",
        resource_type: Resource::AmlAlert,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "to": user.name, "via": "next" }),
    };
    let token = audit::intent(&mut tx, &ctx, intent).await?;
    alerts_db::assign(&mut tx, &token, &id, staff(&user)).await?;
    audit::outcome(&mut tx, &ctx, token, audit::Outcome::Succeeded).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/compliance/alerts/{id}")).into_response())
}

pub async fn close_alert(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<AlertId>,
    Form(form): Form<CloseForm>,
) -> Result<Response, AppError> {
    let outcome = OUTCOMES.iter().find(|(v, _)| *v == form.outcome).map(|(v, _)| *v);
    let notes = Reason::parse(&form.notes, "review notes");
    let (Some(outcome), Ok(notes)) = (outcome, notes.clone()) else {
        let mut page = alert_page(&state, &user, &id, form).await?;
        page.outcome_error = outcome.is_none().then(|| "Choose an outcome.".to_owned());
        page.notes_error = notes.err();
        return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
    };
    let alert = alerts_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    // Escalated to an STR: the report the alert goes to — the person's unfiled one, or a new
    // draft the officer is taken to. An escalation never ends without a report.
    let report = if outcome == ESCALATED {
        match reports_db::unfiled_for(&state.pool, &alert.user_id, &id).await? {
            Some(existing) => Some((existing, false)),
            None => Some((format!("str_{}", &crate::auth::random_token()[..16]), true)),
        }
    } else {
        None
    };
    let intent = Intent {
        action: "aml_alert_closed",
        resource_type: Resource::AmlAlert,
        resource_id: id.to_string(),
        reason: Some(notes.clone()),
        details: json!({
            "outcome": outcome,
            "str": report.as_ref().map(|(str_id, _)| str_id),
            "str_drafted": report.as_ref().is_some_and(|(_, new)| *new),
        }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(
            alerts_db::close(tx, token, &id, staff(&user), outcome, &notes).await?,
            "This alert is already closed. Reload to see who closed it.",
        )?;
        match &report {
            Some((str_id, true)) => {
                let transactions: Vec<String> = alert.transaction_id.iter().cloned().collect();
                let new = reports_db::NewStr {
                    id: str_id,
                    user_id: &alert.user_id,
                    alert_id: Some(&id),
                    // The review notes start the grounds; the officer writes the narrative.
                    details: json!({ "reason": notes.as_str(), "narrative": "" }),
                    drafted_by: (user.staff_id, &user.name),
                    transactions: &transactions,
                };
                reports_db::create(tx, token, new).await?;
                reports_db::contributed(
                    tx,
                    token,
                    str_id,
                    (user.staff_id, &user.name),
                    reports_db::Contribution::Drafted,
                )
                .await?;
            }
            Some((str_id, false)) => reports_db::link_alert(tx, token, str_id, &id).await?,
            None => {}
        }
        Ok(())
    })
    .await?;
    match report {
        Some((str_id, drafted)) => {
            let flag = if drafted { "drafted" } else { "linked" };
            Ok(Redirect::to(&format!("/compliance/str/{str_id}?from_alert={flag}")).into_response())
        }
        None => Ok(Redirect::to(&format!("/compliance/alerts/{id}?closed=1")).into_response()),
    }
}

pub async fn reopen_alert(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<AlertId>,
    Form(form): Form<CloseForm>,
) -> Result<Response, AppError> {
    alerts_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let reason = match Reason::parse(&form.reason, "a reason for reopening") {
        Ok(r) => r,
        Err(e) => {
            let mut page = alert_page(&state, &user, &id, form).await?;
            page.reopen_error = Some(e);
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    let intent = Intent {
        action: "aml_alert_reopened",
        resource_type: Resource::AmlAlert,
        resource_id: id.to_string(),
        reason: Some(reason.clone()),
        details: json!({}),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(alerts_db::reopen(tx, token, &id, staff(&user), &reason).await?, "This alert is already open.")
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/alerts/{id}")).into_response())
}

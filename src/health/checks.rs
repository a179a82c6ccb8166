//! Routine checks (runbook §2): daily, weekly and monthly checklists. Automatic items are
//! measured when the page opens; manual items are attested by the person submitting. A
//! submission stores who, when and every value as evidence, through the audit core.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cards::{self, Tone};
use super::db;
use super::schedule::{self, CHECKLISTS, Checklist};
use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent};
use crate::auth::CurrentUser;
use crate::config::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::Fields;
use crate::web::once::{self, Once};
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

fn checklist(name: &str) -> Result<&'static Checklist, AppError> {
    CHECKLISTS.iter().find(|c| c.name == name).ok_or(AppError::NotFound)
}

/// One line of a submitted checklist: the evidence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub label: String,
    pub automatic: bool,
    pub value: String,
    pub ok: bool,
    #[serde(default)]
    pub note: String,
}

/// Whether a monthly check's run happened recently enough to count for this month.
fn within_a_month(at: DateTime<Utc>) -> bool {
    Utc::now() - at <= Duration::days(31)
}

/// Measure the automatic items now, through the same readings as the dashboard.
async fn measure(state: &AppState, keys: &[&str]) -> Result<Vec<Item>, AppError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let fragment = cards::read_all(state).await;
    let mut items = Vec::new();
    for key in keys {
        let item = match *key {
            // Compliance's queues as the runbook's weekly check asks, as a state and never a
            // count: counts are for the compliance summary's readers, and on-call is not one.
            "open_alerts" | "kyc_stuck" => {
                let counts = crate::compliance::queue_counts(state).await?;
                let hours = state.config.compliance.alert_sla_hours;
                let (label, ok, value) = if *key == "open_alerts" {
                    let late =
                        counts.oldest_open_alert.is_some_and(|at| Utc::now() - at > Duration::hours(i64::from(hours)));
                    let value = if late {
                        format!("some alerts are past the {hours} h review target: compliance to act")
                    } else {
                        format!("every open alert is within the {hours} h review target")
                    };
                    ("AML alert review (compliance)", !late, value)
                } else {
                    let stuck = counts.kyc_pending_over_24h > 0;
                    let value = if stuck { "some: compliance to act" } else { "none" };
                    ("KYC applicants pending over 24 hours (compliance)", !stuck, value.to_owned())
                };
                Item { key: key.to_string(), label: label.into(), automatic: true, value, ok, note: String::new() }
            }
            // runbook §2 monthly: the last escalation test passed within the month.
            "escalation_test" => {
                let last = crate::runs::last_of(&state.pool, crate::runs::Procedure::EscalationTest).await?;
                let (ok, value) = match &last {
                    Some(run) if run.status == crate::runs::RunStatus::Succeeded && within_a_month(run.created_at) => (
                        true,
                        format!(
                            "passed {}: {}",
                            run.created_at.format("%Y-%m-%d"),
                            crate::runs::escalation::evidence(run).unwrap_or_else(|| "acknowledged".into())
                        ),
                    ),
                    Some(run) if within_a_month(run.created_at) => (
                        false,
                        format!(
                            "the test of {} {}",
                            run.created_at.format("%Y-%m-%d"),
                            run.status.label().to_lowercase()
                        ),
                    ),
                    _ => (false, "not tested in the last month".to_owned()),
                };
                Item {
                    key: key.to_string(),
                    label: "Monitor alerts escalate (the monthly escalation test)".into(),
                    automatic: true,
                    value,
                    ok,
                    note: String::new(),
                }
            }
            // runbook §2 monthly: a snapshot restored, its data checked, and deleted, this month.
            "restore_drill" => {
                let last = crate::runs::last_of(&state.pool, crate::runs::Procedure::RestoreDrill).await?;
                let (ok, value) = match &last {
                    Some(run) if run.status == crate::runs::RunStatus::Succeeded && within_a_month(run.created_at) => {
                        let rto = run.facts.get("rto_minutes").and_then(serde_json::Value::as_i64);
                        (
                            true,
                            format!(
                                "drill of {} verified the copy{} (run {})",
                                run.created_at.format("%Y-%m-%d"),
                                rto.map(|m| format!(", RTO {m} min")).unwrap_or_default(),
                                run.id
                            ),
                        )
                    }
                    Some(run) if within_a_month(run.created_at) => (
                        false,
                        format!(
                            "the drill of {} {} (run {})",
                            run.created_at.format("%Y-%m-%d"),
                            run.status.label().to_lowercase(),
                            run.id
                        ),
                    ),
                    _ => (false, "no restore drill in the last month".to_owned()),
                };
                Item {
                    key: key.to_string(),
                    label: "A snapshot was restored, its data checked, and deleted (the restore drill)".into(),
                    automatic: true,
                    value,
                    ok,
                    note: String::new(),
                }
            }
            // runbook §2 monthly: the SLA report of the month before, its figures kept.
            "sla_report" => {
                let month = super::sla::Month::previous(Utc::now().date_naive());
                let report = super::sla::report(state, month).await?;
                let (uptime, _) = report.uptime();
                Item {
                    key: key.to_string(),
                    label: format!("SLA report of {} (uptime, 5xx share, p99 latency)", month.label()),
                    automatic: true,
                    value: report.evidence(),
                    ok: uptime.is_some() && report.error_percent().is_some(),
                    note: String::new(),
                }
            }
            card_key => {
                let card = fragment.production.iter().find(|c| c.key == card_key).ok_or(AppError::NotFound)?;
                Item {
                    key: key.to_string(),
                    label: card.title.into(),
                    automatic: true,
                    value: format!("{} — {}", card.value, card.detail),
                    ok: card.tone == Tone::Green,
                    note: String::new(),
                }
            }
        };
        items.push(item);
    }
    Ok(items)
}

pub struct Submission {
    pub id: i64,
    pub submitted_by_name: String,
    pub submitted_at: DateTime<Utc>,
    pub all_ok: bool,
    pub items: serde_json::Value,
}

impl Submission {
    pub fn problems(&self) -> Vec<String> {
        let items: Vec<Item> = serde_json::from_value(self.items.clone()).unwrap_or_default();
        items
            .into_iter()
            .filter(|i| !i.ok)
            .map(|i| if i.note.is_empty() { i.label } else { format!("{}: {}", i.label, i.note) })
            .collect()
    }
}

pub struct Summary {
    pub checklist: &'static Checklist,
    pub last: Option<DateTime<Utc>>,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "health/checks.html")]
pub struct ChecksPage {
    pub shell: Shell,
    pub summaries: Vec<Summary>,
}

pub async fn list_checks(State(state): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let last = schedule::last_submitted(&state.pool).await?;
    let late = schedule::overdue(&last);
    let summaries = CHECKLISTS
        .iter()
        .map(|c| Summary {
            checklist: c,
            last: last.iter().find(|(n, _)| n == c.name).map(|(_, at)| *at),
            overdue: late.contains(&c.title),
        })
        .collect();
    Ok(render(&ChecksPage { shell: Shell::new(&state, &user, Tab::Checks, "Routine checks"), summaries })?
        .into_response())
}

#[derive(Template)]
#[template(path = "health/checklist.html")]
pub struct ChecklistPage {
    pub shell: Shell,
    pub checklist: &'static Checklist,
    pub measured: Vec<Item>,
    pub manual: Vec<Item>,
    pub errors: Vec<(String, String)>,
    pub can_submit: bool,
    pub runs: Vec<Submission>,
    /// The form's submission token (one checklist run per rendered form).
    pub once: Once,
    /// Just submitted: the page confirms it.
    pub submitted: bool,
}

impl ChecklistPage {
    pub fn error(&self, key: &str) -> Option<&str> {
        self.errors.iter().find(|(k, _)| k == key).map(|(_, e)| e.as_str())
    }
}

fn manual_items(c: &Checklist) -> Vec<Item> {
    c.manual
        .iter()
        .map(|(key, label)| Item {
            key: key.to_string(),
            label: label.to_string(),
            automatic: false,
            value: String::new(),
            ok: false,
            note: String::new(),
        })
        .collect()
}

async fn checklist_page(
    state: &AppState,
    user: &CurrentUser,
    c: &'static Checklist,
    manual: Vec<Item>,
) -> Result<ChecklistPage, AppError> {
    Ok(ChecklistPage {
        shell: Shell::new(state, user, Tab::Checks, format!("{} checks", c.title)),
        checklist: c,
        measured: measure(state, c.automatic).await?,
        manual,
        errors: vec![],
        can_submit: user.has(Role::Oncall) || user.has(Role::Admin),
        runs: db::history(&state.pool, c.name, 30).await?,
        once: Once::new(),
        submitted: false,
    })
}

#[derive(Deserialize, Default)]
pub struct ChecklistQuery {
    #[serde(default)]
    submitted: Option<String>,
}

pub async fn show_checklist(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ChecklistQuery>,
) -> Result<Response, AppError> {
    let c = checklist(&name)?;
    let mut page = checklist_page(&state, &user, c, manual_items(c)).await?;
    page.submitted = q.submitted.is_some();
    Ok(render(&page)?.into_response())
}

/// Submit: each manual item is confirmed, or carries a note saying what is wrong.
pub async fn submit_checklist(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Path(name): Path<String>,
    fields: Fields,
) -> Result<Response, AppError> {
    let c = checklist(&name)?;
    let value = |k: &str| fields.one(k).trim().to_owned();
    let once = Once::of(&value(once::FIELD));
    let done = format!("/health/checks/{}?submitted=1", c.name);
    if let Some(went_to) = once::already(&state.pool, once, user.staff_id).await? {
        return Ok(Redirect::to(&went_to).into_response());
    }
    let mut manual = manual_items(c);
    let mut errors = vec![];
    for item in &mut manual {
        item.ok = value(&format!("{}_ok", item.key)) == "on";
        item.note = value(&format!("{}_note", item.key)).chars().take(1000).collect();
        item.value = if item.ok { "confirmed".into() } else { "not confirmed".into() };
        if !item.ok && item.note.is_empty() {
            errors.push((item.key.clone(), "Confirm it, or say what is wrong.".to_owned()));
        }
    }
    if !errors.is_empty() {
        let mut page = checklist_page(&state, &user, c, manual).await?;
        page.errors = errors;
        page.once = once.unwrap_or(page.once);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    // The measured values are taken again at submission: the evidence is what was true then.
    let mut items = measure(&state, c.automatic).await?;
    items.extend(manual);
    let problems = items.iter().filter(|i| !i.ok).count();
    let intent = Intent {
        action: "checklist_submitted",
        resource_type: Resource::Checklist,
        resource_id: c.name.into(),
        reason: None,
        details: json!({ "problems": problems, "items": items }),
    };
    let stored = audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        once::record(tx, once, user.staff_id, &done).await?;
        Ok(db::store(tx, token, c.name, &user, &items).await?)
    })
    .await;
    match stored {
        Err(e) if once::was_repeat(&e) => {}
        other => other?,
    }
    Ok(Redirect::to(&done).into_response())
}

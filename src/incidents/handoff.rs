//! The on-call hand-off (runbook §7): the outgoing on-call writes the five headings — open
//! incidents, monitoring anomalies, upcoming events, temporary mitigations, noisy alerts —
//! from a draft the console fills with what it knows; the incoming on-call (someone else)
//! acknowledges it. Kept, searchable, and announced on the on-call channel.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use super::db::{self, Handoff};
use super::{MAX_TEXT, PAGE_SIZE, bounded, cursor, may_act};
use crate::audit::{self, AuditContext, Intent, Resource};
use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::error::AppError;
use crate::notify::{self, Message, Notice, StaffName};
use crate::state::AppState;
use crate::web::forms::{Fields, encode};
use crate::web::once::{self, Once};
use crate::web::tabs::Tab;
use crate::web::{PathId, Shell, paging, render};

/// How far back "the last shift" goes.
const SHIFT: Duration = Duration::hours(12);
/// A card that changed colour this often in a shift is a noisy alert.
const NOISY_CHANGES: usize = 3;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/incidents/handoffs", Access::Roles(OPS), list_handoffs),
        Route::get("/incidents/handoffs/new", Access::Roles(ONCALL), new_handoff),
        Route::post("/incidents/handoffs", Access::Roles(ONCALL), write_handoff),
        Route::get("/incidents/handoffs/{id}", Access::Roles(OPS), show_handoff),
        Route::post("/incidents/handoffs/{id}/acknowledge", Access::Roles(ONCALL), acknowledge_handoff),
    ]
}

/// The five headings, in the runbook's order: (field, label, hint).
pub const HEADINGS: [(&str, &str, &str); 5] = [
    ("open_incidents", "Open incidents", "What is still open, where it stands, what is next"),
    ("anomalies", "Monitoring anomalies", "Cards that are not green, odd graphs, things to keep an eye on"),
    ("upcoming", "Upcoming events", "Planned maintenance, open windows, checks due, launches"),
    (
        "mitigations",
        "Temporary mitigations",
        "Rollbacks, scaling, restarts and switches still in place, and when to undo them",
    ),
    ("noisy_alerts", "Noisy alerts", "Alerts that fire without cause, and what was done about them"),
];

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "incidents/handoffs.html")]
pub struct ListPage {
    pub shell: Shell,
    pub handoffs: Vec<Handoff>,
    pub q: String,
    pub next: Option<String>,
    pub paged: bool,
    pub may_act: bool,
}

pub async fn list_handoffs(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, AppError> {
    let q: String = query.q.trim().chars().take(200).collect();
    let term = (!q.is_empty()).then(|| q.to_lowercase());
    let after = cursor(&query.after);
    let mut handoffs = db::handoffs(&state.pool, term.as_deref(), after, PAGE_SIZE + 1).await?;
    let next = paging::next_page(&mut handoffs, PAGE_SIZE).map(|h| {
        let cursor = paging::time_cursor(h.written_at, &h.id.to_string());
        if q.is_empty() { cursor } else { format!("{cursor}&q={}", encode(&q)) }
    });
    render(&ListPage {
        shell: Shell::new(&state, &user, Tab::Handoffs, "On-call hand-offs"),
        handoffs,
        q,
        next,
        paged: after.is_some(),
        may_act: may_act(&user),
    })
}

/// The five headings' texts, in the order of [`HEADINGS`]: the console's draft, or what was
/// typed.
#[derive(Default)]
pub struct Draft(pub [String; 5]);

impl Draft {
    pub fn value(&self, field: &str) -> &str {
        HEADINGS.iter().position(|(f, ..)| *f == field).map_or("", |i| self.0[i].as_str())
    }
}

fn lines(items: Vec<String>, none: &str) -> String {
    if items.is_empty() {
        none.to_owned()
    } else {
        items.iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n")
    }
}

fn clock(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Fill the five headings from the console's own knowledge: open incidents, production cards
/// that are not green, maintenance and windows and overdue checks, runs of the last shift, and
/// cards that flapped.
pub async fn prefill(state: &AppState) -> Result<Draft, AppError> {
    let now = Utc::now();
    let (incidents, cards, coming, runs, changes) = tokio::join!(
        db::open_incidents(&state.pool),
        crate::health::read_all(state),
        db::coming_maintenances(&state.pool),
        crate::runs::overlapping(&state.pool, now - SHIFT, now, 100),
        crate::health::changes_between(&state.pool, now - SHIFT, now, 1000),
    );
    let (incidents, coming, runs, changes) = (incidents?, coming?, runs?, changes?);
    let open_incidents = incidents
        .iter()
        .map(|i| {
            format!(
                "#{} {} {} — {} (declared {} by {})",
                i.id,
                i.severity.label(),
                i.status.label(),
                i.title,
                clock(i.declared_at),
                i.declared_by_name
            )
        })
        .collect();
    let anomalies = cards
        .production
        .iter()
        .filter(|c| c.tone != crate::health::Tone::Green)
        .map(|c| format!("{} ({}): {} — {}", c.title, c.tone.label(), c.value, c.detail))
        .collect();
    let mut upcoming: Vec<String> = coming
        .iter()
        .map(|m| {
            format!(
                "Planned maintenance #{}: {} — {} for {} min",
                m.id,
                m.title,
                clock(m.planned_start),
                m.planned_minutes
            )
        })
        .collect();
    upcoming.extend(
        cards.open_windows.iter().map(|ends| format!("A monitoring maintenance window is open until {}", clock(*ends))),
    );
    upcoming.extend(cards.overdue_checks.iter().map(|c| format!("{c} routine checks are overdue")));
    let mitigations = runs
        .iter()
        .map(|r| {
            format!(
                "{} of {} by {} at {}: {}",
                crate::runs::capitalise(r.label()),
                r.subject(),
                r.started_by_name,
                clock(r.created_at),
                r.status.label().to_lowercase()
            )
        })
        .collect();
    let mut flaps: Vec<(String, usize)> = Vec::new();
    for change in &changes {
        match flaps.iter_mut().find(|(title, _)| *title == change.title) {
            Some((_, n)) => *n += 1,
            None => flaps.push((change.title.clone(), 1)),
        }
    }
    let noisy = flaps
        .into_iter()
        .filter(|(_, n)| *n >= NOISY_CHANGES)
        .map(|(title, n)| format!("{title} changed colour {n} times in the last 12 hours"))
        .collect();
    Ok(Draft([
        lines(open_incidents, "None."),
        lines(anomalies, "Every production card is green."),
        lines(upcoming, "Nothing planned."),
        lines(mitigations, "No runs in the last 12 hours."),
        lines(noisy, "None seen by the console."),
    ]))
}

#[derive(Template)]
#[template(path = "incidents/handoff_new.html")]
pub struct NewPage {
    pub shell: Shell,
    pub draft: Draft,
    pub errors: Vec<(&'static str, String)>,
    pub once: Once,
}

impl NewPage {
    pub fn headings(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        &HEADINGS
    }

    pub fn error(&self, field: &str) -> Option<String> {
        super::error_of(&self.errors, field)
    }
}

pub async fn new_handoff(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    render(&NewPage {
        shell: Shell::new(&state, &user, Tab::Handoffs, "Write the hand-off"),
        draft: prefill(&state).await?,
        errors: vec![],
        once: Once::new(),
    })
}

/// `POST /incidents/handoffs`: store it, audited; the on-call channel is told it waits.
pub async fn write_handoff(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    fields: Fields,
) -> Result<Response, AppError> {
    let once = Once::of(fields.one(once::FIELD));
    if let Some(went_to) = once::already(&state.pool, once, user.staff_id).await? {
        return Ok(Redirect::to(&went_to).into_response());
    }
    let mut errors = vec![];
    let mut draft = Draft::default();
    for (i, (field, label, _)) in HEADINGS.into_iter().enumerate() {
        draft.0[i] = match bounded(fields.one(field), MAX_TEXT, label) {
            Ok(text) if text.is_empty() => {
                errors.push((field, format!("Write something under {label}, even \"None\".")));
                text
            }
            Ok(text) => text,
            Err(e) => {
                errors.push((field, e));
                fields.one(field).to_owned()
            }
        };
    }
    if !errors.is_empty() {
        let page = NewPage {
            shell: Shell::new(&state, &user, Tab::Handoffs, "Write the hand-off"),
            draft,
            errors,
            once: once.unwrap_or_default(),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let id = db::next_handoff_id(&state.pool).await?;
    let went_to = format!("/incidents/handoffs/{id}");
    let intent = Intent {
        action: "handoff_written",
        resource_type: Resource::Handoff,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "headings": HEADINGS.iter().map(|(f, ..)| (*f, draft.value(f).chars().count())).collect::<std::collections::BTreeMap<_, _>>() }),
    };
    let written = audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        once::record(tx, once, user.staff_id, &went_to).await?;
        db::insert_handoff(tx, id, user.staff_id, &user.name, &draft.0).await?;
        notify::queue(tx, &state, &Notice::HandoffWritten { handoff: id, by: StaffName::of(&user) }).await?;
        Ok(())
    })
    .await;
    match written {
        Err(e) if once::was_repeat(&e) => {}
        other => other?,
    }
    Ok(Redirect::to(&went_to).into_response())
}

#[derive(Template)]
#[template(path = "incidents/handoff.html")]
pub struct ShowPage {
    pub shell: Shell,
    pub handoff: Handoff,
    pub messages: Vec<Message>,
    /// This person may acknowledge it: on call, not the writer, not yet acknowledged.
    pub may_acknowledge: bool,
    pub wrote_it: bool,
    pub error: Option<String>,
}

impl ShowPage {
    pub fn sections(&self) -> Vec<(&'static str, &str)> {
        let h = &self.handoff;
        let texts = [&h.open_incidents, &h.anomalies, &h.upcoming, &h.mitigations, &h.noisy_alerts];
        HEADINGS.iter().zip(texts).map(|((_, label, _), text)| (*label, text.as_str())).collect()
    }
}

async fn show_page(state: &AppState, user: &CurrentUser, handoff: Handoff) -> Result<ShowPage, AppError> {
    let wrote_it = handoff.written_by == user.staff_id;
    Ok(ShowPage {
        shell: Shell::new(state, user, Tab::Handoffs, format!("Hand-off #{}", handoff.id)),
        messages: notify::db::of_source(&state.pool, &notify::handoff_source(handoff.id)).await?,
        may_acknowledge: may_act(user) && !wrote_it && handoff.acknowledged_at.is_none(),
        wrote_it,
        error: None,
        handoff,
    })
}

pub async fn show_handoff(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId<i64>,
) -> Result<Html<String>, AppError> {
    let handoff = db::handoff(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    render(&show_page(&state, &user, handoff).await?)
}

/// `POST /incidents/handoffs/{id}/acknowledge`: the incoming on-call takes the pager. The
/// writer cannot acknowledge their own hand-off.
pub async fn acknowledge_handoff(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
) -> Result<Response, AppError> {
    let handoff = db::handoff(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let refusal = if handoff.written_by == user.staff_id {
        Some("You wrote this hand-off: the incoming on-call acknowledges it.".to_owned())
    } else {
        handoff.acknowledged_at.map(|at| {
            format!(
                "Already acknowledged by {} at {}.",
                handoff.acknowledged_by_name.as_deref().unwrap_or("someone"),
                clock(at)
            )
        })
    };
    if let Some(error) = refusal {
        let mut page = show_page(&state, &user, handoff).await?;
        page.error = Some(error);
        return Ok((StatusCode::CONFLICT, render(&page)?).into_response());
    }
    let intent = Intent {
        action: "handoff_acknowledged",
        resource_type: Resource::Handoff,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "written_by": handoff.written_by_name }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        if !db::acknowledge(tx, id, user.staff_id, &user.name).await? {
            return Err(AppError::Conflict("Someone acknowledged this hand-off a moment ago.".into()));
        }
        notify::queue(tx, &state, &Notice::HandoffAcknowledged { handoff: id, by: StaffName::of(&user) }).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/incidents/handoffs/{id}")).into_response())
}

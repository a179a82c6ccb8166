//! Planned maintenance (runbook §7: announce, status page, smoke tests after each step, report
//! afterwards): a record with the procedure's steps as a checklist — who ticked each, when,
//! with what note — and the runs executed while it was open, ending in a printable report.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::db::{self, Maintenance, StepDone};
use super::kinds::MaintenanceStep;
use super::{MAX_TEXT, MAX_TITLE, PAGE_SIZE, bounded, cursor, may_act};
use crate::audit::{self, AuditContext, Intent, Resource};
use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::cloud::{ResourceStatus, StatusReport};
use crate::error::AppError;
use crate::notify::PublicText;
use crate::runs::Run;
use crate::state::AppState;
use crate::web::forms::Fields;
use crate::web::once::{self, Once};
use crate::web::tabs::Tab;
use crate::web::{PathId, Shell, paging, render};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/incidents/maintenance", Access::Roles(OPS), list_maintenance),
        Route::get("/incidents/maintenance/new", Access::Roles(ONCALL), new_maintenance),
        Route::post("/incidents/maintenance", Access::Roles(ONCALL), plan_maintenance),
        Route::get("/incidents/maintenance/{id}", Access::Roles(OPS), show_maintenance),
        Route::post("/incidents/maintenance/{id}/phase", Access::Roles(ONCALL), change_phase),
        Route::post("/incidents/maintenance/{id}/steps", Access::Roles(ONCALL), tick_step),
        Route::post("/incidents/maintenance/{id}/status-page", Access::Roles(ONCALL), announce),
        Route::get("/incidents/maintenance/{id}/report", Access::Roles(OPS), show_report),
    ]
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "incidents/maintenances.html")]
pub struct ListPage {
    pub shell: Shell,
    pub coming: Vec<Maintenance>,
    pub past: Vec<Maintenance>,
    pub next: Option<String>,
    pub paged: bool,
    pub may_act: bool,
}

pub async fn list_maintenance(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, AppError> {
    let after = cursor(&q.after);
    let coming = if after.is_none() { db::coming_maintenances(&state.pool).await? } else { vec![] };
    let mut past = db::past_maintenances(&state.pool, after, PAGE_SIZE + 1).await?;
    let next = paging::next_page(&mut past, PAGE_SIZE).map(|m| paging::time_cursor(m.planned_start, &m.id.to_string()));
    render(&ListPage {
        shell: Shell::new(&state, &user, Tab::Maintenance, "Planned maintenance"),
        coming,
        past,
        next,
        paged: after.is_some(),
        may_act: may_act(&user),
    })
}

#[derive(Default)]
pub struct PlanForm {
    pub title: String,
    pub start: String,
    pub minutes: String,
}

#[derive(Template)]
#[template(path = "incidents/maintenance_new.html")]
pub struct NewPage {
    pub shell: Shell,
    pub form: PlanForm,
    pub errors: Vec<(&'static str, String)>,
    pub once: Once,
}

impl NewPage {
    pub fn error(&self, field: &str) -> Option<String> {
        super::error_of(&self.errors, field)
    }
}

pub async fn new_maintenance(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    render(&NewPage {
        shell: Shell::new(&state, &user, Tab::Maintenance, "Plan maintenance"),
        form: PlanForm { minutes: "60".into(), ..PlanForm::default() },
        errors: vec![],
        once: Once::new(),
    })
}

/// "2026-12-06T22:00" (a `datetime-local` field), read as UTC.
fn parse_start(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .ok()
        .map(|t| t.and_utc())
}

pub async fn plan_maintenance(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    fields: Fields,
) -> Result<Response, AppError> {
    let once = Once::of(fields.one(once::FIELD));
    if let Some(went_to) = once::already(&state.pool, once, user.staff_id).await? {
        return Ok(Redirect::to(&went_to).into_response());
    }
    let form = PlanForm {
        title: fields.one("title").trim().to_owned(),
        start: fields.one("start").trim().to_owned(),
        minutes: fields.one("minutes").trim().to_owned(),
    };
    let mut errors = vec![];
    if form.title.is_empty() || form.title.chars().count() > MAX_TITLE {
        errors.push(("title", format!("Say what will be done, in at most {MAX_TITLE} characters.")));
    }
    let start = parse_start(&form.start);
    if start.is_none() {
        errors.push(("start", "Give the planned start as a date and time (UTC), e.g. 2026-12-06 22:00.".to_owned()));
    }
    let minutes = form.minutes.parse::<i32>().ok().filter(|m| (5..=1440).contains(m));
    if minutes.is_none() {
        errors.push(("minutes", "Planned length in minutes, from 5 to 1440.".to_owned()));
    }
    let (Some(start), Some(minutes), true) = (start, minutes, errors.is_empty()) else {
        let page = NewPage {
            shell: Shell::new(&state, &user, Tab::Maintenance, "Plan maintenance"),
            form,
            errors,
            once: once.unwrap_or_default(),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let id = db::next_maintenance_id(&state.pool).await?;
    let went_to = format!("/incidents/maintenance/{id}");
    let intent = Intent {
        action: "maintenance_planned",
        resource_type: Resource::Maintenance,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "title": form.title, "planned_start": start, "planned_minutes": minutes }),
    };
    let planned = audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        once::record(tx, once, user.staff_id, &went_to).await?;
        db::insert_maintenance(tx, id, &form.title, start, minutes, user.staff_id, &user.name).await?;
        Ok(())
    })
    .await;
    match planned {
        Err(e) if once::was_repeat(&e) => {}
        other => other?,
    }
    Ok(Redirect::to(&went_to).into_response())
}

/// A step as the page shows it: done or not.
pub struct StepView {
    pub step: MaintenanceStep,
    pub done: Option<StepDone>,
}

#[derive(Template)]
#[template(path = "incidents/maintenance.html")]
pub struct ShowPage {
    pub shell: Shell,
    pub maintenance: Maintenance,
    pub steps: Vec<StepView>,
    pub runs: Vec<Run>,
    pub may_act: bool,
    pub error: Option<(String, String)>,
    /// A status page is there to announce it on.
    pub status_page: bool,
    /// What the announcement form holds.
    pub public_title: String,
    pub public_message: String,
}

impl ShowPage {
    pub fn undone(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|s| s.done.is_none() && s.step != MaintenanceStep::Reported)
            .map(|s| s.step.label())
            .collect()
    }

    pub fn error_for(&self, step: &MaintenanceStep) -> Option<&str> {
        self.error.as_ref().filter(|(s, _)| s == step.as_str()).map(|(_, e)| e.as_str())
    }

    pub fn report(&self) -> Option<&StepDone> {
        self.steps.iter().find(|s| s.step == MaintenanceStep::Reported).and_then(|s| s.done.as_ref())
    }
}

async fn show_page(state: &AppState, user: &CurrentUser, maintenance: Maintenance) -> Result<ShowPage, AppError> {
    let done = db::steps_done(&state.pool, maintenance.id).await?;
    let steps = MaintenanceStep::ALL
        .iter()
        .map(|step| StepView { step: *step, done: done.iter().find(|d| d.step == *step).cloned() })
        .collect();
    let runs = match maintenance.started_at {
        Some(from) => {
            crate::runs::overlapping(&state.pool, from, maintenance.ended_at.unwrap_or_else(Utc::now), 100).await?
        }
        None => vec![],
    };
    Ok(ShowPage {
        shell: Shell::new(state, user, Tab::Maintenance, format!("Maintenance #{}", maintenance.id)),
        maintenance,
        steps,
        runs,
        may_act: may_act(user),
        error: None,
        status_page: super::status_page(state).is_some(),
        public_title: "Scheduled maintenance".into(),
        public_message: String::new(),
    })
}

pub async fn show_maintenance(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId<i64>,
) -> Result<Html<String>, AppError> {
    let maintenance = db::maintenance(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    render(&show_page(&state, &user, maintenance).await?)
}

/// `POST /incidents/maintenance/{id}/phase`: `phase=start` opens it (its runs are those started
/// from now on), `phase=end` closes it.
pub async fn change_phase(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
    fields: Fields,
) -> Result<Response, AppError> {
    let start = match fields.one("phase") {
        "start" => true,
        "end" => false,
        _ => return Err(AppError::Validation("Start or end the maintenance.".into())),
    };
    db::maintenance(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let intent = Intent {
        action: if start { "maintenance_started" } else { "maintenance_ended" },
        resource_type: Resource::Maintenance,
        resource_id: id.to_string(),
        reason: None,
        details: json!({}),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        if !db::set_phase(tx, id, start).await? {
            return Err(AppError::Conflict(if start {
                "This maintenance has already started.".into()
            } else {
                "Only a maintenance that has started and not ended can end.".into()
            }));
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/incidents/maintenance/{id}")).into_response())
}

/// `POST /incidents/maintenance/{id}/steps`: tick a step with its note (the report's step
/// carries the report).
pub async fn tick_step(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
    fields: Fields,
) -> Result<Response, AppError> {
    let maintenance = db::maintenance(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let step =
        MaintenanceStep::parse(fields.one("step")).ok_or_else(|| AppError::Validation("Choose a step.".into()))?;
    let note = bounded(fields.one("note"), MAX_TEXT, "The note");
    let error = match &note {
        Err(e) => Some(e.clone()),
        Ok(text) if text.is_empty() && step == MaintenanceStep::Reported => {
            Some("Write the report: what was done, what happened, what follows.".to_owned())
        }
        Ok(_) => None,
    };
    if let Some(error) = error {
        let mut page = show_page(&state, &user, maintenance).await?;
        page.error = Some((step.as_str().to_owned(), error));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let note = note.unwrap_or_default();
    let intent = Intent {
        action: "maintenance_step_done",
        resource_type: Resource::Maintenance,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "step": step, "note_chars": note.chars().count() }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, _token| {
        db::mark_step(tx, id, step, user.staff_id, &user.name, &note).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/incidents/maintenance/{id}#step-{step}")).into_response())
}

/// `POST /incidents/maintenance/{id}/status-page`: announce it as scheduled maintenance on
/// the public status page (its planned window), which ticks the status page step.
pub async fn announce(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<i64>,
    fields: Fields,
) -> Result<Response, AppError> {
    let maintenance = db::maintenance(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let (page, resources) = super::configured_status_page(&state)?;
    if let Some(report) = &maintenance.status_report_id {
        return Err(AppError::Conflict(format!("Already announced on the status page (report {report}).")));
    }
    let title = PublicText::parse(fields.one("title"), MAX_TITLE);
    let message = PublicText::parse(fields.one("message"), 2000);
    let (Ok(title), Ok(message)) = (title.clone(), message.clone()) else {
        let mut page = show_page(&state, &user, maintenance).await?;
        page.public_title = fields.one("title").to_owned();
        page.public_message = fields.one("message").to_owned();
        let error = title.err().or(message.err()).unwrap_or_default();
        page.error = Some((MaintenanceStep::StatusPage.as_str().to_owned(), error));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let monitoring =
        state.cloud.monitoring.clone().ok_or_else(|| AppError::Conflict("BetterStack is not connected.".into()))?;
    let ends = maintenance.planned_start + chrono::Duration::minutes(i64::from(maintenance.planned_minutes));
    let report = StatusReport {
        title,
        message,
        status: ResourceStatus::Maintenance,
        maintenance: Some((maintenance.planned_start, ends)),
    };
    let intent = Intent {
        action: "status_page_published",
        resource_type: Resource::Maintenance,
        resource_id: id.to_string(),
        reason: None,
        details: json!({
            "status_page": page,
            "title": report.title.as_str(),
            "message": report.message.as_str(),
            "starts_at": maintenance.planned_start,
            "ends_at": ends,
        }),
    };
    let call = monitoring.publish_report(&page, &resources, &report);
    let published = super::published_audited(&state, &ctx, intent, call, async |tx, report_id| {
        db::set_maintenance_report(tx, id, report_id).await?;
        let note = format!("Scheduled maintenance report {report_id}: {}", report.message.as_str());
        db::mark_step(tx, id, MaintenanceStep::StatusPage, user.staff_id, &user.name, &note).await?;
        Ok(())
    })
    .await?;
    match published {
        Ok(_) => Ok(Redirect::to(&format!("/incidents/maintenance/{id}#step-status_page")).into_response()),
        Err(e) => {
            let mut page = show_page(&state, &user, maintenance).await?;
            page.public_title = report.title.as_str().to_owned();
            page.public_message = report.message.as_str().to_owned();
            page.error =
                Some((MaintenanceStep::StatusPage.as_str().to_owned(), format!("Not announced: {e}. Try again.")));
            Ok((StatusCode::BAD_GATEWAY, render(&page)?).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "incidents/maintenance_report.html")]
pub struct ReportPage {
    pub shell: Shell,
    pub page: ShowPage,
    pub printed_at: DateTime<Utc>,
}

/// `GET /incidents/maintenance/{id}/report`: the post-maintenance report, printable.
pub async fn show_report(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId<i64>,
) -> Result<Html<String>, AppError> {
    let maintenance = db::maintenance(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let page = show_page(&state, &user, maintenance).await?;
    render(&ReportPage {
        shell: Shell::new(&state, &user, Tab::Maintenance, format!("Maintenance #{id} report")),
        page,
        printed_at: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planned_start_is_read_as_utc_in_the_forms_browsers_send() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T22:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_start("2026-12-06T22:00"), Some(at));
        assert_eq!(parse_start("2026-12-06 22:00"), Some(at));
        assert_eq!(parse_start("tomorrow"), None);
    }
}

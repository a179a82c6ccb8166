//! Console administration: the people who have signed in (disable and enable them) and the
//! live sign-ins (end one). Every change is audited in the same transaction as the change.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, http::StatusCode};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;
use uuid::Uuid;

use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent, Reason};
use crate::auth::policy::{ADMIN, Access, Route};
use crate::auth::{self, CurrentUser, SessionRow, Staff, take_stashed_form};
use crate::error::{AppError, changed};
use crate::ids::{StaffId, StaffSessionId};
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::ReasonForm;
use crate::web::tabs::Tab;
use crate::web::{Shell, paging, render};

const PAGE_SIZE: i64 = 50;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/admin/staff", Access::Roles(ADMIN), list_staff),
        Route::get("/admin/staff/{id}/disable", Access::Roles(ADMIN), confirm_disable),
        Route::post("/admin/staff/{id}/disable", Access::Roles(ADMIN), disable_staff).step_up(),
        Route::post("/admin/staff/{id}/enable", Access::Roles(ADMIN), enable_staff),
        Route::get("/admin/sessions", Access::Roles(ADMIN), list_sessions),
        Route::post("/admin/sessions/{id}/end", Access::Roles(ADMIN), end_session),
    ]
}

#[derive(Deserialize, Default)]
pub struct StaffQuery {
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "admin/staff.html")]
pub struct StaffPage {
    pub shell: Shell,
    pub staff: Vec<Staff>,
    pub me: Uuid,
    pub next: Option<String>,
}

pub async fn list_staff(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<StaffQuery>,
) -> Result<Html<String>, AppError> {
    // Keyset: the page after (name, id) of the last row shown.
    let after = q.after.split_once('|').and_then(|(name, id)| id.parse::<Uuid>().ok().map(|id| (name.to_owned(), id)));
    let mut staff = auth::list_staff(&state.pool, after.as_ref().map(|(n, i)| (n.as_str(), *i)), PAGE_SIZE + 1).await?;
    let next = paging::next_page(&mut staff, PAGE_SIZE)
        .map(|s| crate::web::forms::encode(&format!("{}|{}", s.display_name.to_lowercase(), s.id)));
    render(&StaffPage { shell: Shell::new(&state, &user, Tab::Staff, "Staff"), staff, me: user.staff_id, next })
}

#[derive(Template)]
#[template(path = "admin/disable.html")]
pub struct DisablePage {
    pub shell: Shell,
    pub person: Staff,
    pub reason: String,
    pub reason_error: Option<String>,
}

/// The confirmation page; after a step-up sign-in it shows the reason typed before.
pub async fn confirm_disable(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    PathId(StaffId(id)): PathId<StaffId>,
) -> Result<Html<String>, AppError> {
    let person = auth::find_staff(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let stash = take_stashed_form(&session, &format!("/admin/staff/{id}/disable")).await;
    let reason = stash.get("reason").unwrap_or_default().to_owned();
    render(&DisablePage {
        shell: Shell::new(&state, &user, Tab::Staff, "Disable access"),
        person,
        reason,
        reason_error: None,
    })
}

pub async fn disable_staff(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(StaffId(id)): PathId<StaffId>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    let person = auth::find_staff(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let invalid = |reason_error: String| -> Result<Response, AppError> {
        let page = DisablePage {
            shell: Shell::new(&state, &user, Tab::Staff, "Disable access"),
            person: person.clone(),
            reason: form.reason.clone(),
            reason_error: Some(reason_error),
        };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
    };
    if id == user.staff_id {
        return invalid("You cannot disable yourself; ask another admin.".into());
    }
    let reason = match Reason::parse(&form.reason, "a reason: it goes into the audit log") {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    if person.disabled {
        return invalid(format!("{} is already disabled: nothing to do.", person.display_name));
    }
    let intent = Intent {
        action: "staff_disabled",
        resource_type: Resource::Staff,
        resource_id: id.to_string(),
        reason: Some(reason.clone()),
        details: json!({ "name": person.display_name, "issuer": person.issuer, "subject": person.subject }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| Ok(auth::disable_staff(tx, token, id, &reason).await?))
        .await?;
    Ok(Redirect::to("/admin/staff").into_response())
}

pub async fn enable_staff(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(StaffId(id)): PathId<StaffId>,
) -> Result<Response, AppError> {
    let person = auth::find_staff(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    if !person.disabled {
        return Err(AppError::Conflict(format!("{} is not disabled.", person.display_name)));
    }
    let intent = Intent {
        action: "staff_enabled",
        resource_type: Resource::Staff,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "name": person.display_name }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| Ok(auth::enable_staff(tx, token, id).await?)).await?;
    Ok(Redirect::to("/admin/staff").into_response())
}

#[derive(Template)]
#[template(path = "admin/sessions.html")]
pub struct SessionsPage {
    pub shell: Shell,
    pub sessions: Vec<SessionRow>,
    pub mine: Uuid,
}

pub async fn list_sessions(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let idle = state.config.auth.idle_timeout.as_secs_f64();
    let sessions = auth::live_sessions(&state.pool, idle, 200).await?;
    render(&SessionsPage {
        shell: Shell::new(&state, &user, Tab::SignIns, "Sign-ins"),
        sessions,
        mine: user.session_id,
    })
}

pub async fn end_session(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(StaffSessionId(id)): PathId<StaffSessionId>,
) -> Result<Response, AppError> {
    let intent = Intent {
        action: "staff_session_ended",
        resource_type: Resource::StaffSession,
        resource_id: id.to_string(),
        reason: None,
        details: json!({}),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(auth::end_session(tx, token, id, "ended_by_admin").await?, "That sign-in has already ended.")
    })
    .await?;
    Ok(Redirect::to("/admin/sessions").into_response())
}

//! Sign-in pages and endpoints: the sign-in page (dev form in demo mode), the OIDC redirect
//! and callback, and sign-out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::flood::Decision;
use super::oidc::{self, Identity, PendingLogin, Provider};
use super::policy::{Access, Route};
use super::{CSRF_KEY, LOGIN_KEY, LoginRecord, PENDING_KEY, csrf_token, db, random_token, safe_next, session_error};
use crate::audit::Resource;
use crate::audit::{self, Actor, AuditContext, Event, Intent, Reason};
use crate::config::{Mode, Role};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::Fields;
use crate::web::{Shell, render};

/// Issuer recorded for people signed in through the demo-only dev form.
pub const DEV_ISSUER: &str = "urn:dropops:dev-sign-in";

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/auth/sign-in", Access::Public, sign_in_page),
        Route::get("/auth/login", Access::Public, start_login),
        Route::get("/auth/callback", Access::Public, finish_login),
        Route::post("/auth/dev", Access::Public, dev_sign_in),
        Route::post("/auth/logout", Access::Public, sign_out),
    ]
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
    step_up: Option<String>,
    signed_out: Option<String>,
}

pub struct RoleChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "auth/sign_in.html")]
pub struct SignInPage {
    pub shell: Shell,
    pub csrf: String,
    pub next: String,
    pub dev: bool,
    pub step_up: bool,
    pub notice: Option<&'static str>,
    pub name: String,
    pub roles: Vec<RoleChoice>,
    pub name_error: Option<&'static str>,
    pub roles_error: Option<&'static str>,
}

fn dev_allowed(state: &AppState) -> bool {
    state.config.mode == Mode::Demo && state.config.bind.ip().is_loopback()
}

fn role_choices(checked: &[Role]) -> Vec<RoleChoice> {
    Role::ALL
        .into_iter()
        .map(|r| RoleChoice { value: r.as_str(), label: r.label(), checked: checked.contains(&r) })
        .collect()
}

/// A session of someone not signed in (a pending sign-in, the dev form's token) lives
/// minutes, not the signed-in lifetime: anonymous requests cannot fill the store.
const ANONYMOUS_SESSION: time::Duration = time::Duration::minutes(15);

fn keep_briefly(session: &Session) {
    session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(ANONYMOUS_SESSION)));
}

/// Why the last sign-in ended, as the person should read it.
fn ended_notice(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "ended_by_admin" => "An admin ended your sign-in. Sign in again; if you do not know why, ask an admin.",
        "disabled" => "Your access to the console has been disabled by an admin.",
        "expired" => "Your sign-in reached its maximum length. Sign in again to continue.",
        "idle" => "You were signed out after a period without activity. Sign in again to continue.",
        _ => return None,
    })
}

/// `GET /auth/sign-in`: the dev form in demo mode, the provider button otherwise.
pub async fn sign_in_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SignInQuery>,
) -> Result<Response, AppError> {
    let step_up = q.step_up.is_some();
    // Re-confirming in demo mode: offer the same person and roles again.
    let current = super::guard::signed_in(&state, &session).await?;
    let dev = dev_allowed(&state);
    // Only the dev form needs a token; the provider's button is a link. So an anonymous visit
    // in production stores nothing, and one in demo mode a short-lived session.
    let csrf = if current.is_some() {
        // Signed in already (re-confirming): the session exists, and the layout carries its token.
        csrf_token(&session).await?
    } else if dev {
        keep_briefly(&session);
        csrf_token(&session).await?
    } else {
        String::new()
    };
    let ended: Option<String> = session.remove(super::ENDED_KEY).await.map_err(super::session_error)?;
    let page = SignInPage {
        shell: Shell::public(&state, "Sign in").with_csrf(csrf.clone()),
        csrf,
        next: safe_next(q.next.as_deref()),
        dev,
        step_up,
        notice: if let Some(why) = ended.as_deref().and_then(ended_notice) {
            Some(why)
        } else if step_up {
            Some("This action needs a recent sign-in. Sign in again to continue where you left off.")
        } else if q.signed_out.is_some() {
            Some("You are signed out.")
        } else {
            None
        },
        name: current.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
        roles: role_choices(current.as_ref().map_or(&[][..], |u| &u.roles)),
        name_error: None,
        roles_error: None,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    step_up: Option<String>,
}

async fn provider(state: &AppState) -> Result<&Provider, AppError> {
    state.oidc.get_or_try_init(|| Provider::discover(&state.config)).await.map_err(|e| {
        tracing::error!(error = %e, "OIDC discovery failed");
        AppError::Unavailable("The sign-in provider cannot be reached. Try again in a moment.".into())
    })
}

/// `GET /auth/login`: to the provider, with state, nonce and PKCE kept in this session.
pub async fn start_login(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let next = safe_next(q.next.as_deref());
    if dev_allowed(&state) && state.config.oidc.issuer_url.is_none() {
        let step = if q.step_up.is_some() { "&step_up=1" } else { "" };
        return Ok(
            Redirect::to(&format!("/auth/sign-in?next={}{step}", crate::web::forms::encode(&next))).into_response()
        );
    }
    let provider = provider(&state).await?;
    let max_age = q.step_up.is_some().then_some(std::time::Duration::ZERO);
    let (url, pending) = provider.authorize(next, max_age);
    if super::guard::signed_in(&state, &session).await?.is_none() {
        keep_briefly(&session);
    }
    session.insert(PENDING_KEY, pending).await.map_err(session_error)?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/refused.html")]
pub struct RefusedPage {
    pub shell: Shell,
    pub message: String,
}

fn refused(state: &AppState, status: StatusCode, message: &str) -> Result<Response, AppError> {
    let page = RefusedPage { shell: Shell::public(state, "Sign-in refused"), message: message.to_owned() };
    Ok((status, render(&page)?).into_response())
}

/// Audit a refused sign-in, within the address's budget (auth::flood): a stream of forged
/// callbacks from one address is counted, not written row by row.
async fn audit_refusal(state: &AppState, ctx: &AuditContext, subject: &str, reason: &str) {
    let address = ctx.meta.client_ip.as_deref().unwrap_or("unknown");
    let details = match state.sign_in_failures.decide(address) {
        Decision::Write { suppressed: 0 } => json!({}),
        Decision::Write { suppressed } => json!({ "not_written_before": suppressed }),
        Decision::Suppress => {
            tracing::warn!(address, reason, "failed sign-in over the address's audit budget; counted, not written");
            return;
        }
    };
    let event = Event {
        action: "sign_in_failed",
        resource_type: Resource::Staff,
        resource_id: subject.to_owned(),
        reason: Some(Reason::cut(reason)),
        details,
    };
    if let Err(e) = audit::event(&state.pool, ctx, event).await {
        tracing::error!(error = ?e, "failed sign-in not audited");
    }
}

/// `GET /auth/callback`: the provider's answer. The pending login is taken out of the session
/// first, so a state and code can be used once only.
pub async fn finish_login(
    State(state): State<AppState>,
    session: Session,
    ctx: AuditContext,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let pending: Option<PendingLogin> = session.remove(PENDING_KEY).await.map_err(session_error)?;
    let Some(pending) = pending else {
        audit_refusal(&state, &ctx, "unknown", "no sign-in was pending in this session (expired or replayed)").await;
        return refused(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired or was already used. Start again.",
        );
    };
    if let Some(error) = q.error {
        audit_refusal(&state, &ctx, "unknown", &format!("provider returned error {error}")).await;
        return refused(&state, StatusCode::UNAUTHORIZED, "The sign-in provider did not sign you in.");
    }
    let (Some(code), Some(returned_state)) = (q.code, q.state) else {
        return refused(&state, StatusCode::BAD_REQUEST, "The sign-in answer was incomplete. Start again.");
    };
    if returned_state != pending.state {
        audit_refusal(&state, &ctx, "unknown", "state did not match the pending sign-in").await;
        return refused(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in answer does not belong to your browser. Start again.",
        );
    }
    let identity = match provider(&state).await?.finish(code, &pending).await {
        Ok(identity) => identity,
        Err(e) => {
            audit_refusal(&state, &ctx, "unknown", &e.to_string()).await;
            return refused(&state, StatusCode::UNAUTHORIZED, "Your sign-in could not be verified. Start again.");
        }
    };
    let roles = oidc::roles_for(&state.config, &identity.groups);
    establish(&state, &session, ctx, identity, roles, &pending.next).await
}

/// Start a sign-in for a vouched-for person: refuse people with no role or who are disabled,
/// record the sign-in, give the session a new id and a new CSRF token.
async fn establish(
    state: &AppState,
    session: &Session,
    ctx: AuditContext,
    identity: Identity,
    roles: Vec<Role>,
    next: &str,
) -> Result<Response, AppError> {
    let subject_ref = format!("{} {}", identity.issuer, identity.subject);
    if roles.is_empty() {
        audit_refusal(state, &ctx, &subject_ref, "no console role in the groups claim").await;
        return refused(
            state,
            StatusCode::FORBIDDEN,
            "Your account has no role in the console. Ask an admin to add you to a console group.",
        );
    }
    let role_names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let staff = db::upsert_staff(
        &state.pool,
        &identity.issuer,
        &identity.subject,
        identity.email.as_deref(),
        &identity.name,
        &role_names,
    )
    .await?;
    if staff.disabled {
        audit_refusal(state, &ctx, &subject_ref, "the account is disabled in the console").await;
        return refused(state, StatusCode::FORBIDDEN, "Your console account is disabled. Ask an admin.");
    }
    let session_id = db::create_session(
        &state.pool,
        staff.id,
        &role_names,
        identity.auth_time,
        ctx.meta.client_ip.as_deref(),
        ctx.meta.user_agent.as_deref(),
    )
    .await?;
    // A new session id at sign-in (no fixation) and a new CSRF token with it.
    session.cycle_id().await.map_err(session_error)?;
    session.insert(LOGIN_KEY, LoginRecord { session_id }).await.map_err(session_error)?;
    session.insert(CSRF_KEY, random_token()).await.map_err(session_error)?;
    let actor = Actor {
        name: identity.name.clone(),
        issuer: Some(identity.issuer.clone()),
        subject: Some(identity.subject.clone()),
        email: identity.email.clone(),
        roles,
        session_fingerprint: Some(audit::session_fingerprint(&session_id.to_string())),
    };
    let signed_in = Event {
        action: "sign_in",
        resource_type: Resource::Staff,
        resource_id: staff.id.to_string(),
        reason: None,
        details: json!({ "auth_time": identity.auth_time.to_rfc3339() }),
    };
    audit::event(&state.pool, &AuditContext { actor, meta: ctx.meta }, signed_in).await?;
    Ok(Redirect::to(next).into_response())
}

/// `POST /auth/dev`: demo mode only — sign in as any name with any roles.
pub async fn dev_sign_in(
    State(state): State<AppState>,
    session: Session,
    ctx: AuditContext,
    fields: Fields,
) -> Result<Response, AppError> {
    if !dev_allowed(&state) {
        return Err(AppError::NotFound);
    }
    let name = fields.one("name").trim().to_owned();
    let roles: Vec<Role> = fields.all("role").filter_map(Role::parse).collect();
    let next = safe_next(Some(fields.one("next").trim()).filter(|n| !n.is_empty()));
    let name_error = match name.chars().count() {
        0 => Some("Enter a name."),
        n if n > 100 => Some("Use at most 100 characters."),
        _ => None,
    };
    let roles_error = roles.is_empty().then_some("Choose at least one role.");
    if name_error.is_some() || roles_error.is_some() {
        let page = SignInPage {
            shell: Shell::public(&state, "Sign in"),
            csrf: csrf_token(&session).await?,
            next,
            dev: true,
            step_up: false,
            notice: None,
            name,
            roles: role_choices(&roles),
            name_error,
            roles_error,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let identity = Identity {
        issuer: DEV_ISSUER.into(),
        subject: format!("dev:{}", name.to_lowercase()),
        email: None,
        name,
        groups: vec![],
        auth_time: Utc::now(),
    };
    establish(&state, &session, ctx, identity, roles, &next).await
}

/// `POST /auth/logout`: end the sign-in for good, then the provider's session if it has an
/// end-session endpoint.
pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    ctx: AuditContext,
) -> Result<Response, AppError> {
    let user = super::guard::signed_in(&state, &session).await?;
    if let Some(user) = &user {
        let ctx = AuditContext { actor: Actor::staff(user), meta: ctx.meta };
        let intent = Intent {
            action: "sign_out",
            resource_type: Resource::StaffSession,
            resource_id: user.session_id.to_string(),
            reason: None,
            details: json!({}),
        };
        audit::audited(&state.pool, &ctx, intent, async |tx, token| {
            Ok(db::end_session(tx, token, user.session_id, "signed_out").await?)
        })
        .await?;
    }
    session.flush().await.map_err(session_error)?;
    let signed_out = format!("{}/auth/sign-in?signed_out=1", state.config.base_url());
    let provider_logout = match (&user, state.oidc.get()) {
        (Some(u), Some(p)) if u.issuer != DEV_ISSUER => p.logout_url(&signed_out),
        _ => None,
    };
    Ok(Redirect::to(provider_logout.as_ref().map_or("/auth/sign-in?signed_out=1", |u| u.as_str())).into_response())
}

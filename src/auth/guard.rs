//! The guard every request passes: access rule of the matched route (deny when there is
//! none), CSRF and origin checks on state-changing requests, the live sign-in, roles, and
//! step-up for sensitive actions.

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use openidconnect::url::form_urlencoded;
use serde_json::json;
use tower_sessions::Session;

use super::policy::{Access, Rule};
use super::{CSRF_KEY, CurrentUser, LOGIN_KEY, LoginRecord, STASH_KEY, StashedForm, csrf_token, db, session_error};
use crate::audit::{self, Actor, AuditContext, Event, RequestMeta};
use crate::config::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::is_htmx;

pub async fn guard(State(state): State<AppState>, session: Session, request: Request, next: Next) -> Response {
    match check(&state, &session, request).await {
        Ok(request) => {
            let user = request.extensions().get::<CurrentUser>().cloned();
            let mut response = next.run(request).await;
            // Error pages keep the signed-in person's navigation (web::errors).
            if let Some(user) =
                user.filter(|_| response.status().is_client_error() || response.status().is_server_error())
            {
                response.extensions_mut().insert(user);
            }
            response
        }
        Err(refusal) => refusal,
    }
}

async fn check(state: &AppState, session: &Session, request: Request) -> Result<Request, Response> {
    // No matched path: the fallback answers 404 and needs no rule.
    let Some(path) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()) else {
        return Ok(request);
    };
    let method = request.method().clone();
    let Some(rule) = state.policy.rule(&method, &path) else {
        // A declared path asked with a method it does not have: a client's mistake (or a
        // scanner), not a missing rule.
        if let Some(allowed) = state.policy.methods(&path) {
            tracing::debug!(%method, %path, "method not allowed");
            return Err(method_not_allowed(&allowed));
        }
        tracing::error!(%method, %path, "route has no access rule; denied");
        return Err(AppError::Forbidden.into_response());
    };
    let (request, fields) = if changes_state(&method) && rule.access != Access::PublicReport {
        check_csrf(state, session, request).await?
    } else {
        (request, Vec::new())
    };
    if matches!(rule.access, Access::Public | Access::PublicReport) {
        return Ok(request);
    }
    let Some(user) = signed_in(state, session).await.map_err(IntoResponse::into_response)? else {
        return Err(to_sign_in(&request));
    };
    let mut request = request;
    let meta = RequestMeta::new(request.headers(), request.extensions());
    // The route template, not the path: a path can carry a customer or STR id.
    let target = format!("{method} {path}");
    if let Err(mut refusal) = check_role(state, &user, rule, meta, target).await {
        refusal.extensions_mut().insert(user);
        return Err(refusal);
    }
    if rule.step_up
        && Utc::now() - user.auth_time
            > chrono::Duration::from_std(state.config.auth.step_up_max_age).unwrap_or_default()
    {
        // Keep what was typed, then come back to the form after signing in again: the same
        // path when it has a page, else the page the form was posted from.
        let page = if state.policy.rule(&Method::GET, &path).is_some() {
            request.uri().path().to_owned()
        } else {
            form_page(state, request.headers()).unwrap_or_else(|| "/".to_owned())
        };
        let stash = StashedForm {
            path: page.split('?').next().unwrap_or_default().to_owned(),
            fields: fields.into_iter().filter(|(k, _)| k != "_csrf").collect(),
        };
        session.insert(STASH_KEY, stash).await.map_err(|e| session_error(e).into_response())?;
        let target = format!("/auth/login?step_up=1&next={}", crate::web::forms::encode(&page));
        return Err(redirect(&request, &target));
    }
    request.extensions_mut().insert(user);
    Ok(request)
}

/// The console page a form was posted from (its `Referer`, when that is one of the console's
/// own origins): path and query, to return to.
pub(crate) fn form_page(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    let referer = url::Url::parse(headers.get(header::REFERER)?.to_str().ok()?).ok()?;
    let origin = referer.origin().ascii_serialization();
    if !state.config.accepted_origins().iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
        return None;
    }
    let mut page = referer.path().to_owned();
    if let Some(query) = referer.query() {
        page = format!("{page}?{query}");
    }
    Some(page)
}

/// "This needs the On-call engineer or Admin role; you are signed in as Viewer. An admin can
/// change your roles."
fn needs(access: Access, user: &CurrentUser) -> String {
    let Access::Roles(roles) = access else { return "You do not have permission to do this.".into() };
    let wanted: Vec<&str> = roles.iter().map(|r| r.label()).collect();
    let held: Vec<&str> = user.roles.iter().map(|r| r.label()).collect();
    let wanted = match wanted.split_last() {
        Some((last, [])) => format!("the {last} role"),
        Some((last, rest)) => format!("the {} or {last} role", rest.join(", ")),
        None => "a role nobody has".into(),
    };
    let held = if held.is_empty() { "no role".to_owned() } else { held.join(", ") };
    format!("This needs {wanted}; you are signed in as {held}. An admin can change your roles.")
}

fn method_not_allowed(allowed: &[Method]) -> Response {
    let mut names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    if allowed.contains(&Method::GET) {
        names.push("HEAD");
    }
    let allow =
        axum::http::HeaderValue::from_str(&names.join(", ")).unwrap_or(axum::http::HeaderValue::from_static("GET"));
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, [(axum::http::header::ALLOW, allow)], "Method not allowed")
        .into_response()
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn check_role(
    state: &AppState,
    user: &CurrentUser,
    rule: Rule,
    meta: RequestMeta,
    target: String,
) -> Result<(), Response> {
    if rule.access.allows(&user.roles) {
        return Ok(());
    }
    let ctx = AuditContext { actor: Actor::staff(user), meta };
    let denied = Event {
        action: "access_denied",
        // Someone knocking on a casework page is casework: kept in that chain, out of sight
        // of the roles it is kept from.
        resource_type: if rule.access.is_casework() { audit::Resource::CaseworkRoute } else { audit::Resource::Route },
        resource_id: target,
        reason: None,
        details: json!({ "roles_held": user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>() }),
    };
    if let Err(e) = audit::event(&state.pool, &ctx, denied).await {
        tracing::error!(error = ?e, "denial not audited");
    }
    Err(AppError::NeedsRole(needs(rule.access, user)).into_response())
}

/// The live sign-in of this session, or `None`. Ends sign-ins that went idle, expired, or
/// whose person was disabled, on this very request.
pub async fn signed_in(state: &AppState, session: &Session) -> Result<Option<CurrentUser>, AppError> {
    let Some(login) = session.get::<LoginRecord>(LOGIN_KEY).await.map_err(session_error)? else {
        return Ok(None);
    };
    let auth = &state.config.auth;
    let (idle, max) = (auth.idle_timeout.as_secs_f64(), auth.max_lifetime.as_secs_f64());
    // Casework sign-ins are shorter: a group removed at the provider ends sooner.
    let casework_max = auth.casework_max_lifetime.min(auth.max_lifetime).as_secs_f64();
    match db::touch_session(&state.pool, login.session_id, idle, max, casework_max).await? {
        Some(live) => Ok(Some(CurrentUser {
            staff_id: live.staff_id,
            session_id: login.session_id,
            name: live.display_name,
            email: live.email,
            issuer: live.issuer,
            subject: live.subject,
            roles: live.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            auth_time: live.auth_time,
            csrf: csrf_token(session).await?,
        })),
        None => {
            let reason = match db::end_stale_session(&state.pool, login.session_id, max, casework_max).await? {
                Some(reason) => Some(reason),
                None => db::end_reason(&state.pool, login.session_id).await?,
            };
            tracing::info!(reason = reason.as_deref().unwrap_or("ended"), "sign-in no longer valid");
            session.remove::<LoginRecord>(LOGIN_KEY).await.map_err(session_error)?;
            // The sign-in page says why, once.
            if let Some(reason) = reason {
                session.insert(super::ENDED_KEY, reason).await.map_err(session_error)?;
            }
            Ok(None)
        }
    }
}

/// Same-origin only: the `Sec-Fetch-Site` and `Origin` headers a browser sends, then the
/// session's token from the `X-CSRF-Token` header (htmx) or the `_csrf` form field.
async fn check_csrf(
    state: &AppState,
    session: &Session,
    request: Request,
) -> Result<(Request, Vec<(String, String)>), Response> {
    let path = request.uri().path().to_owned();
    let refuse = |why: &str| {
        tracing::warn!(reason = why, %path, "state-changing request refused");
        AppError::FormExpired.into_response()
    };
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return Err(refuse("cross-site request"));
        }
    }
    // Compared with the configured public URL, never with the request's own Host: a
    // rebound DNS name would make any origin look like "this site".
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        if !state.config.accepted_origins().iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return Err(refuse("foreign origin"));
        }
    }
    let expected = session.get::<String>(CSRF_KEY).await.map_err(|e| session_error(e).into_response())?;
    let header_token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
    let (parts, body) = request.into_parts();
    let (body, fields) = if is_form {
        let bytes = to_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE).into_response())?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        (Body::from(bytes), fields)
    } else {
        (body, Vec::new())
    };
    let presented = header_token.or_else(|| fields.iter().find(|(k, _)| k == "_csrf").map(|(_, v)| v.clone()));
    match (expected, presented) {
        (Some(expected), Some(presented)) if constant_time_eq(expected.as_bytes(), presented.as_bytes()) => {
            Ok((Request::from_parts(parts, body), fields))
        }
        _ => {
            tracing::warn!(path = %parts.uri.path(), "missing or wrong CSRF token");
            Err(AppError::FormExpired.into_response())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Send the person to sign in and back: a redirect for pages, `HX-Redirect` for htmx, and a
/// 401 for anything that is not a page load.
pub fn to_sign_in(request: &Request) -> Response {
    let back = request.uri().path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned());
    let target = format!("/auth/sign-in?next={}", crate::web::forms::encode(&back));
    if request.method() == Method::GET && !is_htmx(request.headers()) {
        return Redirect::to(&target).into_response();
    }
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

fn redirect(request: &Request, target: &str) -> Response {
    if is_htmx(request.headers()) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        response
    } else {
        Redirect::to(target).into_response()
    }
}

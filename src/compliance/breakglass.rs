//! Break-glass (runbook §6.2's emergency "revoke all sessions of a user" at night): an on-call
//! engineer who must act on a customer's account (an account takeover, a BankID incident)
//! opens emergency access with a reason. It lasts `compliance.break_glass_minutes`, lets them
//! look a person up by exact id or email and revoke their sessions — nothing about AML alerts,
//! STRs or transactions — and every view and action under it is audited with its number.
//! Compliance is told in the console and on Slack (who, for how long; never which customer)
//! and closes each use in its review queue.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::deadlines::oslo;
use super::people_db::{self, Person};
use crate::audit::{self, AuditContext, AuditToken, Intent, Reason, Resource};
use crate::auth::CurrentUser;
use crate::error::{AppError, changed};
use crate::ids::PersonId;
use crate::notify::{self, Notice, StaffName};
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::ReasonForm;
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

/// One use of break-glass.
pub struct Use {
    pub id: i64,
    pub staff_id: Uuid,
    pub staff_name: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub reviewed_by_name: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub review_note: Option<String>,
}

impl Use {
    /// When access ended: ended early, or expired.
    pub fn until(&self) -> DateTime<Utc> {
        self.ended_at.map_or(self.expires_at, |e| e.min(self.expires_at))
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }

    pub fn started(&self) -> String {
        oslo(self.started_at)
    }

    pub fn ends(&self) -> String {
        oslo(self.until())
    }

    pub fn minutes_left(&self) -> i64 {
        (self.expires_at - Utc::now()).num_minutes().max(0) + 1
    }
}

/// What was seen and done under a use: its audit rows.
pub struct Trace {
    pub at: DateTime<Utc>,
    pub action: String,
    pub resource_id: String,
    pub outcome: Option<String>,
}

impl Trace {
    pub fn when(&self) -> String {
        oslo(self.at)
    }
}

mod db {
    use super::*;

    pub async fn active(db: impl PgExecutor<'_>, staff: Uuid) -> Result<Option<Use>, sqlx::Error> {
        sqlx::query_as!(
            Use,
            "select id, staff_id, staff_name, reason, started_at, expires_at, ended_at, reviewed_by_name, reviewed_at, review_note
             from console.break_glass where staff_id = $1 and ended_at is null and expires_at > now()
             order by expires_at desc limit 1",
            staff
        )
        .fetch_optional(db)
        .await
    }

    pub async fn next_id(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(r#"select nextval(pg_get_serial_sequence('console.break_glass', 'id')) as "id!""#)
            .fetch_one(db)
            .await
    }

    pub async fn open(
        conn: &mut PgConnection,
        _audited: &AuditToken,
        id: i64,
        user: &CurrentUser,
        reason: &str,
        minutes: u32,
    ) -> Result<bool, sqlx::Error> {
        // One open use per person: a second "open" while one runs changes nothing.
        let done = sqlx::query!(
            "insert into console.break_glass (id, staff_id, staff_name, reason, expires_at)
             select $1, $2, $3, $4, now() + make_interval(mins => $5)
             where not exists (select 1 from console.break_glass
                               where staff_id = $2 and ended_at is null and expires_at > now())",
            id,
            user.staff_id,
            user.name,
            reason,
            i32::try_from(minutes).unwrap_or(60)
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn end(conn: &mut PgConnection, _audited: &AuditToken, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "update console.break_glass set ended_at = now() where id = $1 and ended_at is null and expires_at > now()",
            id
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Unreviewed uses oldest first, then the latest reviewed ones.
    pub async fn uses(db: impl PgExecutor<'_>) -> Result<Vec<Use>, sqlx::Error> {
        sqlx::query_as!(
            Use,
            r#"(select id as "id!", staff_id as "staff_id!", staff_name as "staff_name!", reason as "reason!",
                       started_at as "started_at!", expires_at as "expires_at!", ended_at, reviewed_by_name, reviewed_at, review_note
                from console.break_glass where reviewed_at is null order by started_at, id limit 200)
               union all
               (select id, staff_id, staff_name, reason, started_at, expires_at, ended_at, reviewed_by_name, reviewed_at, review_note
                from console.break_glass where reviewed_at is not null order by started_at desc, id desc limit 50)"#
        )
        .fetch_all(db)
        .await
    }

    pub async fn get(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Use>, sqlx::Error> {
        sqlx::query_as!(
            Use,
            "select id, staff_id, staff_name, reason, started_at, expires_at, ended_at, reviewed_by_name, reviewed_at, review_note
             from console.break_glass where id = $1",
            id
        )
        .fetch_optional(db)
        .await
    }

    /// Uses compliance has not closed yet.
    pub async fn awaiting_review(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(r#"select count(*) as "n!" from console.break_glass where reviewed_at is null"#)
            .fetch_one(db)
            .await
    }

    /// What was seen and done under each of `ids`, in one read (by the index on the number).
    pub async fn traces(db: impl PgExecutor<'_>, ids: &[String]) -> Result<Vec<(String, Trace)>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select details ->> 'break_glass' as "use!", created_at as at, action, resource_id,
                      (select o.outcome from console.audit_entries o where o.intent_id = a.id and o.kind = 'outcome' limit 1) as outcome
               from console.audit_entries a
               where details ? 'break_glass' and details ->> 'break_glass' = any($1) and kind <> 'outcome'
               order by id limit 20000"#,
            ids
        )
        .fetch_all(db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.r#use, Trace { at: r.at, action: r.action, resource_id: r.resource_id, outcome: r.outcome }))
            .collect())
    }

    pub async fn review(
        conn: &mut PgConnection,
        _audited: &AuditToken,
        id: i64,
        by: (Uuid, &str),
        note: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "update console.break_glass set reviewed_by = $2, reviewed_by_name = $3, reviewed_at = now(), review_note = $4
             where id = $1 and reviewed_at is null and (ended_at is not null or expires_at <= now())",
            id,
            by.0,
            by.1,
            note
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

pub use db::awaiting_review;

/// The caller's open use, or a refusal that says how to get one.
async fn require(state: &AppState, user: &CurrentUser) -> Result<Use, AppError> {
    db::active(&state.pool, user.staff_id).await?.ok_or_else(|| {
        AppError::ConflictWith(
            "Emergency customer access is not open for you: open break-glass with a reason first.".into(),
            "/incidents/break-glass".into(),
        )
    })
}

#[derive(Deserialize, Default)]
pub struct LookupParams {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "incidents/break_glass.html")]
pub struct BreakGlassPage {
    pub shell: Shell,
    pub active: Option<Use>,
    pub minutes: u32,
    pub reason: String,
    pub reason_error: Option<String>,
    pub q: String,
    pub lookup_error: Option<&'static str>,
    pub found: Vec<Person>,
    pub searched: bool,
}

impl BreakGlassPage {
    fn new(state: &AppState, user: &CurrentUser, active: Option<Use>) -> Self {
        Self {
            shell: Shell::new(state, user, Tab::BreakGlass, "Emergency customer access"),
            active,
            minutes: state.config.compliance.break_glass,
            reason: String::new(),
            reason_error: None,
            q: String::new(),
            lookup_error: None,
            found: vec![],
            searched: false,
        }
    }
}

/// `GET /incidents/break-glass[?q=]`: open emergency access, or, while it is open, look a
/// person up by exact id or email.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(p): Query<LookupParams>,
) -> Result<Response, AppError> {
    let active = db::active(&state.pool, user.staff_id).await?;
    let q = p.q.trim().to_owned();
    let mut page = BreakGlassPage { q: q.clone(), ..BreakGlassPage::new(&state, &user, active) };
    if q.is_empty() {
        return Ok(render(&page)?.into_response());
    }
    let Some(access) = &page.active else {
        return Err(require(&state, &user).await.err().unwrap_or(AppError::Forbidden));
    };

    if q.chars().count() > 320 || q.chars().count() < 3 {
        page.lookup_error = Some("Type the customer's whole email address or their usr_ id.");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    // Exact id or address only: break-glass does not browse customers.
    let found = people_db::lookup(&state.pool, &q).await?;
    let listed: Vec<&str> = found.iter().map(|p| p.id.as_str()).collect();
    audit::viewed(
        &state.pool,
        &ctx,
        Resource::Person,
        q.clone(),
        json!({ "via": "break_glass_lookup", "break_glass": access.id.to_string(), "matches": found.len(), "listed": listed }),
    )
    .await?;
    page.found = found;
    page.searched = true;
    Ok(render(&page)?.into_response())
}

/// `POST /incidents/break-glass`: open emergency access with a reason.
pub async fn open(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    if db::active(&state.pool, user.staff_id).await?.is_some() {
        return Err(AppError::Conflict("Your emergency access is already open.".into()));
    }
    let minutes = state.config.compliance.break_glass;
    let reason = match Reason::parse(&form.reason, "why you need a customer's account now (the incident, the ticket)") {
        Ok(r) => r,
        Err(e) => {
            let page = BreakGlassPage {
                reason: form.reason,
                reason_error: Some(e),
                ..BreakGlassPage::new(&state, &user, None)
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let id = db::next_id(&state.pool).await?;
    let text = reason.as_str().to_owned();
    let intent = Intent {
        action: "break_glass_opened",
        resource_type: Resource::Person,
        resource_id: format!("break_glass:{id}"),
        reason: Some(reason),
        details: json!({ "break_glass": id.to_string(), "minutes": minutes }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(db::open(tx, token, id, &user, &text, minutes).await?, "Your emergency access is already open.")?;
        notify::queue(tx, &state, &Notice::BreakGlassOpened { access: id, by: StaffName::of(&user), minutes }).await?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/incidents/break-glass").into_response())
}

/// `POST /incidents/break-glass/end`: close one's access before it expires.
pub async fn end(State(state): State<AppState>, user: CurrentUser, ctx: AuditContext) -> Result<Response, AppError> {
    let access = require(&state, &user).await?;
    let intent = Intent {
        action: "break_glass_ended",
        resource_type: Resource::Person,
        resource_id: format!("break_glass:{}", access.id),
        reason: None,
        details: json!({ "break_glass": access.id.to_string() }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(db::end(tx, token, access.id).await?, "This emergency access has already ended.")
    })
    .await?;
    Ok(Redirect::to("/incidents/break-glass").into_response())
}

#[derive(Template)]
#[template(path = "incidents/break_glass_person.html")]
pub struct PersonPage {
    pub shell: Shell,
    pub access: Use,
    pub person: Person,
    pub live_sessions: i64,
    pub reason: String,
    pub reason_error: Option<String>,
}

async fn person_page(state: &AppState, user: &CurrentUser, access: Use, id: &str) -> Result<PersonPage, AppError> {
    let person = people_db::find(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let live_sessions = people_db::live_sessions(&state.pool, id).await?;
    Ok(PersonPage {
        shell: Shell::new(state, user, Tab::BreakGlass, person.name()),
        access,
        person,
        live_sessions,
        reason: String::new(),
        reason_error: None,
    })
}

/// The page is written to the audit trail, as break-glass, before it is sent.
async fn send(
    state: &AppState,
    ctx: &AuditContext,
    status: StatusCode,
    page: &PersonPage,
) -> Result<Response, AppError> {
    let mut details = json!({ "via": "break_glass_person", "break_glass": page.access.id.to_string() });
    if status != StatusCode::OK {
        details["status"] = status.as_u16().into();
    }
    audit::viewed(&state.pool, ctx, Resource::Person, page.person.id.clone(), details).await?;
    Ok((status, render(page)?).into_response())
}

/// `GET /incidents/break-glass/people/{id}`: who the customer is and whether they are signed
/// in — nothing of their transactions, alerts or reports.
pub async fn show_person(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
) -> Result<Response, AppError> {
    people_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let access = require(&state, &user).await?;
    let page = person_page(&state, &user, access, &id).await?;
    send(&state, &ctx, StatusCode::OK, &page).await
}

/// `POST /incidents/break-glass/people/{id}/revoke-sessions`: sign the customer out of Drop
/// everywhere, under break-glass.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    people_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let access = require(&state, &user).await?;
    let reason = match Reason::parse(&form.reason, "a reason") {
        Ok(r) => r,
        Err(e) => {
            let mut page = person_page(&state, &user, access, &id).await?;
            page.reason = form.reason;
            page.reason_error = Some(e);
            return send(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    super::people::revoke(&state, &ctx, &id, reason, json!({ "break_glass": access.id.to_string() })).await?;
    Ok(Redirect::to(&format!("/incidents/break-glass/people/{id}")).into_response())
}

/// A use with what was done under it, for review.
pub struct Reviewed {
    pub access: Use,
    pub traces: Vec<Trace>,
}

#[derive(Template)]
#[template(path = "compliance/break_glass.html")]
pub struct ReviewPage {
    pub shell: Shell,
    pub uses: Vec<Reviewed>,
    /// A note sent back with its error: (use id, note, error).
    pub rejected: Option<(i64, String, String)>,
}

impl ReviewPage {
    pub fn note_for(&self, id: &i64) -> &str {
        match &self.rejected {
            Some((r, note, _)) if r == id => note,
            _ => "",
        }
    }

    pub fn error_for(&self, id: &i64) -> Option<String> {
        match &self.rejected {
            Some((r, _, error)) if r == id => Some(error.clone()),
            _ => None,
        }
    }
}

async fn review_page(state: &AppState, user: &CurrentUser) -> Result<ReviewPage, AppError> {
    // At most 250 uses, their traces read together (the index on the audit rows' number).
    let listed = db::uses(&state.pool).await?;
    let ids: Vec<String> = listed.iter().map(|u| u.id.to_string()).collect();
    let mut by_use: std::collections::HashMap<String, Vec<Trace>> = std::collections::HashMap::new();
    for (id, trace) in db::traces(&state.pool, &ids).await? {
        by_use.entry(id).or_default().push(trace);
    }
    let uses = listed
        .into_iter()
        .map(|access| {
            let traces = by_use.remove(&access.id.to_string()).unwrap_or_default();
            Reviewed { access, traces }
        })
        .collect();
    Ok(ReviewPage { shell: Shell::new(state, user, Tab::BreakGlassReview, "Break-glass review"), uses, rejected: None })
}

/// `GET /compliance/break-glass`: every use, open ones first, with what was seen and done.
pub async fn list_uses(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
) -> Result<Response, AppError> {
    audit::viewed(&state.pool, &ctx, Resource::Person, "break_glass_review".into(), json!({})).await?;
    Ok(render(&review_page(&state, &user).await?)?.into_response())
}

#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    note: String,
}

/// `POST /compliance/break-glass/{id}/review`: compliance closes a use, with its finding.
pub async fn review(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let access = db::get(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    if access.reviewed_at.is_some() {
        return Err(AppError::Conflict("This use is already reviewed.".into()));
    }
    if access.is_active(Utc::now()) {
        return Err(AppError::Conflict("This access is still open: review it once it has ended.".into()));
    }
    let note = match Reason::parse(&form.note, "what you found (justified or not, any follow-up)") {
        Ok(n) => n,
        Err(e) => {
            audit::viewed(&state.pool, &ctx, Resource::Person, "break_glass_review".into(), json!({ "status": 422 }))
                .await?;
            let mut page = review_page(&state, &user).await?;
            page.rejected = Some((id, form.note, e));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let text = note.as_str().to_owned();
    let intent = Intent {
        action: "break_glass_reviewed",
        resource_type: Resource::Person,
        resource_id: format!("break_glass:{id}"),
        reason: Some(note),
        details: json!({ "break_glass_use": id.to_string(), "by": access.staff_name }),
    };
    let by = (user.staff_id, user.name.as_str());
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(db::review(tx, token, id, by, &text).await?, "This use is already reviewed.")
    })
    .await?;
    Ok(Redirect::to("/compliance/break-glass").into_response())
}

//! The end of retention. An erasure is a soft delete: hvitvaskingsloven keeps the records for
//! five years after the relationship ends. When that time has passed, the person is **due
//! for deletion**: a purge clears their personal fields in Drop's tables (only those the
//! schema contract lists in [`crate::contract::PURGED`]) and the console's own copies (its
//! alert review notes). A purge is one transaction, approved by the MLRO after a dry run whose
//! count it must match, and audited. Nobody is purged while an alert about them is open or an
//! STR about them unfiled.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::deadlines::oslo_day;
use crate::audit::{self, AuditContext, AuditToken, Intent, Reason, Resource};
use crate::auth::CurrentUser;
use crate::contract::{Optional, PURGED};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::Shell;
use crate::web::tabs::Tab;

/// Most people one purge clears (one transaction stays short); the rest wait for the next.
pub const BATCH: i64 = 500;
/// Most people the page lists as due (the purge takes its batch from the same list).
const LISTED: i64 = BATCH * 2;

/// Who of `due` a purge clears: those not waiting, in order, at most [`BATCH`].
fn purgeable_of(due: &[Due]) -> Vec<String> {
    due.iter().filter(|d| !d.blocked()).take(BATCH as usize).map(|d| d.user_id.clone()).collect()
}

/// An erased person whose retention has ended.
pub struct Due {
    pub user_id: String,
    pub erased_at: DateTime<Utc>,
    pub retention_ends_at: DateTime<Utc>,
    /// Why they must wait, if they must: an open alert or an unfiled STR.
    pub open_alerts: i64,
    pub unfiled_reports: i64,
}

impl Due {
    pub fn blocked(&self) -> bool {
        self.open_alerts > 0 || self.unfiled_reports > 0
    }

    pub fn ended(&self) -> String {
        oslo_day(self.retention_ends_at).to_string()
    }

    pub fn erased(&self) -> String {
        oslo_day(self.erased_at).to_string()
    }
}

pub struct Purge {
    pub id: i64,
    pub approved_by_name: String,
    pub reason: String,
    pub expected: i32,
    pub purged: i32,
    pub at: DateTime<Utc>,
}

impl Purge {
    pub fn day(&self) -> String {
        oslo_day(self.at).to_string()
    }
}

pub(crate) mod db {
    use super::*;

    /// Everyone due, blocked ones included, oldest retention end first (at most `limit`).
    pub async fn due(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
        sqlx::query_as!(
            Due,
            r#"select e.user_id, e.erased_at, e.retention_ends_at,
                      (select count(*) from aml_alerts a where a.user_id = e.user_id and a.status = 'open') as "open_alerts!",
                      (select count(*) from console.str_cases s where s.user_id = e.user_id and s.status <> 'filed') as "unfiled_reports!"
               from console.erasures e
               where e.purged_at is null and e.retention_ends_at <= now()
               order by e.retention_ends_at, e.user_id limit $1"#,
            limit
        )
        .fetch_all(db)
        .await
    }

    /// The people a purge would clear now: due and not blocked, in order, at most [`BATCH`]
    /// (from the same list the page shows, so the dry run and the purge count alike).
    pub async fn purgeable(db: impl PgExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
        Ok(super::purgeable_of(&due(db, LISTED).await?))
    }

    pub async fn purges(db: impl PgExecutor<'_>) -> Result<Vec<Purge>, sqlx::Error> {
        sqlx::query_as!(
            Purge,
            "select id, approved_by_name, reason, expected, purged, at from console.purges order by id desc limit 50"
        )
        .fetch_all(db)
        .await
    }

    /// What the purge clears, per person, in one transaction; the people it cleared. The
    /// erasure rows are locked first, so two purges never clear the same person twice.
    pub async fn purge(
        conn: &mut PgConnection,
        _audited: &AuditToken,
        user: &CurrentUser,
        reason: &str,
        people: &[String],
        clears: Clears,
    ) -> Result<(i64, Vec<String>), sqlx::Error> {
        let locked: Vec<String> = sqlx::query_scalar!(
            "select user_id from console.erasures where user_id = any($1) and purged_at is null and retention_ends_at <= now()
             order by user_id for update",
            people
        )
        .fetch_all(&mut *conn)
        .await?;
        let id = sqlx::query_scalar!(
            "insert into console.purges (approved_by, approved_by_name, reason, expected, purged) values ($1, $2, $3, $4, $5)
             returning id",
            user.staff_id,
            user.name,
            reason,
            i32::try_from(people.len()).unwrap_or(i32::MAX),
            i32::try_from(locked.len()).unwrap_or(i32::MAX)
        )
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query!("update users set email = id || '@purged.invalid' where id = any($1)", &locked)
            .execute(&mut *conn)
            .await?;
        if clears.full_name {
            // Drop may require a name: a placeholder, never the person's.
            sqlx::query!("update users set full_name = 'Purged customer' where id = any($1)", &locked)
                .execute(&mut *conn)
                .await?;
        }
        if clears.user_agent {
            sqlx::query!("update sessions set user_agent = null where user_id = any($1)", &locked)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query!("update aml_alerts set reviewer_notes = null where user_id = any($1)", &locked)
            .execute(&mut *conn)
            .await?;
        sqlx::query!(
            "update console.alert_events set notes = null
             where alert_id in (select id from aml_alerts where user_id = any($1))",
            &locked
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "update console.erasures set purged_at = now(), purge_id = $2 where user_id = any($1)",
            &locked,
            id
        )
        .execute(&mut *conn)
        .await?;
        Ok((id, locked))
    }
}

/// Which of the optional columns Drop's tables have (cleared only where they exist).
#[derive(Clone, Copy)]
pub struct Clears {
    pub full_name: bool,
    pub user_agent: bool,
}

#[derive(Template)]
#[template(path = "compliance/retention.html")]
pub struct RetentionPage {
    pub shell: Shell,
    pub due: Vec<Due>,
    pub purgeable: usize,
    pub purges: Vec<Purge>,
    pub fields: &'static [(&'static str, &'static str, &'static str)],
    pub reason: String,
    pub reason_error: Option<String>,
}

impl super::Casework for RetentionPage {
    fn seen(&self) -> super::Seen {
        let listed: Vec<&str> = self.due.iter().map(|d| d.user_id.as_str()).collect();
        super::Seen {
            resource_type: Resource::Person,
            resource_id: "retention_due".into(),
            details: json!({ "listed": listed }),
        }
    }
}

async fn page(state: &AppState, user: &CurrentUser, reason: String) -> Result<RetentionPage, AppError> {
    let due = db::due(&state.pool, LISTED).await?;
    let purgeable = purgeable_of(&due).len();
    Ok(RetentionPage {
        shell: Shell::new(state, user, Tab::Retention, "Retention"),
        due,
        purgeable,
        purges: db::purges(&state.pool).await?,
        fields: PURGED,
        reason,
        reason_error: None,
    })
}

/// `GET /compliance/retention`: who is due for deletion, who must wait and why, and the dry
/// run: how many one purge would clear now.
pub async fn show(State(state): State<AppState>, user: CurrentUser, ctx: AuditContext) -> Result<Response, AppError> {
    let page = page(&state, &user, String::new()).await?;
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

#[derive(Deserialize)]
pub struct PurgeForm {
    #[serde(default)]
    reason: String,
    /// The dry run's count the MLRO approved.
    #[serde(default)]
    expected: String,
}

/// `POST /compliance/retention/purge`: the MLRO approves the purge the dry run counted.
pub async fn purge(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Form(form): Form<PurgeForm>,
) -> Result<Response, AppError> {
    let people = db::purgeable(&state.pool).await?;
    let expected: usize = form
        .expected
        .trim()
        .parse()
        .map_err(|_| AppError::Validation("Run the dry run first: its count is missing.".into()))?;
    if expected != people.len() {
        return Err(AppError::Conflict(format!(
            "The list changed since the dry run ({expected} then, {} now): look at it again before approving.",
            people.len()
        )));
    }
    if people.is_empty() {
        return Err(AppError::Conflict("Nobody is due for deletion now.".into()));
    }
    let reason = match Reason::parse(&form.reason, "the approval (the retention review it follows)") {
        Ok(r) => r,
        Err(e) => {
            let mut page = page(&state, &user, form.reason).await?;
            page.reason_error = Some(e);
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    let contract = state.contract().await?;
    let clears =
        Clears { full_name: contract.has(Optional::FullName), user_agent: contract.has(Optional::SessionDevice) };
    let text = reason.as_str().to_owned();
    let intent = Intent {
        action: "retention_purge",
        resource_type: Resource::Person,
        resource_id: "retention".into(),
        reason: Some(reason),
        details: json!({ "expected": expected, "people": people }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        let (_, cleared) = db::purge(tx, token, &user, &text, &people, clears).await?;
        if cleared.len() != people.len() {
            // Another purge took some of them a moment ago: nothing changes, look again.
            return Err(AppError::Conflict("Another purge ran a moment ago: look at the list again.".into()));
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/compliance/retention").into_response())
}

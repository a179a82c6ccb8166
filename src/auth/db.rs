//! Staff and their sign-ins.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::audit::{AuditToken, Reason};

#[derive(Clone)]
pub struct Staff {
    pub id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub display_name: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub first_sign_in_at: DateTime<Utc>,
    pub last_sign_in_at: DateTime<Utc>,
}

/// Record a sign-in of `issuer`+`subject`, creating the person on their first one. Returns
/// the row as it now stands (a disabled person stays disabled).
pub async fn upsert_staff(
    db: impl PgExecutor<'_>,
    issuer: &str,
    subject: &str,
    email: Option<&str>,
    display_name: &str,
    roles: &[String],
) -> Result<Staff, sqlx::Error> {
    sqlx::query_as!(
        Staff,
        "insert into console.staff (issuer, subject, email, display_name, roles)
         values ($1, $2, $3, $4, $5)
         on conflict (issuer, subject) do update
            set email = excluded.email, display_name = excluded.display_name, roles = excluded.roles,
                last_sign_in_at = now()
         returning id, issuer, subject, email, display_name, roles, disabled, disabled_reason,
                   first_sign_in_at, last_sign_in_at",
        issuer,
        subject,
        email,
        display_name,
        roles,
    )
    .fetch_one(db)
    .await
}

pub async fn create_session(
    db: impl PgExecutor<'_>,
    staff_id: Uuid,
    roles: &[String],
    auth_time: DateTime<Utc>,
    client_ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into console.staff_sessions (id, staff_id, roles, auth_time, client_ip, user_agent)
         values (gen_random_uuid(), $1, $2, $3, $4, $5) returning id",
        staff_id,
        roles,
        auth_time,
        client_ip,
        user_agent,
    )
    .fetch_one(db)
    .await
}

/// A live sign-in, as the guard needs it on every request.
pub struct LiveSession {
    pub staff_id: Uuid,
    pub display_name: String,
    pub email: Option<String>,
    pub issuer: String,
    pub subject: String,
    pub roles: Vec<String>,
    pub auth_time: DateTime<Utc>,
}

/// The sign-in, if it is still live: not ended, person not disabled, not idle longer than
/// `idle_secs`, not older than `max_secs`; marked as seen now when it was last marked more than
/// `SEEN_EVERY` ago. One statement per request, and a write only every `SEEN_EVERY`: a write
/// waits for its commit to reach the disk (3 ms here, more on a replicated RDS), and every page
/// paid it. Idle time is then counted up to `SEEN_EVERY` early.
pub async fn touch_session(
    db: impl PgExecutor<'_>,
    id: Uuid,
    idle_secs: f64,
    max_secs: f64,
    casework_max_secs: f64,
) -> Result<Option<LiveSession>, sqlx::Error> {
    sqlx::query_as!(
        LiveSession,
        r#"with live as (
             select s.id, s.last_seen_at, st.id as staff_id, st.display_name, st.email, st.issuer, st.subject, s.roles,
                    s.auth_time
             from console.staff_sessions s join console.staff st on st.id = s.staff_id
             where s.id = $1 and s.ended_at is null and not st.disabled
               and s.last_seen_at > now() - make_interval(secs => $2)
               and s.created_at > now() - make_interval(secs => case when s.roles && $5::text[] then $4::float8 else $3::float8 end)
           ), seen as (
             update console.staff_sessions s set last_seen_at = now()
             from live where s.id = live.id and live.last_seen_at < now() - make_interval(secs => $6)
             returning s.id
           )
           select staff_id as "staff_id!", display_name as "display_name!", email, issuer as "issuer!",
                  subject as "subject!", roles as "roles!", auth_time as "auth_time!"
           from live"#,
        id,
        idle_secs,
        max_secs,
        casework_max_secs,
        &casework_roles(),
        SEEN_EVERY.as_secs_f64()
    )
    .fetch_optional(db)
    .await
}

/// How often a sign-in's `last_seen_at` is written while it is used.
pub const SEEN_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Roles whose sign-ins end after `auth.casework_max_lifetime_secs` instead: the casework
/// roles of the access table.
fn casework_roles() -> Vec<String> {
    super::policy::CASEWORK_READ.iter().map(|r| r.as_str().to_owned()).collect()
}

/// End a sign-in that is no longer live, naming why. Returns the reason recorded, if the row
/// was still open.
pub async fn end_stale_session(
    db: impl PgExecutor<'_>,
    id: Uuid,
    max_secs: f64,
    casework_max_secs: f64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update console.staff_sessions s
           set ended_at = now(),
               end_reason = case when st.disabled then 'disabled'
                                 when s.created_at <= now() - make_interval(secs =>
                                          case when s.roles && $4::text[] then $3::float8 else $2::float8 end) then 'expired'
                                 else 'idle' end
           from console.staff st
           where s.id = $1 and st.id = s.staff_id and s.ended_at is null
           returning s.end_reason as "reason!""#,
        id,
        max_secs,
        casework_max_secs,
        &casework_roles()
    )
    .fetch_optional(db)
    .await
}

/// Why a sign-in ended, once it has (an admin ended it, the person was disabled, …).
pub async fn end_reason(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let reason = sqlx::query_scalar!("select end_reason from console.staff_sessions where id = $1", id)
        .fetch_optional(db)
        .await?;
    Ok(reason.flatten())
}

/// End a sign-in on purpose (sign-out, or an admin ending it). Needs its audit token.
pub async fn end_session(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update console.staff_sessions set ended_at = now(), end_reason = $2 where id = $1 and ended_at is null",
        id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find_staff(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Staff>, sqlx::Error> {
    sqlx::query_as!(
        Staff,
        "select id, issuer, subject, email, display_name, roles, disabled, disabled_reason, first_sign_in_at,
                last_sign_in_at
         from console.staff where id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

/// Everyone who has signed in, by name; keyset-paginated on (lower(name), id).
pub async fn list_staff(
    db: impl PgExecutor<'_>,
    after: Option<(&str, Uuid)>,
    limit: i64,
) -> Result<Vec<Staff>, sqlx::Error> {
    let (after_name, after_id) = after.map_or((None, None), |(n, i)| (Some(n.to_lowercase()), Some(i)));
    sqlx::query_as!(
        Staff,
        "select id, issuer, subject, email, display_name, roles, disabled, disabled_reason, first_sign_in_at,
                last_sign_in_at
         from console.staff
         where $1::text is null or (lower(display_name), id) > ($1, $2)
         order by lower(display_name), id
         limit $3",
        after_name,
        after_id,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Disable a person and end their live sign-ins. Needs its audit token.
pub async fn disable_staff(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: Uuid,
    reason: &Reason,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update console.staff set disabled = true, disabled_at = now(), disabled_reason = $2
         where id = $1 and not disabled",
        id,
        reason.as_str()
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update console.staff_sessions set ended_at = now(), end_reason = 'disabled' where staff_id = $1 and ended_at is null",
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn enable_staff(conn: &mut PgConnection, _audited: &AuditToken, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update console.staff set disabled = false, disabled_at = null, disabled_reason = null where id = $1 and disabled",
        id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub struct SessionRow {
    pub id: Uuid,
    pub staff_id: Uuid,
    pub display_name: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Live sign-ins, most recently active first (those idle past the timeout are not listed).
pub async fn live_sessions(
    db: impl PgExecutor<'_>,
    idle_secs: f64,
    limit: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as!(
        SessionRow,
        "select s.id, s.staff_id, st.display_name, st.email, s.roles, s.created_at, s.last_seen_at, s.client_ip,
                s.user_agent
         from console.staff_sessions s join console.staff st on st.id = s.staff_id
         where s.ended_at is null and s.last_seen_at > now() - make_interval(secs => $1)
         order by s.last_seen_at desc, s.id
         limit $2",
        idle_secs,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The web sessions' table, for [`super::store::PgSessionStore`]. Inserts a new session
/// unless the id is taken (then `false`: the store draws another).
pub async fn insert_session(
    pool: &sqlx::PgPool,
    id: &str,
    data: serde_json::Value,
    expiry: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "insert into console.web_sessions (id, data, expiry_date) values ($1, $2, $3) on conflict (id) do nothing",
        id,
        data,
        expiry,
    )
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn save_session(
    pool: &sqlx::PgPool,
    id: &str,
    data: serde_json::Value,
    expiry: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.web_sessions (id, data, expiry_date) values ($1, $2, $3)
         on conflict (id) do update set data = excluded.data, expiry_date = excluded.expiry_date",
        id,
        data,
        expiry,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A session's data and expiry, unless it has expired.
pub async fn load_session(
    pool: &sqlx::PgPool,
    id: &str,
) -> Result<Option<(serde_json::Value, DateTime<Utc>)>, sqlx::Error> {
    let row =
        sqlx::query!("select data, expiry_date from console.web_sessions where id = $1 and expiry_date > now()", id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| (r.data, r.expiry_date)))
}

pub async fn delete_session(pool: &sqlx::PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from console.web_sessions where id = $1", id).execute(pool).await?;
    Ok(())
}

/// Remove sessions past their expiry; returns how many.
pub async fn delete_expired_sessions(pool: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from console.web_sessions where expiry_date < now()").execute(pool).await?;
    Ok(done.rows_affected())
}

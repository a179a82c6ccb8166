//! GDPR SQL: data-access requests, a person's data for export, and erasure.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::audit::AuditToken;

pub struct AccessRequest {
    pub id: String,
    pub user_id: String,
    /// The person's name, or their email where Drop keeps no names.
    pub person_name: String,
    pub email: String,
    pub kind: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    /// Why the answer was put off by two months, by whom and when (GDPR art. 12(3)).
    pub extension_reason: Option<String>,
    pub extended_by_name: Option<String>,
    pub extended_at: Option<DateTime<Utc>>,
}

/// Open requests oldest first, then the latest fulfilled ones.
pub async fn requests(db: impl PgExecutor<'_>) -> Result<Vec<AccessRequest>, sqlx::Error> {
    sqlx::query_as!(
        AccessRequest,
        r#"(select r.id as "id!", r.user_id as "user_id!", coalesce(to_jsonb(u) ->> 'full_name', u.email) as "person_name!",
                  u.email as "email!", coalesce(to_jsonb(r) ->> 'kind', 'access') as "kind!", r.status as "status!", r.created_at as "created_at!", r.fulfilled_at,
                  x.reason as "extension_reason?", x.extended_by_name as "extended_by_name?", x.extended_at as "extended_at?"
          from data_access_requests r join users u on u.id = r.user_id
          left join console.data_request_extensions x on x.request_id = r.id
          where r.status = 'open' order by r.created_at, r.id limit 500)
         union all
         (select r.id, r.user_id, coalesce(to_jsonb(u) ->> 'full_name', u.email), u.email,
                 coalesce(to_jsonb(r) ->> 'kind', 'access'), r.status, r.created_at, r.fulfilled_at,
                 x.reason, x.extended_by_name, x.extended_at
          from data_access_requests r join users u on u.id = r.user_id
          left join console.data_request_extensions x on x.request_id = r.id
          where r.status <> 'open' order by r.fulfilled_at desc nulls last, r.id limit 50)"#
    )
    .fetch_all(db)
    .await
}

/// One request, for its extension page.
pub async fn request(db: impl PgExecutor<'_>, id: &str) -> Result<Option<AccessRequest>, sqlx::Error> {
    sqlx::query_as!(
        AccessRequest,
        r#"select r.id as "id!", r.user_id as "user_id!", coalesce(to_jsonb(u) ->> 'full_name', u.email) as "person_name!",
                  u.email as "email!", coalesce(to_jsonb(r) ->> 'kind', 'access') as "kind!", r.status as "status!", r.created_at as "created_at!", r.fulfilled_at,
                  x.reason as "extension_reason?", x.extended_by_name as "extended_by_name?", x.extended_at as "extended_at?"
           from data_access_requests r join users u on u.id = r.user_id
           left join console.data_request_extensions x on x.request_id = r.id
           where r.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Record the two-month extension of an open request's answer; false when it already has one
/// or is answered.
pub async fn extend(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    reason: &str,
    staff: (uuid::Uuid, &str),
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into console.data_request_extensions (request_id, reason, extended_by, extended_by_name)
         select r.id, $2, $3, $4 from data_access_requests r where r.id = $1 and r.status = 'open'
         on conflict (request_id) do nothing",
        id,
        reason,
        staff.0,
        staff.1
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn fulfil(conn: &mut PgConnection, _audited: &AuditToken, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update data_access_requests set status = 'fulfilled', fulfilled_at = now() where id = $1 and status = 'open'",
        id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Everything Drop's tables hold about a person that the access right covers, one key per
/// table (`user`, `sessions`, `transactions`, `data_access_requests`); `None` for a person
/// Drop does not know. AML alerts and STRs are left out on purpose: the AML act forbids
/// telling a customer about them (tipping-off), which limits the right of access.
pub async fn drop_export(
    db: &mut PgConnection,
    user_id: &str,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, sqlx::Error> {
    let Some(person) = sqlx::query_scalar!(r#"select to_jsonb(u) as "v!" from users u where id = $1"#, user_id)
        .fetch_optional(&mut *db)
        .await?
    else {
        return Ok(None);
    };
    let sessions = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(to_jsonb(s) order by s.created_at), '[]') as "v!" from sessions s where user_id = $1"#,
        user_id
    )
    .fetch_one(&mut *db)
    .await?;
    let transactions = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(to_jsonb(t) order by t.created_at), '[]') as "v!" from transactions t where user_id = $1"#,
        user_id
    )
    .fetch_one(&mut *db)
    .await?;
    let requests = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(to_jsonb(r) order by r.created_at), '[]') as "v!" from data_access_requests r where user_id = $1"#,
        user_id
    )
    .fetch_one(&mut *db)
    .await?;
    let mut records = serde_json::Map::new();
    records.insert("user".into(), person);
    records.insert("sessions".into(), sessions);
    records.insert("transactions".into(), transactions);
    records.insert("data_access_requests".into(), requests);
    Ok(Some(records))
}

/// Why erasure must wait, if it must: open alerts and unfiled STRs.
pub struct Blockers {
    pub open_alerts: i64,
    pub unfiled_reports: i64,
}

pub async fn blockers(db: impl PgExecutor<'_>, user_id: &str) -> Result<Blockers, sqlx::Error> {
    sqlx::query_as!(
        Blockers,
        r#"select (select count(*) from aml_alerts where user_id = $1 and status = 'open') as "open_alerts!",
                  (select count(*) from console.str_cases where user_id = $1 and status <> 'filed') as "unfiled_reports!""#,
        user_id
    )
    .fetch_one(db)
    .await
}

/// The end of the business relationship: the later of the last transaction and now (an
/// erasure ends the relationship).
pub async fn last_activity(db: impl PgExecutor<'_>, user_id: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!("select max(created_at) from transactions where user_id = $1", user_id).fetch_one(db).await
}

/// Soft delete: mark the person deleted with their retention date, revoke every session and
/// remove the device data (user agents, where Drop keeps them: `clear_devices`) that the AML
/// act does not require us to keep.
pub async fn erase(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    user_id: &str,
    retention_ends_at: DateTime<Utc>,
    clear_devices: bool,
) -> Result<bool, sqlx::Error> {
    // Drop's soft delete (the runbook's), and the console's record of when and until when.
    let done = sqlx::query!("update users set deleted_at = now() where id = $1 and deleted_at is null", user_id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 1 {
        sqlx::query!(
            "insert into console.erasures (user_id, retention_ends_at) values ($1, $2)
             on conflict (user_id) do update set erased_at = now(), retention_ends_at = excluded.retention_ends_at",
            user_id,
            retention_ends_at
        )
        .execute(&mut *conn)
        .await?;
    }
    if done.rows_affected() == 1 && clear_devices {
        sqlx::query!("update sessions set revoked = 1, user_agent = null where user_id = $1", user_id)
            .execute(&mut *conn)
            .await?;
    } else if done.rows_affected() == 1 {
        sqlx::query!("update sessions set revoked = 1 where user_id = $1", user_id).execute(&mut *conn).await?;
    }
    Ok(done.rows_affected() == 1)
}

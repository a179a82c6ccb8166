//! The routine checks' SQL (`console.checklist_runs`).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::checks::{Item, Submission};
use crate::audit::AuditToken;
use crate::auth::CurrentUser;

pub(super) async fn history(db: impl PgExecutor<'_>, name: &str, limit: i64) -> Result<Vec<Submission>, sqlx::Error> {
    sqlx::query_as!(
        Submission,
        "select id, submitted_by_name, submitted_at, all_ok, items from console.checklist_runs
         where checklist = $1 order by submitted_at desc, id desc limit $2",
        name,
        limit
    )
    .fetch_all(db)
    .await
}

/// When each checklist was last submitted: one index probe per checklist, whatever the history.
pub async fn last_submitted(
    db: impl PgExecutor<'_>,
    names: &[String],
) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select c.name as "checklist!", last.at as "at!"
           from unnest($1::text[]) as c(name)
           cross join lateral (select r.submitted_at as at from console.checklist_runs r
                               where r.checklist = c.name order by r.submitted_at desc, r.id desc limit 1) last"#,
        names
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.checklist, r.at)).collect())
}

pub(super) async fn store(
    conn: &mut sqlx::PgConnection,
    _audited: &AuditToken,
    name: &str,
    user: &CurrentUser,
    items: &[Item],
) -> Result<(), sqlx::Error> {
    let all_ok = items.iter().all(|i| i.ok);
    sqlx::query!(
        "insert into console.checklist_runs (checklist, submitted_by, submitted_by_name, all_ok, items) values ($1, $2, $3, $4, $5)",
        name,
        user.staff_id,
        user.name,
        all_ok,
        serde_json::to_value(items).unwrap_or_default()
    )
    .execute(conn)
    .await?;
    Ok(())
}

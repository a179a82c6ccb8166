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

/// Record the cards whose colour changed since their last row (one statement for all).
pub(super) async fn record_changes(
    db: impl PgExecutor<'_>,
    keys: &[String],
    tones: &[String],
    titles: &[String],
    values: &[String],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"insert into console.health_changes (card, tone, title, value)
           select c.card, c.tone, c.title, left(c.value, 500)
           from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as c(card, tone, title, value)
           where (select h.tone from console.health_changes h where h.card = c.card order by h.id desc limit 1)
                 is distinct from c.tone"#,
        keys,
        tones,
        titles,
        values
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A change of a health card's colour.
pub struct HealthChange {
    pub id: i64,
    pub card: String,
    pub tone: String,
    pub title: String,
    pub value: String,
    pub at: DateTime<Utc>,
}

/// The changes in `[from, to)`, oldest first.
pub async fn changes_between(
    db: impl PgExecutor<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<HealthChange>, sqlx::Error> {
    sqlx::query_as!(
        HealthChange,
        "select id, card, tone, title, value, at from console.health_changes
         where at >= $1 and at < $2 order by at, id limit $3",
        from,
        to,
        limit
    )
    .fetch_all(db)
    .await
}

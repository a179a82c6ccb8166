//! AML alert SQL.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::status::AlertStatus;
use crate::audit::{AuditToken, Reason};

pub struct AlertRow {
    pub id: String,
    pub email: String,
    /// The rule's code: optional in the schema contract (`aml_alerts.rule`).
    pub rule: Option<String>,
    pub status: AlertStatus,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub assignee_name: Option<String>,
    pub send_amount: Option<Decimal>,
    pub send_currency: Option<String>,
}

/// Queue criteria, checked.
pub struct QueueQuery {
    pub status: Option<AlertStatus>,
    pub rule: Option<String>,
    /// "me" or "unassigned".
    pub assignee: Option<String>,
    pub me: Uuid,
    pub min_amount: Option<Decimal>,
    pub currency: Option<String>,
    pub older_than_hours: Option<i32>,
    pub newest_first: bool,
    pub after: Option<(DateTime<Utc>, String)>,
}

pub async fn queue(db: impl PgExecutor<'_>, q: &QueueQuery, limit: i64) -> Result<Vec<AlertRow>, sqlx::Error> {
    let (after_time, after_id) = q.after.clone().unzip();
    sqlx::query_as!(
        AlertRow,
        r#"select a.id, u.email, to_jsonb(a) ->> 'rule' as rule, a.status as "status: AlertStatus", r.outcome as "outcome?", a.created_at,
                  s.display_name as "assignee_name?",
                  t.send_amount as "send_amount?", t.send_currency::text as "send_currency?"
           from aml_alerts a
           join users u on u.id = a.user_id
           left join transactions t on t.id = a.transaction_id
           left join console.alert_reviews r on r.alert_id = a.id
           left join console.staff s on s.id = r.assignee_id
           where ($1::text is null or a.status = $1)
             and ($2::text is null or to_jsonb(a) ->> 'rule' = $2)
             and ($3::text is null or ($3 = 'me' and r.assignee_id = $4) or ($3 = 'unassigned' and r.assignee_id is null))
             and ($5::numeric is null or t.send_amount >= $5)
             and ($6::text is null or t.send_currency = $6)
             and ($7::int is null or a.created_at < now() - make_interval(hours => $7))
             and ($9::timestamptz is null
                  or (not $8 and (a.created_at, a.id) > ($9, $10))
                  or ($8 and (a.created_at, a.id) < ($9, $10)))
           order by case when $8 then a.created_at end desc, case when $8 then a.id end desc,
                    a.created_at, a.id
           limit $11"#,
        q.status.map(AlertStatus::as_str),
        q.rule,
        q.assignee,
        q.me,
        q.min_amount,
        q.currency,
        q.older_than_hours,
        q.newest_first,
        after_time,
        after_id,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The rules alerts have been raised under, for the filter (only where Drop records them).
pub async fn rules(db: impl PgExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
    // A skip scan: one index probe per distinct rule, not a read of every alert.
    sqlx::query_scalar!(
        r#"with recursive rules as (
             (select rule from aml_alerts order by rule limit 1)
             union all
             select (select a.rule from aml_alerts a where a.rule > r.rule order by a.rule limit 1)
             from rules r where r.rule is not null
           )
           select rule as "rule!" from rules where rule is not null"#
    )
    .fetch_all(db)
    .await
}

pub struct AlertDetail {
    pub id: String,
    pub user_id: String,
    pub rule: Option<String>,
    pub status: AlertStatus,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewer_notes: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub assignee_name: Option<String>,
    pub transaction_id: Option<String>,
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> Result<Option<AlertDetail>, sqlx::Error> {
    sqlx::query_as!(
        AlertDetail,
        r#"select a.id, a.user_id, to_jsonb(a) ->> 'rule' as rule, a.status as "status: AlertStatus", r.outcome as "outcome?", a.created_at, a.reviewed_at,
                  a.reviewer_notes, r.assignee_id as "assignee_id?", s.display_name as "assignee_name?", a.transaction_id
           from aml_alerts a
           left join console.alert_reviews r on r.alert_id = a.id
           left join console.staff s on s.id = r.assignee_id
           where a.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

pub struct AlertEvent {
    pub at: DateTime<Utc>,
    pub staff_name: String,
    pub kind: String,
    pub outcome: Option<String>,
    pub notes: Option<String>,
}

pub async fn events(db: impl PgExecutor<'_>, alert_id: &str) -> Result<Vec<AlertEvent>, sqlx::Error> {
    sqlx::query_as!(
        AlertEvent,
        "select at, staff_name, kind, outcome, notes from console.alert_events where alert_id = $1 order by id",
        alert_id
    )
    .fetch_all(db)
    .await
}

/// Other alerts of the same person, newest first, with their outcomes.
pub async fn for_person(db: impl PgExecutor<'_>, user_id: &str, except: &str) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as!(
        AlertRow,
        r#"select a.id, u.email, to_jsonb(a) ->> 'rule' as rule, a.status as "status: AlertStatus", r.outcome as "outcome?", a.created_at,
                  s.display_name as "assignee_name?",
                  t.send_amount as "send_amount?", t.send_currency::text as "send_currency?"
           from aml_alerts a
           join users u on u.id = a.user_id
           left join transactions t on t.id = a.transaction_id
           left join console.alert_reviews r on r.alert_id = a.id
           left join console.staff s on s.id = r.assignee_id
           where a.user_id = $1 and a.id <> $2
             -- Earlier means raised before this one.
             and a.created_at < (select created_at from aml_alerts where id = $2)
           order by a.created_at desc
           limit 50"#,
        user_id,
        except
    )
    .fetch_all(db)
    .await
}

async fn log_event(
    conn: &mut PgConnection,
    alert_id: &str,
    staff: (Uuid, &str),
    kind: &str,
    outcome: Option<&str>,
    notes: Option<&Reason>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.alert_events (alert_id, staff_id, staff_name, kind, outcome, notes) values ($1, $2, $3, $4, $5, $6)",
        alert_id,
        staff.0,
        staff.1,
        kind,
        outcome,
        notes.map(Reason::as_str)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Assign an open alert; false when it is not open.
pub async fn assign(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    staff: (Uuid, &str),
) -> Result<bool, sqlx::Error> {
    // Who holds an alert is the console's (console.alert_reviews); Drop's row says it is open.
    let done = sqlx::query!(
        "insert into console.alert_reviews (alert_id, assignee_id)
         select id, $2 from aml_alerts where id = $1 and status = 'open'
         on conflict (alert_id) do update set assignee_id = excluded.assignee_id",
        id,
        staff.0
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        log_event(conn, id, staff, "assigned", None, None).await?;
    }
    Ok(done.rows_affected() == 1)
}

/// The oldest open alert nobody has taken, locked so two people pressing "next" get two.
pub async fn oldest_unassigned(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select a.id from aml_alerts a
          where a.status = 'open'
            and not exists (select 1 from console.alert_reviews r where r.alert_id = a.id and r.assignee_id is not null)
          order by a.created_at, a.id limit 1 for update of a skip locked"
    )
    .fetch_optional(conn)
    .await
}

/// Close an open alert; false when it was not open (closed meanwhile by someone else).
pub async fn close(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    staff: (Uuid, &str),
    outcome: &str,
    notes: &Reason,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update aml_alerts set status = 'closed', reviewer_notes = $2, reviewed_at = now()
         where id = $1 and status = 'open'",
        id,
        notes.as_str()
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        sqlx::query!(
            "insert into console.alert_reviews (alert_id, outcome) values ($1, $2)
             on conflict (alert_id) do update set outcome = excluded.outcome",
            id,
            outcome
        )
        .execute(&mut *conn)
        .await?;
        log_event(conn, id, staff, "closed", Some(outcome), Some(notes)).await?;
    }
    Ok(done.rows_affected() == 1)
}

pub async fn reopen(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    staff: (Uuid, &str),
    reason: &Reason,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update aml_alerts set status = 'open', reviewed_at = null where id = $1 and status = 'closed'",
        id
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        sqlx::query!("update console.alert_reviews set outcome = null where alert_id = $1", id)
            .execute(&mut *conn)
            .await?;
        log_event(conn, id, staff, "reopened", None, Some(reason)).await?;
    }
    Ok(done.rows_affected() == 1)
}

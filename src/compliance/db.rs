//! Compliance SQL. Each count reads a partial index over a small set (open alerts, pending
//! applicants, open requests), never a whole table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

pub struct QueueCounts {
    pub open_alerts: i64,
    pub oldest_open_alert: Option<DateTime<Utc>>,
    pub kyc_pending: i64,
    pub kyc_pending_over_24h: i64,
    pub open_access_requests: i64,
}

/// The queues' sizes. `since_change`: Drop records when a KYC status last changed
/// (`users.kyc_updated_at`, optional in the schema contract); without it the wait counts from
/// sign-up.
pub async fn queue_counts(db: &sqlx::PgPool, since_change: bool) -> Result<QueueCounts, sqlx::Error> {
    let (counts, kyc_pending_over_24h) = tokio::try_join!(
        sqlx::query!(
            r#"select
                 (select count(*) from aml_alerts where status = 'open') as "open_alerts!",
                 (select min(created_at) from aml_alerts where status = 'open') as oldest_open_alert,
                 (select count(*) from users where kyc_status = 'pending' and deleted_at is null) as "kyc_pending!",
                 (select count(*) from data_access_requests where status = 'open') as "open_access_requests!""#
        )
        .fetch_one(db),
        kyc_pending_over_day(db, since_change),
    )?;
    Ok(QueueCounts {
        open_alerts: counts.open_alerts,
        oldest_open_alert: counts.oldest_open_alert,
        kyc_pending: counts.kyc_pending,
        kyc_pending_over_24h,
        open_access_requests: counts.open_access_requests,
    })
}

/// Applicants pending for over a day: by the pending applicants' index on `kyc_updated_at`
/// where Drop has the column (reading each row whole to look for it took 90 ms at a million
/// users), from sign-up where it does not.
async fn kyc_pending_over_day(db: impl PgExecutor<'_>, since_change: bool) -> Result<i64, sqlx::Error> {
    if since_change {
        sqlx::query_scalar!(
            r#"select count(*) as "n!" from users
               where kyc_status = 'pending' and deleted_at is null and kyc_updated_at < now() - interval '24 hours'"#
        )
        .fetch_one(db)
        .await
    } else {
        sqlx::query_scalar!(
            r#"select count(*) as "n!" from users
               where kyc_status = 'pending' and deleted_at is null and created_at < now() - interval '24 hours'"#
        )
        .fetch_one(db)
        .await
    }
}

/// Open alerts older than the triage SLA (counts only, for the summary).
pub async fn overdue_alerts(db: impl PgExecutor<'_>, sla_hours: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from aml_alerts where status = 'open' and created_at < now() - make_interval(hours => $1)"#,
        sla_hours
    )
    .fetch_one(db)
    .await
}

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

pub async fn queue_counts(db: impl PgExecutor<'_>) -> Result<QueueCounts, sqlx::Error> {
    sqlx::query_as!(
        QueueCounts,
        r#"select
             (select count(*) from aml_alerts where status = 'open') as "open_alerts!",
             (select min(created_at) from aml_alerts where status = 'open') as oldest_open_alert,
             (select count(*) from users where kyc_status = 'pending' and deleted_at is null) as "kyc_pending!",
             -- Since the KYC status last changed, or since sign-up where Drop records no change.
             (select count(*) from users u
               where kyc_status = 'pending' and deleted_at is null
                 and coalesce((to_jsonb(u) ->> 'kyc_updated_at')::timestamptz, u.created_at)
                     < now() - interval '24 hours') as "kyc_pending_over_24h!",
             (select count(*) from data_access_requests where status = 'open') as "open_access_requests!""#
    )
    .fetch_one(db)
    .await
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

//! Audit SQL.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

pub struct AuditEntry {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub details: serde_json::Value,
}

/// Up to `limit` entries older than `before` (all when `None`), newest first.
pub async fn page(db: impl PgExecutor<'_>, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        "select id, created_at, actor, action, resource_type, resource_id, details
         from audit_log
         where ($1::bigint is null or id < $1)
         order by id desc
         limit $2",
        before,
        limit,
    )
    .fetch_all(db)
    .await
}

//! Read-only statistics from PostgreSQL's own catalogue.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::audit::AuditToken;

pub struct DatabaseOverview {
    pub name: String,
    pub version: String,
    pub size_bytes: i64,
}

impl DatabaseOverview {
    /// Size for people: "412.3 MB".
    pub fn size(&self) -> String {
        const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
        let mut size = self.size_bytes as f64;
        let mut unit = 0;
        while size >= 1024.0 && unit < UNITS.len() - 1 {
            size /= 1024.0;
            unit += 1;
        }
        if unit == 0 { format!("{} B", self.size_bytes) } else { format!("{size:.1} {}", UNITS[unit]) }
    }
}

pub struct ConnectionCount {
    pub state: String,
    pub count: i64,
}

pub async fn overview(db: impl PgExecutor<'_>) -> Result<DatabaseOverview, sqlx::Error> {
    sqlx::query_as!(
        DatabaseOverview,
        r#"select current_database() as "name!", current_setting('server_version') as "version!",
                  pg_database_size(current_database()) as "size_bytes!""#
    )
    .fetch_one(db)
    .await
}

/// Client connections to this database by state (active, idle, idle in transaction…).
pub async fn connections_by_state(db: impl PgExecutor<'_>) -> Result<Vec<ConnectionCount>, sqlx::Error> {
    sqlx::query_as!(
        ConnectionCount,
        r#"select coalesce(state, 'unknown') as "state!", count(*) as "count!"
           from pg_stat_activity
           where datname = current_database() and backend_type = 'client backend'
           group by 1 order by 2 desc, 1"#
    )
    .fetch_all(db)
    .await
}

/// One server process of this database, as `pg_stat_activity` shows it to the console's role.
#[derive(Clone)]
pub struct Backend {
    pub pid: i32,
    /// With the pid, what names this backend: a pid is reused once its backend has ended.
    /// Unknown for another role's backend without pg_read_all_stats.
    pub backend_start: Option<DateTime<Utc>>,
    pub user_name: Option<String>,
    pub application: String,
    pub client: Option<String>,
    /// active, idle, idle in transaction…; `None` when the role may not see it.
    pub state: Option<String>,
    pub query: Option<String>,
    pub query_start: Option<DateTime<Utc>>,
    pub state_change: Option<DateTime<Utc>>,
    pub xact_start: Option<DateTime<Utc>>,
    pub wait: Option<String>,
    pub backend_type: String,
    /// The backends this one waits for (`pg_blocking_pids`).
    pub blocked_by: Vec<i32>,
    /// The lock it waits for: its mode and relation.
    pub waiting_for: Option<String>,
    pub superuser: bool,
    /// The backend this query runs on.
    pub own: bool,
}

/// Every backend of this database (and the server's background processes), oldest first: at
/// most 500, a bound no healthy Drop comes near.
pub async fn backends(db: impl PgExecutor<'_>) -> Result<Vec<Backend>, sqlx::Error> {
    sqlx::query_as!(
        Backend,
        r#"select a.pid as "pid!", a.backend_start, a.usename::text as user_name,
                  coalesce(a.application_name, '') as "application!", a.client_addr::text as client, a.state,
                  a.query, a.query_start, a.state_change, a.xact_start,
                  a.wait_event_type || ': ' || a.wait_event as wait, -- Another role's backend shows no type without pg_read_all_stats: one of this
                  -- database's is a client's.
                  coalesce(a.backend_type, case when a.datname = current_database() then 'client backend' end, '')
                      as "backend_type!",
                  pg_blocking_pids(a.pid) as "blocked_by!",
                  (select l.mode || coalesce(' on ' || l.relation::regclass::text, '')
                     from pg_locks l where l.pid = a.pid and not l.granted limit 1) as waiting_for,
                  coalesce(r.rolsuper, false) as "superuser!", a.pid = pg_backend_pid() as "own!"
           from pg_stat_activity a left join pg_roles r on r.oid = a.usesysid
           where a.datname = current_database() or a.datname is null
           order by a.backend_start nulls last, a.pid
           limit 500"#
    )
    .fetch_all(db)
    .await
}

/// What the console's role may see and do to other backends.
pub struct Powers {
    /// Member of pg_read_all_stats (or superuser): sees every backend's query and state.
    pub read_all_stats: bool,
    /// Member of pg_signal_backend (or superuser): may cancel and terminate others' backends.
    pub signal_backend: bool,
}

pub async fn powers(db: impl PgExecutor<'_>) -> Result<Powers, sqlx::Error> {
    sqlx::query_as!(
        Powers,
        r#"select coalesce(pg_has_role(current_user, 'pg_read_all_stats', 'member'), false) as "read_all_stats!",
                  coalesce(pg_has_role(current_user, 'pg_signal_backend', 'member'), false) as "signal_backend!""#
    )
    .fetch_one(db)
    .await
}

/// Signal the backend `pid` started at `started` (cancel its query, or terminate it): `None`
/// when no such backend runs any more (it ended, or its pid was reused), else whether
/// PostgreSQL delivered the signal. Needs the audit token of the action.
pub async fn signal(
    db: impl PgExecutor<'_>,
    _audited: &AuditToken,
    pid: i32,
    started: DateTime<Utc>,
    terminate: bool,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select case when $3 then pg_terminate_backend(pid) else pg_cancel_backend(pid) end as "sent!"
             from pg_stat_activity where pid = $1 and backend_start = $2"#,
        pid,
        started,
        terminate
    )
    .fetch_optional(db)
    .await
}

/// Whether a cancel of this backend (`pid@start`) was sent through the console.
pub async fn cancel_tried(db: impl PgExecutor<'_>, backend: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from console.audit_entries i
                           join console.audit_entries o on o.intent_id = i.id and o.kind = 'outcome'
                          where i.resource_type = 'database_backend' and i.resource_id = $1
                            and i.action = 'db_backend_cancel' and i.kind = 'intent' and o.outcome = 'succeeded')
           as "tried!""#,
        backend
    )
    .fetch_one(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_would_write_them() {
        let at = |size_bytes| DatabaseOverview { name: String::new(), version: String::new(), size_bytes }.size();
        assert_eq!(at(512), "512 B");
        assert_eq!(at(8 * 1024 * 1024 + 300 * 1024), "8.3 MB");
    }
}

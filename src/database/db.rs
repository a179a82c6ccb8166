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
    pub fn size(&self) -> String {
        bytes(self.size_bytes)
    }
}

/// A size for people: "412.3 MB".
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{size:.1} {}", UNITS[unit]) }
}

impl TableStat {
    pub fn size(&self) -> String {
        bytes(self.size_bytes)
    }

    /// The confirmation of a vacuum of this table.
    pub fn vacuum_href(&self) -> String {
        let table = format!("{}.{}", self.schema, self.name);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("procedure", "vacuum")
            .append_pair("table", &table)
            .finish();
        format!("/database/confirm?{query}")
    }

    pub fn dead_share(&self) -> String {
        dead_share(self.live, self.dead)
    }
}

/// Dead rows as a share of all: the estimate of bloat vacuum would reclaim.
pub fn dead_share(live: i64, dead: i64) -> String {
    let all = live + dead;
    if all == 0 { "—".into() } else { format!("{:.0} %", 100.0 * dead as f64 / all as f64) }
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
    /// A backend of the console's own role.
    pub own_role: bool,
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
                  coalesce(r.rolsuper, false) as "superuser!", a.pid = pg_backend_pid() as "own!",
                  coalesce(a.usename = current_user, false) as "own_role!"
           from pg_stat_activity a left join pg_roles r on r.oid = a.usesysid
           where a.datname = current_database() or a.datname is null
           order by a.backend_start nulls last, a.pid
           limit 500"#
    )
    .fetch_all(db)
    .await
}

/// What the console's role may see and do to other backends.
#[derive(Clone, Copy)]
pub struct Powers {
    /// Member of pg_read_all_stats (or superuser): sees every backend's query and state.
    pub read_all_stats: bool,
    /// Member of pg_signal_backend (or superuser): may cancel and terminate others' backends.
    pub signal_backend: bool,
    /// Member of pg_monitor (or superuser): may read the WAL directory's size.
    pub monitor: bool,
}

pub async fn powers(db: impl PgExecutor<'_>) -> Result<Powers, sqlx::Error> {
    sqlx::query_as!(
        Powers,
        r#"select coalesce(pg_has_role(current_user, 'pg_read_all_stats', 'member'), false) as "read_all_stats!",
                  coalesce(pg_has_role(current_user, 'pg_signal_backend', 'member'), false) as "signal_backend!",
                  coalesce(pg_has_role(current_user, 'pg_monitor', 'member'), false) as "monitor!""#
    )
    .fetch_one(db)
    .await
}

/// A table among the biggest: its size with indexes and TOAST, live and dead rows, and when
/// it was last vacuumed and analysed (by hand or by autovacuum).
pub struct TableStat {
    pub schema: String,
    pub name: String,
    pub size_bytes: i64,
    pub live: i64,
    pub dead: i64,
    pub last_vacuum: Option<DateTime<Utc>>,
    pub last_analyze: Option<DateTime<Utc>>,
}

/// The twenty biggest tables of the database.
pub async fn biggest_tables(db: impl PgExecutor<'_>) -> Result<Vec<TableStat>, sqlx::Error> {
    sqlx::query_as!(
        TableStat,
        r#"select s.schemaname::text as "schema!", s.relname::text as "name!",
                  pg_total_relation_size(s.relid) as "size_bytes!", s.n_live_tup as "live!", s.n_dead_tup as "dead!",
                  greatest(s.last_vacuum, s.last_autovacuum) as last_vacuum,
                  greatest(s.last_analyze, s.last_autoanalyze) as last_analyze
           from pg_stat_user_tables s
           order by pg_total_relation_size(s.relid) desc, s.relid
           limit 20"#
    )
    .fetch_all(db)
    .await
}

/// Whether this server replays another's WAL, and how far behind it is.
pub struct Recovery {
    pub replica: bool,
    pub replay_lag_secs: Option<f64>,
}

pub async fn recovery(db: impl PgExecutor<'_>) -> Result<Recovery, sqlx::Error> {
    sqlx::query_as!(
        Recovery,
        r#"select pg_is_in_recovery() as "replica!",
                  case when pg_is_in_recovery()
                       then extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 end as replay_lag_secs"#
    )
    .fetch_one(db)
    .await
}

/// A server streaming from this one.
pub struct Replica {
    pub name: String,
    pub client: Option<String>,
    pub state: Option<String>,
    pub replay_lag_secs: Option<f64>,
}

pub async fn replicas(db: impl PgExecutor<'_>) -> Result<Vec<Replica>, sqlx::Error> {
    sqlx::query_as!(
        Replica,
        r#"select coalesce(application_name, '') as "name!", client_addr::text as client, state,
                  extract(epoch from replay_lag)::float8 as replay_lag_secs
           from pg_stat_replication order by application_name"#
    )
    .fetch_all(db)
    .await
}

/// The size of the WAL directory (needs pg_monitor).
pub async fn wal_bytes(db: impl PgExecutor<'_>) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(r#"select sum(size)::bigint from pg_ls_waldir()"#).fetch_one(db).await
}

/// A statement of `pg_stat_statements`, by the time it has taken in all.
#[derive(sqlx::FromRow)]
pub struct Statement {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
}

crate::db::text_enum! {
    /// How the statements are ranked (`?by=`).
    pub enum StatementOrder {
        Total = "total",
        Mean = "mean",
        Calls = "calls",
    }
}

impl StatementOrder {
    /// The column of pg_stat_statements it ranks by (a fixed name, never typed text).
    fn column(self) -> &'static str {
        match self {
            Self::Total => "total_exec_time",
            Self::Mean => "mean_exec_time",
            Self::Calls => "calls",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Total => "total time",
            Self::Mean => "mean time",
            Self::Calls => "calls",
        }
    }
}

/// The twenty statements first by `order` (the runbook's top 20), or why they cannot be read: the extension is
/// not installed, not loaded (shared_preload_libraries), or the role may not read it. The view
/// exists only with the extension, so the query is checked at run time, not at build time.
pub async fn top_statements(
    db: &sqlx::PgPool,
    order: StatementOrder,
) -> Result<Result<Vec<Statement>, String>, sqlx::Error> {
    if !statements_installed(db).await? {
        return Ok(Err("pg_stat_statements is not installed in this database (create extension pg_stat_statements; \
                       on RDS it is already in shared_preload_libraries)"
            .into()));
    }
    let read = sqlx::query_as::<_, Statement>(&format!(
        "select query, calls, total_exec_time as total_ms, mean_exec_time as mean_ms, rows
           from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
          order by {} desc limit 20",
        order.column()
    ))
    .fetch_all(db)
    .await;
    Ok(read.map_err(|e| format!("pg_stat_statements cannot be read: {}", crate::db::postgres_words(&e))))
}

/// Whether the pg_stat_statements extension is installed in this database.
pub async fn statements_installed(db: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from pg_extension where extname = 'pg_stat_statements')")
        .fetch_one(db)
        .await
}

/// Forget the statement statistics (`pg_stat_statements_reset()`). Needs the audit token of the
/// action; the error says why PostgreSQL refused (the extension not loaded, no privilege).
pub async fn reset_statements(db: impl PgExecutor<'_>, _audited: &AuditToken) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_stat_statements_reset()").execute(db).await.map(|_| ())
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

//! The vacuum step (runbook §5, `VACUUM ANALYZE` a table). VACUUM cannot run inside a
//! transaction and may take an hour on Drop's biggest tables, so the step starts it on a
//! connection of its own (application `dropops-vacuum`, so that it can be cancelled from the
//! database page like any backend) and, on each attempt, reports its progress from
//! `pg_stat_progress_vacuum` / `pg_stat_progress_analyze` until it ends.
//!
//! A step resumed after a restart has lost its connection (PostgreSQL ends that vacuum): it
//! finds the table vacuumed since the step began, waits for a vacuum of it that still runs,
//! or starts again — vacuuming twice is harmless.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use super::facts::{Fact, learned};
use super::steps::{Progress, StepContext};
use uuid::Uuid;

/// The `application_name` of a vacuum's connection.
pub const APPLICATION: &str = "dropops-vacuum";

/// The vacuums this process started, by run: their connection's task, its backend and the
/// table's counts before.
#[derive(Default)]
pub struct Vacuums(Mutex<HashMap<Uuid, Vacuuming>>);

struct Vacuuming {
    /// Set by the connection's task when the statement has ended.
    ended: Arc<OnceLock<Result<(), String>>>,
    pid: i32,
    before: TableCounts,
}

/// A table as `pg_stat_user_tables` counts it.
#[derive(Clone, Debug)]
pub struct TableCounts {
    pub relid: i64,
    /// `schema.table`, quoted where it must be: what the VACUUM statement names.
    pub quoted: String,
    pub size_bytes: i64,
    pub live: i64,
    pub dead: i64,
    /// Manual vacuums so far (autovacuum counts apart).
    pub vacuums: i64,
    pub last_vacuum: Option<DateTime<Utc>>,
    /// Whether the console's role may vacuum it: superuser, the table's or the database's
    /// owner (a member of their role), or — PostgreSQL 17 — the MAINTAIN privilege.
    pub may: bool,
}

/// The table `schema.table`, if it is one of the database's user tables.
pub async fn table(db: &PgPool, schema: &str, table: &str) -> Result<Option<TableCounts>, sqlx::Error> {
    let counts = sqlx::query_as!(
        TableCounts,
        r#"select s.relid::int8 as "relid!", format('%I.%I', s.schemaname, s.relname) as "quoted!",
                  pg_total_relation_size(s.relid) as "size_bytes!", s.n_live_tup as "live!", s.n_dead_tup as "dead!",
                  s.vacuum_count as "vacuums!", s.last_vacuum,
                  (select rolsuper from pg_roles where rolname = current_user)
                    or pg_has_role(current_user, c.relowner, 'USAGE')
                    or pg_has_role(current_user, (select datdba from pg_database where datname = current_database()), 'USAGE')
                    as "may!"
           from pg_stat_user_tables s join pg_class c on c.oid = s.relid
           where s.schemaname = $1 and s.relname = $2"#,
        schema,
        table
    )
    .fetch_optional(db)
    .await?;
    let Some(mut counts) = counts else { return Ok(None) };
    if !counts.may && server_version(db).await? >= 170_000 {
        // MAINTAIN exists from PostgreSQL 17 on: asked only there (older servers reject the word).
        counts.may = sqlx::query_scalar(
            "select has_table_privilege($1::oid, 'MAINTAIN') or pg_has_role(current_user, 'pg_maintain', 'USAGE')",
        )
        .bind(counts.relid)
        .fetch_one(db)
        .await?;
    }
    Ok(Some(counts))
}

async fn server_version(db: &PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(r#"select current_setting('server_version_num')::int as "v!""#).fetch_one(db).await
}

/// How far a vacuum (or the analyze after it) of one table has come, by whichever backend.
pub struct VacuumProgress {
    pub pid: i32,
    pub relation: String,
    pub application: String,
    pub phase: String,
    pub blocks_total: i64,
    pub blocks_done: i64,
    pub index_passes: i64,
    pub analyzing: bool,
}

impl VacuumProgress {
    /// "scanning heap: 40 % of 26 000 blocks", in steps of ten so that the run's log gets a
    /// line per step, not per poll.
    pub fn words(&self) -> String {
        let what = if self.analyzing { "analyze" } else { "vacuum" };
        let mut words = format!("{what} of {}: {}", self.relation, self.phase);
        if self.blocks_total > 0 {
            let tenth = self.blocks_done * 10 / self.blocks_total;
            words.push_str(&format!(" — {} % of {} blocks", tenth * 10, self.blocks_total));
        }
        if self.index_passes > 0 {
            words.push_str(&format!(", {} index pass(es)", self.index_passes));
        }
        words
    }

    pub fn percent(&self) -> Option<i64> {
        (self.blocks_total > 0).then(|| self.blocks_done * 100 / self.blocks_total)
    }
}

/// Every vacuum and analyze running in this database now (autovacuum's too), or only those of
/// one table.
pub async fn in_progress(db: &PgPool, relid: Option<i64>) -> Result<Vec<VacuumProgress>, sqlx::Error> {
    sqlx::query_as!(
        VacuumProgress,
        r#"select p.pid as "pid!", p.relid::regclass::text as "relation!", coalesce(a.application_name, '') as "application!",
                  p.phase as "phase!", p.heap_blks_total as "blocks_total!",
                  greatest(p.heap_blks_scanned, p.heap_blks_vacuumed) as "blocks_done!",
                  p.index_vacuum_count as "index_passes!", false as "analyzing!"
             from pg_stat_progress_vacuum p left join pg_stat_activity a on a.pid = p.pid
            where p.datname = current_database() and ($1::int8 is null or p.relid::int8 = $1)
           union all
           select p.pid, p.relid::regclass::text, coalesce(a.application_name, ''), p.phase,
                  p.sample_blks_total, p.sample_blks_scanned, 0::int8, true
             from pg_stat_progress_analyze p left join pg_stat_activity a on a.pid = p.pid
            where p.datname = current_database() and ($1::int8 is null or p.relid::int8 = $1)
           order by 1"#,
        relid
    )
    .fetch_all(db)
    .await
}

/// Attempt the vacuum step once: start it, report its progress, or say how it ended.
pub async fn attempt(cx: &StepContext<'_>) -> Progress {
    match drive(cx).await {
        Ok(progress) => progress,
        Err(e) => Progress::Waiting(format!("the database did not answer ({e}); trying again")),
    }
}

async fn drive(cx: &StepContext<'_>) -> Result<Progress, sqlx::Error> {
    let Some(params) = cx.run.params.vacuum() else {
        return Ok(Progress::Failed("the run names no table".into()));
    };
    let name = params.name();
    let pool = &cx.state.pool;
    let Some(now) = table(pool, &params.schema, &params.table).await? else {
        return Ok(Progress::Failed(format!("{name} is not a table of this database any more")));
    };
    let vacuums = &cx.state.vacuums;
    match vacuums.take_if_finished(cx.run.id) {
        Some(Ended::Running(pid)) => {
            let progress = in_progress(pool, Some(now.relid)).await?;
            return Ok(Progress::Waiting(match progress.iter().find(|p| p.pid == pid) {
                Some(p) => p.words(),
                None => format!("VACUUM (ANALYZE) {name} runs on backend {pid}, waiting for its lock"),
            }));
        }
        Some(Ended::Finished(_, Err(why))) => {
            return Ok(Progress::Failed(format!("PostgreSQL stopped the vacuum of {name}: {why}")));
        }
        Some(Ended::Finished(before, Ok(()))) => {
            return Ok(if now.vacuums > before.vacuums {
                Progress::Done(done(&name, Some(&before), &now))
            } else {
                Progress::Failed(format!("PostgreSQL skipped {name}: {MAY_NOT}"))
            });
        }
        None => {}
    }
    // Nothing of ours runs in this process: the first attempt, or one after a restart.
    if now.last_vacuum.is_some_and(|at| Some(at) >= cx.step.started_at) {
        return Ok(Progress::Done(done(&name, None, &now)));
    }
    if let Some(other) = in_progress(pool, Some(now.relid)).await?.first() {
        return Ok(Progress::Waiting(format!(
            "another vacuum of {name} runs on backend {} ({}): {}; waiting for it to end",
            other.pid,
            if other.application.is_empty() { "autovacuum" } else { &other.application },
            other.words()
        )));
    }
    if !now.may {
        return Ok(Progress::Failed(format!("{name} was not vacuumed: {MAY_NOT}")));
    }
    let pid = vacuums.start(cx.run.id, pool, now).await?;
    Ok(Progress::Waiting(format!("VACUUM (ANALYZE) {name} started on backend {pid}")))
}

/// Why PostgreSQL will not vacuum a table for the console.
pub const MAY_NOT: &str =
    "the console's role may not vacuum it (it must own the table or the database, or hold MAINTAIN on PostgreSQL 17)";

/// What the run's log says when it is done.
fn done(name: &str, before: Option<&TableCounts>, after: &TableCounts) -> serde_json::Value {
    let did = match before {
        Some(before) => format!("vacuumed and analysed {name}: dead rows {} → {}", before.dead, after.dead),
        None => format!("{name} was vacuumed while the console was away: {} dead rows now", after.dead),
    };
    learned([(Fact::Did, json!(did))])
}

/// What became of a vacuum this process started.
enum Ended {
    Running(i32),
    Finished(TableCounts, Result<(), String>),
}

impl Vacuums {
    /// The run's vacuum: still running (its backend), or ended — then forgotten.
    fn take_if_finished(&self, run: Uuid) -> Option<Ended> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let vacuum = map.get(&run)?;
        let Some(result) = vacuum.ended.get().cloned() else {
            return Some(Ended::Running(vacuum.pid));
        };
        let vacuum = map.remove(&run)?;
        Some(Ended::Finished(vacuum.before, result))
    }

    /// Start `VACUUM (ANALYZE)` of the table on a connection of its own; its backend's pid.
    async fn start(&self, run: Uuid, pool: &PgPool, before: TableCounts) -> Result<i32, sqlx::Error> {
        let mut conn = connection(pool).await?;
        let pid: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut *conn).await?;
        let statement = format!("VACUUM (ANALYZE) {}", before.quoted);
        let ended = Arc::new(OnceLock::new());
        let report = ended.clone();
        tokio::spawn(async move {
            let _ = report.set(vacuum(conn, statement).await);
        });
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(run, Vacuuming { ended, pid, before });
        Ok(pid)
    }
}

/// Run the VACUUM statement to its end (it cannot run in a transaction: a statement of its
/// own, unprepared), then let the connection go.
async fn vacuum(mut conn: VacuumConnection, statement: String) -> Result<(), String> {
    let result = sqlx::query(&statement).persistent(false).execute(&mut *conn).await;
    conn.close().await;
    result.map(|_| ()).map_err(|e| crate::db::postgres_words(&e))
}

/// A connection for a long statement: one of its own, named so the database page shows it
/// for what it is, with no statement timeout. The embedded database serves one client, so
/// there the pool's one connection is lent (its tables are small).
enum VacuumConnection {
    Own(PgConnection),
    Lent(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl std::ops::Deref for VacuumConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Self::Own(c) => c,
            Self::Lent(c) => c,
        }
    }
}

impl std::ops::DerefMut for VacuumConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Own(c) => c,
            Self::Lent(c) => c,
        }
    }
}

impl VacuumConnection {
    async fn close(self) {
        if let Self::Own(c) = self {
            let _ = c.close().await;
        }
    }
}

async fn connection(pool: &PgPool) -> Result<VacuumConnection, sqlx::Error> {
    if pool.options().get_max_connections() <= 1 {
        return Ok(VacuumConnection::Lent(pool.acquire().await?));
    }
    let options: PgConnectOptions = (*pool.connect_options()).clone().application_name(APPLICATION);
    let mut conn = PgConnection::connect_with(&options).await?;
    sqlx::query("set statement_timeout = 0").execute(&mut conn).await?;
    Ok(VacuumConnection::Own(conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_in_tenths_so_the_log_gets_a_line_per_tenth() {
        let p = |done| VacuumProgress {
            pid: 7,
            relation: "transactions".into(),
            application: APPLICATION.into(),
            phase: "scanning heap".into(),
            blocks_total: 26_000,
            blocks_done: done,
            index_passes: 0,
            analyzing: false,
        };
        assert_eq!(p(10_400).words(), "vacuum of transactions: scanning heap — 40 % of 26000 blocks");
        assert_eq!(p(10_400).words(), p(12_900).words(), "the same tenth is the same line");
        assert_eq!(p(10_400).percent(), Some(40));
    }
}

//! The restore drill's data check (runbook §2 monthly: a snapshot restored, *checked* and
//! deleted): connect to the temporary instance as the configured read-only role and compare
//! Drop's main tables with production — each table's rows up to the newest `created_at` the
//! copy holds, within a tolerance, and that the copy has any at all. The time from the run's
//! start to a verified copy is the drill's RTO.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

/// Drop's main tables, each with a `created_at`.
pub const TABLES: [&str; 4] = ["users", "transactions", "aml_alerts", "data_access_requests"];

/// One table compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableCheck {
    pub table: &'static str,
    /// Rows in the copy, and its newest `created_at`.
    pub copy_rows: i64,
    pub copy_newest: Option<DateTime<Utc>>,
    /// Rows production has up to the copy's newest `created_at`.
    pub production_rows: i64,
    pub ok: bool,
}

impl TableCheck {
    pub fn describe(&self) -> String {
        format!(
            "{}: {} in the copy, {} in production up to {}",
            self.table,
            self.copy_rows,
            self.production_rows,
            self.copy_newest.map_or("—".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        )
    }
}

/// How far the copy may differ from production (rows deleted or changed since the snapshot),
/// as a share of production's rows; never less than one row.
fn within(copy: i64, production: i64, tolerance_percent: f64) -> bool {
    let allowed = ((production as f64) * tolerance_percent / 100.0).max(1.0);
    ((copy - production).abs() as f64) <= allowed
}

/// Compare the copy with production, table by table.
pub async fn compare(
    production: &PgPool,
    copy: &PgPool,
    tolerance_percent: f64,
) -> Result<Vec<TableCheck>, sqlx::Error> {
    let mut checks = vec![];
    for table in TABLES {
        // The table names are the console's own constants, never input.
        let (copy_rows, copy_newest): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as(&format!("select count(*), max(created_at) from {table}")).fetch_one(copy).await?;
        let production_rows: i64 = match copy_newest {
            Some(newest) => {
                sqlx::query_scalar(&format!("select count(*) from {table} where created_at <= $1"))
                    .bind(newest)
                    .fetch_one(production)
                    .await?
            }
            None => sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(production).await?,
        };
        let ok = within(copy_rows, production_rows, tolerance_percent) && (copy_rows > 0 || production_rows == 0);
        checks.push(TableCheck { table, copy_rows, copy_newest, production_rows, ok });
    }
    Ok(checks)
}

/// Connect to the drill's instance as the read-only role, or say plainly why not.
pub async fn connect(host: &str, port: u16, database: &str, user: &str, password: &str) -> Result<PgPool, String> {
    let options = PgConnectOptions::new()
        .host(host)
        .port(port)
        .database(database)
        .username(user)
        .password(password)
        .ssl_mode(PgSslMode::Prefer)
        .application_name("dropops-restore-drill");
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => format!(
                "the console cannot reach the drill instance at {host}:{port} ({e}): it is in a network the console has no route to — give the console's VPC connector access, or check the copy from inside the VPC"
            ),
            sqlx::Error::Database(d) => format!("the drill instance refused the check's sign-in as {user}: {}", d.message()),
            other => format!("the drill instance could not be checked: {other}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tolerance_is_a_share_of_production_and_at_least_a_row() {
        assert!(within(1000, 1000, 0.1));
        assert!(within(999, 1000, 0.1));
        assert!(!within(990, 1000, 0.1));
        assert!(within(0, 1, 0.1), "one row may differ");
        assert!(!within(0, 5, 0.1));
    }
}

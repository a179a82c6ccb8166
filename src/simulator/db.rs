//! The fault switches' SQL (`console.sim_faults`): the simulator adapter reads which are on;
//! this feature lists and sets them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::audit::AuditToken;
use crate::cloud::sim::{FAULTS, Fault};

pub struct FaultState {
    pub fault: Fault,
    pub active: bool,
    pub changed_by: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
}

/// Every fault the simulator knows, with its switch.
pub async fn faults(db: impl PgExecutor<'_>) -> Result<Vec<FaultState>, sqlx::Error> {
    let rows =
        sqlx::query!("select name, active, changed_by, changed_at from console.sim_faults").fetch_all(db).await?;
    Ok(FAULTS
        .iter()
        .map(|f| {
            let row = rows.iter().find(|r| r.name == f.name);
            FaultState {
                fault: *f,
                active: row.is_some_and(|r| r.active),
                changed_by: row.map(|r| r.changed_by.clone()),
                changed_at: row.map(|r| r.changed_at),
            }
        })
        .collect())
}

/// Switch a fault on or off. Needs its audit token.
pub async fn set_fault(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    name: &str,
    active: bool,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.sim_faults (name, active, changed_by) values ($1, $2, $3)
         on conflict (name) do update set active = excluded.active, changed_by = excluded.changed_by, changed_at = now()",
        name,
        active,
        by
    )
    .execute(conn)
    .await?;
    Ok(())
}

//! The incidents' SQL: `console.incidents`, `incident_entries`, `handoffs`, `maintenances`
//! and `maintenance_steps`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::kinds::{AlertKind, EntryKind, IncidentStatus, MaintenanceStep, Severity};

#[derive(Clone, Debug)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub severity: Severity,
    pub alert: Option<AlertKind>,
    pub payments_down: bool,
    pub status: IncidentStatus,
    pub declared_by: Uuid,
    pub declared_by_name: String,
    pub declared_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub impact: String,
    pub cause: String,
    pub follow_ups: String,
    pub status_report_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub staff_id: Uuid,
    pub staff_name: String,
    pub kind: EntryKind,
    pub body: String,
}

pub struct NewIncident<'a> {
    pub title: &'a str,
    pub severity: Severity,
    pub alert: Option<AlertKind>,
    pub payments_down: bool,
}

pub async fn next_incident_id(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select nextval(pg_get_serial_sequence('console.incidents', 'id')) as "id!""#)
        .fetch_one(db)
        .await
}

pub async fn insert_incident(
    conn: &mut PgConnection,
    id: i64,
    new: &NewIncident<'_>,
    by: Uuid,
    by_name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.incidents (id, title, severity, alert, payments_down, declared_by, declared_by_name)
         values ($1, $2, $3, $4, $5, $6, $7)",
        id,
        new.title,
        new.severity.as_str(),
        new.alert.map(AlertKind::as_str),
        new.payments_down,
        by,
        by_name
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn incident(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        r#"select id, title, severity as "severity: Severity", alert as "alert: AlertKind", payments_down,
           status as "status: IncidentStatus", declared_by, declared_by_name, declared_at, resolved_at,
           impact, cause, follow_ups, status_report_id from console.incidents where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The incident, locked for a change.
pub async fn incident_for_update(conn: &mut PgConnection, id: i64) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        r#"select id, title, severity as "severity: Severity", alert as "alert: AlertKind", payments_down,
           status as "status: IncidentStatus", declared_by, declared_by_name, declared_at, resolved_at,
           impact, cause, follow_ups, status_report_id from console.incidents where id = $1 for update"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Open incidents, newest first (a handful at most).
pub async fn open_incidents(db: impl PgExecutor<'_>) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        r#"select id, title, severity as "severity: Severity", alert as "alert: AlertKind", payments_down,
           status as "status: IncidentStatus", declared_by, declared_by_name, declared_at, resolved_at,
           impact, cause, follow_ups, status_report_id from console.incidents where status <> 'resolved'
         order by declared_at desc limit 50"#
    )
    .fetch_all(db)
    .await
}

/// Resolved incidents, newest first, a page at a time after (declared_at, id).
pub async fn resolved_incidents(
    db: impl PgExecutor<'_>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        r#"select id, title, severity as "severity: Severity", alert as "alert: AlertKind", payments_down,
           status as "status: IncidentStatus", declared_by, declared_by_name, declared_at, resolved_at,
           impact, cause, follow_ups, status_report_id from console.incidents
         where status = 'resolved' and ($1::timestamptz is null or (declared_at, id) < ($1, $2))
         order by declared_at desc, id desc limit $3"#,
        after.map(|(at, _)| at),
        after.map_or(0, |(_, id)| id),
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn set_status(
    conn: &mut PgConnection,
    id: i64,
    status: IncidentStatus,
    severity: Severity,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.incidents set status = $2, severity = $3,
             resolved_at = case when $2 = 'resolved' then coalesce(resolved_at, now()) end
         where id = $1",
        id,
        status.as_str(),
        severity.as_str()
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_report(
    conn: &mut PgConnection,
    id: i64,
    impact: &str,
    cause: &str,
    follow_ups: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.incidents set impact = $2, cause = $3, follow_ups = $4 where id = $1",
        id,
        impact,
        cause,
        follow_ups
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn add_entry(
    conn: &mut PgConnection,
    incident: i64,
    staff: Uuid,
    staff_name: &str,
    kind: EntryKind,
    body: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into console.incident_entries (incident_id, staff_id, staff_name, kind, body)
         values ($1, $2, $3, $4, $5) returning id",
        incident,
        staff,
        staff_name,
        kind.as_str(),
        body
    )
    .fetch_one(conn)
    .await
}

pub async fn entries(db: impl PgExecutor<'_>, incident: i64) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as!(
        Entry,
        r#"select id, at, staff_id, staff_name, kind as "kind: EntryKind", body from console.incident_entries
           where incident_id = $1 order by at, id limit 1000"#,
        incident
    )
    .fetch_all(db)
    .await
}

// --- hand-offs ------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct Handoff {
    pub id: i64,
    pub written_by: Uuid,
    pub written_by_name: String,
    pub written_at: DateTime<Utc>,
    pub open_incidents: String,
    pub anomalies: String,
    pub upcoming: String,
    pub mitigations: String,
    pub noisy_alerts: String,
    pub acknowledged_by_name: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

pub async fn next_handoff_id(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select nextval(pg_get_serial_sequence('console.handoffs', 'id')) as "id!""#)
        .fetch_one(db)
        .await
}

pub async fn insert_handoff(
    conn: &mut PgConnection,
    id: i64,
    by: Uuid,
    by_name: &str,
    // The five headings, in the hand-off form's order.
    h: &[String; 5],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.handoffs (id, written_by, written_by_name, open_incidents, anomalies, upcoming,
                                       mitigations, noisy_alerts)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        by,
        by_name,
        h[0],
        h[1],
        h[2],
        h[3],
        h[4]
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn handoff(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Handoff>, sqlx::Error> {
    sqlx::query_as!(
        Handoff,
        r#"select id, written_by, written_by_name, written_at, open_incidents, anomalies, upcoming, mitigations,
         noisy_alerts, acknowledged_by_name, acknowledged_at from console.handoffs where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Hand-offs newest first, a page at a time; `term` (lowercase) searches every heading and
/// both names. Hand-offs are a few a day, so a search reads a bounded slice of the newest.
pub async fn handoffs(
    db: impl PgExecutor<'_>,
    term: Option<&str>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Handoff>, sqlx::Error> {
    sqlx::query_as!(
        Handoff,
        r#"select id, written_by, written_by_name, written_at, open_incidents, anomalies, upcoming, mitigations,
         noisy_alerts, acknowledged_by_name, acknowledged_at from console.handoffs
         where ($1::text is null or strpos(lower(open_incidents || ' ' || anomalies || ' ' || upcoming || ' ' ||
                mitigations || ' ' || noisy_alerts || ' ' || written_by_name || ' ' || coalesce(acknowledged_by_name, '')), $1) > 0)
           and ($2::timestamptz is null or (written_at, id) < ($2, $3))
         order by written_at desc, id desc limit $4"#,
        term,
        after.map(|(at, _)| at),
        after.map_or(0, |(_, id)| id),
        limit
    )
    .fetch_all(db)
    .await
}

/// Acknowledge, if nobody has and the writer is someone else; `false` otherwise.
pub async fn acknowledge(conn: &mut PgConnection, id: i64, by: Uuid, by_name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update console.handoffs set acknowledged_by = $2, acknowledged_by_name = $3, acknowledged_at = now()
         where id = $1 and acknowledged_at is null and written_by <> $2",
        id,
        by,
        by_name
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// --- planned maintenance --------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Maintenance {
    pub id: i64,
    pub title: String,
    pub planned_start: DateTime<Utc>,
    pub planned_minutes: i32,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status_report_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct StepDone {
    pub step: MaintenanceStep,
    pub done_by_name: String,
    pub done_at: DateTime<Utc>,
    pub note: String,
}

pub async fn next_maintenance_id(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select nextval(pg_get_serial_sequence('console.maintenances', 'id')) as "id!""#)
        .fetch_one(db)
        .await
}

pub async fn insert_maintenance(
    conn: &mut PgConnection,
    id: i64,
    title: &str,
    planned_start: DateTime<Utc>,
    planned_minutes: i32,
    by: Uuid,
    by_name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.maintenances (id, title, planned_start, planned_minutes, created_by, created_by_name)
         values ($1, $2, $3, $4, $5, $6)",
        id,
        title,
        planned_start,
        planned_minutes,
        by,
        by_name
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn maintenance(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Maintenance>, sqlx::Error> {
    sqlx::query_as!(Maintenance, r#"select id, title, planned_start, planned_minutes, created_by_name, created_at, started_at, ended_at, status_report_id from console.maintenances where id = $1"#, id)
        .fetch_optional(db)
        .await
}

/// Maintenance not ended yet, soonest first.
pub async fn coming_maintenances(db: impl PgExecutor<'_>) -> Result<Vec<Maintenance>, sqlx::Error> {
    sqlx::query_as!(
        Maintenance,
        r#"select id, title, planned_start, planned_minutes, created_by_name, created_at, started_at, ended_at, status_report_id from console.maintenances where ended_at is null
         order by planned_start, id limit 50"#
    )
    .fetch_all(db)
    .await
}

/// Ended maintenance, newest first, a page at a time.
pub async fn past_maintenances(
    db: impl PgExecutor<'_>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Maintenance>, sqlx::Error> {
    sqlx::query_as!(
        Maintenance,
        r#"select id, title, planned_start, planned_minutes, created_by_name, created_at, started_at, ended_at, status_report_id from console.maintenances
         where ended_at is not null and ($1::timestamptz is null or (planned_start, id) < ($1, $2))
         order by planned_start desc, id desc limit $3"#,
        after.map(|(at, _)| at),
        after.map_or(0, |(_, id)| id),
        limit
    )
    .fetch_all(db)
    .await
}

/// Start (`start = true`) or end it; `false` when it was not in the state to.
pub async fn set_phase(conn: &mut PgConnection, id: i64, start: bool) -> Result<bool, sqlx::Error> {
    let done = if start {
        sqlx::query!("update console.maintenances set started_at = now() where id = $1 and started_at is null", id)
            .execute(conn)
            .await?
    } else {
        sqlx::query!(
            "update console.maintenances set ended_at = now()
             where id = $1 and started_at is not null and ended_at is null",
            id
        )
        .execute(conn)
        .await?
    };
    Ok(done.rows_affected() == 1)
}

/// Record a step as done (again: the newest note wins).
pub async fn mark_step(
    conn: &mut PgConnection,
    id: i64,
    step: MaintenanceStep,
    by: Uuid,
    by_name: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.maintenance_steps (maintenance_id, step, done_by, done_by_name, note)
         values ($1, $2, $3, $4, $5)
         on conflict (maintenance_id, step) do update
         set done_by = excluded.done_by, done_by_name = excluded.done_by_name, done_at = now(), note = excluded.note",
        id,
        step.as_str(),
        by,
        by_name,
        note
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn steps_done(db: impl PgExecutor<'_>, id: i64) -> Result<Vec<StepDone>, sqlx::Error> {
    sqlx::query_as!(
        StepDone,
        r#"select step as "step: MaintenanceStep", done_by_name, done_at, note from console.maintenance_steps
           where maintenance_id = $1"#,
        id
    )
    .fetch_all(db)
    .await
}

/// Remember the status page report an incident or a maintenance published (the first time).
pub async fn set_status_report(conn: &mut PgConnection, incident: i64, report: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.incidents set status_report_id = coalesce(status_report_id, $2) where id = $1",
        incident,
        report
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_maintenance_report(conn: &mut PgConnection, id: i64, report: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.maintenances set status_report_id = coalesce(status_report_id, $2) where id = $1",
        id,
        report
    )
    .execute(conn)
    .await?;
    Ok(())
}

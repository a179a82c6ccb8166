//! The simulated world's state, kept in `console.sim_*` tables so a restart keeps it: the
//! service and its operations, manual snapshots, restored instances, secret versions and the
//! faults switched on. Every query of the simulator is here.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::cloud::{CloudError, CloudResult, Operation, Scaling};

fn sim_error(e: sqlx::Error) -> CloudError {
    CloudError::Unavailable(format!("the simulator's state cannot be read: {e}"))
}

/// The names of the faults switched on.
pub async fn active_faults(pool: &PgPool) -> CloudResult<Vec<String>> {
    sqlx::query_scalar!("select name from console.sim_faults where active").fetch_all(pool).await.map_err(sim_error)
}

pub struct ServiceRow {
    pub image: String,
    pub paused: bool,
    pub scaling: Scaling,
    /// An operation is in progress.
    pub busy: bool,
}

/// The service as it is now: seeded with `first_image` on first use, then with every
/// operation whose time is up settled (what runs, whether it is paused, its scaling).
pub async fn service(pool: &PgPool, name: &str, first_image: &str, first_password: &str) -> CloudResult<ServiceRow> {
    sqlx::query!(
        "insert into console.sim_service (name, image, db_password) values ($1, $2, $3) on conflict (name) do nothing",
        name,
        first_image,
        first_password
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    sqlx::query!(
        r#"with done as (
               update console.sim_operations
                  set status = case when fails then 'FAILED' else 'SUCCEEDED' end, ended_at = ends_at
                where service = $1 and status is null and ends_at <= now()
            returning kind, image, min_size, max_size, fails, ends_at)
           update console.sim_service s set
               image = coalesce((select image from done where not fails and image is not null
                                 order by ends_at desc limit 1), s.image),
               paused = coalesce((select kind = 'PAUSE_SERVICE' from done
                                  where not fails and kind in ('PAUSE_SERVICE', 'RESUME_SERVICE')
                                  order by ends_at desc limit 1), s.paused),
               min_size = coalesce((select min_size from done where not fails and min_size is not null
                                    order by ends_at desc limit 1), s.min_size),
               max_size = coalesce((select max_size from done where not fails and max_size is not null
                                    order by ends_at desc limit 1), s.max_size),
               updated_at = now()
            where s.name = $1 and exists (select 1 from done)"#,
        name
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    let row = sqlx::query!(
        r#"select image, paused, min_size, max_size,
                  exists (select 1 from console.sim_operations o where o.service = s.name and o.status is null)
                      as "busy!"
             from console.sim_service s where name = $1"#,
        name
    )
    .fetch_one(pool)
    .await
    .map_err(sim_error)?;
    Ok(ServiceRow {
        image: row.image,
        paused: row.paused,
        scaling: Scaling { min: row.min_size, max: row.max_size },
        busy: row.busy,
    })
}

/// An App Runner operation to record, ending `takes_ms` from now.
pub struct NewOperation<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub image: Option<&'a str>,
    pub scaling: Option<Scaling>,
    pub takes_ms: i64,
    pub fails: bool,
}

pub async fn start_operation(pool: &PgPool, service: &str, op: NewOperation<'_>) -> CloudResult<()> {
    sqlx::query!(
        "insert into console.sim_operations (id, service, kind, image, min_size, max_size, ends_at, fails)
         values ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 millisecond', $8)",
        op.id,
        service,
        op.kind,
        op.image,
        op.scaling.map(|s| s.min),
        op.scaling.map(|s| s.max),
        op.takes_ms,
        op.fails
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    Ok(())
}

/// The newest operations, newest first; unsettled ones are IN_PROGRESS.
pub async fn operations(pool: &PgPool, service: &str) -> CloudResult<Vec<Operation>> {
    let rows = sqlx::query!(
        "select id, kind, status, started_at, ended_at from console.sim_operations
          where service = $1 order by started_at desc limit 20",
        service
    )
    .fetch_all(pool)
    .await
    .map_err(sim_error)?;
    Ok(rows
        .into_iter()
        .map(|o| Operation {
            id: o.id,
            kind: o.kind,
            status: o.status.unwrap_or_else(|| "IN_PROGRESS".into()),
            started_at: o.started_at,
            ended_at: o.ended_at,
        })
        .collect())
}

pub async fn master_password(pool: &PgPool, service: &str) -> CloudResult<String> {
    sqlx::query_scalar!("select db_password from console.sim_service where name = $1", service)
        .fetch_one(pool)
        .await
        .map_err(sim_error)
}

pub async fn set_master_password(pool: &PgPool, service: &str, password: &str) -> CloudResult<()> {
    sqlx::query!(
        "update console.sim_service set db_password = $2, updated_at = now() where name = $1",
        service,
        password
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    Ok(())
}

pub struct ManualSnapshot {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub available: bool,
}

pub async fn manual_snapshots(pool: &PgPool, instance: &str) -> CloudResult<Vec<ManualSnapshot>> {
    sqlx::query_as!(
        ManualSnapshot,
        r#"select id, created_at, available_at <= now() as "available!" from console.sim_snapshots
            where instance = $1 order by created_at desc limit 50"#,
        instance
    )
    .fetch_all(pool)
    .await
    .map_err(sim_error)
}

/// A manual snapshot, available `takes_ms` from now; taking the same id again is a no-op.
pub async fn create_snapshot(pool: &PgPool, id: &str, instance: &str, takes_ms: i64) -> CloudResult<()> {
    sqlx::query!(
        "insert into console.sim_snapshots (id, instance, available_at)
         values ($1, $2, now() + $3::bigint * interval '1 millisecond') on conflict (id) do nothing",
        id,
        instance,
        takes_ms
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    Ok(())
}

/// An instance restored from `snapshot`, available `takes_ms` from now; idempotent.
pub async fn restore_instance(pool: &PgPool, id: &str, snapshot: &str, takes_ms: i64) -> CloudResult<()> {
    sqlx::query!(
        "insert into console.sim_instances (id, from_snapshot, available_at)
         values ($1, $2, now() + $3::bigint * interval '1 millisecond') on conflict (id) do nothing",
        id,
        snapshot,
        takes_ms
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    Ok(())
}

/// Whether a restored instance is available; `None` when there is none (or it was deleted).
pub async fn restored_available(pool: &PgPool, id: &str) -> CloudResult<Option<bool>> {
    sqlx::query_scalar!(
        r#"select available_at <= now() as "available!" from console.sim_instances where id = $1 and deleted_at is null"#,
        id
    )
    .fetch_optional(pool)
    .await
    .map_err(sim_error)
}

pub async fn delete_instance(pool: &PgPool, id: &str) -> CloudResult<()> {
    sqlx::query!("update console.sim_instances set deleted_at = now() where id = $1 and deleted_at is null", id)
        .execute(pool)
        .await
        .map_err(sim_error)?;
    Ok(())
}

/// Give a secret its first version, dated `at`, unless it has one.
pub async fn seed_secret(pool: &PgPool, id: &str, value: &str, at: DateTime<Utc>) -> CloudResult<()> {
    sqlx::query!(
        "insert into console.sim_secret_versions (secret_id, version_id, value, current, created_at)
         select $1, 'initial', $2, true, $3
          where not exists (select 1 from console.sim_secret_versions where secret_id = $1)
         on conflict do nothing",
        id,
        value,
        at
    )
    .execute(pool)
    .await
    .map_err(sim_error)?;
    Ok(())
}

/// When the current version was made current.
pub async fn secret_changed(pool: &PgPool, id: &str) -> CloudResult<Option<DateTime<Utc>>> {
    sqlx::query_scalar!("select created_at from console.sim_secret_versions where secret_id = $1 and current", id)
        .fetch_optional(pool)
        .await
        .map_err(sim_error)
}

/// Store a version; returns the value stored under that version id (an earlier one if the id
/// was used before, as Secrets Manager keeps the first).
pub async fn stage_secret(pool: &PgPool, id: &str, version: &str, value: &str) -> CloudResult<String> {
    sqlx::query_scalar!(
        "with put as (
             insert into console.sim_secret_versions (secret_id, version_id, value) values ($1, $2, $3)
             on conflict (secret_id, version_id) do nothing returning value)
         select value as \"value!\" from put
         union all select value from console.sim_secret_versions where secret_id = $1 and version_id = $2",
        id,
        version,
        value
    )
    .fetch_one(pool)
    .await
    .map_err(sim_error)
}

/// The current value, or the one of `version`.
pub async fn secret_value(pool: &PgPool, id: &str, version: Option<&str>) -> CloudResult<Option<String>> {
    sqlx::query_scalar!(
        "select value from console.sim_secret_versions
          where secret_id = $1 and (($2::text is null and current) or version_id = $2)",
        id,
        version
    )
    .fetch_optional(pool)
    .await
    .map_err(sim_error)
}

/// What making a version current found.
pub enum Promoted {
    NoSuchVersion,
    AlreadyCurrent,
    Now,
}

pub async fn promote_secret(pool: &PgPool, id: &str, version: &str) -> CloudResult<Promoted> {
    let mut tx = pool.begin().await.map_err(sim_error)?;
    let current = sqlx::query_scalar!(
        "select current from console.sim_secret_versions where secret_id = $1 and version_id = $2 for update",
        id,
        version
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(sim_error)?;
    match current {
        None => return Ok(Promoted::NoSuchVersion),
        Some(true) => return Ok(Promoted::AlreadyCurrent),
        Some(false) => {}
    }
    sqlx::query!("update console.sim_secret_versions set current = false where secret_id = $1 and current", id)
        .execute(&mut *tx)
        .await
        .map_err(sim_error)?;
    sqlx::query!(
        "update console.sim_secret_versions set current = true, created_at = now()
          where secret_id = $1 and version_id = $2",
        id,
        version
    )
    .execute(&mut *tx)
    .await
    .map_err(sim_error)?;
    tx.commit().await.map_err(sim_error)?;
    Ok(Promoted::Now)
}

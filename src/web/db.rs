//! The web layer's own table: the submissions of one-shot forms (`console.form_submissions`,
//! see [`super::once`]).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub async fn submission_went_to(pool: &PgPool, token: Uuid, staff: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("select went_to from console.form_submissions where token = $1 and staff_id = $2", token, staff)
        .fetch_optional(pool)
        .await
}

/// Record a submission (and forget those older than a day: a form is not resubmitted later).
pub async fn record_submission(
    tx: &mut PgConnection,
    token: Uuid,
    staff: Uuid,
    went_to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from console.form_submissions where submitted_at < now() - interval '1 day'")
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "insert into console.form_submissions (token, staff_id, went_to) values ($1, $2, $3)",
        token,
        staff,
        went_to
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

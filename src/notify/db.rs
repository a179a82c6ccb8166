//! The Slack messages' SQL (`console.chat_messages`).

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};

use super::{Channel, Delivery, Message};

pub(super) async fn insert(
    conn: &mut PgConnection,
    key: &str,
    channel: Channel,
    source: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.chat_messages (key, channel, source, body) values ($1, $2, $3, $4)
         on conflict (key) do nothing",
        key,
        channel.as_str(),
        source,
        body
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The oldest message due, held for two minutes so no other courier takes it meanwhile.
pub(super) async fn take_due(db: impl PgExecutor<'_>) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"update console.chat_messages set next_attempt_at = now() + interval '2 minutes'
           where id = (select id from console.chat_messages
                       where status = 'pending' and next_attempt_at <= now()
                       order by next_attempt_at limit 1 for update skip locked)
           returning id, channel as "channel: Channel", source, body, status as "status: Delivery", attempts,
                     last_error, created_at, sent_at"#
    )
    .fetch_optional(db)
    .await
}

/// Record an attempt: sent, given up, kept for later (`retry_in`), or not connected.
pub(super) async fn settle(
    db: impl PgExecutor<'_>,
    id: i64,
    status: Delivery,
    error: Option<&str>,
    retry_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    let counts = status != Delivery::Unsent;
    sqlx::query!(
        "update console.chat_messages
         set status = $2, last_error = $3, attempts = attempts + $4::int,
             next_attempt_at = now() + make_interval(secs => $5::float8),
             sent_at = case when $2 = 'sent' then now() end
         where id = $1",
        id,
        status.as_str(),
        error,
        i32::from(counts),
        retry_in.unwrap_or_default().as_secs_f64()
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The messages about one page (a run, an incident…), oldest first.
pub async fn of_source(db: impl PgExecutor<'_>, source: &str) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"select id, channel as "channel: Channel", source, body, status as "status: Delivery", attempts,
                  last_error, created_at, sent_at
           from console.chat_messages where source = $1 order by id limit 200"#,
        source
    )
    .fetch_all(db)
    .await
}

/// Every message, newest first, a page at a time (keyset on the id).
pub async fn page(db: impl PgExecutor<'_>, before: Option<i64>, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as!(
        Message,
        r#"select id, channel as "channel: Channel", source, body, status as "status: Delivery", attempts,
                  last_error, created_at, sent_at
           from console.chat_messages where id < coalesce($1, 9223372036854775807) order by id desc limit $2"#,
        before,
        limit
    )
    .fetch_all(db)
    .await
}

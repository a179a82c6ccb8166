//! SQL about people (Drop's customers) and their transactions.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};

use crate::audit::AuditToken;

/// A person as Drop's `users` row has them. The name, country and KYC date are optional in
/// the schema contract: read through `to_jsonb(u)`, they are `None` where Drop's table has no
/// such column.
pub struct Person {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub country: Option<String>,
    pub kyc_status: String,
    pub kyc_updated_at: Option<DateTime<Utc>>,
    pub auth_provider: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
    pub retention_ends_at: Option<DateTime<Utc>>,
}

impl Person {
    /// How the person is named on a page: their name, or their email where Drop keeps none.
    pub fn name(&self) -> &str {
        self.full_name.as_deref().unwrap_or(&self.email)
    }
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> Result<Option<Person>, sqlx::Error> {
    sqlx::query_as!(
        Person,
        r#"select id, email, to_jsonb(u) ->> 'full_name' as full_name, to_jsonb(u) ->> 'country' as country, kyc_status,
                  (to_jsonb(u) ->> 'kyc_updated_at')::timestamptz as kyc_updated_at, auth_provider,
                  created_at, deleted_at, e.erased_at as "erased_at?", e.retention_ends_at as "retention_ends_at?"
           from users u left join console.erasures e on e.user_id = u.id where u.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// People by exact id or case-insensitive email (the email index).
pub async fn lookup(db: impl PgExecutor<'_>, term: &str) -> Result<Vec<Person>, sqlx::Error> {
    sqlx::query_as!(
        Person,
        r#"select id, email, to_jsonb(u) ->> 'full_name' as full_name, to_jsonb(u) ->> 'country' as country, kyc_status,
                  (to_jsonb(u) ->> 'kyc_updated_at')::timestamptz as kyc_updated_at, auth_provider,
                  created_at, deleted_at, e.erased_at as "erased_at?", e.retention_ends_at as "retention_ends_at?"
           from users u left join console.erasures e on e.user_id = u.id where u.id = $1 or lower(u.email) = lower($1)
           order by created_at limit 20"#,
        term
    )
    .fetch_all(db)
    .await
}

/// People whose email, name or last name begins with `term` (any case), by index, in name
/// order: at most `limit`. Where Drop keeps no names (`by_name` false), by email only.
pub async fn starting_with(
    db: impl PgExecutor<'_>,
    term: &str,
    limit: i64,
    by_name: bool,
) -> Result<Vec<Person>, sqlx::Error> {
    let range = crate::db::PrefixRange::of(term);
    if !by_name {
        return sqlx::query_as!(
            Person,
            r#"select id, email, null::text as full_name, to_jsonb(u) ->> 'country' as country, kyc_status,
                      (to_jsonb(u) ->> 'kyc_updated_at')::timestamptz as kyc_updated_at, auth_provider,
                      created_at, deleted_at, e.erased_at as "erased_at?", e.retention_ends_at as "retention_ends_at?"
               from users u left join console.erasures e on e.user_id = u.id
               where lower(email) ~>=~ $1 and lower(email) ~<~ $2
               order by lower(email), id limit $3"#,
            range.from,
            range.to,
            limit
        )
        .fetch_all(db)
        .await;
    }
    sqlx::query_as!(
        Person,
        r#"select id, email, full_name, to_jsonb(u) ->> 'country' as country, kyc_status,
                  (to_jsonb(u) ->> 'kyc_updated_at')::timestamptz as kyc_updated_at, auth_provider,
                  created_at, deleted_at, e.erased_at as "erased_at?", e.retention_ends_at as "retention_ends_at?"
           from users u left join console.erasures e on e.user_id = u.id
           where (lower(email) ~>=~ $1 and lower(email) ~<~ $2)
              or (lower(full_name) ~>=~ $1 and lower(full_name) ~<~ $2)
              or (console.last_word(full_name) ~>=~ $1 and console.last_word(full_name) ~<~ $2)
           order by lower(full_name), id limit $3"#,
        range.from,
        range.to,
        limit
    )
    .fetch_all(db)
    .await
}

/// Of `terms`, the ids of the people they name: a user id, or an email in any case.
pub async fn named(db: impl PgExecutor<'_>, terms: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let lower: Vec<String> = terms.iter().map(|t| t.to_lowercase()).collect();
    sqlx::query_scalar!(
        "select id from users where id = any($1) or lower(email) = any($2) order by id limit 20",
        terms,
        &lower
    )
    .fetch_all(db)
    .await
}

pub struct TxRow {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub kind: String,
    pub status: String,
    pub send_amount: Decimal,
    pub send_currency: String,
    pub receive_amount: Option<Decimal>,
    pub receive_currency: Option<String>,
    pub recipient_country: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TxRow {
    pub fn amount(&self) -> String {
        super::money(self.send_amount, &self.send_currency)
    }

    pub fn received(&self) -> Option<String> {
        Some(super::money(self.receive_amount?, self.receive_currency.as_deref()?))
    }
}

pub async fn transaction(db: impl PgExecutor<'_>, id: &str) -> Result<Option<TxRow>, sqlx::Error> {
    sqlx::query_as!(
        TxRow,
        r#"select t.id, t.user_id, u.email, t.type as kind, t.status, t.send_amount, t.send_currency::text as "send_currency!",
                  (to_jsonb(t) ->> 'receive_amount')::numeric as receive_amount, to_jsonb(t) ->> 'receive_currency' as receive_currency,
                  to_jsonb(t) ->> 'recipient_country' as recipient_country, to_jsonb(t) ->> 'failure_reason' as failure_reason,
                  t.created_at
           from transactions t join users u on u.id = t.user_id where t.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// One person's transactions, newest first, keyset on (created_at, id).
pub async fn history(
    db: impl PgExecutor<'_>,
    user_id: &str,
    before: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<TxRow>, sqlx::Error> {
    let (before_time, before_id) = before.unzip();
    sqlx::query_as!(
        TxRow,
        r#"select t.id, t.user_id, u.email, t.type as kind, t.status, t.send_amount, t.send_currency::text as "send_currency!",
                  (to_jsonb(t) ->> 'receive_amount')::numeric as receive_amount, to_jsonb(t) ->> 'receive_currency' as receive_currency,
                  to_jsonb(t) ->> 'recipient_country' as recipient_country, to_jsonb(t) ->> 'failure_reason' as failure_reason,
                  t.created_at
           from transactions t join users u on u.id = t.user_id
           where t.user_id = $1 and ($2::timestamptz is null or (t.created_at, t.id) < ($2, $3))
           order by t.created_at desc, t.id desc
           limit $4"#,
        user_id,
        before_time,
        before_id,
        limit
    )
    .fetch_all(db)
    .await
}

/// The runbook's transaction lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxList {
    /// Everything in the last 24 hours.
    Recent,
    /// Failed in the last 7 days.
    Failed,
    /// Over the per-currency threshold in the last 30 days.
    Large,
    /// In the last 30 days, in a currency with no "large" threshold configured: never left
    /// out of the large list silently.
    NoThreshold,
}

pub async fn list(
    db: impl PgExecutor<'_>,
    which: TxList,
    thresholds: &[(String, Decimal)],
    before: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<TxRow>, sqlx::Error> {
    let (before_time, before_id) = before.unzip();
    let (currencies, minimums): (Vec<String>, Vec<Decimal>) = thresholds.iter().cloned().unzip();
    let (window_hours, failed_only, large_only, unthresholded_only) = match which {
        TxList::Recent => (24, false, false, false),
        TxList::Failed => (7 * 24, true, false, false),
        TxList::Large => (30 * 24, false, true, false),
        TxList::NoThreshold => (30 * 24, false, false, true),
    };
    sqlx::query_as!(
        TxRow,
        r#"select t.id, t.user_id, u.email, t.type as kind, t.status, t.send_amount, t.send_currency::text as "send_currency!",
                  (to_jsonb(t) ->> 'receive_amount')::numeric as receive_amount, to_jsonb(t) ->> 'receive_currency' as receive_currency,
                  to_jsonb(t) ->> 'recipient_country' as recipient_country, to_jsonb(t) ->> 'failure_reason' as failure_reason,
                  t.created_at
           from transactions t join users u on u.id = t.user_id
           where t.created_at > now() - make_interval(hours => $1)
             and (not $2 or t.status = 'failed')
             and (not $3 or t.send_amount > (select m.minimum from unnest($4::text[], $5::numeric[]) as m(currency, minimum)
                                              where m.currency = t.send_currency))
             and (not $9 or not (t.send_currency::text = any($4::text[])))
             and ($6::timestamptz is null or (t.created_at, t.id) < ($6, $7))
           order by t.created_at desc, t.id desc
           limit $8"#,
        window_hours,
        failed_only,
        large_only,
        &currencies,
        &minimums,
        before_time,
        before_id,
        limit,
        unthresholded_only
    )
    .fetch_all(db)
    .await
}

pub struct KycRow {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub auth_provider: String,
    /// Since when the applicant waits: the KYC status's last change, or sign-up where Drop
    /// does not record that.
    pub waiting_since: DateTime<Utc>,
}

/// Applicants pending for longer than `hours`, longest waiting first: by when their KYC status
/// last changed, or (`since_change` false: Drop keeps no such date) since they signed up.
pub async fn kyc_pending_over(
    db: impl PgExecutor<'_>,
    hours: i32,
    since_change: bool,
) -> Result<Vec<KycRow>, sqlx::Error> {
    if !since_change {
        return sqlx::query_as!(
            KycRow,
            r#"select id, email, to_jsonb(u) ->> 'full_name' as full_name, auth_provider, created_at as waiting_since
               from users u
               where kyc_status = 'pending' and deleted_at is null and created_at < now() - make_interval(hours => $1)
               order by created_at limit 500"#,
            hours
        )
        .fetch_all(db)
        .await;
    }
    sqlx::query_as!(
        KycRow,
        r#"select id, email, to_jsonb(u) ->> 'full_name' as full_name, auth_provider, kyc_updated_at as "waiting_since!"
           from users u
           where kyc_status = 'pending' and deleted_at is null and kyc_updated_at < now() - make_interval(hours => $1)
           order by kyc_updated_at limit 500"#,
        hours
    )
    .fetch_all(db)
    .await
}

/// Revoke every live session of a person; returns how many.
pub async fn revoke_sessions(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("update sessions set revoked = 1 where user_id = $1 and revoked = 0", user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn live_sessions(db: impl PgExecutor<'_>, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select count(*) as "n!" from sessions where user_id = $1 and revoked = 0"#, user_id)
        .fetch_one(db)
        .await
}

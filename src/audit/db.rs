//! Audit SQL. Rows are only ever inserted; the database trigger stamps, sequences and chains.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::{AuditContext, Chain, Intent, Reason};

/// One row to append; the trigger adds time, sequence and hashes.
pub struct NewRow<'a> {
    pub kind: &'a str,
    pub intent_id: Option<i64>,
    pub action: &'a str,
    pub resource_type: &'a str,
    /// The chain the row goes to: its resource's, or (an outcome) its intent's.
    pub chain: Chain,
    pub resource_id: &'a str,
    pub reason: Option<&'a str>,
    pub details: &'a serde_json::Value,
    pub outcome: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl<'a> NewRow<'a> {
    pub fn of(kind: &'a str, what: &'a Intent) -> Self {
        Self {
            kind,
            intent_id: None,
            action: what.action,
            resource_type: what.resource_type.as_str(),
            chain: what.resource_type.chain(),
            resource_id: &what.resource_id,
            reason: what.reason.as_ref().map(Reason::as_str),
            details: &what.details,
            outcome: None,
            error: None,
        }
    }
}

/// Largest `details` one row keeps: a request cannot make the console write more than this
/// (a 60 KB search filter wrote 63 KB per request). Larger details keep their size and head.
pub const DETAILS_MAX: usize = 4096;

fn bounded(details: &serde_json::Value) -> std::borrow::Cow<'_, serde_json::Value> {
    let text = details.to_string();
    if text.len() <= DETAILS_MAX {
        return std::borrow::Cow::Borrowed(details);
    }
    let head: String = text.chars().take(512).collect();
    std::borrow::Cow::Owned(serde_json::json!({ "truncated": true, "bytes": text.len(), "head": head }))
}

pub async fn insert(conn: &mut PgConnection, ctx: &AuditContext, row: NewRow<'_>) -> Result<i64, sqlx::Error> {
    let details = bounded(row.details);
    let a = &ctx.actor;
    let m = &ctx.meta;
    sqlx::query_scalar!(
        "insert into console.audit_entries (kind, intent_id, actor, actor_issuer, actor_subject, actor_email, actor_roles,
                                action, resource_type, resource_id, reason, request_id, client_ip, user_agent,
                                session_fingerprint, outcome, error, details, chain)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         returning id",
        row.kind,
        row.intent_id,
        a.name,
        a.issuer,
        a.subject,
        a.email,
        &a.role_names(),
        row.action,
        row.resource_type,
        row.resource_id,
        row.reason,
        m.request_id,
        m.client_ip,
        m.user_agent,
        a.session_fingerprint,
        row.outcome,
        row.error,
        details.as_ref(),
        row.chain.as_str(),
    )
    .fetch_one(conn)
    .await
}

pub struct IntentSummary {
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub chain: Chain,
}

/// The action and resource of an intent, repeated on its outcome row so each row reads alone.
pub async fn intent_summary(conn: &mut PgConnection, intent_id: i64) -> Result<IntentSummary, sqlx::Error> {
    sqlx::query_as!(
        IntentSummary,
        r#"select action, resource_type, resource_id, chain as "chain: Chain" from console.audit_entries
           where id = $1 and kind = 'intent'"#,
        intent_id
    )
    .fetch_one(conn)
    .await
}

/// Mark intents older than `timeout` that have no outcome as `unknown`. One replica at a time
/// (the others skip the locked mark), and only intents since the low-water mark.
pub async fn mark_unknown_outcomes(pool: &sqlx::PgPool, timeout: std::time::Duration) -> Result<u64, sqlx::Error> {
    let secs = timeout.as_secs_f64();
    let mut tx = pool.begin().await?;
    let Some(mark) = sqlx::query_scalar!(
        "select reconciled_before from console.audit_reconciler where singleton for update skip locked"
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(0);
    };
    let done = sqlx::query!(
        "insert into console.audit_entries (kind, intent_id, actor, action, resource_type, resource_id, outcome, error, chain)
         select 'outcome', i.id, 'system', i.action, i.resource_type, i.resource_id, 'unknown',
                'no outcome was recorded in time: check the target system by hand', i.chain
         from console.audit_entries i
         where i.kind = 'intent' and i.created_at < now() - make_interval(secs => $1)
           and ($2::timestamptz is null or i.created_at >= $2 - interval '1 hour')
           and not exists (select 1 from console.audit_entries o where o.kind = 'outcome' and o.intent_id = i.id)
         order by i.id",
        secs,
        mark,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update console.audit_reconciler set reconciled_before = now() - make_interval(secs => $1) where singleton",
        secs
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// What one stretch of the chain looked like when recomputed.
#[derive(Debug)]
pub struct Stretch {
    pub rows: i64,
    /// The last row checked, where the next stretch continues; `None` when there was none.
    pub last: Option<(i64, Vec<u8>)>,
    /// Id of the first row that does not match, and what is wrong with it.
    pub first_broken: Option<(i64, String)>,
}

/// Recompute the rows with `seq` in `(after_seq, after_seq + size]`, linking the first to
/// `after_hash`. One index range and one result row, so a caller can walk any length of
/// chain in bounded memory.
pub async fn verify_stretch(
    db: impl PgExecutor<'_>,
    chain: Chain,
    after_seq: i64,
    after_hash: Option<&[u8]>,
    size: i64,
) -> Result<Stretch, sqlx::Error> {
    let row = sqlx::query!(
        r#"with chain as (
             select a.id, a.seq, a.hash,
                    a.prev_hash is distinct from coalesce(lag(a.hash) over w, $2) as link_broken,
                    a.seq <> coalesce(lag(a.seq) over w, $1) + 1 as gap,
                    a.hash <> console.audit_row_hash(a.prev_hash, a) as changed
             from console.audit_entries a
             where a.chain = $4 and a.seq > $1 and a.seq <= $1 + $3
             window w as (order by a.seq)
           ), first as (
             select id, case when changed then 'its content was changed after it was written'
                             when gap then 'a row before it is missing'
                             else 'it does not link to the row before it' end as problem
             from chain where link_broken or gap or changed order by seq limit 1
           ), last as (
             select seq, hash from chain order by seq desc limit 1
           )
           select (select count(*) from chain) as "rows!", (select id from first) as broken_id,
                  (select problem from first) as problem, (select seq from last) as last_seq,
                  (select hash from last) as last_hash"#,
        after_seq,
        after_hash,
        size,
        chain.as_str(),
    )
    .fetch_one(db)
    .await?;
    Ok(Stretch { rows: row.rows, last: row.last_seq.zip(row.last_hash), first_broken: row.broken_id.zip(row.problem) })
}

/// The first row after `seq`, by index: where a verification continues across a gap.
pub async fn next_after(db: impl PgExecutor<'_>, chain: Chain, seq: i64) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let row = sqlx::query!(
        "select id, seq from console.audit_entries where chain = $1 and seq > $2 order by seq limit 1",
        chain.as_str(),
        seq
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.id, r.seq)))
}

/// The chain's head (seq and hash of the newest row), from its one-row table.
pub async fn chain_head(db: impl PgExecutor<'_>, chain: Chain) -> Result<(i64, Option<Vec<u8>>), sqlx::Error> {
    let row = sqlx::query!("select seq, hash from console.audit_chain_head where chain = $1", chain.as_str())
        .fetch_one(db)
        .await?;
    Ok((row.seq, row.hash))
}

/// The hash of a chain's row number `seq`, if the row exists.
pub async fn row_hash(db: impl PgExecutor<'_>, chain: Chain, seq: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar!("select hash from console.audit_entries where chain = $1 and seq = $2", chain.as_str(), seq)
        .fetch_optional(db)
        .await
}

/// A verification of the chain, running or finished.
#[derive(Clone, Debug)]
pub struct Verification {
    pub id: i64,
    pub chain: Chain,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub started_by: String,
    pub full_chain: bool,
    pub from_seq: i64,
    pub target_seq: i64,
    pub checked_seq: i64,
    pub checked_hash: Option<Vec<u8>>,
    pub rows: i64,
    pub broken_id: Option<i64>,
    pub problem: Option<String>,
}

pub async fn start_verification(
    db: impl PgExecutor<'_>,
    chain: Chain,
    started_by: &str,
    full_chain: bool,
    from: (i64, Option<&[u8]>),
    target_seq: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into console.audit_verifications (started_by, full_chain, from_seq, target_seq, checked_seq, checked_hash,
                                                  chain)
         values ($1, $2, $3, $4, $3, $5, $6) returning id",
        started_by,
        full_chain,
        from.0,
        target_seq.max(from.0),
        from.1,
        chain.as_str(),
    )
    .fetch_one(db)
    .await
}

/// Progress after a stretch: how far the verification got.
pub async fn advance_verification(
    db: impl PgExecutor<'_>,
    id: i64,
    checked_seq: i64,
    checked_hash: Option<&[u8]>,
    rows: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.audit_verifications
         set checked_seq = $2, checked_hash = $3, rows = $4, updated_at = now() where id = $1",
        id,
        checked_seq,
        checked_hash,
        rows,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish_verification(
    db: impl PgExecutor<'_>,
    id: i64,
    broken: Option<(Option<i64>, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.audit_verifications
         set finished_at = now(), updated_at = now(), broken_id = $2, problem = $3 where id = $1",
        id,
        broken.and_then(|b| b.0),
        broken.map(|b| b.1),
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn verification(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as!(
        Verification,
        "select id, chain as \"chain: Chain\", started_at, updated_at, finished_at, started_by, full_chain, from_seq, target_seq,
                checked_seq, checked_hash, rows, broken_id, problem
         from console.audit_verifications where id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

/// The newest verification that finished and found the chain intact: where the next starts.
pub async fn checkpoint(db: impl PgExecutor<'_>, chain: Chain) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as!(
        Verification,
        "select id, chain as \"chain: Chain\", started_at, updated_at, finished_at, started_by, full_chain, from_seq, target_seq,
                checked_seq, checked_hash, rows, broken_id, problem
         from console.audit_verifications where chain = $1 and finished_at is not null and problem is null
         order by id desc limit 1",
        chain.as_str()
    )
    .fetch_optional(db)
    .await
}

/// The newest break found that no later full verification has cleared.
pub async fn standing_break(db: impl PgExecutor<'_>, chain: Chain) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as!(
        Verification,
        "select b.id, b.chain as \"chain: Chain\", b.started_at, b.updated_at, b.finished_at, b.started_by, b.full_chain, b.from_seq,
                b.target_seq, b.checked_seq, b.checked_hash, b.rows, b.broken_id, b.problem
         from console.audit_verifications b
         where b.chain = $1 and b.problem is not null
           and not exists (select 1 from console.audit_verifications f
                           where f.chain = b.chain and f.full_chain and f.finished_at is not null
                             and f.problem is null and f.id > b.id)
         order by b.id desc limit 1",
        chain.as_str()
    )
    .fetch_optional(db)
    .await
}

pub struct AuditEntry {
    pub id: i64,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    pub kind: String,
    pub intent_id: Option<i64>,
    pub actor: String,
    pub actor_email: Option<String>,
    pub actor_roles: Vec<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub details: serde_json::Value,
    /// For an intent: the newest outcome recorded for it, if any.
    pub result: Option<String>,
}

/// Search criteria of the audit page and export. Empty fields match everything.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct AuditFilter {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub outcome: String,
    /// `YYYY-MM-DD`, inclusive, UTC.
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD`, inclusive, UTC.
    #[serde(default)]
    pub to: String,
}

/// A filter checked and ready for SQL.
pub struct ParsedFilter {
    pub actor: Option<String>,
    /// The actor term and, when it is part of a staff member's name or email, that person's
    /// name and email: lowercase, matched exactly against the rows (see [`staff_matching`]).
    pub actors: Option<Vec<String>>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A staff member an actor search names.
pub struct StaffMatch {
    pub display_name: String,
    pub email: Option<String>,
}

/// Staff whose name, last name or email begins with `term` (any case), by index: the audit
/// log's rows name their actor in full, so part of a name finds the people it could mean.
pub async fn staff_matching(db: impl PgExecutor<'_>, term: &str) -> Result<Vec<StaffMatch>, sqlx::Error> {
    let range = crate::db::PrefixRange::of(term);
    sqlx::query_as!(
        StaffMatch,
        r#"select display_name, email from console.staff
           where (lower(display_name) ~>=~ $1 and lower(display_name) ~<~ $2)
              or (lower(email) ~>=~ $1 and lower(email) ~<~ $2)
              or (console.last_word(display_name) ~>=~ $1 and console.last_word(display_name) ~<~ $2)
           order by display_name limit 20"#,
        range.from,
        range.to
    )
    .fetch_all(db)
    .await
}

/// One page of a chain's rows matching `f`, newest first, read by index however large the log:
/// a backward range of the primary key (or of an index ending in `id`) inside the chain's ids,
/// or for an actor, [`search_by_actor`].
pub async fn search(
    db: impl PgExecutor<'_>,
    chain: Chain,
    f: &ParsedFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    if let Some(actors) = &f.actors {
        return search_by_actor(db, chain, actors, f, before, limit).await;
    }
    sqlx::query_as!(
        AuditEntry,
        r#"select a.id, a.seq, a.created_at, a.kind, a.intent_id, a.actor, a.actor_email, a.actor_roles,
                  a.action, a.resource_type, a.resource_id, a.reason, a.request_id, a.client_ip, a.outcome,
                  a.error, a.details,
                  (select o.outcome from console.audit_entries o where o.kind = 'outcome' and o.intent_id = a.id
                   order by o.id desc limit 1) as result
           from console.audit_entries a
           where ($1::text is null or a.action = $1)
             and ($2::text is null or a.resource_id = $2 or a.resource_type = $2)
             and ($3::text is null or a.outcome = $3
                  or (a.kind = 'intent' and exists (select 1 from console.audit_entries o where o.kind = 'outcome'
                                                     and o.intent_id = a.id and o.outcome = $3)))
             and ($4::timestamptz is null or a.created_at >= $4)
             and ($5::timestamptz is null or a.created_at < $5)
             and a.id >= $8::bigint and a.id < least($6::bigint, $9::bigint)
           order by a.id desc
           limit $7"#,
        f.action,
        f.resource,
        f.outcome,
        f.from,
        f.to,
        before.unwrap_or(i64::MAX),
        limit,
        chain.ids().0,
        chain.ids().1,
    )
    .fetch_all(db)
    .await
}

/// Rows whose actor (name or email, lowercase) is one of `actors`: each term followed down its
/// own index — `audit_log_actor_idx` for names, `audit_log_actor_email_idx` for emails — newest
/// first, the other filters applied on the way, each stopped after a page; the pages merged.
/// A catch-all walking the key instead read every newer row of other actors (at 10 million
/// rows, 200 ms for an actor with none among the newest million). The two scans repeat the
/// filters of [`search`]: PostgreSQL follows an index in id order only in a scan of its own.
/// Each scan asks for the term as a range and in its index's order (the term, then id newest
/// first), which only that index gives: with `=` the planner drops the term from the order and,
/// guessing a share of the log per actor, walks the key instead — through every row of a rare one.
async fn search_by_actor(
    db: impl PgExecutor<'_>,
    chain: Chain,
    actors: &[String],
    f: &ParsedFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        r#"select distinct on (a.id) a.id as "id!", a.seq as "seq!", a.created_at as "created_at!", a.kind as "kind!",
                  a.intent_id, a.actor as "actor!", a.actor_email, a.actor_roles as "actor_roles!",
                  a.action as "action!", a.resource_type as "resource_type!", a.resource_id as "resource_id!",
                  a.reason, a.request_id, a.client_ip, a.outcome, a.error, a.details as "details!",
                  (select o.outcome from console.audit_entries o where o.kind = 'outcome' and o.intent_id = a.id
                   order by o.id desc limit 1) as result
           from (
               select x.* from unnest($1::text[]) as t(term)
               cross join lateral (
                   select c.* from console.audit_entries c
                   where lower(c.actor) >= t.term and lower(c.actor) <= t.term
                     and ($2::text is null or c.action = $2)
                     and ($3::text is null or c.resource_id = $3 or c.resource_type = $3)
                     and ($4::text is null or c.outcome = $4
                          or (c.kind = 'intent' and exists (select 1 from console.audit_entries o where o.kind = 'outcome'
                                                             and o.intent_id = c.id and o.outcome = $4)))
                     and ($5::timestamptz is null or c.created_at >= $5)
                     and ($6::timestamptz is null or c.created_at < $6)
                     and c.id >= $9::bigint and c.id < least($7::bigint, $10::bigint)
                   order by lower(c.actor), c.id desc
                   limit $8
               ) x
               union all
               select x.* from unnest($1::text[]) as t(term)
               cross join lateral (
                   select c.* from console.audit_entries c
                   where lower(c.actor_email) >= t.term and lower(c.actor_email) <= t.term
                     and ($2::text is null or c.action = $2)
                     and ($3::text is null or c.resource_id = $3 or c.resource_type = $3)
                     and ($4::text is null or c.outcome = $4
                          or (c.kind = 'intent' and exists (select 1 from console.audit_entries o where o.kind = 'outcome'
                                                             and o.intent_id = c.id and o.outcome = $4)))
                     and ($5::timestamptz is null or c.created_at >= $5)
                     and ($6::timestamptz is null or c.created_at < $6)
                     and c.id >= $9::bigint and c.id < least($7::bigint, $10::bigint)
                   order by lower(c.actor_email), c.id desc
                   limit $8
               ) x
           ) a
           order by a.id desc
           limit $8"#,
        actors,
        f.action,
        f.resource,
        f.outcome,
        f.from,
        f.to,
        before.unwrap_or(i64::MAX),
        limit,
        chain.ids().0,
        chain.ids().1,
    )
    .fetch_all(db)
    .await
}

/// One row and everything linked to it (its intent or its outcomes), oldest first.
pub async fn with_links(db: impl PgExecutor<'_>, id: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        r#"select a.id, a.seq, a.created_at, a.kind, a.intent_id, a.actor, a.actor_email, a.actor_roles,
                  a.action, a.resource_type, a.resource_id, a.reason, a.request_id, a.client_ip, a.outcome,
                  a.error, a.details, null::text as result
           from console.audit_entries a
           where a.id = $1
              or a.intent_id = $1
              or a.id = (select intent_id from console.audit_entries where id = $1)
              or a.intent_id = (select intent_id from console.audit_entries where id = $1)
           order by a.id"#,
        id
    )
    .fetch_all(db)
    .await
}

/// Whether one row's hash and link still match.
pub async fn row_intact(db: impl PgExecutor<'_>, id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select (a.hash = console.audit_row_hash(a.prev_hash, a)
                   and a.prev_hash is not distinct from
                       (select p.hash from console.audit_entries p where p.chain = a.chain and p.seq = a.seq - 1))
                  as "intact!"
           from console.audit_entries a where a.id = $1"#,
        id
    )
    .fetch_one(db)
    .await
}

/// An intent with no real outcome yet (an `unknown` from the reconciler may get a late one).
pub async fn is_open_intent(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from console.audit_entries where id = $1 and kind = 'intent')
              and not exists (select 1 from console.audit_entries where intent_id = $1 and kind = 'outcome' and outcome <> 'unknown')
              as "open!""#,
        id
    )
    .fetch_one(conn)
    .await
}

/// The database's own name: anchors say which database's chains they pin.
pub async fn database_name(pool: &sqlx::PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar!(r#"select current_database()::text as "name!""#).fetch_one(pool).await
}

/// An operations row, as an incident's timeline shows it.
pub struct AuditLine {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// For an intent: the newest outcome recorded for it.
    pub result: Option<String>,
}

/// The operations chain's intents and events in `[from, to)`, oldest first: what people and
/// runs did. Refused requests, audit searches and sign-ins are left out (they are not what
/// happened to production), and so is the casework chain, always.
pub async fn operations_between(
    db: impl PgExecutor<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AuditLine>, sqlx::Error> {
    sqlx::query_as!(
        AuditLine,
        r#"select a.id, a.created_at, a.actor, a.action, a.resource_type, a.resource_id,
                  (select o.outcome from console.audit_entries o where o.kind = 'outcome' and o.intent_id = a.id
                   order by o.id desc limit 1) as result
           from console.audit_entries a
           where a.created_at >= $1 and a.created_at < $2 and a.id < $4::bigint
             and a.kind <> 'outcome' and a.resource_type not in ('route', 'audit_log', 'staff_session')
           order by a.created_at, a.id
           limit $3"#,
        from,
        to,
        limit,
        Chain::Operations.ids().1,
    )
    .fetch_all(db)
    .await
}

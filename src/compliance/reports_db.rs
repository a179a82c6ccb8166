//! STR (suspicious transaction report) SQL. A case lives in `console.str_cases` from its first
//! draft to its filing, frozen by a trigger once filed; the filed report is also written to
//! Drop's `str_reports`, in the runbook's shape.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::status::{StrStatus, StrTransition};
use crate::audit::{AuditToken, Reason};

pub struct StrRow {
    pub id: String,
    pub user_id: String,
    /// The person's name, or their email where Drop keeps no names.
    pub person_name: String,
    pub alert_id: Option<String>,
    pub status: StrStatus,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub drafted_by: Option<Uuid>,
    pub drafted_by_name: Option<String>,
    pub review_comment: Option<String>,
    pub approved_by_name: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub filing_reference: Option<String>,
    pub filed_at: Option<DateTime<Utc>>,
    pub filed_by_name: Option<String>,
    pub filed_hash: Option<String>,
    /// When the suspicion arose: the alert's raising, or the report's drafting without one.
    pub suspected_at: DateTime<Utc>,
}

impl StrRow {
    /// "9 days" since the suspicion arose (until filed).
    pub fn age_days(&self) -> i64 {
        (self.filed_at.unwrap_or_else(Utc::now) - self.suspected_at).num_days()
    }

    /// Not filed within `days` of the suspicion ("without undue delay": the configured target).
    pub fn overdue(&self, days: u32) -> bool {
        self.filed_at.is_none() && self.age_days() > i64::from(days)
    }

    pub fn reason(&self) -> &str {
        self.details["reason"].as_str().unwrap_or_default()
    }

    pub fn narrative(&self) -> &str {
        self.details["narrative"].as_str().unwrap_or_default()
    }
}

pub async fn find(db: impl PgExecutor<'_>, id: &str) -> Result<Option<StrRow>, sqlx::Error> {
    sqlx::query_as!(
        StrRow,
        r#"select r.id, r.user_id, coalesce(to_jsonb(u) ->> 'full_name', u.email) as "person_name!", r.alert_id,
                r.status as "status: StrStatus", r.details,
                r.created_at,
                r.updated_at, r.drafted_by, r.drafted_by_name, r.review_comment, r.approved_by_name, r.approved_at,
                r.filing_reference, r.filed_at, r.filed_by_name, r.filed_hash,
                coalesce((select a.created_at from aml_alerts a where a.id = r.alert_id), r.created_at) as "suspected_at!"
         from console.str_cases r join users u on u.id = r.user_id where r.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Reports in `status`, most recently changed first, after the keyset cursor `before`
/// ((updated_at, id) of the last row of the previous page).
pub async fn in_status(
    db: impl PgExecutor<'_>,
    status: StrStatus,
    before: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<StrRow>, sqlx::Error> {
    sqlx::query_as!(
        StrRow,
        r#"select r.id, r.user_id, coalesce(to_jsonb(u) ->> 'full_name', u.email) as "person_name!", r.alert_id,
                r.status as "status: StrStatus", r.details,
                r.created_at,
                r.updated_at, r.drafted_by, r.drafted_by_name, r.review_comment, r.approved_by_name, r.approved_at,
                r.filing_reference, r.filed_at, r.filed_by_name, r.filed_hash,
                coalesce((select a.created_at from aml_alerts a where a.id = r.alert_id), r.created_at) as "suspected_at!"
         from console.str_cases r join users u on u.id = r.user_id
         where r.status = $1
           and ($2::timestamptz is null or r.updated_at < $2 or (r.updated_at = $2 and r.id > $3))
         order by r.updated_at desc, r.id
         limit $4"#,
        status.as_str(),
        before.map(|b| b.0),
        before.map(|b| b.1.as_str()).unwrap_or(""),
        limit
    )
    .fetch_all(db)
    .await
}

pub struct LinkedTx {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub kind: String,
    pub status: String,
    pub send_amount: Decimal,
    pub send_currency: String,
    pub recipient_country: Option<String>,
}

impl LinkedTx {
    pub fn amount(&self) -> String {
        super::money(self.send_amount, &self.send_currency)
    }
}

/// The person's transactions of the last 180 days, and whether each is on the report.
pub async fn candidate_transactions(
    db: impl PgExecutor<'_>,
    user_id: &str,
    str_id: Option<&str>,
) -> Result<Vec<LinkedTx>, sqlx::Error> {
    sqlx::query_as!(
        LinkedTx,
        r#"select t.id, t.created_at, t.type as kind, t.status, t.send_amount, t.send_currency::text as "send_currency!",
                  to_jsonb(t) ->> 'recipient_country' as recipient_country
           from transactions t
           where t.user_id = $1
             and (t.created_at > now() - interval '180 days'
                  or exists(select 1 from console.str_transactions s where s.str_id = $2 and s.transaction_id = t.id))
           order by t.created_at desc, t.id desc
           limit 500"#,
        user_id,
        str_id
    )
    .fetch_all(db)
    .await
}

pub async fn linked_transactions(db: impl PgExecutor<'_>, str_id: &str) -> Result<Vec<LinkedTx>, sqlx::Error> {
    sqlx::query_as!(
        LinkedTx,
        r#"select t.id, t.created_at, t.type as kind, t.status, t.send_amount, t.send_currency::text as "send_currency!",
                  to_jsonb(t) ->> 'recipient_country' as recipient_country
           from console.str_transactions s join transactions t on t.id = s.transaction_id
           where s.str_id = $1
           order by t.created_at, t.id"#,
        str_id
    )
    .fetch_all(db)
    .await
}

/// Of `ids`, those that are transactions of `user_id`.
pub async fn own_transactions(
    db: impl PgExecutor<'_>,
    user_id: &str,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from transactions where user_id = $1 and id = any($2) order by created_at",
        user_id,
        ids
    )
    .fetch_all(db)
    .await
}

pub struct NewStr<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub alert_id: Option<&'a str>,
    pub details: serde_json::Value,
    pub drafted_by: (Uuid, &'a str),
    pub transactions: &'a [String],
}

pub async fn create(conn: &mut PgConnection, _audited: &AuditToken, new: NewStr<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into console.str_cases (id, user_id, transaction_id, alert_id, status, details, drafted_by, drafted_by_name)
         values ($1, $2, $3, $4, 'draft', $5, $6, $7)",
        new.id,
        new.user_id,
        new.transactions.first(),
        new.alert_id,
        new.details,
        new.drafted_by.0,
        new.drafted_by.1,
    )
    .execute(&mut *conn)
    .await?;
    link(conn, new.id, new.transactions).await
}

async fn link(conn: &mut PgConnection, str_id: &str, transactions: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from console.str_transactions where str_id = $1", str_id).execute(&mut *conn).await?;
    sqlx::query!(
        "insert into console.str_transactions (str_id, transaction_id) select $1, unnest($2::text[])",
        str_id,
        transactions
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Change a draft's text and transactions; false when it is no longer a draft.
pub async fn update_draft(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    details: serde_json::Value,
    transactions: &[String],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update console.str_cases set details = $2, transaction_id = $3, updated_at = now() where id = $1 and status = 'draft'",
        id,
        details,
        transactions.first()
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        link(conn, id, transactions).await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Send a draft for review, clearing the MLRO's last comment; false when it was no draft.
pub async fn submit(conn: &mut PgConnection, _audited: &AuditToken, id: &str) -> Result<bool, sqlx::Error> {
    let edge = StrTransition::Submit;
    let done = sqlx::query!(
        "update console.str_cases set status = $3, review_comment = null, updated_at = now() where id = $1 and status = $2",
        id,
        edge.from().as_str(),
        edge.to().as_str()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Approve a report waiting for review; false when it is not waiting, when the MLRO drafted,
/// edited or submitted it, or when its content is not what was last submitted (the database's
/// trigger refuses those too, whoever writes the row).
pub async fn approve(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    mlro: (Uuid, &str),
) -> Result<bool, sqlx::Error> {
    let edge = StrTransition::Approve;
    let done = sqlx::query!(
        "update console.str_cases set status = $5, approved_by = $2, approved_by_name = $3, approved_at = now(), updated_at = now()
         where id = $1 and status = $4 and drafted_by is distinct from $2
           and not exists (select 1 from console.str_contributions c where c.str_id = $1 and c.staff_id = $2)
           and console.str_content_sha256($1) = (select c.content_sha256 from console.str_contributions c
                                                  where c.str_id = $1 and c.kind = 'submitted' order by c.id desc limit 1)",
        id,
        mlro.0,
        mlro.1,
        edge.from().as_str(),
        edge.to().as_str()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn send_back(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    comment: &Reason,
) -> Result<bool, sqlx::Error> {
    let edge = StrTransition::Return;
    let done = sqlx::query!(
        "update console.str_cases set status = $4, review_comment = $2, updated_at = now() where id = $1 and status = $3",
        id,
        comment.as_str(),
        edge.from().as_str(),
        edge.to().as_str()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub struct Filing<'a> {
    pub reference: &'a str,
    pub filed_at: DateTime<Utc>,
    pub by: &'a str,
    pub snapshot: serde_json::Value,
    pub hash: &'a str,
}

pub async fn mark_filed(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    f: Filing<'_>,
) -> Result<bool, sqlx::Error> {
    let edge = StrTransition::File;
    let done = sqlx::query!(
        "update console.str_cases set status = $8, filing_reference = $2, filed_at = $3, filed_by_name = $4,
                filed_snapshot = $5, filed_hash = $6, updated_at = now()
         where id = $1 and status = $7",
        id,
        f.reference,
        f.filed_at,
        f.by,
        f.snapshot,
        f.hash,
        edge.from().as_str(),
        edge.to().as_str()
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        // What was filed goes to Drop's str_reports, in the runbook's shape: the frozen
        // document as its details.
        sqlx::query!(
            "insert into str_reports (id, user_id, transaction_id, report_type, details, filed_at, status)
             select id, user_id, transaction_id, 'suspicious_transaction', filed_snapshot, filed_at, 'filed'
               from console.str_cases where id = $1",
            id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(done.rows_affected() == 1)
}

pub async fn filed_snapshot(db: impl PgExecutor<'_>, id: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar!("select filed_snapshot from console.str_cases where id = $1", id)
        .fetch_optional(db)
        .await
        .map(Option::flatten)
}

/// A hand in a report's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Contribution {
    Drafted,
    Edited,
    Submitted,
}

impl Contribution {
    pub fn label(self) -> &'static str {
        match self {
            Self::Drafted => "Drafted",
            Self::Edited => "Edited",
            Self::Submitted => "Submitted for review",
        }
    }
}

pub struct Contributor {
    /// `None`: someone outside the console (demo data, reports from before this was kept).
    pub staff_id: Option<Uuid>,
    pub staff_name: String,
    pub kind: Contribution,
    pub content_sha256: String,
    pub at: DateTime<Utc>,
}

/// Record who drafted, edited or submitted a report, with the hash of its content now (in
/// the transaction of the change, so the hash is of what they wrote).
pub async fn contributed(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    staff: (Uuid, &str),
    kind: Contribution,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar!(
        r#"insert into console.str_contributions (str_id, staff_id, staff_name, kind, content_sha256)
           values ($1, $2, $3, $4, console.str_content_sha256($1))
           returning content_sha256"#,
        id,
        staff.0,
        staff.1,
        kind as Contribution
    )
    .fetch_one(conn)
    .await
}

/// Everyone who shaped the report, oldest first.
pub async fn contributors(db: impl PgExecutor<'_>, id: &str) -> Result<Vec<Contributor>, sqlx::Error> {
    sqlx::query_as!(
        Contributor,
        r#"select staff_id, staff_name, kind as "kind: Contribution", content_sha256, at
           from console.str_contributions where str_id = $1 order by id"#,
        id
    )
    .fetch_all(db)
    .await
}

/// How many reports wait for an MLRO's review (the overview's count for MLROs).
pub async fn awaiting_review(db: impl sqlx::PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select count(*) as "count!" from console.str_cases where status = 'pending_review'"#)
        .fetch_one(db)
        .await
}

/// One step of a report's review, from the casework audit log: submitted, returned (with the
/// MLRO's comment), approved, filed.
pub struct ReviewStep {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub reason: Option<String>,
}

/// A report's review history, oldest first (the audit log's resource index).
pub async fn review_history(db: impl PgExecutor<'_>, id: &str) -> Result<Vec<ReviewStep>, sqlx::Error> {
    sqlx::query_as!(
        ReviewStep,
        "select e.created_at as at, e.actor, e.action, e.reason from console.audit_entries e
          where resource_type = 'str_report' and resource_id = $1 and kind = 'intent'
            and action in ('str_submitted', 'str_returned', 'str_approved', 'str_filed')
            and exists (select 1 from console.audit_entries o where o.kind = 'outcome' and o.intent_id = e.id
                         and o.outcome = 'succeeded')
          order by id limit 200",
        id
    )
    .fetch_all(db)
    .await
}

/// The report not yet filed about `user`, preferring one that already names `alert`: where an
/// alert escalated to an STR goes.
pub async fn unfiled_for(db: impl PgExecutor<'_>, user: &str, alert: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from console.str_cases where user_id = $1 and status <> 'filed'
         order by alert_id is not distinct from $2 desc, updated_at desc limit 1",
        user,
        alert
    )
    .fetch_optional(db)
    .await
}

/// Name the alert on a report that names none yet.
pub async fn link_alert(
    conn: &mut PgConnection,
    _audited: &AuditToken,
    id: &str,
    alert: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update console.str_cases set alert_id = coalesce(alert_id, $2), updated_at = now() where id = $1",
        id,
        alert
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Reports not filed within `days` of the suspicion: a count for the summary (STRs are few).
pub async fn overdue_count(db: impl PgExecutor<'_>, days: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from console.str_cases r
           where r.status in ('draft', 'pending_review', 'approved')
             and coalesce((select a.created_at from aml_alerts a where a.id = r.alert_id), r.created_at)
                 < now() - make_interval(days => $1)"#,
        days
    )
    .fetch_one(db)
    .await
}

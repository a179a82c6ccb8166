//! The demo dataset written to the database, once, and the record that it was.

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::Digest;
use sqlx::PgPool;

use super::{Dataset, SeedOutcome, generate};

/// Seed the database once: refuses if it holds people the generator did not write.
pub async fn seed_if_empty(pool: &PgPool, seed: u64) -> anyhow::Result<SeedOutcome> {
    let mut tx = pool.begin().await?;
    // One seeder at a time, even with several console replicas starting together.
    sqlx::query!("lock table console.demo_seed in exclusive mode").execute(&mut *tx).await?;
    if sqlx::query_scalar!("select exists(select 1 from console.demo_seed) as \"seeded!\"").fetch_one(&mut *tx).await? {
        return Ok(SeedOutcome::AlreadySeeded);
    }
    if sqlx::query_scalar!("select exists(select 1 from users) as \"any!\"").fetch_one(&mut *tx).await? {
        return Ok(SeedOutcome::RefusedRealData);
    }
    let data = generate(seed, Utc::now());
    insert(&mut tx, &data).await?;
    sqlx::query!(
        "insert into console.demo_seed (seed, users, transactions) values ($1, $2, $3)",
        seed as i64,
        data.users.len() as i32,
        data.transactions.len() as i32,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into console.audit_entries (actor, action, resource_type, resource_id, details) values ('system', 'demo_data_seeded', 'database', 'demo', $1)",
        json!({ "seed": seed, "users": data.users.len(), "transactions": data.transactions.len() }),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(SeedOutcome::Seeded { users: data.users.len(), transactions: data.transactions.len() })
}

/// The seeding recorded in this database, if any: (seed, when, users, transactions).
pub async fn seeded(pool: &PgPool) -> Result<Option<SeedInfo>, sqlx::Error> {
    sqlx::query_as!(
        SeedInfo,
        "select seed, seeded_at, users, transactions from console.demo_seed order by seeded_at desc limit 1"
    )
    .fetch_optional(pool)
    .await
}

pub struct SeedInfo {
    pub seed: i64,
    pub seeded_at: DateTime<Utc>,
    pub users: i32,
    pub transactions: i32,
}

async fn insert(tx: &mut sqlx::PgConnection, d: &Dataset) -> Result<(), sqlx::Error> {
    let u = &d.users;
    sqlx::query!(
        "insert into users (id, email, full_name, kyc_status, kyc_updated_at, auth_provider, created_at, deleted_at)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::timestamptz[], $8::timestamptz[])",
        &u.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        &u.iter().map(|x| x.email.clone()).collect::<Vec<_>>(),
        &u.iter().map(|x| x.full_name.clone()).collect::<Vec<_>>(),
        &u.iter().map(|x| x.kyc_status.to_owned()).collect::<Vec<_>>(),
        &u.iter().map(|x| x.kyc_updated_at).collect::<Vec<_>>(),
        &u.iter().map(|x| x.auth_provider.to_owned()).collect::<Vec<_>>(),
        &u.iter().map(|x| x.created_at).collect::<Vec<_>>(),
        &u.iter().map(|x| x.deleted_at).collect::<Vec<_>>() as _,
    )
    .execute(&mut *tx)
    .await?;
    // Erased customers are kept for the AML retention period; the first three were erased
    // more than five years ago, so the retention page has people due for deletion.
    sqlx::query!(
        "with erased as (select id, row_number() over (order by id) as n from users where deleted_at is not null),
              long_ago as (update users u set deleted_at = now() - interval '5 years 40 days'
                           from erased e where e.id = u.id and e.n <= 3 returning u.id, u.deleted_at)
         insert into console.erasures (user_id, erased_at, retention_ends_at)
         select u.id, coalesce(l.deleted_at, u.deleted_at), coalesce(l.deleted_at, u.deleted_at) + interval '5 years'
         from users u left join long_ago l on l.id = u.id where u.deleted_at is not null"
    )
    .execute(&mut *tx)
    .await?;
    let s = &d.sessions;
    sqlx::query!(
        "insert into sessions (id, user_id, revoked, created_at, last_seen_at)
         select id, user_id, revoked, created_at, created_at from unnest($1::text[], $2::text[], $3::int2[], $4::timestamptz[]) as t(id, user_id, revoked, created_at)",
        &s.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        &s.iter().map(|x| x.user_id.clone()).collect::<Vec<_>>(),
        &s.iter().map(|x| x.revoked).collect::<Vec<_>>(),
        &s.iter().map(|x| x.created_at).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    let t = &d.transactions;
    sqlx::query!(
        "insert into transactions (id, user_id, type, status, send_amount, send_currency, receive_amount, receive_currency, recipient_country, failure_reason, created_at)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], $7::numeric[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])",
        &t.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.user_id.clone()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.kind.to_owned()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.status.to_owned()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.send_amount).collect::<Vec<_>>(),
        &t.iter().map(|x| x.send_currency.to_owned()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.receive_amount).collect::<Vec<_>>(),
        &t.iter().map(|x| x.receive_currency.to_owned()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.recipient_country.to_owned()).collect::<Vec<_>>(),
        &t.iter().map(|x| x.failure_reason.map(str::to_owned)).collect::<Vec<_>>() as _,
        &t.iter().map(|x| x.created_at).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    let a = &d.alerts;
    sqlx::query!(
        "with alerts as (
           select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                                $7::text[], $8::text[])
             as t(id, user_id, transaction_id, rule, created_at, reviewed_at, reviewer_notes, outcome)
         ), raised as (
           insert into aml_alerts (id, user_id, transaction_id, rule, status, created_at, reviewed_at, reviewer_notes)
           select id, user_id, transaction_id, rule, case when reviewed_at is null then 'open' else 'closed' end, created_at,
                  reviewed_at, reviewer_notes
           from alerts
         )
         -- The outcomes of the reviewed ones are the console's record, beside Drop's row.
         insert into console.alert_reviews (alert_id, outcome)
         select id, outcome from alerts where outcome is not null",
        &a.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        &a.iter().map(|x| x.user_id.clone()).collect::<Vec<_>>(),
        &a.iter().map(|x| x.transaction_id.clone()).collect::<Vec<_>>() as _,
        &a.iter().map(|x| x.rule.to_owned()).collect::<Vec<_>>(),
        &a.iter().map(|x| x.created_at).collect::<Vec<_>>(),
        &a.iter().map(|x| x.reviewed_at).collect::<Vec<_>>() as _,
        &a.iter().map(|x| x.reviewer_notes.map(str::to_owned)).collect::<Vec<_>>() as _,
        &a.iter().map(|x| x.outcome.map(str::to_owned)).collect::<Vec<_>>() as _,
    )
    .execute(&mut *tx)
    .await?;
    for r in &d.str_reports {
        // A filed report is frozen as sent: its snapshot and hash are part of the row.
        let filed = r.filed_at.is_some();
        let snapshot = filed.then(|| r.details.clone());
        let hash = snapshot.as_ref().map(|s| hex::encode(sha2::Sha256::digest(s.to_string().as_bytes())));
        sqlx::query!(
            "insert into console.str_cases (id, user_id, transaction_id, alert_id, status, details, created_at, filed_at,
                                      drafted_by_name, approved_by_name, approved_at, filed_by_name, filing_reference,
                                      filed_snapshot, filed_hash)
             values ($1, $2, $3, $4, $5, $6, $7, $8, 'Demo Compliance Officer',
                     case when $8::timestamptz is null then null else 'Demo MLRO' end, $8,
                     case when $8::timestamptz is null then null else 'Demo MLRO' end,
                     case when $8::timestamptz is null then null else 'AR-DEMO-' || upper(substr($1, 5, 8)) end, $9, $10)",
            r.id,
            r.user_id,
            r.transaction_id,
            r.alert_id,
            r.status,
            r.details,
            r.created_at,
            r.filed_at,
            snapshot,
            hash,
        )
        .execute(&mut *tx)
        .await?;
        if filed {
            // What was filed is in Drop's table too, as the runbook has it.
            sqlx::query!(
                "insert into str_reports (id, user_id, transaction_id, report_type, details, filed_at, status)
                 values ($1, $2, $3, 'suspicious_transaction', $4, $5, 'filed')",
                r.id,
                r.user_id,
                r.transaction_id,
                r.details,
                r.filed_at,
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query!(
            "insert into console.str_transactions (str_id, transaction_id) values ($1, $2)",
            r.id,
            r.transaction_id
        )
        .execute(&mut *tx)
        .await?;
        // Four eyes over the demo's officer, who is not a console user.
        let kinds: &[&str] = if r.status == "pending_review" { &["drafted", "submitted"] } else { &["drafted"] };
        sqlx::query!(
            "insert into console.str_contributions (str_id, staff_id, staff_name, kind, content_sha256, at)
             select $1, null, 'Demo Compliance Officer', k, console.str_content_sha256($1), $2 from unnest($3::text[]) k",
            r.id,
            r.created_at,
            &kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>()
        )
        .execute(&mut *tx)
        .await?;
    }
    let r = &d.access_requests;
    sqlx::query!(
        "insert into data_access_requests (id, user_id, status, created_at, fulfilled_at)
         select id, user_id, case when fulfilled_at is null then 'open' else 'fulfilled' end, created_at, fulfilled_at
         from unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) as t(id, user_id, created_at, fulfilled_at)",
        &r.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        &r.iter().map(|x| x.user_id.clone()).collect::<Vec<_>>(),
        &r.iter().map(|x| x.created_at).collect::<Vec<_>>(),
        &r.iter().map(|x| x.fulfilled_at).collect::<Vec<_>>() as _,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

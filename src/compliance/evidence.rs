//! The inspection evidence pack: for a closed period, one zip for Finanstilsynet with the
//! audit rows of both chains and a verification of them, the routine checklists with their
//! evidence, runs, AML alert statistics and closure times, STR filings (references, dates,
//! document hashes; narratives only when the MLRO ticks it), GDPR requests and their answers,
//! staff sign-ins and changes, and an `index.html` that links it all.
//!
//! The period must have ended (its last day is yesterday at the latest, Oslo), so the pack is
//! the same bytes however often it is made: rows in a fixed order, fixed file times (the
//! period's end), no "generated at". Its creation is recorded, with the archive's SHA-256,
//! before it is sent.

use std::io::{Cursor, Write};

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use zip::write::SimpleFileOptions;

use super::deadlines::{Deadline, oslo_day};
use crate::audit::verify::{self, Range};
use crate::audit::{self, AuditContext, Chain, Resource, csv_safe};
use crate::auth::CurrentUser;
use crate::config::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

/// Longest period one pack covers.
const MAX_DAYS: i64 = 400;
/// Most audit rows of one chain one pack holds (the zip is built in memory).
pub const MAX_AUDIT_ROWS: i64 = 2_000_000;
/// Audit rows read per statement.
const BATCH: i64 = 10_000;

/// A closed period of Oslo calendar days, `from` to `to` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Oslo.from_local_datetime(&local).earliest().map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

impl Period {
    /// Check what was typed: both days, in order, ended, not too long. Errors per field.
    pub fn parse(from: &str, to: &str, today: NaiveDate) -> Result<Self, (Option<String>, Option<String>)> {
        let day = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
        let (f, t) = (day(from), day(to));
        let mut errors = (
            f.is_none().then(|| "Enter the first day as YYYY-MM-DD.".to_owned()),
            t.is_none().then(|| "Enter the last day as YYYY-MM-DD.".to_owned()),
        );
        if let (Some(f), Some(t)) = (f, t) {
            if t >= today {
                errors.1 = Some("The period must have ended: its last day is yesterday at the latest.".into());
            } else if f > t {
                errors.0 = Some("The first day comes after the last.".into());
            } else if (t - f).num_days() >= MAX_DAYS {
                errors.0 = Some(format!("At most {MAX_DAYS} days in one pack."));
            } else {
                return Ok(Self { from: f, to: t });
            }
        }
        Err(errors)
    }

    pub fn start(&self) -> DateTime<Utc> {
        midnight(self.from)
    }

    /// The first instant after the period.
    pub fn end(&self) -> DateTime<Utc> {
        midnight(self.to.checked_add_days(Days::new(1)).unwrap_or(self.to))
    }

    pub fn label(&self) -> String {
        format!("{}_{}", self.from, self.to)
    }
}

#[derive(Template)]
#[template(path = "compliance/evidence.html")]
pub struct EvidencePage {
    pub shell: Shell,
    pub from: String,
    pub to: String,
    pub from_error: Option<String>,
    pub to_error: Option<String>,
    pub narratives_error: Option<String>,
    pub may_include_narratives: bool,
}

fn page(state: &AppState, user: &CurrentUser, from: String, to: String) -> EvidencePage {
    EvidencePage {
        shell: Shell::new(state, user, Tab::Evidence, "Inspection pack"),
        from,
        to,
        from_error: None,
        to_error: None,
        narratives_error: None,
        may_include_narratives: user.has(Role::Mlro),
    }
}

/// `GET /compliance/evidence`: choose the period (the last full quarter by default).
pub async fn show(State(state): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let (quarter_start, _) = super::deadlines::quarter_of(Utc::now());
    let last_day = oslo_day(quarter_start).pred_opt().unwrap_or_default();
    let first_day = NaiveDate::from_ymd_opt(last_day.year(), last_day.month0() / 3 * 3 + 1, 1).unwrap_or(last_day);
    Ok(render(&page(&state, &user, first_day.to_string(), last_day.to_string()))?.into_response())
}

#[derive(Deserialize)]
pub struct PackForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    narratives: Option<String>,
}

/// `POST /compliance/evidence`: build the pack and download it.
pub async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Form(form): Form<PackForm>,
) -> Result<Response, AppError> {
    let narratives = form.narratives.is_some();
    let today = oslo_day(Utc::now());
    let period = Period::parse(&form.from, &form.to, today);
    if period.is_err() || (narratives && !user.has(Role::Mlro)) {
        let mut p = page(&state, &user, form.from, form.to);
        if let Err((from_error, to_error)) = period {
            (p.from_error, p.to_error) = (from_error, to_error);
        }
        if narratives && !user.has(Role::Mlro) {
            p.narratives_error = Some("Only the MLRO may include STR narratives.".into());
        }
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&p)?).into_response());
    }
    let Ok(period) = period else { return Err(AppError::Forbidden) };
    // Built first (reads only, no lock held), recorded before it is sent: if the record
    // cannot be written, the pack is not handed out.
    let zip = build(&state.pool, period, narratives).await?;
    audit::event(
        &state.pool,
        &ctx,
        audit::Event {
            action: "evidence_pack_created",
            resource_type: Resource::CaseworkLog,
            resource_id: format!("evidence:{}", period.label()),
            reason: None,
            details: json!({
                "from": period.from.to_string(),
                "to": period.to.to_string(),
                "narratives": narratives,
                "sha256": hex::encode(Sha256::digest(&zip)),
                "bytes": zip.len(),
            }),
        },
    )
    .await?;
    let name = format!("drop-evidence-{}.zip", period.label());
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        zip,
    )
        .into_response())
}

/// A CSV file's bytes, every cell defused for spreadsheets.
fn csv_bytes(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, AppError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header).map_err(|e| AppError::Internal(e.into()))?;
    for row in rows {
        out.write_record(row.iter().map(|v| csv_safe(v))).map_err(|e| AppError::Internal(e.into()))?;
    }
    out.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("csv: {e}")))
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)).unwrap_or_default()
}

/// One file of the pack, for the index.
pub struct Entry {
    pub path: String,
    pub what: String,
    pub rows: usize,
    pub sha256: String,
}

/// One chain's verification, for the index.
pub struct ChainReport {
    pub range: Option<Range>,
    pub chain: Chain,
}

#[derive(Template)]
#[template(path = "compliance/evidence_index.html")]
pub struct Index {
    pub period: Period,
    pub start: String,
    pub end: String,
    pub entries: Vec<Entry>,
    pub chains: Vec<ChainReport>,
    pub narratives: bool,
    pub aml: Vec<(String, String)>,
}

struct Pack {
    zip: zip::ZipWriter<Cursor<Vec<u8>>>,
    options: SimpleFileOptions,
    entries: Vec<Entry>,
}

impl Pack {
    fn add(&mut self, path: &str, what: &str, rows: usize, bytes: &[u8]) -> Result<(), AppError> {
        self.zip.start_file(path, self.options).map_err(|e| AppError::Internal(e.into()))?;
        self.zip.write_all(bytes).map_err(|e| AppError::Internal(e.into()))?;
        self.entries.push(Entry {
            path: path.to_owned(),
            what: what.to_owned(),
            rows,
            sha256: hex::encode(Sha256::digest(bytes)),
        });
        Ok(())
    }
}

/// Build the pack: the same period gives the same bytes.
pub async fn build(pool: &PgPool, period: Period, narratives: bool) -> Result<Vec<u8>, AppError> {
    let (start, end) = (period.start(), period.end());
    let stamp = zip::DateTime::from_date_and_time(
        u16::try_from(period.to.year()).unwrap_or(1980).max(1980),
        u8::try_from(period.to.month()).unwrap_or(1),
        u8::try_from(period.to.day()).unwrap_or(1),
        23,
        58,
        0,
    )
    .unwrap_or_default();
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .unix_permissions(0o644);
    let mut pack = Pack { zip: zip::ZipWriter::new(Cursor::new(Vec::new())), options, entries: vec![] };

    // The audit rows of each chain, and their verification.
    let mut chains = vec![];
    for chain in Chain::ALL {
        let span = db::seq_span(pool, chain, start, end).await?;
        let Some((first, last)) = span else {
            pack.add(
                &format!("audit/{}.csv", chain.as_str()),
                "no audit rows in the period",
                0,
                &csv_bytes(&AUDIT_HEADER, &[])?,
            )?;
            chains.push(ChainReport { range: None, chain });
            continue;
        };
        if last - first + 1 > MAX_AUDIT_ROWS {
            return Err(AppError::Validation(format!(
                "The {} chain has over {MAX_AUDIT_ROWS} rows in this period: choose a shorter one.",
                chain.as_str()
            )));
        }
        let mut rows = vec![];
        let mut after = first - 1;
        while after < last {
            let batch = db::audit_rows(pool, chain, after, last, BATCH).await?;
            let Some(tail) = batch.last() else { break };
            after = tail[0].parse().unwrap_or(last);
            rows.extend(batch);
        }
        let what = format!("the {} chain's audit rows {first}–{last}", chain.as_str());
        pack.add(&format!("audit/{}.csv", chain.as_str()), &what, rows.len(), &csv_bytes(&AUDIT_HEADER, &rows)?)?;
        chains.push(ChainReport { range: Some(verify::range(pool, chain, first, last).await?), chain });
    }
    let verification: Vec<serde_json::Value> = chains
        .iter()
        .map(|c| match &c.range {
            None => json!({ "chain": c.chain.as_str(), "rows": 0 }),
            Some(r) => json!({
                "chain": c.chain.as_str(), "first_seq": r.first_seq, "last_seq": r.last_seq, "rows": r.rows,
                "links_to": r.before_hash, "first_hash": r.first_hash, "last_hash": r.last_hash,
                "intact": r.broken.is_none(),
                "first_broken_row": r.broken.as_ref().map(|b| b.0), "problem": r.broken.as_ref().map(|b| b.1.clone()),
                "reverify": format!("dropops audit verify (whole chain), or in SQL: select seq from console.audit_entries a where chain = '{}' and seq between {} and {} and hash <> console.audit_row_hash(prev_hash, a)", c.chain.as_str(), r.first_seq, r.last_seq),
            }),
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({ "period": period.label(), "chains": verification }))
        .map_err(|e| AppError::Internal(e.into()))?;
    pack.add(
        "audit/verification.json",
        "the hash chain's verification over the period",
        chains.len(),
        text.as_bytes(),
    )?;

    let checklists = db::checklists(pool, start, end).await?;
    pack.add(
        "checklists.csv",
        "routine checklists submitted, with their evidence",
        checklists.len(),
        &csv_bytes(&["id", "checklist", "submitted_by", "submitted_at", "all_ok", "items"], &checklists)?,
    )?;
    let runs = db::runs(pool, start, end).await?;
    pack.add(
        "runs.csv",
        "runs (deploys, rollbacks, rotations, drills…) with their outcomes",
        runs.len(),
        &csv_bytes(
            &[
                "id",
                "procedure",
                "target",
                "environment",
                "status",
                "started_by",
                "reason",
                "created_at",
                "finished_at",
                "outcome",
            ],
            &runs,
        )?,
    )?;
    let aml = db::aml_statistics(pool, start, end).await?;
    let aml_rows: Vec<Vec<String>> = aml.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
    pack.add(
        "aml_alerts.csv",
        "AML alert statistics and closure times",
        aml_rows.len(),
        &csv_bytes(&["measure", "value"], &aml_rows)?,
    )?;
    let filings = db::filings(pool, start, end).await?;
    let rows: Vec<Vec<String>> = filings.iter().map(|f| f.row()).collect();
    pack.add(
        "str_filings.csv",
        "STRs filed with the FIU: references, dates and document hashes",
        rows.len(),
        &csv_bytes(&["id", "filing_reference", "filed_at", "filed_by", "approved_by", "document_sha256"], &rows)?,
    )?;
    if narratives {
        for f in &filings {
            let text = serde_json::to_string_pretty(&f.snapshot).map_err(|e| AppError::Internal(e.into()))?;
            pack.add(
                &format!("str_narratives/{}.json", f.id),
                "the report as filed, narrative included",
                1,
                text.as_bytes(),
            )?;
        }
    }
    let gdpr = db::gdpr(pool, start, end).await?;
    pack.add(
        "gdpr_requests.csv",
        "GDPR requests received or answered, against their deadlines",
        gdpr.len(),
        &csv_bytes(
            &[
                "id",
                "person",
                "kind",
                "received_at",
                "due_by",
                "extended_at",
                "extension_reason",
                "answered_at",
                "on_time",
            ],
            &gdpr,
        )?,
    )?;
    let staff = db::staff(pool, start, end).await?;
    pack.add(
        "staff_changes.csv",
        "staff sign-ins (with the roles held), disabling, enabling and ended sessions",
        staff.len(),
        &csv_bytes(&["seq", "created_at", "actor", "roles", "action", "staff", "reason"], &staff)?,
    )?;

    let index = Index {
        period,
        start: time(Some(start)),
        end: time(Some(end)),
        entries: std::mem::take(&mut pack.entries),
        chains,
        narratives,
        aml,
    };
    let html = index.render().map_err(|e| AppError::Internal(e.into()))?;
    pack.zip.start_file("index.html", pack.options).map_err(|e| AppError::Internal(e.into()))?;
    pack.zip.write_all(html.as_bytes()).map_err(|e| AppError::Internal(e.into()))?;
    Ok(pack.zip.finish().map_err(|e| AppError::Internal(e.into()))?.into_inner())
}

const AUDIT_HEADER: [&str; 15] = [
    "seq",
    "id",
    "created_at",
    "actor",
    "actor_roles",
    "action",
    "resource_type",
    "resource_id",
    "kind",
    "intent_id",
    "outcome",
    "reason",
    "details",
    "prev_hash",
    "hash",
];

pub struct Filing {
    pub id: String,
    pub reference: Option<String>,
    pub filed_at: Option<DateTime<Utc>>,
    pub filed_by: Option<String>,
    pub approved_by: Option<String>,
    pub hash: Option<String>,
    pub snapshot: Option<serde_json::Value>,
}

impl Filing {
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.reference.clone().unwrap_or_default(),
            time(self.filed_at),
            self.filed_by.clone().unwrap_or_default(),
            self.approved_by.clone().unwrap_or_default(),
            self.hash.clone().unwrap_or_default(),
        ]
    }
}

mod db {
    use super::*;

    /// The first and last `seq` of a chain's rows written in the period.
    pub async fn seq_span(
        pool: &PgPool,
        chain: Chain,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Option<(i64, i64)>, sqlx::Error> {
        let row = sqlx::query!(
            r#"select min(seq) as first, max(seq) as last from console.audit_entries
               where chain = $1 and created_at >= $2 and created_at < $3"#,
            chain.as_str(),
            start,
            end
        )
        .fetch_one(pool)
        .await?;
        Ok(row.first.zip(row.last))
    }

    pub async fn audit_rows(
        pool: &PgPool,
        chain: Chain,
        after: i64,
        last: i64,
        limit: i64,
    ) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select seq, id, created_at, actor, actor_roles, action, resource_type, resource_id, kind, intent_id,
                      outcome, reason, details::text as "details!", prev_hash, hash
               from console.audit_entries where chain = $1 and seq > $2 and seq <= $3 order by seq limit $4"#,
            chain.as_str(),
            after,
            last,
            limit
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    r.id.to_string(),
                    time(Some(r.created_at)),
                    r.actor,
                    r.actor_roles.join(" "),
                    r.action,
                    r.resource_type,
                    r.resource_id,
                    r.kind,
                    r.intent_id.map(|i| i.to_string()).unwrap_or_default(),
                    r.outcome.unwrap_or_default(),
                    r.reason.unwrap_or_default(),
                    r.details,
                    r.prev_hash.as_deref().map(hex::encode).unwrap_or_default(),
                    hex::encode(&r.hash),
                ]
            })
            .collect())
    }

    pub async fn checklists(
        pool: &PgPool,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select id, checklist, submitted_by_name, submitted_at, all_ok, items::text as "items!"
               from console.checklist_runs where submitted_at >= $1 and submitted_at < $2 order by submitted_at, id"#,
            start,
            end
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.checklist,
                    r.submitted_by_name,
                    time(Some(r.submitted_at)),
                    r.all_ok.to_string(),
                    r.items,
                ]
            })
            .collect())
    }

    pub async fn runs(
        pool: &PgPool,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select id, procedure, target, environment, status, started_by_name, reason, created_at, finished_at, outcome
               from console.runs where created_at >= $1 and created_at < $2 order by created_at, id"#,
            start,
            end
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.procedure,
                    r.target,
                    r.environment,
                    r.status,
                    r.started_by_name,
                    r.reason.unwrap_or_default(),
                    time(Some(r.created_at)),
                    time(r.finished_at),
                    r.outcome.unwrap_or_default(),
                ]
            })
            .collect())
    }

    /// Alerts raised and closed in the period, closures by outcome, and how long closing took.
    pub async fn aml_statistics(
        pool: &PgPool,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        let r = sqlx::query!(
            r#"select (select count(*) from aml_alerts where created_at >= $1 and created_at < $2) as "raised!",
                      (select count(*) from aml_alerts where reviewed_at >= $1 and reviewed_at < $2) as "closed!",
                      (select count(*) from aml_alerts where created_at < $2 and (reviewed_at is null or reviewed_at >= $2)) as "open_at_end!",
                      (select count(*) from aml_alerts a join console.alert_reviews r on r.alert_id = a.id
                        where a.reviewed_at >= $1 and a.reviewed_at < $2 and r.outcome = 'false_positive') as "false_positive!",
                      (select count(*) from aml_alerts a join console.alert_reviews r on r.alert_id = a.id
                        where a.reviewed_at >= $1 and a.reviewed_at < $2 and r.outcome = 'legitimate') as "legitimate!",
                      (select count(*) from aml_alerts a join console.alert_reviews r on r.alert_id = a.id
                        where a.reviewed_at >= $1 and a.reviewed_at < $2 and r.outcome = 'escalated_to_str') as "escalated!",
                      (select round((percentile_cont(0.5) within group (order by extract(epoch from reviewed_at - created_at) / 3600))::numeric, 1)::text
                         from aml_alerts where reviewed_at >= $1 and reviewed_at < $2) as median_hours,
                      (select round((percentile_cont(0.9) within group (order by extract(epoch from reviewed_at - created_at) / 3600))::numeric, 1)::text
                         from aml_alerts where reviewed_at >= $1 and reviewed_at < $2) as p90_hours,
                      (select round((max(extract(epoch from reviewed_at - created_at)) / 3600)::numeric, 1)::text
                         from aml_alerts where reviewed_at >= $1 and reviewed_at < $2) as max_hours"#,
            start,
            end
        )
        .fetch_one(pool)
        .await?;
        Ok(vec![
            ("alerts raised".into(), r.raised.to_string()),
            ("alerts closed".into(), r.closed.to_string()),
            ("open at the end of the period".into(), r.open_at_end.to_string()),
            ("closed as false positive".into(), r.false_positive.to_string()),
            ("closed as legitimate".into(), r.legitimate.to_string()),
            ("escalated to an STR".into(), r.escalated.to_string()),
            ("closure time, median (hours)".into(), r.median_hours.unwrap_or_default()),
            ("closure time, 90th percentile (hours)".into(), r.p90_hours.unwrap_or_default()),
            ("closure time, longest (hours)".into(), r.max_hours.unwrap_or_default()),
        ])
    }

    pub async fn filings(pool: &PgPool, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<Filing>, sqlx::Error> {
        sqlx::query_as!(
            Filing,
            r#"select id, filing_reference as reference, filed_at, filed_by_name as filed_by, approved_by_name as approved_by,
                      filed_hash as hash, filed_snapshot as snapshot
               from console.str_cases where status = 'filed' and filed_at >= $1 and filed_at < $2 order by filed_at, id"#,
            start,
            end
        )
        .fetch_all(pool)
        .await
    }

    pub async fn gdpr(
        pool: &PgPool,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select r.id, r.user_id, coalesce(to_jsonb(r) ->> 'kind', 'access') as "kind!", r.created_at, r.fulfilled_at,
                      x.extended_at as "extended_at?", x.reason as "extension_reason?"
               from data_access_requests r left join console.data_request_extensions x on x.request_id = r.id
               where (r.created_at >= $1 and r.created_at < $2) or (r.fulfilled_at >= $1 and r.fulfilled_at < $2)
               order by r.created_at, r.id"#,
            start,
            end
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let due = Deadline::months_after(r.created_at, if r.extended_at.is_some() { 3 } else { 1 });
                // Answered after the period: as the period saw it, unanswered.
                let answered = r.fulfilled_at.filter(|t| *t < end);
                let on_time = match answered {
                    Some(t) => (t < due.ends).to_string(),
                    None if due.ends <= end => "false (unanswered)".into(),
                    None => String::new(),
                };
                vec![
                    r.id,
                    r.user_id,
                    r.kind,
                    time(Some(r.created_at)),
                    due.day.to_string(),
                    time(r.extended_at.filter(|t| *t < end)),
                    r.extended_at.filter(|t| *t < end).and(r.extension_reason).unwrap_or_default(),
                    time(answered),
                    on_time,
                ]
            })
            .collect())
    }

    pub async fn staff(
        pool: &PgPool,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select seq, created_at, actor, actor_roles, action, resource_id, reason from console.audit_entries
               where chain = 'operations' and created_at >= $1 and created_at < $2
                 and resource_type in ('staff', 'staff_session') and kind <> 'outcome'
               order by seq"#,
            start,
            end
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    time(Some(r.created_at)),
                    r.actor,
                    r.actor_roles.join(" "),
                    r.action,
                    r.resource_id,
                    r.reason.unwrap_or_default(),
                ]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_period_must_have_ended_and_be_in_order() {
        let today = day("2026-12-06");
        let p = Period::parse("2026-07-01", "2026-09-30", today).unwrap();
        assert_eq!(p.start().to_rfc3339(), "2026-06-30T22:00:00+00:00", "Oslo midnight in summer");
        assert_eq!(p.end().to_rfc3339(), "2026-09-30T22:00:00+00:00");
        assert!(Period::parse("2026-12-01", "2026-12-06", today).unwrap_err().1.unwrap().contains("must have ended"));
        assert!(Period::parse("2026-10-02", "2026-10-01", today).unwrap_err().0.unwrap().contains("after the last"));
        assert!(Period::parse("2026-10-01", "", today).unwrap_err().1.is_some());
        assert!(Period::parse("2024-01-01", "2025-06-30", today).unwrap_err().0.unwrap().contains("At most"));
    }
}

//! Filing a suspicious transaction report with Økokrim: the report as the structured document
//! Altinn form MT-0002 asks for (docs/mt-0002-mapping.md), its JSON export and print view,
//! and the MLRO's record of the filing, after which the report is frozen and hashed.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::people_db::{self, Person};
use super::reports::{FilingErrors, FilingForm, report_page, totals};
use super::reports_db::{self, Filing, LinkedTx, StrRow};
use super::status::{StrStatus, StrTransition};
use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent};
use crate::auth::CurrentUser;
use crate::error::{AppError, changed};
use crate::ids::StrId;
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::required_text;
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

/// The report as filed with Økokrim: Altinn form MT-0002's sections (docs/mt-0002-mapping.md).
/// The JSON export is this document; the print view reads the same fields; the filed snapshot
/// is this document with its filing receipt, and its hash is over its JSON (keys ordered).
#[derive(Debug, Serialize, Deserialize)]
pub struct Mt0002 {
    pub form: String,
    pub report_id: String,
    pub report_type: String,
    pub reporting_entity: ReportingEntity,
    pub subject: Subject,
    pub grounds: Grounds,
    pub transactions: Vec<ReportedTx>,
    pub totals: Vec<String>,
    pub related_alert: Option<String>,
    pub environment: crate::config::Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filing: Option<Receipt>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReportingEntity {
    pub name: String,
    pub contact_role: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Subject {
    pub customer_id: String,
    pub name: String,
    pub email: String,
    pub country: String,
    pub customer_since: String,
    pub kyc_status: String,
    pub sign_in_method: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Grounds {
    pub summary: String,
    pub description: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReportedTx {
    pub id: String,
    pub date: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub counterparty_country: Option<String>,
}

impl ReportedTx {
    /// The date part of the RFC 3339 timestamp, as the form asks for it.
    pub fn day(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }
}

/// Altinn's receipt, recorded when the MLRO files the report.
#[derive(Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub reference: String,
    pub filed_on: String,
    pub filed_by: String,
}

fn document(state: &AppState, r: &StrRow, p: &Person, txs: &[LinkedTx]) -> Mt0002 {
    Mt0002 {
        form: "MT-0002".into(),
        report_id: r.id.clone(),
        report_type: "suspicious_transaction".into(),
        reporting_entity: ReportingEntity {
            name: "Drop".into(),
            contact_role: "MLRO".into(),
            approved_by: r.approved_by_name.clone(),
            approved_at: r.approved_at.map(|t| t.to_rfc3339()),
        },
        subject: Subject {
            customer_id: p.id.clone(),
            name: p.full_name.clone().unwrap_or_default(),
            email: p.email.clone(),
            country: p.country.clone().unwrap_or_default(),
            customer_since: p.created_at.date_naive().to_string(),
            kyc_status: p.kyc_status.clone(),
            sign_in_method: p.auth_provider.clone(),
        },
        grounds: Grounds { summary: r.reason().to_owned(), description: r.narrative().to_owned() },
        transactions: txs
            .iter()
            .map(|t| ReportedTx {
                id: t.id.clone(),
                date: t.created_at.to_rfc3339(),
                kind: t.kind.clone(),
                status: t.status.clone(),
                amount: t.send_amount.to_string(),
                currency: t.send_currency.clone(),
                counterparty_country: t.recipient_country.clone(),
            })
            .collect(),
        totals: totals(txs),
        related_alert: r.alert_id.clone(),
        environment: state.config.mode,
        filing: None,
    }
}

async fn load_document(state: &AppState, id: &str) -> Result<(StrRow, Mt0002), AppError> {
    let report = reports_db::find(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    // A filed report is read back exactly as it was filed.
    if report.status == StrStatus::Filed {
        if let Some(snapshot) = reports_db::filed_snapshot(&state.pool, id).await? {
            let doc = serde_json::from_value(snapshot).map_err(|e| AppError::Internal(e.into()))?;
            return Ok((report, doc));
        }
    }
    let person = people_db::find(&state.pool, &report.user_id).await?.ok_or(AppError::NotFound)?;
    let txs = reports_db::linked_transactions(&state.pool, id).await?;
    let doc = document(state, &report, &person, &txs);
    Ok((report, doc))
}

/// `GET /compliance/str/{id}/export.json`: the document to key into Altinn.
pub async fn export_report(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
) -> Result<Response, AppError> {
    let (report, doc) = load_document(&state, &id).await?;
    if !report.status.approved() {
        return Err(AppError::Conflict("Only an approved report can be exported for filing.".into()));
    }
    audit::viewed(&state.pool, &ctx, Resource::StrReport, id.to_string(), json!({ "export": "json" })).await?;
    let body = serde_json::to_string_pretty(&doc).map_err(|e| AppError::Internal(e.into()))?;
    let disposition = format!("attachment; filename=\"{id}-mt0002.json\"");
    Ok(([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

#[derive(Template)]
#[template(path = "compliance/str_print.html")]
pub struct PrintPage {
    pub shell: Shell,
    pub report: StrRow,
    pub doc: Mt0002,
}

pub async fn print_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
) -> Result<Response, AppError> {
    let (report, doc) = load_document(&state, &id).await?;
    audit::viewed(&state.pool, &ctx, Resource::StrReport, id.to_string(), json!({ "export": "print" })).await?;
    let page = PrintPage { shell: Shell::new(&state, &user, Tab::Strs, format!("STR {id} for filing")), report, doc };
    Ok(render(&page)?.into_response())
}

/// MLRO: record that the report was filed with Økokrim, with Altinn's reference. The report
/// is then frozen; its hash goes into the audit log.
pub async fn file_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
    axum::Form(form): axum::Form<FilingForm>,
) -> Result<Response, AppError> {
    let mut errors = FilingErrors::default();
    let reference =
        required_text(&form.reference, 100, "the Altinn reference").map_err(|e| errors.reference = Some(e)).ok();
    let filed_on = NaiveDate::parse_from_str(form.filed_on.trim(), "%Y-%m-%d").ok();
    match filed_on {
        None => errors.filed_on = Some("Enter the filing date, like 2026-11-28.".into()),
        Some(d) if d > Utc::now().date_naive() => {
            errors.filed_on = Some("The filing date cannot be in the future.".into())
        }
        _ => {}
    }
    let (Some(reference), Some(filed_on), None, None) = (reference, filed_on, &errors.reference, &errors.filed_on)
    else {
        let mut page = report_page(&state, &user, &id).await?;
        page.filing_errors = errors;
        page.filing = form;
        return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
    };
    let (report, mut doc) = load_document(&state, &id).await?;
    if report.status != StrTransition::File.from() {
        return Err(AppError::Conflict("Only an approved report can be filed.".into()));
    }
    let filed_at = filed_on.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    doc.filing =
        Some(Receipt { reference: reference.clone(), filed_on: filed_on.to_string(), filed_by: user.name.clone() });
    // Through a Value, whose object keys are ordered: the same report always hashes the same.
    let doc = serde_json::to_value(&doc).map_err(|e| AppError::Internal(e.into()))?;
    let hash = hex::encode(Sha256::digest(doc.to_string().as_bytes()));
    let intent = Intent {
        action: "str_filed",
        resource_type: Resource::StrReport,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "reference": reference, "filed_on": filed_on.to_string(), "sha256": hash }),
    };
    let filing = Filing { reference: &reference, filed_at, by: &user.name, snapshot: doc, hash: &hash };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(
            reports_db::mark_filed(tx, token, &id, filing).await?,
            "The report is not approved, or was filed meanwhile.",
        )
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/str/{id}")).into_response())
}

//! Compliance workspace (runbook.md §6): AML alert review, transactions, people and KYC,
//! STR drafting and filing, GDPR requests. Everything with personal data or STRs is for
//! compliance staff and the MLRO only, and every view of a person's data is audited.
//! The summary page shows counts only — no personal data and nothing about STRs, whose
//! existence only compliance and the MLRO may learn (tipping-off rule).

mod alerts;
mod alerts_db;
pub mod breakglass;
pub(crate) mod db;
pub mod deadlines;
pub mod evidence;
mod filing;
mod gdpr;
mod gdpr_db;
mod people;
mod people_db;
mod reports;
pub(crate) mod reports_db;
pub mod retention;
mod risk;
pub(crate) mod rules;
pub mod status;

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use rust_decimal::Decimal;

use crate::audit::Resource;
use crate::auth::CurrentUser;
use crate::auth::policy::{Access, CASEWORK, CASEWORK_READ, COMPLIANCE_SUMMARY, EVIDENCE, MLRO, ONCALL, RISK, Route};
use crate::config::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

pub use db::QueueCounts;
pub use gdpr_db::drop_export;
pub use people::SumsubAnswers;

/// The queues' sizes, read as Drop's schema allows (the KYC wait from the last status change
/// where Drop records it).
pub async fn queue_counts(state: &AppState) -> Result<QueueCounts, AppError> {
    let since_change = state.contract().await?.has(crate::contract::Optional::KycUpdatedAt);
    Ok(db::queue_counts(&state.pool, since_change).await?)
}

/// The people a free-text search names (a user id or an email among its words): searching
/// for them, in the logs say, is a view of their data.
pub async fn people_named(state: &AppState, text: &str) -> Result<Vec<String>, AppError> {
    let terms: Vec<String> = text
        .split(|c: char| c.is_whitespace() || "\"'{}()[]=,;:".contains(c))
        .filter(|t| t.len() >= 3)
        .take(50)
        .map(str::to_owned)
        .collect();
    if terms.is_empty() {
        return Ok(vec![]);
    }
    Ok(people_db::named(&state.pool, &terms).await?)
}

/// What a casework page shows of a person or a case, recorded as a view before it is sent.
pub struct Seen {
    pub resource_type: Resource,
    pub resource_id: String,
    pub details: serde_json::Value,
}

/// A page that shows personal data or casework.
pub trait Casework: Template {
    fn seen(&self) -> Seen;
}

/// Send a casework page, whatever its status (a form sent back with its errors shows the
/// person again): the view is written first, and if it cannot be, the page is not sent.
pub async fn show<P: Casework>(
    state: &AppState,
    ctx: &crate::audit::AuditContext,
    status: axum::http::StatusCode,
    page: &P,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let Seen { resource_type, resource_id, mut details } = page.seen();
    if status != axum::http::StatusCode::OK {
        details["status"] = status.as_u16().into();
    }
    crate::audit::viewed(&state.pool, ctx, resource_type, resource_id, details).await?;
    Ok((status, render(page)?).into_response())
}

pub fn routes() -> Vec<Route> {
    let casework = Access::Roles(CASEWORK);
    // Oversight reads what compliance reads; forms to act (a new STR, an erasure, a GDPR
    // export) stay with those who act.
    let reads = Access::Roles(CASEWORK_READ);
    vec![
        Route::get("/compliance", Access::Roles(COMPLIANCE_SUMMARY), show_compliance),
        Route::get("/compliance/alerts", reads, alerts::list_alerts),
        Route::post("/compliance/alerts/next", casework, alerts::take_next_alert),
        Route::get("/compliance/alerts/{id}", reads, alerts::show_alert),
        Route::post("/compliance/alerts/{id}/assign", casework, alerts::assign_alert),
        Route::post("/compliance/alerts/{id}/close", casework, alerts::close_alert),
        Route::post("/compliance/alerts/{id}/reopen", casework, alerts::reopen_alert),
        Route::get("/compliance/transactions", reads, people::list_transactions),
        Route::get("/compliance/people", reads, people::find_person),
        Route::get("/compliance/people/{id}", reads, people::show_person),
        Route::post("/compliance/people/{id}/revoke-sessions", casework, people::revoke_sessions),
        Route::post("/compliance/people/{id}/kyc-recheck", casework, people::request_kyc_check),
        Route::get("/compliance/kyc", reads, people::list_kyc),
        Route::get("/compliance/gdpr", reads, gdpr::list_requests),
        Route::post("/compliance/gdpr/{id}/fulfil", casework, gdpr::fulfil_request),
        Route::get("/compliance/gdpr/{id}/extend", casework, gdpr::confirm_extension),
        Route::post("/compliance/gdpr/{id}/extend", casework, gdpr::extend_request),
        Route::get("/compliance/people/{id}/export.json", casework, gdpr::export_json),
        Route::get("/compliance/people/{id}/export.csv", casework, gdpr::export_csv),
        Route::get("/compliance/people/{id}/erase", casework, gdpr::confirm_erase),
        Route::post("/compliance/people/{id}/erase", casework, gdpr::erase).step_up(),
        Route::get("/compliance/str", reads, reports::list_reports),
        Route::post("/compliance/str", casework, reports::create_report),
        Route::get("/compliance/str/new", casework, reports::new_report),
        Route::get("/compliance/str/{id}", reads, reports::show_report),
        Route::post("/compliance/str/{id}", casework, reports::update_report),
        Route::post("/compliance/str/{id}/submit", casework, reports::submit_report),
        Route::post("/compliance/str/{id}/approve", Access::Roles(MLRO), reports::approve_report).step_up(),
        Route::post("/compliance/str/{id}/return", Access::Roles(MLRO), reports::return_report),
        Route::get("/compliance/str/{id}/print", reads, filing::print_report),
        Route::get("/compliance/str/{id}/export.json", reads, filing::export_report),
        Route::post("/compliance/str/{id}/file", Access::Roles(MLRO), filing::file_report).step_up(),
        Route::get("/risk", Access::Roles(RISK), risk::show),
        Route::get("/compliance/evidence", Access::Roles(EVIDENCE), evidence::show),
        Route::post("/compliance/evidence", Access::Roles(EVIDENCE), evidence::download),
        Route::get("/compliance/retention", reads, retention::show),
        Route::post("/compliance/retention/purge", Access::Roles(MLRO), retention::purge).step_up(),
        Route::get("/compliance/break-glass", reads, breakglass::list_uses),
        Route::post("/compliance/break-glass/{id}/review", casework, breakglass::review),
        // On-call's emergency access: its own pages, which show no casework.
        Route::get("/incidents/break-glass", Access::Roles(ONCALL), breakglass::show),
        Route::post("/incidents/break-glass", Access::Roles(ONCALL), breakglass::open).step_up(),
        Route::post("/incidents/break-glass/end", Access::Roles(ONCALL), breakglass::end),
        Route::get("/incidents/break-glass/people/{id}", Access::Roles(ONCALL), breakglass::show_person),
        Route::post(
            "/incidents/break-glass/people/{id}/revoke-sessions",
            Access::Roles(ONCALL),
            breakglass::revoke_sessions,
        ),
    ]
}

#[derive(Template)]
#[template(path = "compliance/index.html")]
pub struct CompliancePage {
    pub shell: Shell,
    pub counts: QueueCounts,
    pub casework: bool,
    /// STRs past the filing target: for casework readers only (an STR's existence is not
    /// for other roles, tipping-off).
    pub overdue_strs: Option<i64>,
    pub str_filing_days: u32,
    /// Break-glass uses compliance has not closed: for casework readers.
    pub break_glass_waiting: Option<i64>,
    /// Open alerts past the triage SLA, and GDPR requests past their answer deadline.
    pub overdue_alerts: i64,
    pub alert_sla_hours: u32,
    pub overdue_requests: usize,
}

pub async fn show_compliance(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let casework = user.has(Role::Compliance) || user.has(Role::Mlro) || user.has(Role::Oversight);
    let str_filing_days = state.config.compliance.str_filing_days;
    let alert_sla_hours = state.config.compliance.alert_sla_hours;
    // Every count at once, each on its own connection: the page waits for the slowest.
    let (counts, overdue_strs, break_glass_waiting, overdue_alerts, requests) = tokio::try_join!(
        queue_counts(&state),
        async {
            let days = i32::try_from(str_filing_days).unwrap_or(i32::MAX);
            Ok::<_, AppError>(if casework { Some(reports_db::overdue_count(&state.pool, days).await?) } else { None })
        },
        async {
            Ok::<_, AppError>(if casework { Some(breakglass::awaiting_review(&state.pool).await?) } else { None })
        },
        async { Ok(db::overdue_alerts(&state.pool, i32::try_from(alert_sla_hours).unwrap_or(48)).await?) },
        async { Ok(gdpr_db::requests(&state.pool).await?) },
    )?;
    let now = chrono::Utc::now();
    let overdue_requests = requests.iter().filter(|r| r.overdue(now)).count();
    render(&CompliancePage {
        shell: Shell::new(&state, &user, Tab::Summary, "Compliance"),
        counts,
        casework,
        overdue_strs,
        str_filing_days,
        break_glass_waiting,
        overdue_alerts,
        alert_sla_hours,
        overdue_requests,
    })
}

/// An amount as people read it: `NOK 12,345.67`.
pub fn money(amount: Decimal, currency: &str) -> String {
    let rounded = amount.round_dp(2);
    let text = format!("{rounded:.2}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    let (sign, digits) = whole.strip_prefix('-').map_or(("", whole), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{currency} {sign}{grouped}.{fraction}")
}

/// How long ago, in the largest unit that reads well: "3 h", "2 d".
pub fn age(since: chrono::DateTime<chrono::Utc>) -> String {
    let minutes = (chrono::Utc::now() - since).num_minutes().max(0);
    match minutes {
        0..60 => format!("{minutes} min"),
        60..2880 => format!("{} h", minutes / 60),
        _ => format!("{} d", minutes / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_with_currency_and_thousands() {
        assert_eq!(money(Decimal::new(1234567, 2), "NOK"), "NOK 12,345.67");
        assert_eq!(money(Decimal::new(50, 0), "EUR"), "EUR 50.00");
        assert_eq!(money(Decimal::new(100000000, 2), "PLN"), "PLN 1,000,000.00");
    }
}

//! People: look-up by email or id, the person page, emergency session revocation, KYC queues,
//! and the runbook's transaction lists. Every page here shows personal data and is audited.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::age;
use super::alerts::outcome_label;
use super::alerts_db::{self, AlertRow};
use super::people_db::{self, KycRow, Person, TxList, TxRow};
use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent, Reason};
use crate::auth::CurrentUser;
use crate::cloud::sumsub::Applicant;
use crate::contract::Optional;
use crate::error::AppError;
use crate::ids::PersonId;
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::ReasonForm;
use crate::web::paging::{next_page, parse_time_cursor, time_cursor};
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct FindParams {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "compliance/people.html")]
pub struct PeoplePage {
    pub shell: Shell,
    pub q: String,
    pub error: Option<&'static str>,
    pub people: Vec<Person>,
    pub searched: bool,
    /// Whether more people match than are listed.
    pub more: bool,
}

impl PeoplePage {
    /// The search form alone: before a search, or sent back with `error`.
    fn form(shell: Shell, q: String, error: Option<&'static str>) -> Self {
        Self { shell, q, error, people: vec![], searched: false, more: false }
    }
}

/// Shortest start of a name or address searched for.
const MIN_PARTIAL: usize = 2;
/// Most people a partial search lists.
const PARTIAL_LIMIT: i64 = 25;

/// `GET /compliance/people?q=`: one match opens the person, several are listed.
pub async fn find_person(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(p): Query<FindParams>,
) -> Result<Response, AppError> {
    let shell = Shell::new(&state, &user, Tab::People, "People");
    let q = p.q.trim().to_owned();
    if q.is_empty() {
        return Ok(render(&PeoplePage::form(shell, q, None))?.into_response());
    }
    // Longer than any address, or shorter than any id, address or start worth listing: refused
    // before any query.
    let refusal = match q.chars().count() {
        n if n > 320 => Some(("That is longer than any email address.", String::new())),
        n if n < MIN_PARTIAL => Some(("Type at least two letters of a name or an email address.", q.clone())),
        _ => None,
    };
    if let Some((error, kept)) = refusal {
        let page = PeoplePage::form(shell, kept, Some(error));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    // An id or a whole address opens the person; otherwise the start of a name, last name or
    // address lists who it could be.
    let exact = people_db::lookup(&state.pool, &q).await?;
    let opens = exact.len() == 1;
    let (people, more) = if !exact.is_empty() {
        (exact, false)
    } else {
        let by_name = state.contract().await?.has(Optional::FullName);
        let mut found = people_db::starting_with(&state.pool, &q, PARTIAL_LIMIT + 1, by_name).await?;
        let more = found.len() as i64 > PARTIAL_LIMIT;
        found.truncate(PARTIAL_LIMIT as usize);
        (found, more)
    };
    // A look-up is a view of personal data even when it finds nothing: it tells whether the
    // person is a customer. The ids listed are recorded with it.
    let listed: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
    audit::viewed(
        &state.pool,
        &ctx,
        Resource::Person,
        q.clone(),
        json!({ "via": "lookup", "matches": people.len(), "listed": listed }),
    )
    .await?;
    if opens {
        return Ok(Redirect::to(&format!("/compliance/people/{}", people[0].id)).into_response());
    }
    Ok(render(&PeoplePage { shell, q, error: None, people, searched: true, more })?.into_response())
}

#[derive(Deserialize, Default)]
pub struct PersonParams {
    #[serde(default)]
    before: String,
}

#[derive(Template)]
#[template(path = "compliance/person.html")]
pub struct PersonPage {
    pub shell: Shell,
    pub person: Person,
    pub live_sessions: i64,
    pub transactions: Vec<TxRow>,
    pub older: Option<String>,
    pub alerts: Vec<AlertRow>,
    pub reason: String,
    pub reason_error: Option<String>,
    /// The applicant at Sumsub: `None` when Sumsub is not connected.
    pub sumsub: Option<Result<Option<Applicant>, String>>,
    pub recheck_reason: String,
    pub recheck_error: Option<String>,
}

impl super::Casework for PersonPage {
    fn seen(&self) -> super::Seen {
        super::Seen {
            resource_type: Resource::Person,
            resource_id: self.person.id.clone(),
            details: json!({ "via": "person_page" }),
        }
    }
}

impl PersonPage {
    pub fn label(&self, outcome: &str) -> &'static str {
        outcome_label(outcome)
    }
}

fn next_cursor(rows: &mut Vec<TxRow>) -> Option<String> {
    next_page(rows, PAGE_SIZE).map(|t| time_cursor(t.created_at, &t.id))
}

async fn person_page(state: &AppState, user: &CurrentUser, id: &str, before: &str) -> Result<PersonPage, AppError> {
    // Each read on its own connection, all at once: the page waits for the slowest, not the sum.
    let (person, live_sessions, mut transactions, alerts, sumsub) = tokio::try_join!(
        people_db::find(&state.pool, id),
        people_db::live_sessions(&state.pool, id),
        people_db::history(&state.pool, id, parse_time_cursor(before), PAGE_SIZE + 1),
        alerts_db::for_person(&state.pool, id, ""),
        async {
            Ok(match &state.cloud.kyc {
                Some(kyc) => Some(match tokio::time::timeout(SUMSUB_WAIT, kyc.applicant(id)).await {
                    Ok(answer) => answer.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("Sumsub did not answer within {} s", SUMSUB_WAIT.as_secs())),
                }),
                None => None,
            })
        },
    )?;
    let person = person.ok_or(AppError::NotFound)?;
    let older = next_cursor(&mut transactions);
    Ok(PersonPage {
        shell: Shell::new(state, user, Tab::People, person.name()),
        person,
        live_sessions,
        transactions,
        older,
        alerts,
        reason: String::new(),
        reason_error: None,
        sumsub,
        recheck_reason: String::new(),
        recheck_error: None,
    })
}

/// How long a page waits for Sumsub before it shows what it has.
const SUMSUB_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `POST /compliance/people/{id}/kyc-recheck`: ask Sumsub to check the applicant again (the
/// runbook's force-process), with a reason. The intent is committed before Sumsub is asked;
/// Sumsub's answer is the outcome.
pub async fn request_kyc_check(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    let mut page = person_page(&state, &user, &id, "").await?;
    let Some(kyc) = state.cloud.kyc.clone() else {
        return Err(AppError::Conflict("Sumsub is not connected (sumsub.app_token).".into()));
    };
    let applicant = match &page.sumsub {
        Some(Ok(Some(a))) => a.clone(),
        Some(Ok(None)) => return Err(AppError::Conflict("Sumsub has no applicant for this customer.".into())),
        Some(Err(e)) => return Err(AppError::Unavailable(e.clone())),
        None => return Err(AppError::Conflict("Sumsub is not connected (sumsub.app_token).".into())),
    };
    if !applicant.may_recheck() {
        return Err(AppError::Conflict(format!(
            "Sumsub is already reviewing this applicant ({}): a check cannot be requested now.",
            applicant.review_status
        )));
    }
    let reason = match Reason::parse(&form.reason, "why Sumsub should check again") {
        Ok(r) => r,
        Err(e) => {
            page.recheck_reason = form.reason;
            page.recheck_error = Some(e);
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    let text = reason.as_str().to_owned();
    let intent = Intent {
        action: "kyc_check_requested",
        resource_type: Resource::Person,
        resource_id: id.to_string(),
        reason: Some(reason),
        details: json!({ "applicant": applicant.id, "review_status": applicant.review_status }),
    };
    let token = audit::intent_committed(&state.pool, &ctx, intent).await?;
    let asked = kyc.request_check(&applicant.id, &text).await;
    let mut tx = state.pool.begin().await?;
    let outcome = match &asked {
        Ok(()) => audit::Outcome::Succeeded,
        Err(e) => audit::Outcome::Failed(e.to_string()),
    };
    audit::outcome(&mut tx, &ctx, token, outcome).await?;
    tx.commit().await?;
    match asked {
        Ok(()) => Ok(Redirect::to(&format!("/compliance/people/{id}?kyc=requested")).into_response()),
        Err(crate::cloud::sumsub::KycError::Refused(why)) => Err(AppError::Conflict(format!("Sumsub refused: {why}"))),
        Err(e) => Err(AppError::Unavailable(e.to_string())),
    }
}

pub async fn show_person(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
    Query(p): Query<PersonParams>,
) -> Result<Response, AppError> {
    let page = person_page(&state, &user, &id, &p.before).await?;
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

/// Emergency: sign a customer out of Drop everywhere (account takeover, lost phone).
pub async fn revoke_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    let reason = match Reason::parse(&form.reason, "a reason") {
        Ok(r) => r,
        Err(e) => {
            let mut page = person_page(&state, &user, &id, "").await?;
            page.reason = form.reason;
            page.reason_error = Some(e);
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    people_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    revoke(&state, &ctx, &id, reason, json!({})).await?;
    Ok(Redirect::to(&format!("/compliance/people/{id}")).into_response())
}

/// The emergency sign-out itself (runbook §6.2), audited: `details` says under what (a
/// break-glass use) it was done.
pub(super) async fn revoke(
    state: &AppState,
    ctx: &AuditContext,
    id: &str,
    reason: Reason,
    details: serde_json::Value,
) -> Result<u64, AppError> {
    let intent = Intent {
        action: "user_sessions_revoked",
        resource_type: Resource::Person,
        resource_id: id.to_owned(),
        reason: Some(reason),
        details,
    };
    audit::audited(&state.pool, ctx, intent, async |tx, token| Ok(people_db::revoke_sessions(tx, token, id).await?))
        .await
}

#[derive(Deserialize, Default)]
pub struct TxParams {
    #[serde(default)]
    view: String,
    #[serde(default)]
    before: String,
}

#[derive(Template)]
#[template(path = "compliance/transactions.html")]
pub struct TransactionsPage {
    pub shell: Shell,
    pub view: &'static str,
    pub title: &'static str,
    pub transactions: Vec<TxRow>,
    pub older: Option<String>,
    pub thresholds: String,
}

pub async fn list_transactions(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(p): Query<TxParams>,
) -> Result<Response, AppError> {
    let (which, view, title) = match p.view.as_str() {
        "" | "recent" => (TxList::Recent, "recent", "Last 24 hours"),
        "failed" => (TxList::Failed, "failed", "Failed in the last 7 days"),
        "large" => (TxList::Large, "large", "Large in the last 30 days"),
        "no-threshold" => (TxList::NoThreshold, "no-threshold", "No threshold set, last 30 days"),
        _ => {
            return Err(AppError::Validation(
                "Choose one of the lists: recent, failed, large or no threshold set.".into(),
            ));
        }
    };
    let thresholds: Vec<(String, Decimal)> = state.config.compliance.large_transaction.clone().into_iter().collect();
    let mut transactions =
        audit::viewing(&state.pool, &ctx, Resource::Transactions, view.into(), json!({ "before": p.before }), async {
            Ok(people_db::list(&state.pool, which, &thresholds, parse_time_cursor(&p.before), PAGE_SIZE + 1).await?)
        })
        .await?;
    let older = next_cursor(&mut transactions);
    let thresholds = thresholds.iter().map(|(c, v)| super::money(*v, c)).collect::<Vec<_>>().join(", ");
    let page = TransactionsPage {
        shell: Shell::new(&state, &user, Tab::Transactions, "Transactions"),
        view,
        title,
        transactions,
        older,
        thresholds,
    };
    Ok(render(&page)?.into_response())
}

/// An applicant waiting, with what Sumsub says about them (`None`: not asked).
pub struct KycLine {
    pub row: KycRow,
    pub sumsub: Option<Result<Option<Applicant>, String>>,
}

/// Applicants a KYC page asks Sumsub about (longest waiting first), at most.
const SUMSUB_ROWS: usize = 40;

/// What Sumsub said of the applicants the KYC page lists, in their order.
pub struct SumsubAnswers {
    ids: Vec<String>,
    answers: Vec<(String, Result<Option<Applicant>, String>)>,
}

/// What Sumsub says about each of `ids`, asked a few at a time within [`SUMSUB_WAIT`] in all;
/// empty when Sumsub is not connected.
async fn sumsub_statuses(state: &AppState, ids: Vec<String>) -> Vec<(String, Result<Option<Applicant>, String>)> {
    let Some(kyc) = state.cloud.kyc.clone() else { return vec![] };
    let mut set = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    for id in ids.clone() {
        let (kyc, gate) = (kyc.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let answer = kyc.applicant(&id).await.map_err(|e| e.to_string());
            (id, answer)
        });
    }
    let mut answers = vec![];
    let deadline = tokio::time::Instant::now() + SUMSUB_WAIT;
    while let Ok(Some(Ok(answer))) = tokio::time::timeout_at(deadline, set.join_next()).await {
        answers.push(answer);
    }
    set.abort_all();
    for id in ids {
        if !answers.iter().any(|(a, _)| *a == id) {
            answers.push((id, Err(format!("Sumsub did not answer within {} s", SUMSUB_WAIT.as_secs()))));
        }
    }
    answers
}

#[derive(Template)]
#[template(path = "compliance/kyc.html")]
pub struct KycPage {
    pub shell: Shell,
    pub over_day: Vec<KycLine>,
    pub stuck: Vec<KycLine>,
    /// Whether Sumsub is connected, and how many applicants it was asked about.
    pub sumsub_connected: bool,
    pub sumsub_asked: usize,
    /// Whether waiting counts from the KYC status's last change (Drop records it) or from
    /// sign-up.
    pub since_change: bool,
}

impl KycRow {
    pub fn waiting(&self) -> String {
        age(self.waiting_since)
    }
}

pub async fn list_kyc(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
) -> Result<Response, AppError> {
    let since_change = state.contract().await?.has(Optional::KycUpdatedAt);
    let stuck = audit::viewing(&state.pool, &ctx, Resource::KycQueue, "pending".into(), json!({}), async {
        Ok(people_db::kyc_pending_over(&state.pool, 2, since_change).await?)
    })
    .await?;
    let day = chrono::Duration::hours(24);
    // Sumsub is asked about the longest waiting (one request each); its answers are shared
    // between viewers like the dashboard's readings, while the same applicants wait.
    let ids: Vec<String> = stuck.iter().take(SUMSUB_ROWS).map(|k| k.id.clone()).collect();
    let outside = &state.outside;
    let reading = outside
        .kyc
        .get_if(&outside.changes, |kept: &SumsubAnswers| kept.ids == ids, async {
            SumsubAnswers { ids: ids.clone(), answers: sumsub_statuses(&state, ids.clone()).await }
        })
        .await;
    let asked = &reading.value.answers;
    let sumsub_asked = asked.len();
    let mut lines: Vec<KycLine> = stuck
        .into_iter()
        .map(|row| {
            let sumsub = asked.iter().find(|(id, _)| *id == row.id).map(|(_, s)| s.clone());
            KycLine { row, sumsub }
        })
        .collect();
    let stuck =
        lines.split_off(lines.iter().position(|l| Utc::now() - l.row.waiting_since <= day).unwrap_or(lines.len()));
    let page = KycPage {
        shell: Shell::new(&state, &user, Tab::Kyc, "KYC"),
        over_day: lines,
        stuck,
        sumsub_connected: state.cloud.kyc.is_some(),
        sumsub_asked,
        since_change,
    };
    Ok(render(&page)?.into_response())
}

//! Suspicious transaction reports: draft (from an alert or a person), submit, MLRO review
//! with four eyes, export for filing (printable, and a structured document mapped to Altinn
//! form MT-0002, see docs/mt-0002-mapping.md), and filing, after which the report is frozen.
//! Only compliance staff and the MLRO reach any of this (tipping-off rule).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::money;
use super::people_db::{self, Person};
use super::reports_db::{self, Contribution, Contributor, LinkedTx, NewStr, StrRow};
use super::status::{StrStatus, StrTransition};
use crate::audit::Resource;
use crate::audit::{self, AuditContext, Event, Intent, Reason};
use crate::auth::CurrentUser;
use crate::config::Role;
use crate::error::{AppError, changed};
use crate::ids::StrId;
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::{Fields, required_text};
use crate::web::once::{self, Once};
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

#[derive(Template)]
#[template(path = "compliance/str_list.html")]
pub struct StrListPage {
    pub shell: Shell,
    pub sections: Vec<StrSection>,
    /// Showing one status, page by page (`?status=`), rather than the overview.
    pub one_status: bool,
    /// The filing target: days from the alert to the filing.
    pub filing_days: u32,
}

impl StrListPage {
    /// The section's count as shown: "50+" when more follow.
    pub fn count(&self, s: &StrSection) -> String {
        if s.more.is_some() { format!("{}+", s.rows.len()) } else { s.rows.len().to_string() }
    }

    /// Where a section's "more" link goes: on through one status, or into it from the overview.
    pub fn more_label(&self) -> &'static str {
        if self.one_status { "Older" } else { "All of them, page by page" }
    }
}

/// One status's reports: a page of them, and the link to the next when there are more.
pub struct StrSection {
    pub title: &'static str,
    pub empty: &'static str,
    pub rows: Vec<StrRow>,
    pub more: Option<String>,
}

/// The list's sections in the monthly check's order: (status, title, empty text).
const SECTIONS: [(StrStatus, &str, &str); 4] = [
    (StrStatus::Approved, "Pending filing (approved)", "Nothing waits to be filed."),
    (StrStatus::PendingReview, "Waiting for MLRO review", "Nothing waits for review."),
    (StrStatus::Draft, "Drafts", "No drafts."),
    (StrStatus::Filed, "Filed", "Nothing filed yet."),
];

/// Reports per section on the overview, and per page of one status.
const SECTION_ROWS: i64 = 50;

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    before: String,
}

/// `GET /compliance/str`: everything in flight, pending filings first (the monthly check);
/// `?status=` lists one status page by page, so no report is ever cut from view.
pub async fn list_reports(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(p): Query<ListParams>,
) -> Result<Response, AppError> {
    let chosen: Vec<_> = match p.status.as_str() {
        "" => SECTIONS.to_vec(),
        s => SECTIONS.iter().filter(|(status, _, _)| Some(*status) == StrStatus::parse(s)).copied().collect(),
    };
    if chosen.is_empty() {
        return Err(AppError::Validation("Choose approved, pending_review, draft or filed.".into()));
    }
    let before = match p.before.as_str() {
        "" => None,
        text => Some(
            crate::web::paging::parse_time_cursor(text)
                .ok_or_else(|| AppError::Validation("That page link is not valid; start from the list.".into()))?,
        ),
    };
    // The sections are read at once, each on its own connection, while the view is recorded.
    let section = |i: usize| {
        let (chosen, before, pool) = (&chosen, before.as_ref(), &state.pool);
        async move {
            Ok::<_, AppError>(match chosen.get(i) {
                Some((status, _, _)) => Some(reports_db::in_status(pool, *status, before, SECTION_ROWS + 1).await?),
                None => None,
            })
        }
    };
    const _: () = assert!(SECTIONS.len() == 4, "one read per section below");
    let lists =
        audit::viewing(&state.pool, &ctx, Resource::StrReport, "list".into(), json!({ "status": p.status }), async {
            let (a, b, c, d) = tokio::try_join!(section(0), section(1), section(2), section(3))?;
            Ok([a, b, c, d])
        })
        .await?;
    let one_status = !p.status.is_empty();
    let mut sections = Vec::new();
    for ((status, title, empty), rows) in chosen.into_iter().zip(lists) {
        let mut rows = rows.unwrap_or_default();
        let more = crate::web::paging::next_page(&mut rows, SECTION_ROWS).map(|last| {
            if one_status {
                format!(
                    "/compliance/str?status={status}&before={}",
                    crate::web::paging::time_cursor(last.updated_at, &last.id)
                )
            } else {
                format!("/compliance/str?status={status}")
            }
        });
        sections.push(StrSection { title, empty, rows, more });
    }
    let page = StrListPage {
        shell: Shell::new(&state, &user, Tab::Strs, "STRs"),
        sections,
        one_status,
        filing_days: state.config.compliance.str_filing_days,
    };
    Ok(render(&page)?.into_response())
}

/// What the draft form holds, as typed.
#[derive(Default)]
pub struct DraftForm {
    pub reason: String,
    pub narrative: String,
    pub transactions: Vec<String>,
    /// The form's submission token: a new draft is created once per rendered form.
    pub once: Once,
}

#[derive(Default)]
pub struct DraftErrors {
    pub reason: Option<String>,
    pub narrative: Option<String>,
    pub transactions: Option<String>,
}

impl DraftErrors {
    fn any(&self) -> bool {
        self.reason.is_some() || self.narrative.is_some() || self.transactions.is_some()
    }
}

#[derive(Template)]
#[template(path = "compliance/str_form.html")]
pub struct DraftPage {
    pub shell: Shell,
    pub action: String,
    pub person: Person,
    pub alert_id: Option<String>,
    pub form: DraftForm,
    pub errors: DraftErrors,
    pub candidates: Vec<LinkedTx>,
}

impl super::Casework for DraftPage {
    fn seen(&self) -> super::Seen {
        super::Seen {
            resource_type: Resource::Person,
            resource_id: self.person.id.clone(),
            details: json!({ "via": "str_draft" }),
        }
    }
}

impl DraftPage {
    pub fn checked(&self, tx: &LinkedTx) -> bool {
        self.form.transactions.contains(&tx.id)
    }
}

#[derive(Deserialize, Default)]
pub struct NewParams {
    #[serde(default)]
    alert: String,
    #[serde(default)]
    person: String,
}

/// `GET /compliance/str/new?alert=…|person=…`
pub async fn new_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(p): Query<NewParams>,
) -> Result<Response, AppError> {
    let (user_id, alert_id, preselected) = if !p.alert.is_empty() {
        let alert = super::alerts_db::find(&state.pool, &p.alert).await?.ok_or(AppError::NotFound)?;
        (alert.user_id, Some(alert.id), alert.transaction_id.into_iter().collect())
    } else if !p.person.is_empty() {
        (p.person.clone(), None, vec![])
    } else {
        return Err(AppError::Validation("Start a report from an alert or from a person's page.".into()));
    };
    let person = people_db::find(&state.pool, &user_id).await?.ok_or(AppError::NotFound)?;
    let candidates = reports_db::candidate_transactions(&state.pool, &person.id, None).await?;
    let page = DraftPage {
        shell: Shell::new(&state, &user, Tab::Strs, "New STR"),
        action: "/compliance/str".into(),
        person,
        alert_id,
        form: DraftForm { transactions: preselected, ..Default::default() },
        errors: DraftErrors::default(),
        candidates,
    };
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

/// Check a submitted draft; the transactions must be the person's own.
async fn check_draft(
    state: &AppState,
    user_id: &str,
    fields: &Fields,
) -> Result<(DraftForm, DraftErrors, Value), AppError> {
    let form = DraftForm {
        reason: fields.one("reason").to_owned(),
        narrative: fields.one("narrative").to_owned(),
        transactions: fields.all("tx").map(str::to_owned).collect(),
        once: Once::of(fields.one(once::FIELD)).unwrap_or_default(),
    };
    let mut errors = DraftErrors::default();
    let reason = required_text(&form.reason, 300, "the reason in one line").map_err(|e| errors.reason = Some(e)).ok();
    let narrative =
        required_text(&form.narrative, 20_000, "the narrative").map_err(|e| errors.narrative = Some(e)).ok();
    let own = reports_db::own_transactions(&state.pool, user_id, &form.transactions).await?;
    if own.is_empty() {
        errors.transactions = Some("Link at least one of the person's transactions.".into());
    } else if own.len() != form.transactions.len() {
        errors.transactions = Some("Only the person's own transactions can be linked.".into());
    }
    let details = json!({ "reason": reason, "narrative": narrative });
    Ok((DraftForm { transactions: own, ..form }, errors, details))
}

/// `POST /compliance/str`: create a draft.
pub async fn create_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    fields: Fields,
) -> Result<Response, AppError> {
    let person = people_db::find(&state.pool, fields.one("person")).await?.ok_or(AppError::NotFound)?;
    let alert_id = Some(fields.one("alert").to_owned()).filter(|a| !a.is_empty());
    if let Some(alert) = &alert_id {
        let found = super::alerts_db::find(&state.pool, alert).await?.ok_or(AppError::NotFound)?;
        if found.user_id != person.id {
            return Err(AppError::Validation("That alert is about someone else.".into()));
        }
    }
    let (form, errors, details) = check_draft(&state, &person.id, &fields).await?;
    // The same form submitted again (a double click, Back and resubmit): the draft it made.
    if let Some(went_to) = once::already(&state.pool, Some(form.once), user.staff_id).await? {
        return Ok(Redirect::to(&went_to).into_response());
    }
    if errors.any() {
        let candidates = reports_db::candidate_transactions(&state.pool, &person.id, None).await?;
        let page = DraftPage {
            shell: Shell::new(&state, &user, Tab::Strs, "New STR"),
            action: "/compliance/str".into(),
            person,
            alert_id,
            form,
            errors,
            candidates,
        };
        return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
    }
    let id = format!("str_{}", &crate::auth::random_token()[..16]);
    let intent = Intent {
        action: "str_drafted",
        resource_type: Resource::StrReport,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "person": person.id, "alert": alert_id, "transactions": form.transactions }),
    };
    let new = NewStr {
        id: &id,
        user_id: &person.id,
        alert_id: alert_id.as_deref(),
        details,
        drafted_by: (user.staff_id, &user.name),
        transactions: &form.transactions,
    };
    let went_to = format!("/compliance/str/{id}");
    let created = audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        once::record(tx, Some(form.once), user.staff_id, &went_to).await?;
        reports_db::create(tx, token, new).await?;
        reports_db::contributed(tx, token, &id, (user.staff_id, &user.name), Contribution::Drafted).await?;
        Ok(())
    })
    .await;
    match created {
        // Its twin got there first: go where it went.
        Err(e) if once::was_repeat(&e) => {
            let first = once::already(&state.pool, Some(form.once), user.staff_id).await?;
            Ok(Redirect::to(first.as_deref().unwrap_or("/compliance/str")).into_response())
        }
        Err(e) => Err(e),
        Ok(()) => Ok(Redirect::to(&went_to).into_response()),
    }
}

#[derive(Template)]
#[template(path = "compliance/str.html")]
pub struct ReportPage {
    pub shell: Shell,
    pub report: StrRow,
    pub person: Person,
    pub transactions: Vec<LinkedTx>,
    pub totals: Vec<String>,
    pub edit: Option<DraftPage>,
    pub can_review: bool,
    /// The reader drafted, edited or submitted the report, so may not review it.
    pub own_hand: bool,
    /// Everyone who shaped the report, oldest first.
    pub contributors: Vec<Contributor>,
    /// Submitted, returned (with comments), approved, filed: from the casework audit log.
    pub review: Vec<reports_db::ReviewStep>,
    pub is_mlro: bool,
    /// The filing target: days from the alert to the filing.
    pub filing_days: u32,
    pub comment_error: Option<String>,
    pub filing_errors: FilingErrors,
    pub filing: FilingForm,
    /// Arrived from closing an alert as escalated: "drafted" (a new draft) or "linked".
    pub from_alert: Option<String>,
}

impl super::Casework for ReportPage {
    fn seen(&self) -> super::Seen {
        super::Seen {
            resource_type: Resource::StrReport,
            resource_id: self.report.id.clone(),
            details: json!({ "person": self.person.id }),
        }
    }
}

impl ReportPage {
    pub fn status(&self) -> &'static str {
        self.report.status.label()
    }
}

#[derive(Default, Deserialize)]
pub struct FilingForm {
    #[serde(default)]
    pub reference: String,
    #[serde(default)]
    pub filed_on: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Default)]
pub struct FilingErrors {
    pub reference: Option<String>,
    pub filed_on: Option<String>,
}

pub(super) fn totals(transactions: &[LinkedTx]) -> Vec<String> {
    let mut by_currency: BTreeMap<&str, Decimal> = BTreeMap::new();
    for t in transactions {
        *by_currency.entry(&t.send_currency).or_default() += t.send_amount;
    }
    by_currency.into_iter().map(|(c, a)| money(a, c)).collect()
}

pub(super) async fn report_page(state: &AppState, user: &CurrentUser, id: &str) -> Result<ReportPage, AppError> {
    let report = reports_db::find(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let person = people_db::find(&state.pool, &report.user_id).await?.ok_or(AppError::NotFound)?;
    let transactions = reports_db::linked_transactions(&state.pool, id).await?;
    // Oversight reads a draft as written; only those who may save it get the form.
    let may_edit = state.policy.allows_post("/compliance/str/{id}", &user.roles);
    let edit = if report.status == StrStatus::Draft && may_edit {
        let candidates = reports_db::candidate_transactions(&state.pool, &report.user_id, Some(id)).await?;
        let form = DraftForm {
            reason: report.reason().to_owned(),
            narrative: report.narrative().to_owned(),
            transactions: transactions.iter().map(|t| t.id.clone()).collect(),
            once: Once::new(),
        };
        Some(DraftPage {
            shell: Shell::new(state, user, Tab::Strs, "STR"),
            action: format!("/compliance/str/{id}"),
            person: people_db::find(&state.pool, &report.user_id).await?.ok_or(AppError::NotFound)?,
            alert_id: report.alert_id.clone(),
            form,
            errors: DraftErrors::default(),
            candidates,
        })
    } else {
        None
    };
    let contributors = reports_db::contributors(&state.pool, id).await?;
    let own_hand =
        report.drafted_by == Some(user.staff_id) || contributors.iter().any(|c| c.staff_id == Some(user.staff_id));
    let is_mlro = user.has(Role::Mlro);
    Ok(ReportPage {
        shell: Shell::new(state, user, Tab::Strs, format!("STR {id}")),
        totals: totals(&transactions),
        can_review: is_mlro && !own_hand,
        own_hand,
        contributors,
        review: reports_db::review_history(&state.pool, id).await?,
        is_mlro,
        filing_days: state.config.compliance.str_filing_days,
        report,
        person,
        transactions,
        edit,
        comment_error: None,
        filing_errors: FilingErrors::default(),
        filing: FilingForm::default(),
        from_alert: None,
    })
}

pub async fn show_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    session: tower_sessions::Session,
    PathId(id): PathId<StrId>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, AppError> {
    let mut page = report_page(&state, &user, &id).await?;
    page.from_alert = q.get("from_alert").filter(|f| ["drafted", "linked"].contains(&f.as_str())).cloned();
    // Back from a step-up sign-in before filing: the Altinn receipt typed is filled in again.
    let stash = crate::auth::take_stashed_form(&session, &format!("/compliance/str/{id}")).await;
    stash.restore("reference", &mut page.filing.reference);
    stash.restore("filed_on", &mut page.filing.filed_on);
    stash.restore("comment", &mut page.filing.comment);
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

/// `POST /compliance/str/{id}`: save a draft.
pub async fn update_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
    fields: Fields,
) -> Result<Response, AppError> {
    let report = reports_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let (form, errors, details) = check_draft(&state, &report.user_id, &fields).await?;
    if errors.any() {
        let mut page = report_page(&state, &user, &id).await?;
        if let Some(edit) = page.edit.as_mut() {
            edit.form = form;
            edit.errors = errors;
        }
        return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
    }
    let intent = Intent {
        action: "str_updated",
        resource_type: Resource::StrReport,
        resource_id: id.to_string(),
        reason: None,
        details: json!({ "transactions": form.transactions }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        let done = reports_db::update_draft(tx, token, &id, details, &form.transactions).await?;
        if done {
            reports_db::contributed(tx, token, &id, (user.staff_id, &user.name), Contribution::Edited).await?;
        }
        changed(done, "Only a draft can be changed; this report has moved on.")
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/str/{id}")).into_response())
}

/// Send a draft for review. Who submitted it, and the hash of what they submitted, are
/// recorded: the submitter may not review it, and only that content can be approved.
pub async fn submit_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
) -> Result<Response, AppError> {
    reports_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let intent = Intent {
        action: "str_submitted",
        resource_type: Resource::StrReport,
        resource_id: id.to_string(),
        reason: None,
        details: StrTransition::Submit.details(),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        let done = reports_db::submit(tx, token, &id).await?;
        if done {
            reports_db::contributed(tx, token, &id, (user.staff_id, &user.name), Contribution::Submitted).await?;
        }
        changed(done, "The report is no longer a draft.")
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/str/{id}")).into_response())
}

/// Four eyes: nobody who drafted, edited or submitted a report reviews it. A refused attempt
/// is recorded (in the casework chain, as everything about an STR) before it is refused.
async fn four_eyes(
    state: &AppState,
    ctx: &AuditContext,
    user: &CurrentUser,
    report: &StrRow,
    attempted: &'static str,
) -> Result<(), AppError> {
    let contributors = reports_db::contributors(&state.pool, &report.id).await?;
    let mut hands: Vec<&str> =
        contributors.iter().filter(|c| c.staff_id == Some(user.staff_id)).map(|c| c.kind.label()).collect();
    if report.drafted_by == Some(user.staff_id) && !contributors.iter().any(|c| c.kind == Contribution::Drafted) {
        hands.push(Contribution::Drafted.label());
    }
    if hands.is_empty() {
        return Ok(());
    }
    hands.sort_unstable();
    hands.dedup();
    let refused = Event {
        action: "str_four_eyes_refused",
        resource_type: Resource::StrReport,
        resource_id: report.id.clone(),
        reason: None,
        details: json!({ "attempted": attempted, "contributed": hands }),
    };
    audit::event(&state.pool, ctx, refused).await?;
    Err(AppError::Forbidden4Eyes)
}

/// MLRO approval. Four eyes: nobody who drafted, edited or submitted the report approves it.
pub async fn approve_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
) -> Result<Response, AppError> {
    let report = reports_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    four_eyes(&state, &ctx, &user, &report, "approve").await?;
    let intent = Intent {
        action: "str_approved",
        resource_type: Resource::StrReport,
        resource_id: id.to_string(),
        reason: None,
        details: json!({}),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(
            reports_db::approve(tx, token, &id, (user.staff_id, &user.name)).await?,
            "The report is not waiting for review, or it is not what was submitted for review: reload it, \
             and return it to the drafter if it has no recorded submission.",
        )
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/str/{id}")).into_response())
}

/// MLRO review: back to the drafter with a comment.
pub async fn return_report(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<StrId>,
    axum::Form(form): axum::Form<FilingForm>,
) -> Result<Response, AppError> {
    let comment = match Reason::parse(&form.comment, "a comment for the drafter") {
        Ok(c) => c,
        Err(e) => {
            let mut page = report_page(&state, &user, &id).await?;
            page.comment_error = Some(e);
            page.filing.comment = form.comment;
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    let report = reports_db::find(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    four_eyes(&state, &ctx, &user, &report, "return").await?;
    let intent = Intent {
        action: "str_returned",
        resource_type: Resource::StrReport,
        resource_id: id.to_string(),
        reason: Some(comment.clone()),
        details: json!({}),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(reports_db::send_back(tx, token, &id, &comment).await?, "The report is not waiting for review.")
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/str/{id}")).into_response())
}

//! GDPR: data-access requests and exports (JSON and CSV), and erasure. Erasure is a soft
//! delete: hvitvaskingsloven requires keeping customer records for five years after the
//! relationship ends, so only what the act does not require is removed now.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Months, Utc};
use serde_json::{Map, Value, json};
use tower_sessions::Session;

use super::deadlines::{self, Deadline};
use super::gdpr_db::{self, AccessRequest, Blockers};
use super::people_db::{self, Person};
use crate::audit::Resource;
use crate::audit::{self, AuditContext, Intent, Reason};
use crate::auth::{CurrentUser, take_stashed_form};
use crate::contract::Optional;
use crate::error::{AppError, changed};
use crate::ids::{DataRequestId, PersonId};
use crate::state::AppState;
use crate::web::PathId;
use crate::web::forms::ReasonForm;
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

/// One month to answer, three when extended (GDPR art. 12(3)).
const ANSWER_MONTHS: u32 = 1;
const EXTENDED_MONTHS: u32 = 3;
/// An open request this close to its deadline is flagged.
const DUE_SOON_DAYS: i64 = 7;

impl AccessRequest {
    /// The day the answer is due by: a month from receipt, three when extended.
    pub fn deadline(&self) -> Deadline {
        let months = if self.extended_at.is_some() { EXTENDED_MONTHS } else { ANSWER_MONTHS };
        Deadline::months_after(self.created_at, months)
    }

    /// The first month's deadline: an extension has to be decided (and told) before it.
    pub fn first_deadline(&self) -> Deadline {
        Deadline::months_after(self.created_at, ANSWER_MONTHS)
    }

    /// Where the request stands against its deadline: (badge tone, words).
    pub fn standing(&self) -> (&'static str, String) {
        let deadline = self.deadline();
        match self.fulfilled_at {
            Some(t) if t < deadline.ends => ("green", format!("Answered {}", deadlines::oslo_day(t))),
            Some(t) => ("red", format!("Answered late, {}", deadlines::oslo_day(t))),
            None if self.overdue(Utc::now()) => ("red", "Overdue".into()),
            None if self.due_soon(Utc::now()) => ("amber", format!("Due in {} d", deadline.days_left(Utc::now()))),
            None => ("grey", "Open".into()),
        }
    }

    /// Open past its deadline.
    pub fn overdue(&self, now: chrono::DateTime<Utc>) -> bool {
        self.status == "open" && self.deadline().is_past(now)
    }

    /// Open, on time, and due within [`DUE_SOON_DAYS`].
    pub fn due_soon(&self, now: chrono::DateTime<Utc>) -> bool {
        self.status == "open" && !self.overdue(now) && self.deadline().days_left(now) <= DUE_SOON_DAYS
    }

    /// Whether the answer may still be put off: open, not yet extended, first month not over.
    pub fn extendable(&self) -> bool {
        self.status == "open" && self.extended_at.is_none() && !self.first_deadline().is_past(Utc::now())
    }

    pub fn received(&self) -> String {
        deadlines::oslo(self.created_at)
    }
}

/// Where exports come from: Drop's own data-export API, or the console's reading of Drop's
/// tables.
pub enum ExportSource {
    DropApi,
    Console { why: String },
}

impl ExportSource {
    fn name(&self) -> &'static str {
        match self {
            ExportSource::DropApi => "drop_api",
            ExportSource::Console { .. } => "console",
        }
    }

    /// The sentence the GDPR page and the export carry.
    pub fn describe(&self) -> String {
        match self {
            ExportSource::DropApi => "Drop's own data-export API (/api/user/data-export)".into(),
            ExportSource::Console { why } => format!("the console's reading of Drop's tables: {why}"),
        }
    }
}

#[derive(Template)]
#[template(path = "compliance/gdpr.html")]
pub struct GdprPage {
    pub shell: Shell,
    pub requests: Vec<AccessRequest>,
    pub source: String,
    pub overdue: usize,
}

pub async fn list_requests(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
) -> Result<Response, AppError> {
    audit::viewed(&state.pool, &ctx, Resource::Person, "data_access_requests".into(), json!({})).await?;
    let requests = gdpr_db::requests(&state.pool).await?;
    let overdue = requests.iter().filter(|r| r.overdue(Utc::now())).count();
    let source = match &state.cloud.exports {
        Some(_) => ExportSource::DropApi.describe(),
        None => ExportSource::Console { why: NOT_CONFIGURED.into() }.describe(),
    };
    let page = GdprPage { shell: Shell::new(&state, &user, Tab::Gdpr, "GDPR"), requests, source, overdue };
    Ok(render(&page)?.into_response())
}

const NOT_CONFIGURED: &str = "Drop's export API is not configured (compliance.data_export_url)";

pub async fn fulfil_request(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<DataRequestId>,
) -> Result<Response, AppError> {
    let request = gdpr_db::request(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let due = request.deadline();
    let intent = Intent {
        action: "data_access_request_fulfilled",
        resource_type: Resource::Person,
        resource_id: request.user_id,
        reason: None,
        details: json!({ "request": id, "due": due.day.to_string(), "late": due.is_past(Utc::now()) }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(gdpr_db::fulfil(tx, token, &id).await?, "That request is already fulfilled.")
    })
    .await?;
    Ok(Redirect::to("/compliance/gdpr").into_response())
}

#[derive(Template)]
#[template(path = "compliance/gdpr_extend.html")]
pub struct ExtendPage {
    pub shell: Shell,
    pub request: AccessRequest,
    pub reason: String,
    pub reason_error: Option<String>,
}

impl super::Casework for ExtendPage {
    fn seen(&self) -> super::Seen {
        super::Seen {
            resource_type: Resource::Person,
            resource_id: self.request.user_id.clone(),
            details: json!({ "via": "gdpr_extension", "request": self.request.id }),
        }
    }
}

impl ExtendPage {
    pub fn extended_deadline(&self) -> Deadline {
        Deadline::months_after(self.request.created_at, EXTENDED_MONTHS)
    }
}

async fn extend_page(state: &AppState, user: &CurrentUser, id: &str, reason: String) -> Result<ExtendPage, AppError> {
    let request = gdpr_db::request(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    Ok(ExtendPage {
        shell: Shell::new(state, user, Tab::Gdpr, "Extend the answer deadline"),
        request,
        reason,
        reason_error: None,
    })
}

pub async fn confirm_extension(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<DataRequestId>,
) -> Result<Response, AppError> {
    let page = extend_page(&state, &user, &id, String::new()).await?;
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

/// Put the answer off by two months, with the reason the person is told (GDPR art. 12(3)):
/// once, while the request is open and its first month is not over.
pub async fn extend_request(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<DataRequestId>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    let mut page = extend_page(&state, &user, &id, form.reason.clone()).await?;
    if page.request.status != "open" {
        return Err(AppError::Conflict("That request is already answered.".into()));
    }
    if page.request.extended_at.is_some() {
        return Err(AppError::Conflict("That request is already extended; the GDPR allows one extension.".into()));
    }
    if page.request.first_deadline().is_past(Utc::now()) {
        return Err(AppError::Conflict(
            "The first month is over: an extension had to be decided and told to the person within it.".into(),
        ));
    }
    let reason = match Reason::parse(&form.reason, "why the answer needs longer (the person is told this)") {
        Ok(r) => r,
        Err(e) => {
            page.reason_error = Some(e);
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    let due = page.extended_deadline().day.to_string();
    let text = reason.as_str().to_owned();
    let intent = Intent {
        action: "data_access_request_extended",
        resource_type: Resource::Person,
        resource_id: page.request.user_id.clone(),
        reason: Some(reason),
        details: json!({ "request": id, "due": due }),
    };
    let staff = (user.staff_id, user.name.as_str());
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(gdpr_db::extend(tx, token, &id, &text, staff).await?, "That request is already extended or answered.")
    })
    .await?;
    Ok(Redirect::to("/compliance/gdpr").into_response())
}

/// Record-kinds Drop's export might hold that a data subject must not be shown (tipping-off):
/// they are taken out before the export leaves the console.
const WITHHELD: [&str; 4] = ["aml_alerts", "str_reports", "suspicious_transaction_reports", "str_cases"];

/// The person's records: from Drop's export API where it is connected, else (or when it fails)
/// the console's own reading, saying which. The export is recorded as a view before it is sent.
async fn exported(
    state: &AppState,
    ctx: &AuditContext,
    id: &str,
    format: &str,
) -> Result<Map<String, Value>, AppError> {
    let from_api = match &state.cloud.exports {
        Some(api) => Some(api.export(id).await),
        None => None,
    };
    let (mut records, source) = match from_api {
        Some(Ok(records)) => (records, ExportSource::DropApi),
        Some(Err(e)) => (own_export(state, id).await?, ExportSource::Console { why: e.to_string() }),
        None => (own_export(state, id).await?, ExportSource::Console { why: NOT_CONFIGURED.into() }),
    };
    let withheld: Vec<&str> = WITHHELD.into_iter().filter(|k| records.remove(*k).is_some()).collect();
    let mut details = json!({ "format": format, "source": source.name() });
    if let ExportSource::Console { why } = &source {
        details["why"] = why.as_str().into();
    }
    if !withheld.is_empty() {
        details["withheld"] = json!(withheld);
    }
    audit::event(
        &state.pool,
        ctx,
        audit::Event {
            action: "personal_data_exported",
            resource_type: Resource::Person,
            resource_id: id.to_owned(),
            reason: None,
            details,
        },
    )
    .await?;
    records.insert(
        "export".into(),
        json!({ "source": source.name(), "from": source.describe(), "exported_at": Utc::now().to_rfc3339() }),
    );
    Ok(records)
}

async fn own_export(state: &AppState, id: &str) -> Result<Map<String, Value>, AppError> {
    let mut conn = state.pool.acquire().await?;
    gdpr_db::drop_export(&mut conn, id).await?.ok_or(AppError::NotFound)
}

fn attachment(name: String, content_type: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

pub async fn export_json(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
) -> Result<Response, AppError> {
    let data = exported(&state, &ctx, &id, "json").await?;
    let body = serde_json::to_string_pretty(&data).map_err(|e| AppError::Internal(e.into()))?;
    Ok(attachment(format!("{id}-personal-data.json"), "application/json", body))
}

/// One CSV: a row per field, `table,record,field,value`, so every table fits one sheet.
pub async fn export_csv(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
) -> Result<Response, AppError> {
    let data = exported(&state, &ctx, &id, "csv").await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut write = |table: &str, n: usize, record: &Value| -> Result<(), AppError> {
        let fields: Vec<(&str, &Value)> = match record {
            Value::Object(fields) => fields.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            other => vec![("value", other)],
        };
        for (field, value) in fields {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            out.write_record([table, &n.to_string(), field, &crate::audit::csv_safe(&value)])
                .map_err(|e| AppError::Internal(e.into()))?;
        }
        Ok(())
    };
    for (table, records) in &data {
        match records {
            Value::Array(list) => {
                for (n, record) in list.iter().enumerate() {
                    write(table, n + 1, record)?;
                }
            }
            record => write(table, 1, record)?,
        }
    }
    let body = String::from_utf8(out.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("csv: {e}")))?)
        .unwrap_or_default();
    Ok(attachment(
        format!("{id}-personal-data.csv"),
        "text/csv; charset=utf-8",
        format!("table,record,field,value\n{body}"),
    ))
}

#[derive(Template)]
#[template(path = "compliance/erase.html")]
pub struct ErasePage {
    pub shell: Shell,
    pub person: Person,
    pub blockers: Blockers,
    pub last_activity: Option<DateTime<Utc>>,
    pub retention_ends: DateTime<Utc>,
    pub years: u32,
    pub reason: String,
    pub reason_error: Option<String>,
}

impl super::Casework for ErasePage {
    fn seen(&self) -> super::Seen {
        super::Seen {
            resource_type: Resource::Person,
            resource_id: self.person.id.clone(),
            details: json!({ "via": "erasure" }),
        }
    }
}

impl ErasePage {
    pub fn blocked(&self) -> bool {
        self.blockers.open_alerts > 0 || self.blockers.unfiled_reports > 0
    }
}

/// Five years (configurable, never less) from the end of the relationship, which an erasure
/// ends now.
fn retention_end(years: u32, last_activity: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let end = last_activity.map_or(Utc::now(), |t| t.max(Utc::now()));
    end.checked_add_months(Months::new(years * 12)).unwrap_or(end)
}

async fn erase_page(state: &AppState, user: &CurrentUser, id: &str, reason: String) -> Result<ErasePage, AppError> {
    let person = people_db::find(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    let blockers = gdpr_db::blockers(&state.pool, id).await?;
    let last_activity = gdpr_db::last_activity(&state.pool, id).await?;
    let years = state.config.compliance.aml_retention_years;
    Ok(ErasePage {
        shell: Shell::new(state, user, Tab::Gdpr, "Erase personal data"),
        retention_ends: person.retention_ends_at.unwrap_or_else(|| retention_end(years, last_activity)),
        person,
        blockers,
        last_activity,
        years,
        reason,
        reason_error: None,
    })
}

pub async fn confirm_erase(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
) -> Result<Response, AppError> {
    let stash = take_stashed_form(&session, &format!("/compliance/people/{id}/erase")).await;
    let page = erase_page(&state, &user, &id, stash.get("reason").unwrap_or_default().to_owned()).await?;
    super::show(&state, &ctx, StatusCode::OK, &page).await
}

pub async fn erase(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
    Form(form): Form<ReasonForm>,
) -> Result<Response, AppError> {
    let mut page = erase_page(&state, &user, &id, form.reason.clone()).await?;
    if page.person.deleted_at.is_some() {
        return Err(AppError::Conflict("This person's data is already erased.".into()));
    }
    if page.blocked() {
        return Err(AppError::Conflict(
            "Erasure has to wait: this person has an open AML alert or an STR that is not filed yet.".into(),
        ));
    }
    let reason = match Reason::parse(&form.reason, "the reason, such as the request it answers") {
        Ok(r) => r,
        Err(e) => {
            page.reason_error = Some(e);
            return super::show(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &page).await;
        }
    };
    let retention_ends = page.retention_ends;
    let clear_devices = state.contract().await?.has(Optional::SessionDevice);
    let intent = Intent {
        action: "personal_data_erased",
        resource_type: Resource::Person,
        resource_id: id.to_string(),
        reason: Some(reason),
        details: json!({ "retention_ends_at": retention_ends.to_rfc3339(), "kept_for": "hvitvaskingsloven" }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(
            gdpr_db::erase(tx, token, &id, retention_ends, clear_devices).await?,
            "This person's data is already erased.",
        )
    })
    .await?;
    Ok(Redirect::to(&format!("/compliance/people/{id}")).into_response())
}

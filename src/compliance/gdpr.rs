//! GDPR: data-access requests and exports (JSON and CSV), and erasure. Erasure is a soft
//! delete: hvitvaskingsloven requires keeping customer records for five years after the
//! relationship ends, so only what the act does not require is removed now.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Months, Utc};
use serde_json::{Value, json};
use tower_sessions::Session;

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

#[derive(Template)]
#[template(path = "compliance/gdpr.html")]
pub struct GdprPage {
    pub shell: Shell,
    pub requests: Vec<AccessRequest>,
}

pub async fn list_requests(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
) -> Result<Response, AppError> {
    audit::viewed(&state.pool, &ctx, Resource::Person, "data_access_requests".into(), json!({})).await?;
    let requests = gdpr_db::requests(&state.pool).await?;
    Ok(render(&GdprPage { shell: Shell::new(&state, &user, Tab::Gdpr, "GDPR"), requests })?.into_response())
}

pub async fn fulfil_request(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<DataRequestId>,
) -> Result<Response, AppError> {
    let person = gdpr_db::request_person(&state.pool, &id).await?.ok_or(AppError::NotFound)?;
    let intent = Intent {
        action: "data_access_request_fulfilled",
        resource_type: Resource::Person,
        resource_id: person,
        reason: None,
        details: json!({ "request": id }),
    };
    audit::audited(&state.pool, &ctx, intent, async |tx, token| {
        changed(gdpr_db::fulfil(tx, token, &id).await?, "That request is already fulfilled.")
    })
    .await?;
    Ok(Redirect::to("/compliance/gdpr").into_response())
}

async fn exported(state: &AppState, ctx: &AuditContext, id: &str, format: &str) -> Result<Value, AppError> {
    people_db::find(&state.pool, id).await?.ok_or(AppError::NotFound)?;
    audit::event(
        &state.pool,
        ctx,
        audit::Event {
            action: "personal_data_exported",
            resource_type: Resource::Person,
            resource_id: id.to_owned(),
            reason: None,
            details: json!({ "format": format }),
        },
    )
    .await?;
    let mut conn = state.pool.acquire().await?;
    Ok(gdpr_db::export(&mut conn, id).await?)
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

/// One CSV: a row per record, `table,field,value`, so every table fits one sheet.
pub async fn export_csv(
    State(state): State<AppState>,
    ctx: AuditContext,
    PathId(id): PathId<PersonId>,
) -> Result<Response, AppError> {
    let data = exported(&state, &ctx, &id, "csv").await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut write = |table: &str, n: usize, record: &Value| -> Result<(), AppError> {
        for (field, value) in record.as_object().into_iter().flatten() {
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
    write("person", 1, &data["person"])?;
    for table in ["sessions", "transactions", "data_access_requests"] {
        for (n, record) in data[table].as_array().into_iter().flatten().enumerate() {
            write(table, n + 1, record)?;
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

//! The audit pages: search with filters and keyset pagination, one entry with its linked
//! intent or outcomes and chain status, CSV export, and chain verification. Searches,
//! exports and verifications are themselves audited.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::db::{self, AuditEntry, AuditFilter, ParsedFilter, StaffMatch};
use super::verify::{self, Report, Scope};
use super::{AuditContext, Chain, Event, Resource};
use crate::auth::CurrentUser;
use crate::auth::policy::{ANY_ROLE, Access, CASEWORK, CASEWORK_READ, MLRO, Route};
use crate::config::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::{non_empty, query_string};
use crate::web::{Area, Htmx, PathId, Shell, page_or_fragment, render};

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;
/// Who may recompute the whole operations chain from its first row: minutes of database time
/// at Drop's size, so not every press of a button. The casework chain: the MLRO.
const FULL_VERIFIERS: &[Role] = &[Role::Admin, Role::Mlro];

fn full_verifiers(chain: Chain) -> &'static [Role] {
    match chain {
        Chain::Operations => FULL_VERIFIERS,
        Chain::Casework => MLRO,
    }
}
/// How long a press waits for its verification before showing progress instead.
const VERIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Rows in one CSV export: the newest ones matching the filter.
pub const EXPORT_LIMIT: i64 = 10_000;

pub fn routes() -> Vec<Route> {
    // The operations chain is for every role; the casework chain, under /audit/casework, for
    // compliance staff and the MLRO only. Each handler is told its chain and reads no other.
    let (any, casework) = (Access::Roles(ANY_ROLE), Access::Roles(CASEWORK_READ));
    let casework_acts = Access::Roles(CASEWORK);
    vec![
        Route::get("/audit", any, |s, u, c, se, q| list_audit(s, u, c, se, q, Chain::Operations)),
        Route::get("/audit/export.csv", any, |s, u, c, q| export_audit(s, u, c, q, Chain::Operations)),
        Route::get("/audit/{id}", any, |s, u, p| show_entry(s, u, p, Chain::Operations)),
        Route::post("/audit/verify", any, |s, u, c, h| {
            verify_chain(s, u, c, h, Chain::Operations, Scope::SinceCheckpoint)
        }),
        Route::post("/audit/verify/full", Access::Roles(full_verifiers(Chain::Operations)), |s, u, c, h| {
            verify_chain(s, u, c, h, Chain::Operations, Scope::Full)
        }),
        Route::get("/audit/verifications/{id}", any, |s, u, h, p| show_verification(s, u, h, p, Chain::Operations)),
        Route::get("/audit/casework", casework, |s, u, c, se, q| list_audit(s, u, c, se, q, Chain::Casework)),
        Route::get("/audit/casework/export.csv", casework, |s, u, c, q| export_audit(s, u, c, q, Chain::Casework)),
        Route::get("/audit/casework/{id}", casework, |s, u, p| show_entry(s, u, p, Chain::Casework)),
        Route::post("/audit/casework/verify", casework_acts, |s, u, c, h| {
            verify_chain(s, u, c, h, Chain::Casework, Scope::SinceCheckpoint)
        }),
        Route::post("/audit/casework/verify/full", Access::Roles(full_verifiers(Chain::Casework)), |s, u, c, h| {
            verify_chain(s, u, c, h, Chain::Casework, Scope::Full)
        }),
        Route::get("/audit/casework/verifications/{id}", casework, |s, u, h, p| {
            show_verification(s, u, h, p, Chain::Casework)
        }),
    ]
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(flatten)]
    pub filter: AuditFilter,
    /// Entries older than this id (the last id of the previous page).
    #[serde(default)]
    pub before: String,
}

/// Field-level problems with a filter.
#[derive(Default)]
pub struct FilterErrors {
    /// A text field longer than [`FIELD_MAX`]: no actor, action or id is that long, and the
    /// search is written to the audit log.
    pub actor: Option<&'static str>,
    pub action: Option<&'static str>,
    pub resource: Option<&'static str>,
    pub outcome: Option<&'static str>,
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
    pub before: Option<&'static str>,
}

impl FilterErrors {
    fn any(&self) -> bool {
        self.actor.is_some()
            || self.action.is_some()
            || self.resource.is_some()
            || self.outcome.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.before.is_some()
    }
}

fn day(text: &str) -> Result<Option<DateTime<Utc>>, ()> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| Some(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()))
        .map_err(|_| ())
}

/// Check a filter from the query string; each bad field gets its own message.
/// Longest text a search field takes.
pub const FIELD_MAX: usize = 200;

pub fn parse_filter(f: &AuditFilter) -> Result<ParsedFilter, FilterErrors> {
    let mut errors = FilterErrors::default();
    const TOO_LONG: &str = "At most 200 characters.";
    for (text, error) in
        [(&f.actor, &mut errors.actor), (&f.action, &mut errors.action), (&f.resource, &mut errors.resource)]
    {
        if text.chars().count() > FIELD_MAX {
            *error = Some(TOO_LONG);
        }
    }
    let outcome = non_empty(&f.outcome);
    if outcome.as_deref().is_some_and(|o| !["succeeded", "failed", "unknown"].contains(&o)) {
        errors.outcome = Some("Choose succeeded, failed or unknown.");
    }
    let from = day(&f.from).unwrap_or_else(|()| {
        errors.from = Some("Use a date like 2026-11-28.");
        None
    });
    let to = day(&f.to).unwrap_or_else(|()| {
        errors.to = Some("Use a date like 2026-11-28.");
        None
    });
    // "to" is inclusive: up to the end of that day.
    let to = to.map(|t| t + chrono::Duration::days(1));
    if let (Some(a), Some(b)) = (from, to) {
        if b <= a {
            errors.to = Some("The end date is before the start date.");
        }
    }
    if errors.any() {
        return Err(errors);
    }
    Ok(ParsedFilter {
        actor: non_empty(&f.actor),
        actors: None,
        action: non_empty(&f.action),
        resource: non_empty(&f.resource),
        outcome,
        from,
        to,
    })
}

/// The actors a filter's actor term stands for: the term itself (an exact name, an email,
/// `system`) and the staff whose name or email begins with it.
async fn with_actors(state: &AppState, mut f: ParsedFilter) -> Result<(ParsedFilter, Vec<StaffMatch>), AppError> {
    let Some(term) = f.actor.clone() else { return Ok((f, vec![])) };
    let staff = db::staff_matching(&state.pool, &term).await?;
    let mut actors = vec![term.to_lowercase()];
    for s in &staff {
        actors.push(s.display_name.to_lowercase());
        actors.extend(s.email.as_deref().map(str::to_lowercase));
    }
    actors.sort_unstable();
    actors.dedup();
    f.actors = Some(actors);
    Ok((f, staff))
}

/// Compliance staff, the MLRO and oversight read the casework chain; nobody else does.
fn is_casework(user: &CurrentUser) -> bool {
    Access::Roles(CASEWORK_READ).allows(&user.roles)
}

fn is_search(f: &ParsedFilter) -> bool {
    f.actor.is_some()
        || f.action.is_some()
        || f.resource.is_some()
        || f.outcome.is_some()
        || f.from.is_some()
        || f.to.is_some()
}

/// The query string of a filter, for links that keep it (pagination, export).
fn filter_query(f: &AuditFilter) -> String {
    query_string(&[
        ("actor", &f.actor),
        ("action", &f.action),
        ("resource", &f.resource),
        ("outcome", &f.outcome),
        ("from", &f.from),
        ("to", &f.to),
    ])
}

#[derive(Template)]
#[template(path = "audit/index.html")]
pub struct AuditPage {
    pub shell: Shell,
    pub chain: Chain,
    /// Whether the reader may switch to the casework chain (and so sees the tabs).
    pub casework_reader: bool,
    pub filter: AuditFilter,
    pub errors: FilterErrors,
    pub entries: Vec<AuditEntry>,
    pub older: Option<String>,
    pub paged: bool,
    pub query: String,
    /// The staff an actor search found by part of their name or email.
    pub actor_matches: Vec<StaffMatch>,
}

impl AuditPage {
    pub fn is_chosen(&self, action: &str) -> bool {
        self.filter.action.trim() == action
    }

    /// The actions this chain records, to choose from; an action typed in a link that is not
    /// one of them is kept as the first choice.
    pub fn known_actions(&self) -> Vec<&str> {
        let known: &[&str] = match self.chain {
            Chain::Operations => &super::OPERATIONS_ACTIONS,
            Chain::Casework => &super::CASEWORK_ACTIONS,
        };
        let mut list: Vec<&str> = known.to_vec();
        let typed = self.filter.action.trim();
        if !typed.is_empty() && !list.contains(&typed) {
            list.insert(0, typed);
        }
        list
    }
}

/// Record a search or export. What compliance staff and the MLRO look for in the log (an STR
/// id, a customer, `action=str_filed`) is casework, kept in the casework chain whichever
/// chain they searched.
async fn record(
    state: &AppState,
    user: &CurrentUser,
    ctx: &AuditContext,
    action: &'static str,
    chain: Chain,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let resource_type = Resource::log_of(if is_casework(user) { Chain::Casework } else { Chain::Operations });
    let details = json!({ "chain": chain.as_str(), "search": details });
    super::event(&state.pool, ctx, Event { action, resource_type, resource_id: "search".into(), reason: None, details })
        .await
}

/// Searches already recorded in this sign-in, with when: a search is audited again after
/// [`SEARCH_REMEMBERED`].
const SEARCHES_KEY: &str = "audit_searches_recorded";
const SEARCH_REMEMBERED: i64 = 30 * 60;

/// Whether this search (chain and filter, whatever the page) is new in this sign-in; notes it.
async fn first_time(session: &tower_sessions::Session, chain: Chain, query: &str) -> Result<bool, AppError> {
    let key = format!("{}?{query}", chain.as_str());
    let now = Utc::now().timestamp();
    let mut seen: Vec<(String, i64)> =
        session.get(SEARCHES_KEY).await.map_err(crate::auth::session_error)?.unwrap_or_default();
    seen.retain(|(_, at)| now - at < SEARCH_REMEMBERED);
    if seen.iter().any(|(k, _)| *k == key) {
        return Ok(false);
    }
    seen.push((key, now));
    // A bounded memory: the 50 most recent searches.
    let excess = seen.len().saturating_sub(50);
    seen.drain(..excess);
    session.insert(SEARCHES_KEY, seen).await.map_err(crate::auth::session_error)?;
    Ok(true)
}

pub async fn list_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    session: tower_sessions::Session,
    Query(q): Query<AuditQuery>,
    chain: Chain,
) -> Result<Response, AppError> {
    let title = match chain {
        Chain::Operations => "Audit",
        Chain::Casework => "Casework audit",
    };
    let shell = Shell::new(&state, &user, Area::Audit, title);
    let casework_reader = is_casework(&user);
    let query = filter_query(&q.filter);
    let parsed = parse_filter(&q.filter);
    let before = match q.before.trim() {
        "" => Ok(None),
        text => text.parse::<i64>().ok().filter(|id| *id > 0).map(Some).ok_or(()),
    };
    let (parsed, before) = match (parsed, before) {
        (Ok(p), Ok(b)) => (p, b),
        (parsed, before) => {
            let mut errors = parsed.err().unwrap_or_default();
            if before.is_err() {
                errors.before = Some("That page link is not valid. Start from the newest entries.");
            }
            let page = AuditPage {
                shell,
                chain,
                casework_reader,
                filter: q.filter,
                errors,
                entries: vec![],
                older: None,
                paged: false,
                query,
                actor_matches: vec![],
            };
            return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    // One audit_searched per distinct search: paging through it or refreshing it is the same.
    if is_search(&parsed) && first_time(&session, chain, &query).await? {
        record(&state, &user, &ctx, "audit_searched", chain, json!({ "filter": q.filter })).await?;
    }
    let (parsed, actor_matches) = with_actors(&state, parsed).await?;
    let mut entries = db::search(&state.pool, chain, &parsed, before, PAGE_SIZE + 1).await?;
    let older = crate::web::paging::next_page(&mut entries, PAGE_SIZE).map(|e| {
        let before = format!("before={}", e.id);
        if query.is_empty() { before } else { format!("{query}&{before}") }
    });
    let page = AuditPage {
        shell,
        chain,
        casework_reader,
        filter: q.filter,
        errors: FilterErrors::default(),
        entries,
        older,
        paged: before.is_some(),
        query,
        actor_matches,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "audit/entry.html")]
pub struct EntryPage {
    pub shell: Shell,
    pub chain: Chain,
    pub id: i64,
    pub rows: Vec<AuditEntry>,
    pub intact: bool,
}

pub async fn show_entry(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId<i64>,
    chain: Chain,
) -> Result<Html<String>, AppError> {
    // An id of the other chain is not found here, whoever asks: the page names one chain.
    if Chain::of_id(id) != chain {
        return Err(AppError::NotFound);
    }
    let rows = db::with_links(&state.pool, id).await?;
    if !rows.iter().any(|r| r.id == id) {
        return Err(AppError::NotFound);
    }
    let intact = db::row_intact(&state.pool, id).await?;
    let shell = Shell::new(&state, &user, Area::Audit, format!("Audit entry {id}"));
    render(&EntryPage { shell, chain, id, rows, intact })
}

/// Spreadsheet programs run cells starting with these as formulas: prefix them with `'`.
pub fn csv_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() }
}

pub async fn export_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Query(q): Query<AuditQuery>,
    chain: Chain,
) -> Result<Response, AppError> {
    let parsed = parse_filter(&q.filter)
        .map_err(|_| AppError::Validation("The filter is not valid; fix it on the audit page first.".into()))?;
    record(&state, &user, &ctx, "audit_exported", chain, json!({ "filter": q.filter, "limit": EXPORT_LIMIT })).await?;
    let (parsed, _) = with_actors(&state, parsed).await?;
    let rows = db::search(&state.pool, chain, &parsed, None, EXPORT_LIMIT).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, record: Vec<String>| {
        out.write_record(record.iter().map(|v| csv_safe(v))).map_err(|e| AppError::Internal(e.into()))
    };
    write(
        &mut out,
        [
            "id",
            "seq",
            "time_utc",
            "kind",
            "intent_id",
            "actor",
            "actor_email",
            "roles",
            "action",
            "resource_type",
            "resource_id",
            "reason",
            "outcome",
            "error",
            "request_id",
            "client_ip",
            "details",
        ]
        .map(str::to_owned)
        .to_vec(),
    )?;
    for r in rows {
        write(
            &mut out,
            vec![
                r.id.to_string(),
                r.seq.to_string(),
                r.created_at.to_rfc3339(),
                r.kind,
                r.intent_id.map(|i| i.to_string()).unwrap_or_default(),
                r.actor,
                r.actor_email.unwrap_or_default(),
                r.actor_roles.join(" "),
                r.action,
                r.resource_type,
                r.resource_id,
                r.reason.unwrap_or_default(),
                r.outcome.or(r.result).unwrap_or_default(),
                r.error.unwrap_or_default(),
                r.request_id.unwrap_or_default(),
                r.client_ip.unwrap_or_default(),
                r.details.to_string(),
            ],
        )?;
    }
    let body = out.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("csv: {e}")))?;
    let name =
        format!("attachment; filename=\"dropops-audit-{}-{}.csv\"", chain.as_str(), Utc::now().format("%Y%m%d-%H%M"));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)], body)
        .into_response())
}

#[derive(Template)]
#[template(path = "audit/_verify.html")]
pub struct VerifyFragment {
    pub report: Report,
    pub may_verify_fully: bool,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "audit/verify.html")]
pub struct VerifyPage {
    pub shell: Shell,
    pub result: VerifyFragment,
}

fn show_report(state: &AppState, user: &CurrentUser, htmx: Htmx, report: Report) -> Result<Html<String>, AppError> {
    let may_verify_fully = user.roles.iter().any(|r| full_verifiers(report.verification.chain).contains(r));
    page_or_fragment(htmx, VerifyFragment { report, may_verify_fully, csrf: user.csrf.clone() }, |result| VerifyPage {
        shell: Shell::new(state, user, Area::Audit, "Audit chain"),
        result,
    })
}

/// Verify one chain: the entries written since its last checkpoint, or (the explicit,
/// audited re-verification) every entry from the first.
pub async fn verify_chain(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    htmx: Htmx,
    chain: Chain,
    scope: Scope,
) -> Result<Html<String>, AppError> {
    let report = verify::start(&state.pool, &ctx, chain, scope, VERIFY_WAIT).await?;
    show_report(&state, &user, htmx, report)
}

/// A verification's progress or result (the fragment polls this while it runs). One of
/// another chain is not found here.
pub async fn show_verification(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
    PathId(id): PathId<i64>,
    chain: Chain,
) -> Result<Html<String>, AppError> {
    let report = verify::report(&state.pool, id).await?.filter(|r| r.verification.chain == chain);
    show_report(&state, &user, htmx, report.ok_or(AppError::NotFound)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_would_run_as_formulas_are_defused() {
        for evil in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_safe(evil).starts_with('\''), "{evil:?}");
        }
        assert_eq!(csv_safe("deploy_started"), "deploy_started");
    }

    #[test]
    fn filter_dates_are_checked_field_by_field() {
        let bad = AuditFilter {
            from: "yesterday".into(),
            to: "2026-01-01".into(),
            outcome: "maybe".into(),
            ..Default::default()
        };
        let errors = parse_filter(&bad).err().expect("refused");
        assert!(errors.from.is_some() && errors.outcome.is_some() && errors.to.is_none());
        let reversed = AuditFilter { from: "2026-02-01".into(), to: "2026-01-01".into(), ..Default::default() };
        assert!(parse_filter(&reversed).err().expect("refused").to.is_some());
        let ok =
            parse_filter(&AuditFilter { from: "2026-01-01".into(), to: "2026-01-01".into(), ..Default::default() })
                .ok()
                .expect("ok");
        assert_eq!(ok.to.unwrap() - ok.from.unwrap(), chrono::Duration::days(1), "the end day is included");
    }
}

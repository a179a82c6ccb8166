//! Application logs (runbook §2, §7): filter by pattern, user id, request id and time window,
//! with presets for the runbook's searches and a follow mode that refreshes the tail. Lines
//! are escaped on output; a search for a user id is audited (it looks at a person).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Resource;
use crate::audit::{self, AuditContext};
use crate::auth::CurrentUser;
use crate::cloud::{LogEvent, LogQuery, bounded};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::forms::query_string;
use crate::web::tabs::Tab;
use crate::web::{Htmx, Shell, page_or_fragment};

const LIMIT: usize = 200;

/// The time windows offered, and the runbook's preset searches.
pub const WINDOWS: [(&str, &str, i64); 4] =
    [("15m", "15 minutes", 15), ("1h", "1 hour", 60), ("6h", "6 hours", 360), ("24h", "24 hours", 1440)];
pub const PRESETS: [(&str, &str, &str); 2] =
    [("Errors in the last hour", "error", "1h"), ("BankID failures, 24 hours", "BankID", "24h")];

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct LogParams {
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub follow: String,
}

impl LogParams {
    fn minutes(&self) -> Option<i64> {
        match self.since.as_str() {
            "" => Some(60),
            s => WINDOWS.iter().find(|(k, _, _)| *k == s).map(|(_, _, m)| *m),
        }
    }

    pub fn following(&self) -> bool {
        self.follow == "on"
    }

    pub fn preset_href(pattern: &str, since: &str) -> String {
        format!("/health/logs?pattern={pattern}&since={since}")
    }

    /// The same search, as a query string (for the follow poll).
    pub fn query(&self) -> String {
        query_string(&[
            ("pattern", &self.pattern),
            ("user_id", &self.user_id),
            ("request_id", &self.request_id),
            ("since", &self.since),
            ("follow", &self.follow),
        ])
    }
}

#[derive(Template)]
#[template(path = "health/_log_lines.html")]
pub struct LinesFragment {
    pub lines: Vec<LogEvent>,
    pub error: Option<String>,
    pub limit: usize,
}

#[derive(Template)]
#[template(path = "health/logs.html")]
pub struct LogsPage {
    pub shell: Shell,
    pub params: LogParams,
    pub windows: [(&'static str, &'static str, i64); 4],
    pub presets: [(&'static str, &'static str, &'static str); 2],
    pub lines: LinesFragment,
    /// Bad input, next to its field: (field, message).
    pub errors: Vec<(&'static str, String)>,
}

impl LogsPage {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, e)| e.as_str())
    }
}

fn clean(s: &str, max: usize) -> Result<String, String> {
    let s = s.trim();
    if s.chars().count() > max || s.contains(['\r', '\n']) {
        return Err(format!("Keep this on one line and under {max} characters."));
    }
    Ok(s.to_owned())
}

pub async fn search_logs(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    htmx: Htmx,
    Query(params): Query<LogParams>,
) -> Result<Response, AppError> {
    // Bad input is said next to its field, on the logs page itself; nothing is searched.
    let mut errors = vec![];
    let minutes = params.minutes().ok_or("Choose one of the offered time windows.".to_owned());
    let checked = [
        ("pattern", clean(&params.pattern, 200)),
        ("user_id", clean(&params.user_id, 64)),
        ("request_id", clean(&params.request_id, 64)),
        ("since", minutes.map(|m| m.to_string())),
    ];
    let mut fields = vec![];
    for (field, result) in checked {
        match result {
            Ok(value) => fields.push(value),
            Err(e) => errors.push((field, e)),
        }
    }
    if !errors.is_empty() {
        let lines = LinesFragment { lines: vec![], error: None, limit: LIMIT };
        let page = LogsPage {
            shell: Shell::new(&state, &user, Tab::Logs, "Logs"),
            params,
            windows: WINDOWS,
            presets: PRESETS,
            lines,
            errors,
        };
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, crate::web::render(&page)?).into_response());
    }
    let [pattern, user_id, request_id, minutes] = <[String; 4]>::try_from(fields).unwrap_or_default();
    let minutes: i64 = minutes.parse().unwrap_or(60);
    // Following a person through the logs is a view of their data: by the user id field, or
    // by their id or email typed into the free-text pattern.
    let mut people = crate::compliance::people_named(&state, &pattern).await?;
    if !user_id.is_empty() && !people.contains(&user_id) {
        people.insert(0, user_id.clone());
    }
    for person in people {
        audit::viewed(
            &state.pool,
            &ctx,
            Resource::Person,
            person,
            json!({ "via": "logs", "pattern": pattern, "minutes": minutes }),
        )
        .await?;
    }
    let quoted = |t: &str| if t.is_empty() { String::new() } else { format!(" \"{t}\"") };
    let query = LogQuery {
        pattern: format!("{pattern}{}{}", quoted(&user_id), quoted(&request_id)),
        start: Utc::now() - Duration::minutes(minutes),
        end: Utc::now(),
        limit: LIMIT,
    };
    let result = bounded(std::time::Duration::from_secs(5), state.cloud.logs.filter_events(&query)).await;
    let lines = match result {
        Ok(lines) => LinesFragment { lines, error: None, limit: LIMIT },
        Err(e) => LinesFragment { lines: vec![], error: Some(e.to_string()), limit: LIMIT },
    };
    let html = page_or_fragment(htmx, lines, |lines| LogsPage {
        shell: Shell::new(&state, &user, Tab::Logs, "Logs"),
        params,
        windows: WINDOWS,
        presets: PRESETS,
        lines,
        errors: vec![],
    })?;
    Ok(html.into_response())
}

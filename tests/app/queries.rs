//! What SQL a request ran, and how PostgreSQL executed it. A tracing layer files sqlx's
//! statement events and auto_explain's plan notices under the request id of the request span
//! they happened in; [`QueryPlans`] turns on auto_explain (plans as NOTICEs, JSON) for one
//! test database, so tests can count a page's statements and inspect every plan.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

#[derive(Default)]
struct ByRequest {
    statements: HashMap<String, Vec<String>>,
    plans: HashMap<String, Vec<Value>>,
}

static RECORDED: Mutex<Option<ByRequest>> = Mutex::new(None);

/// The request id of a span named `request`, kept in its extensions.
struct RequestId(String);

#[derive(Default)]
struct Fields {
    request_id: Option<String>,
    summary: Option<String>,
    statement: Option<String>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "request_id" => &mut self.request_id,
            "summary" => &mut self.summary,
            "db.statement" => &mut self.statement,
            "message" => &mut self.message,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        // Display-formatted fields (`%value`) arrive here unquoted; Debug strings quoted.
        let text = serde_json::from_str::<String>(&text).unwrap_or(text);
        self.record_str(field, &text);
    }
}

pub struct Recorder;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "request" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(span), Some(request_id)) = (ctx.span(id), fields.request_id) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if target != "sqlx::query" && target != "sqlx::postgres::notice" {
            return;
        }
        let Some(request_id) = ctx
            .event_scope(event)
            .and_then(|scope| scope.from_root().find_map(|s| s.extensions().get::<RequestId>().map(|r| r.0.clone())))
        else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = recorded.get_or_insert_with(ByRequest::default);
        if target == "sqlx::query" {
            let sql = fields.statement.filter(|s| !s.trim().is_empty()).or(fields.summary).unwrap_or_default();
            recorded.statements.entry(request_id).or_default().push(sql.trim().to_owned());
        } else if let Some(plan) = fields.message.as_deref().and_then(|m| m.find('{').map(|at| &m[at..])) {
            if let Ok(plan) = serde_json::from_str::<Value>(plan) {
                recorded.plans.entry(request_id).or_default().push(plan);
            }
        }
    }
}

/// The statements a request (by its `x-request-id`) ran, in order.
pub fn statements_of(request_id: &str) -> Vec<String> {
    let recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
    recorded.as_ref().and_then(|r| r.statements.get(request_id).cloned()).unwrap_or_default()
}

/// The executed plans (auto_explain JSON: "Query Text" and "Plan") of a request's statements,
/// triggers' statements included.
pub fn plans_of(request_id: &str) -> Vec<Value> {
    let recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
    recorded.as_ref().and_then(|r| r.plans.get(request_id).cloned()).unwrap_or_default()
}

/// A pool over the test database whose every connection sends each executed plan back as a
/// NOTICE, and plans as if the tables were large: sequential scans (and whole-input joins) are
/// priced out, so a plan that still scans a table sequentially has no index to use.
pub async fn explaining_pool(pool: &PgPool) -> PgPool {
    for setting in [
        "session_preload_libraries = 'auto_explain'",
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_level = notice",
        "auto_explain.log_format = json",
        "auto_explain.log_nested_statements = on",
        "enable_seqscan = off",
        // Small test tables make merge and hash joins over whole indexes look cheap; at Drop's
        // size a page's joins are index lookups per row shown.
        "enable_mergejoin = off",
        "enable_hashjoin = off",
    ] {
        let database: String = sqlx::query_scalar("select current_database()").fetch_one(pool).await.unwrap();
        sqlx::query(&format!("alter database \"{database}\" set {setting}")).execute(pool).await.unwrap();
    }
    // New connections only: the settings apply from the next connection on.
    PgPoolOptions::new()
        .max_connections(5)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .expect("explaining pool")
}

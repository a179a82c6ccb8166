//! Database operations (runbook.md §5): the live view of the console's PostgreSQL — size and
//! connections by state, refreshed in place by htmx — and Drop's RDS snapshots, with manual
//! snapshots and restore drills as runs.

pub mod activity;
pub mod backends;
mod db;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::cloud::{Snapshot, bounded};
use crate::error::AppError;
use crate::runs::confirm::{self, Fact, Impact, Proposal, Proposer, ReasonRule, RunForm};
use crate::runs::params::{DrillParams, SnapshotParams, VacuumParams};
use crate::runs::{self, NewRun, Plan, Procedure, Run, RunId, RunParams, vacuum};
use crate::state::AppState;
use crate::web::{Area, Htmx, Shell, page_or_fragment};

pub use backends::Backends;
pub use db::{Backend, ConnectionCount, DatabaseOverview, StatementOrder};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/database", Access::Roles(OPS), show_database),
        Route::get("/database/statements/reset", Access::Roles(ONCALL), backends::confirm_reset),
        Route::post("/database/statements/reset", Access::Roles(ONCALL), backends::reset_statements),
        Route::get("/database/backends/idle", Access::Roles(ONCALL), backends::confirm_idle),
        Route::post("/database/backends/idle/terminate", Access::Roles(ONCALL), backends::terminate_idle).step_up(),
        Route::get("/database/backends/{pid}/{signal}", Access::Roles(ONCALL), backends::confirm_signal),
        Route::post("/database/backends/{pid}/{signal}", Access::Roles(ONCALL), backends::send_signal),
        Route::get(DatabaseRuns::PAGE, Access::Roles(ONCALL), confirm::confirmation::<DatabaseRuns>),
        Route::post("/database/runs", Access::Roles(ONCALL), confirm::confirmed::<DatabaseRuns>).step_up(),
    ]
}

#[derive(Template)]
#[template(path = "database/index.html")]
pub struct DatabasePage {
    pub shell: Shell,
    pub stats: StatsFragment,
    pub instance: String,
    /// The newest snapshots, manual and automated, or why they cannot be read.
    pub snapshots: Result<Vec<Snapshot>, String>,
    pub history: Vec<Run>,
    pub next: Option<String>,
}

const HISTORY_PAGE: i64 = 10;
const LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Template)]
#[template(path = "database/_stats.html")]
pub struct StatsFragment {
    pub overview: DatabaseOverview,
    pub connections: Vec<ConnectionCount>,
    pub backends: Backends,
    pub upkeep: backends::Upkeep,
    /// Whether the person may cancel and terminate (on-call, admin): the links show.
    pub may_signal: bool,
    /// Whether the person may start runs here (a vacuum): the links show.
    pub may_vacuum: bool,
}

/// `GET /database?over=SECONDS`: the long-running threshold (default a minute).
#[derive(serde::Deserialize, Default)]
pub struct DatabaseQuery {
    #[serde(default)]
    pub before: String,
    #[serde(default)]
    pub over: Option<String>,
    /// How long idle counts as too long (default 5 minutes).
    #[serde(default)]
    pub idle: Option<String>,
    /// How the statements are ranked: total (default), mean or calls.
    #[serde(default)]
    pub by: Option<String>,
}

pub async fn show_database(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
    Query(q): Query<DatabaseQuery>,
) -> Result<Html<String>, AppError> {
    let overview = db::overview(&state.pool).await?;
    // A bad threshold falls back to the default: the page is for reading, not for an error.
    let over = backends::seconds(q.over.as_deref(), backends::DEFAULT_RUNNING_SECS);
    let idle = backends::seconds(q.idle.as_deref(), backends::DEFAULT_IDLE_SECS);
    let backends = Backends::read(&state, over, idle).await?;
    let order = q.by.as_deref().and_then(db::StatementOrder::parse).unwrap_or(db::StatementOrder::Total);
    let upkeep = backends::Upkeep::read(&state, &backends.powers, order).await?;
    let may_signal = state.policy.allows_page("/database/backends/{pid}/{signal}", &user.roles);
    let may_vacuum = state.policy.allows_page(DatabaseRuns::PAGE, &user.roles);
    let connections = backends.by_state();
    let stats = StatsFragment { overview, connections, backends, upkeep, may_signal, may_vacuum };
    let q = runs::HistoryQuery { before: q.before };
    if htmx.0 {
        // The 10-second refresh: only the statistics, no AWS call.
        return page_or_fragment(htmx, stats, |stats| stats);
    }
    let instance = state.config.drop.instance().to_owned();
    let snapshots = bounded(LIMIT, state.cloud.rds.snapshots())
        .await
        .map(|mut list| {
            list.truncate(10);
            list
        })
        .map_err(|e| e.to_string());
    let history = runs::history_page(&state.pool, Area::Database, &q, HISTORY_PAGE).await?;
    page_or_fragment(htmx, stats, |stats| DatabasePage {
        shell: Shell::new(&state, &user, Area::Database, "Database"),
        stats,
        snapshots,
        history: history.runs,
        next: history.next,
        instance,
    })
}

/// The confirmation of `VACUUM (ANALYZE)` of the table the form names (`schema.table`).
async fn propose_vacuum(state: &AppState, form: &RunForm, run: RunId) -> Result<Proposal, AppError> {
    let named = form.table.trim();
    let unknown =
        || AppError::Validation(format!("“{named}” is not a table of this database; choose one from the list."));
    let (schema, table) = named.split_once('.').ok_or_else(unknown)?;
    let counts = vacuum::table(&state.pool, schema, table).await?.ok_or_else(unknown)?;
    let params = VacuumParams { schema: schema.to_owned(), table: table.to_owned() };
    let name = params.name();
    if !counts.may {
        return Err(AppError::Conflict(format!("{name} cannot be vacuumed from here: {}.", vacuum::MAY_NOT)));
    }
    let overview = db::overview(&state.pool).await?;
    let last =
        counts.last_vacuum.map_or_else(|| "never by hand".to_owned(), |at| at.format("%Y-%m-%d %H:%M UTC").to_string());
    Ok(Proposal {
        procedure: Procedure::Vacuum,
        heading: format!("VACUUM (ANALYZE) {name}"),
        impact: Impact::Vacuum { table: name.clone() },
        environment: format!("database {} on PostgreSQL {}", overview.name, overview.version),
        facts: vec![
            Fact::Code("Table", name.clone()),
            Fact::Text("Size with indexes", db::bytes(counts.size_bytes)),
            Fact::Text(
                "Rows",
                format!("{} live, {} dead ({})", counts.live, counts.dead, db::dead_share(counts.live, counts.dead)),
            ),
            Fact::Text("Last manual vacuum", last),
        ],
        understand: None,
        reason: ReasonRule::Optional,
        reason_example: "e.g. dead rows at 30 % after the bulk import, or: SlowP99 on the transactions list",
        scale: None,
        staging: None,
        action: "/database/runs",
        new: NewRun::production(
            run,
            format!("table:{}/{name}", overview.name),
            RunParams::Vacuum(params),
            Plan::vacuum(&name),
        ),
    })
}

/// The runs of the database page: a manual snapshot, the restore drill and a vacuum.
pub struct DatabaseRuns;

impl Proposer for DatabaseRuns {
    const PAGE: &'static str = "/database/confirm";

    async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
        propose(state, form).await
    }
}

/// The confirmation of a manual snapshot or a restore drill of Drop's RDS instance, or of a
/// vacuum of one table.
async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
    let run = RunId::from_form(&form.run)?;
    if Procedure::parse(&form.procedure) == Some(Procedure::Vacuum) {
        return propose_vacuum(state, form, run).await;
    }
    let instance = state.config.drop.instance().to_owned();
    let (procedure, heading, impact, plan, params) = match Procedure::parse(&form.procedure) {
        Some(Procedure::Snapshot) => {
            let id = format!("{instance}-manual-{}", run.stamp());
            (
                Procedure::Snapshot,
                format!("Take a manual snapshot of {instance}"),
                Impact::Snapshot,
                Plan::snapshot(&instance, &id),
                RunParams::Snapshot(SnapshotParams { snapshot_id: id }),
            )
        }
        Some(Procedure::RestoreDrill) => {
            let snapshots = bounded(LIMIT, state.cloud.rds.snapshots()).await.map_err(|e| {
                AppError::Unavailable(format!("The snapshots cannot be read, so nothing can be planned: {e}"))
            })?;
            let newest = snapshots
                .iter()
                .filter(|s| s.automated && s.status == "available")
                .max_by_key(|s| s.created_at)
                .ok_or_else(|| AppError::Conflict("There is no available automated snapshot to restore.".into()))?;
            let drill = format!("{instance}-restore-drill-{}", run.stamp());
            (
                Procedure::RestoreDrill,
                format!("Restore drill from {}", newest.id),
                Impact::RestoreDrill { drill: drill.clone(), taken: newest.created_at },
                Plan::restore_drill(&newest.id, &drill),
                RunParams::RestoreDrill(DrillParams { from_snapshot: newest.id.clone(), drill_instance: drill }),
            )
        }
        _ => return Err(AppError::Validation("Choose a manual snapshot or a restore drill.".into())),
    };
    Ok(Proposal {
        procedure,
        heading,
        impact,
        environment: format!(
            "production — RDS instance {instance} in {}",
            state.config.aws.region.as_deref().unwrap_or("an unconfigured region")
        ),
        facts: Vec::<Fact>::new(),
        understand: None,
        reason: ReasonRule::Optional,
        reason_example: "e.g. before the manual data fix, or: monthly check",
        scale: None,
        staging: None,
        action: "/database/runs",
        new: NewRun::production(run, format!("rds:{instance}"), params, plan),
    })
}

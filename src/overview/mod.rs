//! The landing page: a status page for the signed-in role (health, runs, overdue checks, the
//! compliance queue in counts), the areas it may open, and what data this console holds.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{ANY_ROLE, Access, Route};
use crate::compliance::db::QueueCounts;
use crate::config::Role;
use crate::demo::{self, SeedInfo};
use crate::error::AppError;
use crate::health::cards::Tone;
use crate::runs::Run;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

/// An area of the console, as a card on the overview (shown only to roles that may open it).
pub struct AreaCard {
    pub href: &'static str,
    pub title: &'static str,
    pub text: &'static str,
}

const AREAS: [AreaCard; 7] = [
    AreaCard {
        href: "/health",
        title: "Health",
        text: "App health, App Runner and RDS status, snapshots, storage, certificate expiry and the routine checklists.",
    },
    AreaCard {
        href: "/deployments",
        title: "Deployments",
        text: "Deploy, roll back and restart drop-web as resumable runs with a pre-deploy snapshot and health verification.",
    },
    AreaCard {
        href: "/incidents",
        title: "Incidents",
        text: "Declare and run incidents with a self-filling timeline, who to call, hand-offs, planned maintenance and Slack.",
    },
    AreaCard {
        href: "/compliance",
        title: "Compliance",
        text: "AML alert review, STR filing, KYC queues, customer look-up and GDPR requests.",
    },
    AreaCard {
        href: "/secrets",
        title: "Secrets",
        text: "Rotate JWT_SECRET and the database password, with the rotation schedule.",
    },
    AreaCard {
        href: "/database",
        title: "Database",
        text: "Connections, long-running and blocking queries with cancel and terminate, top statements, vacuum, replication, snapshots and restore drills.",
    },
    AreaCard {
        href: "/audit",
        title: "Audit",
        text: "Who did what, when and why — every action taken through this console.",
    },
];

/// Production at a glance: the worst card and the names of those not green.
pub struct HealthSummary {
    pub tone: Tone,
    pub red: Vec<&'static str>,
    pub amber: Vec<&'static str>,
    pub unknown: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "overview/index.html")]
pub struct OverviewPage {
    pub shell: Shell,
    pub seed: Option<SeedInfo>,
    pub areas: Vec<&'static AreaCard>,
    /// For roles that may open the health dashboard.
    pub health: Option<HealthSummary>,
    pub active_runs: Vec<Run>,
    pub needing_repair: Vec<Run>,
    pub overdue_checks: Vec<&'static str>,
    /// For roles that may open incidents: those still open.
    pub open_incidents: Vec<crate::incidents::db::Incident>,
    pub may_follow_runs: bool,
    /// For roles that may open the compliance summary: counts only.
    pub queue: Option<QueueCounts>,
    /// For MLROs: reports waiting for review.
    pub awaiting_review: Option<i64>,
}

pub fn routes() -> Vec<Route> {
    vec![Route::get("/", Access::Roles(ANY_ROLE), show_overview)]
}

/// `GET /`: a status page for the signed-in role — health, runs in progress or needing repair,
/// overdue checks; for compliance the queue counts — and the areas the role may open.
pub async fn show_overview(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let may = |page: &str| state.policy.allows_page(page, &user.roles);
    // Every part at once, each on its own connection: the page waits for the slowest.
    let (seed, cards, open_incidents, queue, awaiting_review) = tokio::try_join!(
        async { Ok::<_, AppError>(demo::seeded(&state.pool).await?) },
        async { Ok(if may("/health") { Some(crate::health::cards::read_all(&state).await) } else { None }) },
        async { Ok(if may("/incidents") { crate::incidents::db::open_incidents(&state.pool).await? } else { vec![] }) },
        async { Ok(if may("/compliance") { Some(crate::compliance::queue_counts(&state).await?) } else { None }) },
        async {
            Ok(if user.has(Role::Mlro) {
                Some(crate::compliance::reports_db::awaiting_review(&state.pool).await?)
            } else {
                None
            })
        },
    )?;
    let mut page = OverviewPage {
        shell: Shell::new(&state, &user, Area::Overview, "Overview"),
        seed,
        areas: AREAS.iter().filter(|a| may(a.href)).collect(),
        health: None,
        active_runs: vec![],
        needing_repair: vec![],
        overdue_checks: vec![],
        open_incidents,
        may_follow_runs: may("/runs/{id}"),
        queue,
        awaiting_review,
    };
    if let Some(cards) = cards {
        let named =
            |tone: Tone| cards.production.iter().filter(|c| c.tone == tone).map(|c| c.title).collect::<Vec<_>>();
        let (red, amber, unknown) = (named(Tone::Red), named(Tone::Amber), named(Tone::Unknown));
        let tone = if !red.is_empty() {
            Tone::Red
        } else if !amber.is_empty() {
            Tone::Amber
        } else if !unknown.is_empty() {
            Tone::Unknown
        } else {
            Tone::Green
        };
        page.health = Some(HealthSummary { tone, red, amber, unknown });
        page.active_runs = cards.active_runs;
        page.needing_repair = cards.needing_repair;
        page.overdue_checks = cards.overdue_checks;
    }
    render(&page)
}

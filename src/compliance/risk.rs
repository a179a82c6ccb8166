//! The CEO's risk page (`/risk`): on one screen, the numbers Drop's management answers for to
//! Finanstilsynet — AML alerts against their SLA, STRs by stage and age, filings this quarter,
//! GDPR requests against their deadlines, the last restore drill, secret ages, overdue
//! routine checks, failed deploys, break-glass uses awaiting review and the audit chain. Each
//! number links to its list. Counts only: no person is named here.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::PgExecutor;

use super::deadlines::{self, oslo, oslo_day};
use super::{breakglass, gdpr_db, reports_db};
use crate::audit::verify::{self, Standing};
use crate::audit::{self, AuditContext, Chain, Resource};
use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::runs::Run;
use crate::secrets::ManagedSecret;
use crate::state::AppState;
use crate::web::chart::{Bars, Series};
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

/// Open alerts by how long they have waited, in disjoint bands.
pub struct AlertBands {
    pub under_day: i64,
    pub within_sla: i64,
    pub over_sla: i64,
    pub over_week: i64,
}

impl AlertBands {
    pub fn total(&self) -> i64 {
        self.under_day + self.within_sla + self.over_sla + self.over_week
    }
}

/// STRs not yet filed, by stage.
pub struct StrStages {
    pub draft: i64,
    pub pending_review: i64,
    pub approved: i64,
}

pub struct Deploys {
    pub failed: i64,
    pub rolled_back: i64,
}

/// GDPR requests against their deadlines.
#[derive(Default)]
pub struct GdprStanding {
    pub open: usize,
    pub overdue: usize,
    pub due_soon: usize,
    pub extended: usize,
}

pub(crate) mod db {
    use super::*;

    pub async fn alert_bands(db: impl PgExecutor<'_>, sla_hours: i32) -> Result<AlertBands, sqlx::Error> {
        sqlx::query_as!(
            AlertBands,
            r#"select count(*) filter (where created_at > now() - interval '24 hours') as "under_day!",
                      count(*) filter (where created_at <= now() - interval '24 hours'
                                         and created_at > now() - make_interval(hours => $1)) as "within_sla!",
                      count(*) filter (where created_at <= now() - make_interval(hours => $1)
                                         and created_at <= now() - interval '24 hours'
                                         and created_at > now() - interval '7 days') as "over_sla!",
                      count(*) filter (where created_at <= now() - interval '7 days'
                                         and created_at <= now() - make_interval(hours => $1)) as "over_week!"
               from aml_alerts where status = 'open'"#,
            sla_hours
        )
        .fetch_one(db)
        .await
    }

    pub async fn str_stages(db: impl PgExecutor<'_>) -> Result<StrStages, sqlx::Error> {
        sqlx::query_as!(
            StrStages,
            r#"select count(*) filter (where status = 'draft') as "draft!",
                      count(*) filter (where status = 'pending_review') as "pending_review!",
                      count(*) filter (where status = 'approved') as "approved!"
               from console.str_cases where status in ('draft', 'pending_review', 'approved')"#
        )
        .fetch_one(db)
        .await
    }

    pub async fn filed_between(
        db: impl PgExecutor<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(
            r#"select count(*) as "n!" from console.str_cases where status = 'filed' and filed_at >= $1 and filed_at < $2"#,
            from,
            to
        )
        .fetch_one(db)
        .await
    }

    pub async fn deploys(db: impl PgExecutor<'_>, since: DateTime<Utc>) -> Result<Deploys, sqlx::Error> {
        sqlx::query_as!(
            Deploys,
            r#"select count(*) filter (where status = 'failed' and coalesce(outcome, '') not like '%Rolled back automatically%') as "failed!",
                      count(*) filter (where outcome like '%Rolled back automatically%') as "rolled_back!"
               from console.runs where procedure in ('deploy', 'rollback') and created_at >= $1"#,
            since
        )
        .fetch_one(db)
        .await
    }

    /// Alerts opened and closed per week (Monday to Monday, UTC), the last `weeks` weeks.
    pub async fn weekly(db: impl PgExecutor<'_>, weeks: i32) -> Result<Vec<(DateTime<Utc>, i64, i64)>, sqlx::Error> {
        let rows = sqlx::query!(
            r#"with w as (select generate_series(date_trunc('week', now()) - make_interval(weeks => $1 - 1),
                                                 date_trunc('week', now()), interval '1 week') as week),
                    opened as (select date_trunc('week', created_at) as week, count(*) as n from aml_alerts
                               where created_at >= date_trunc('week', now()) - make_interval(weeks => $1 - 1) group by 1),
                    closed as (select date_trunc('week', reviewed_at) as week, count(*) as n from aml_alerts
                               where reviewed_at >= date_trunc('week', now()) - make_interval(weeks => $1 - 1) group by 1)
               select w.week as "week!", coalesce(o.n, 0) as "opened!", coalesce(c.n, 0) as "closed!"
               from w left join opened o on o.week = w.week left join closed c on c.week = w.week order by w.week"#,
            weeks
        )
        .fetch_all(db)
        .await?;
        Ok(rows.into_iter().map(|r| (r.week, r.opened, r.closed)).collect())
    }
}

#[derive(Template)]
#[template(path = "compliance/risk.html")]
pub struct RiskPage {
    pub shell: Shell,
    pub sla_hours: u32,
    pub alerts: AlertBands,
    pub strs: StrStages,
    pub overdue_strs: i64,
    pub str_filing_days: u32,
    pub quarter: String,
    pub filed_this_quarter: i64,
    pub gdpr: GdprStanding,
    pub drill: Option<Run>,
    pub secrets: Vec<ManagedSecret>,
    pub overdue_checks: Vec<&'static str>,
    pub deploys: Deploys,
    pub break_glass_waiting: i64,
    pub chains: Vec<Standing>,
    pub chart: String,
}

impl RiskPage {
    pub fn when(&self, t: &DateTime<Utc>) -> String {
        oslo(*t)
    }

    pub fn secrets_due(&self) -> usize {
        self.secrets.iter().filter(|s| s.due.needs_rotation()).count()
    }
}

/// How many weeks the alert chart shows.
const WEEKS: i32 = 12;

pub async fn show(State(state): State<AppState>, user: CurrentUser, ctx: AuditContext) -> Result<Response, AppError> {
    let compliance = &state.config.compliance;
    let pool = &state.pool;
    // Counts of casework, no person: recorded as a look at the casework all the same.
    audit::viewed(pool, &ctx, Resource::AmlAlertQueue, "risk".into(), json!({ "via": "risk_page" })).await?;
    let now = Utc::now();
    let (quarter_start, quarter_end) = deadlines::quarter_of(now);
    let gdpr = gdpr_db::requests(pool).await?.iter().filter(|r| r.status == "open").fold(
        GdprStanding::default(),
        |mut g, r| {
            g.open += 1;
            g.overdue += usize::from(r.overdue(now));
            g.due_soon += usize::from(r.due_soon(now));
            g.extended += usize::from(r.extended_at.is_some());
            g
        },
    );
    let weekly = db::weekly(pool, WEEKS).await?;
    let chart = Bars {
        id: "alerts-weekly",
        title: format!("AML alerts opened and closed per week, last {WEEKS} weeks"),
        series: vec![Series { name: "opened", class: "chart-a" }, Series { name: "closed", class: "chart-b" }],
        periods: weekly.iter().map(|(w, o, c)| (oslo_day(*w).format("%d.%m").to_string(), vec![*o, *c])).collect(),
    }
    .svg();
    let mut chains = vec![];
    for chain in Chain::ALL {
        chains.push(verify::standing(pool, chain).await?);
    }
    let page = RiskPage {
        shell: Shell::new(&state, &user, Tab::Risk, "Risk"),
        sla_hours: compliance.alert_sla_hours,
        alerts: db::alert_bands(pool, i32::try_from(compliance.alert_sla_hours).unwrap_or(48)).await?,
        strs: db::str_stages(pool).await?,
        overdue_strs: reports_db::overdue_count(pool, i32::try_from(compliance.str_filing_days).unwrap_or(14)).await?,
        str_filing_days: compliance.str_filing_days,
        quarter: format!("{}–{}", oslo_day(quarter_start), oslo_day(quarter_end - Duration::seconds(1))),
        filed_this_quarter: db::filed_between(pool, quarter_start, quarter_end).await?,
        gdpr,
        drill: crate::runs::last_of(pool, crate::runs::Procedure::RestoreDrill).await?,
        secrets: crate::secrets::managed(&state).await,
        overdue_checks: crate::health::overdue(&crate::health::last_submitted(pool).await?),
        deploys: db::deploys(pool, now - Duration::days(30)).await?,
        break_glass_waiting: breakglass::awaiting_review(pool).await?,
        chains,
        chart,
    };
    Ok(render(&page)?.into_response())
}

//! The monthly SLA report (runbook §2 monthly: "SLA report written: uptime, error rate, p99
//! latency"): for a chosen month, per UTC day, the uptime, the share of 5xx responses and the
//! p99 latency, as a page with server-drawn charts and a CSV. Uptime comes from BetterStack's
//! SLA for the month when it is connected, and per day from the health history the console
//! records (its sampler's app-health colour changes); traffic from CloudWatch (`AWS/AppRunner`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::Deserialize;
use sqlx::PgExecutor;

use crate::auth::CurrentUser;
use crate::cloud::{CloudError, DayMetrics, bounded};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::chart::{Bars, Series};
use crate::web::tabs::Tab;
use crate::web::{Shell, render};

/// A calendar month (UTC days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    pub first: NaiveDate,
}

impl Month {
    /// `YYYY-MM`, not after the current month.
    pub fn parse(text: &str, today: NaiveDate) -> Result<Self, String> {
        let first = NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
            .map_err(|_| "Choose a month as YYYY-MM.".to_owned())?;
        if first > today {
            return Err("That month has not begun.".into());
        }
        Ok(Self { first })
    }

    /// The month before `today`'s.
    pub fn previous(today: NaiveDate) -> Self {
        let this = today.with_day(1).unwrap_or(today);
        Self { first: this.checked_sub_months(Months::new(1)).unwrap_or(this) }
    }

    pub fn next_first(&self) -> NaiveDate {
        self.first.checked_add_months(Months::new(1)).unwrap_or(self.first)
    }

    pub fn days(&self) -> u32 {
        u32::try_from((self.next_first() - self.first).num_days()).unwrap_or(31)
    }

    pub fn label(&self) -> String {
        self.first.format("%Y-%m").to_string()
    }

    fn start(&self) -> DateTime<Utc> {
        self.first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }

    fn end(&self) -> DateTime<Utc> {
        self.next_first().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
}

/// One day of the report.
pub struct Day {
    pub day: NaiveDate,
    /// Share of the recorded time the app was up, percent; `None` when nothing was recorded.
    pub uptime: Option<f64>,
    pub requests: Option<f64>,
    pub errors_5xx: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Day {
    pub fn error_percent(&self) -> Option<f64> {
        match (self.requests, self.errors_5xx) {
            (Some(r), Some(e)) if r > 0.0 => Some(e / r * 100.0),
            _ => None,
        }
    }
}

/// A monitor's availability over the month, from BetterStack.
pub struct Availability {
    pub name: String,
    pub percent: Result<f64, String>,
}

pub struct Report {
    pub month: Month,
    pub days: Vec<Day>,
    /// BetterStack's monitors over the month, when connected.
    pub monitors: Option<Result<Vec<Availability>, String>>,
    pub metrics_error: Option<String>,
}

impl Report {
    /// The month's uptime: BetterStack's worst monitor when connected, else the console's
    /// recorded history; and which.
    pub fn uptime(&self) -> (Option<f64>, &'static str) {
        if let Some(Ok(monitors)) = &self.monitors {
            let worst = monitors.iter().filter_map(|m| m.percent.as_ref().ok().copied()).reduce(f64::min);
            if worst.is_some() {
                return (worst, "BetterStack (the worst of Drop's monitors)");
            }
        }
        let recorded: Vec<f64> = self.days.iter().filter_map(|d| d.uptime).collect();
        let uptime = (!recorded.is_empty()).then(|| recorded.iter().sum::<f64>() / recorded.len() as f64);
        (uptime, "the console's health history (app health sampled every minute)")
    }

    pub fn error_percent(&self) -> Option<f64> {
        let requests: f64 = self.days.iter().filter_map(|d| d.requests).sum();
        let errors: f64 = self.days.iter().filter_map(|d| d.errors_5xx).sum();
        (requests > 0.0).then(|| errors / requests * 100.0)
    }

    /// The worst day's p99.
    pub fn worst_p99(&self) -> Option<f64> {
        self.days.iter().filter_map(|d| d.p99_ms).reduce(f64::max)
    }

    /// The figures a checklist keeps as evidence.
    pub fn evidence(&self) -> String {
        let (uptime, source) = self.uptime();
        format!(
            "{}: uptime {} ({source}), 5xx {}, worst daily p99 {}",
            self.month.label(),
            uptime.map_or("not recorded".into(), |u| format!("{u:.3} %")),
            self.error_percent().map_or("unknown".into(), |e| format!("{e:.3} %")),
            self.worst_p99().map_or("unknown".into(), |p| format!("{p:.0} ms")),
        )
    }

    /// 5xx share per day, in hundredths of a percent (bars need whole numbers).
    pub fn errors_chart(&self) -> String {
        self.bars(
            "sla-errors-chart",
            "5xx responses per day, hundredths of a percent",
            "5xx (0.01 %)",
            "chart-a",
            |d| d.error_percent().map(|e| e * 100.0),
        )
    }

    pub fn latency_chart(&self) -> String {
        self.bars("sla-latency-chart", "p99 latency per day, ms", "p99 ms", "chart-b", |d| d.p99_ms)
    }

    fn bars(
        &self,
        id: &'static str,
        title: &str,
        series: &'static str,
        class: &'static str,
        value: impl Fn(&Day) -> Option<f64>,
    ) -> String {
        Bars {
            id,
            title: format!("{title}, {}", self.month.label()),
            series: vec![Series { name: series, class }],
            periods: self
                .days
                .iter()
                .map(|d| (d.day.format("%d").to_string(), vec![value(d).map_or(0, |v| v.round() as i64)]))
                .collect(),
        }
        .svg()
    }
}

/// Up and down time of the app health card per day, from its recorded colour changes: red is
/// down; time before the first record is not counted.
pub fn uptime_by_day(changes: &[(String, DateTime<Utc>)], month: Month, now: DateTime<Utc>) -> Vec<Option<f64>> {
    (0..month.days())
        .map(|n| {
            let day_start = month.start() + chrono::Duration::days(i64::from(n));
            let day_end = (day_start + chrono::Duration::days(1)).min(now);
            if day_end <= day_start {
                return None;
            }
            let (mut up, mut down) = (0i64, 0i64);
            for (i, (tone, at)) in changes.iter().enumerate() {
                let until = changes.get(i + 1).map_or(now, |(_, next)| *next);
                let (from, to) = ((*at).max(day_start), until.min(day_end));
                if to > from {
                    let secs = (to - from).num_seconds();
                    if tone == "red" { down += secs } else { up += secs }
                }
            }
            (up + down > 0).then(|| up as f64 / (up + down) as f64 * 100.0)
        })
        .collect()
}

async fn app_changes(db: impl PgExecutor<'_>, month: Month) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"(select tone as "tone!", at as "at!" from console.health_changes where card = 'app' and at < $1 order by at desc, id desc limit 1)
           union all
           (select tone, at from console.health_changes where card = 'app' and at >= $1 and at < $2 order by at, id limit 50000)"#,
        month.start(),
        month.end()
    )
    .fetch_all(db)
    .await?;
    let mut changes: Vec<(String, DateTime<Utc>)> = rows.into_iter().map(|r| (r.tone, r.at)).collect();
    changes.sort_by_key(|(_, at)| *at);
    Ok(changes)
}

/// Read the month: health history, CloudWatch, BetterStack (each bounded in time).
pub async fn report(state: &AppState, month: Month) -> Result<Report, AppError> {
    let limit = std::time::Duration::from_secs(8);
    let now = Utc::now();
    let changes = app_changes(&state.pool, month).await?;
    let uptimes = uptime_by_day(&changes, month, now);
    let metrics = bounded(limit, state.cloud.cloudwatch.daily_app_metrics(month.start(), month.days())).await;
    let monitors = match &state.cloud.monitoring {
        None => None,
        Some(m) => Some(match bounded(limit, m.monitors()).await {
            Err(e) => Err(e.to_string()),
            Ok(list) => {
                let last = (month.end().min(now) - chrono::Duration::seconds(1)).date_naive();
                let mut out = vec![];
                for monitor in list {
                    let percent = bounded(limit, m.availability(&monitor.id, month.first, last)).await;
                    out.push(Availability {
                        name: monitor.name,
                        percent: percent.map_err(|e: CloudError| e.to_string()),
                    });
                }
                Ok(out)
            }
        }),
    };
    let (metrics, metrics_error): (Vec<DayMetrics>, _) = match metrics {
        Ok(m) => (m, None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    let days = uptimes
        .into_iter()
        .enumerate()
        .map(|(n, uptime)| {
            let day = month.first + chrono::Days::new(n as u64);
            let m = metrics.iter().find(|m| m.day == day);
            Day {
                day,
                uptime,
                requests: m.map(|m| m.requests),
                errors_5xx: m.map(|m| m.errors_5xx),
                p99_ms: m.and_then(|m| m.p99_ms),
            }
        })
        .collect();
    Ok(Report { month, days, monitors, metrics_error })
}

#[derive(Deserialize, Default)]
pub struct SlaParams {
    #[serde(default)]
    month: String,
}

#[derive(Template)]
#[template(path = "health/sla.html")]
pub struct SlaPage {
    pub shell: Shell,
    pub month_text: String,
    pub month_error: Option<String>,
    pub report: Option<Report>,
}

fn month_of(p: &SlaParams) -> Result<Month, String> {
    let today = Utc::now().date_naive();
    if p.month.trim().is_empty() { Ok(Month::previous(today)) } else { Month::parse(&p.month, today) }
}

/// `GET /health/sla?month=YYYY-MM` (the previous month by default).
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(p): Query<SlaParams>,
) -> Result<Response, AppError> {
    let shell = Shell::new(&state, &user, Tab::Sla, "SLA report");
    match month_of(&p) {
        Err(e) => {
            let page = SlaPage { shell, month_text: p.month, month_error: Some(e), report: None };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Ok(month) => {
            let report = report(&state, month).await?;
            Ok(render(&SlaPage { shell, month_text: month.label(), month_error: None, report: Some(report) })?
                .into_response())
        }
    }
}

/// `GET /health/sla.csv?month=YYYY-MM`: one row per day.
pub async fn csv(State(state): State<AppState>, Query(p): Query<SlaParams>) -> Result<Response, AppError> {
    let month = month_of(&p).map_err(AppError::Validation)?;
    let report = report(&state, month).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let fmt = |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
    out.write_record(["day", "uptime_percent", "requests", "errors_5xx", "error_percent", "p99_ms"])
        .map_err(|e| AppError::Internal(e.into()))?;
    for d in &report.days {
        out.write_record([
            d.day.to_string(),
            fmt(d.uptime, 3),
            fmt(d.requests, 0),
            fmt(d.errors_5xx, 0),
            fmt(d.error_percent(), 4),
            fmt(d.p99_ms, 0),
        ])
        .map_err(|e| AppError::Internal(e.into()))?;
    }
    let body = out.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("csv: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"drop-sla-{}.csv\"", month.label())),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn months_are_read_and_bounded() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(Month::previous(today).label(), "2026-11");
        assert_eq!(Month::previous(NaiveDate::from_ymd_opt(2027, 1, 15).unwrap()).label(), "2026-12");
        assert_eq!(Month::parse("2026-02", today).unwrap().days(), 28);
        assert_eq!(Month::parse("2028-02", NaiveDate::from_ymd_opt(2028, 3, 1).unwrap()).unwrap().days(), 29);
        assert!(Month::parse("2027-01", today).is_err());
        assert!(Month::parse("november", today).is_err());
    }

    #[test]
    fn uptime_counts_red_time_as_down_and_unrecorded_time_as_nothing() {
        let month = Month::parse("2026-11", NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()).unwrap();
        let changes = vec![
            ("green".to_owned(), at("2026-11-02T12:00:00Z")),
            ("red".to_owned(), at("2026-11-03T06:00:00Z")),
            ("green".to_owned(), at("2026-11-03T12:00:00Z")),
        ];
        let days = uptime_by_day(&changes, month, at("2026-12-06T00:00:00Z"));
        assert_eq!(days.len(), 30);
        assert_eq!(days[0], None, "nothing recorded on the 1st");
        assert_eq!(days[1], Some(100.0), "green from noon on the 2nd");
        assert_eq!(days[2], Some(75.0), "six hours red on the 3rd");
        assert_eq!(days[29], Some(100.0));
    }
}

//! When the routine checks (runbook §2) are due: the checklists and their rhythm, and which are
//! overdue now. The dashboard and the checklist pages both read it; it reads neither.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgExecutor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checklist {
    pub name: &'static str,
    pub title: &'static str,
    /// Overdue when the last submission is older than this.
    pub every: Duration,
    pub manual: &'static [(&'static str, &'static str)],
    /// Keys of the measured items (see `measure`).
    pub automatic: &'static [&'static str],
}

pub const CHECKLISTS: [Checklist; 3] = [
    Checklist {
        name: "daily",
        title: "Daily",
        every: Duration::hours(24),
        manual: &[("no_critical_alert", "No unresolved critical alert in the last 24 hours (Slack)")],
        automatic: &["monitors", "apprunner", "snapshot"],
    },
    Checklist {
        name: "weekly",
        title: "Weekly",
        every: Duration::days(7),
        manual: &[
            ("log_patterns", "No recurring error pattern in the application logs"),
            ("ecr_cleanup", "Untagged ECR images cleaned up"),
        ],
        automatic: &["storage", "certificate", "open_alerts", "kyc_stuck"],
    },
    Checklist {
        name: "monthly",
        title: "Monthly",
        every: Duration::days(31),
        manual: &[("str_filings", "Compliance confirms no STR awaits filing")],
        automatic: &["secrets", "escalation_test", "sla_report", "restore_drill"],
    },
];

/// When each checklist was last submitted.
pub async fn last_submitted(db: impl PgExecutor<'_>) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    let names: Vec<String> = CHECKLISTS.iter().map(|c| c.name.to_owned()).collect();
    super::db::last_submitted(db, &names).await
}

/// The checklists that are overdue now.
pub fn overdue(last: &[(String, DateTime<Utc>)]) -> Vec<&'static str> {
    CHECKLISTS
        .iter()
        .filter(|c| last.iter().find(|(n, _)| n == c.name).is_none_or(|(_, at)| Utc::now() - *at > c.every))
        .map(|c| c.title)
        .collect()
}

/// Tell the on-call channel about each overdue checklist, once a day each (runbook §2: the
/// checks are part of the job, and an overdue one is easy to miss on a quiet dashboard).
pub async fn announce_overdue(state: &crate::state::AppState) -> Result<usize, sqlx::Error> {
    let last = last_submitted(&state.pool).await?;
    let late = overdue(&last);
    let today = Utc::now().date_naive();
    let mut tx = state.pool.begin().await?;
    for c in CHECKLISTS.iter().filter(|c| late.contains(&c.title)) {
        let notice = crate::notify::Notice::ChecklistOverdue { checklist: c.name, title: c.title, on: today };
        crate::notify::queue(&mut tx, state, &notice).await?;
    }
    tx.commit().await?;
    Ok(late.len())
}

/// Look for overdue checklists every ten minutes, for as long as the process runs.
pub fn spawn_overdue_announcer(state: crate::state::AppState) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = announce_overdue(&state).await {
                tracing::warn!(error = %e, "cannot look for overdue checklists");
            }
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        }
    });
}

/// Read production's cards and record those whose colour changed: the health history that
/// incident timelines show.
pub async fn sample(state: &crate::state::AppState) -> Result<u64, sqlx::Error> {
    let fragment = super::cards::read_all(state).await;
    let cards = &fragment.production;
    let keys: Vec<String> = cards.iter().map(|c| c.key.to_owned()).collect();
    let tones: Vec<String> = cards.iter().map(|c| c.tone.class().to_owned()).collect();
    let titles: Vec<String> = cards.iter().map(|c| c.title.to_owned()).collect();
    let values: Vec<String> = cards.iter().map(|c| format!("{} — {}", c.value, c.detail)).collect();
    super::db::record_changes(&state.pool, &keys, &tones, &titles, &values).await
}

/// Sample production's health every minute, for as long as the process runs.
pub fn spawn_sampler(state: crate::state::AppState) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = sample(&state).await {
                tracing::warn!(error = %e, "cannot record health changes");
            }
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
}

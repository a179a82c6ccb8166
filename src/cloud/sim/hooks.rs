//! CI, the monitoring relay and BetterStack, simulated, so a demo deploy checks CI and pauses
//! the monitors for its maintenance window as a real one does: CI passes every commit unless
//! `ci_failing` is on; the relay and BetterStack answer unless `monitoring_unreachable` is on.
//! BetterStack's three monitors (runbook §1) see what the simulated app does: the health
//! checks fail while health is red, the database unreachable or the service paused.

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::Value;

use super::Simulator;
use crate::cloud::dropapi::{DataExports, ExportError};
use crate::cloud::fly::{Machine, Release, Staging};
use crate::cloud::hooks::{Ci, MaintenanceRelay};
use crate::cloud::slack::{Chat, ChatError};
use crate::cloud::sumsub::{Applicant, Kyc, KycError};
use crate::cloud::{
    CloudError, CloudResult, Monitor, MonitorStatus, Monitoring, RaisedAlert, ResourceStatus, StatusReport,
};

/// The fault that silences BetterStack and the relay.
const UNREACHABLE: &str = "monitoring_unreachable";

fn betterstack_unreachable() -> CloudError {
    CloudError::Unreachable("BetterStack could not be reached".into())
}

impl Simulator {
    /// BetterStack answers unless the trainer made it unreachable.
    async fn betterstack_answers(&self) -> CloudResult<()> {
        if self.has(UNREACHABLE).await? { Err(betterstack_unreachable()) } else { Ok(()) }
    }
}

/// The simulated account's monitors: id, name, what it checks, whether it checks the app.
const MONITORS: [(&str, &str, &str, bool); 3] = [
    ("2386201", "Drop health", "https://getdrop.no/api/health", true),
    ("2386202", "Drop landing page", "https://getdrop.no", false),
    ("2386203", "Drop health from US east", "https://getdrop.no/api/health", true),
];

#[async_trait]
impl Monitoring for Simulator {
    async fn monitors(&self) -> CloudResult<Vec<Monitor>> {
        let faults = self.active().await?;
        if faults.iter().any(|f| f == UNREACHABLE) {
            return Err(betterstack_unreachable());
        }
        let app_down = faults.iter().any(|f| matches!(f.as_str(), "health_red" | "db_unreachable" | "service_down"));
        let paused = self.paused_monitors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = chrono::Utc::now();
        Ok(MONITORS
            .iter()
            .map(|(id, name, url, checks_app)| {
                let paused = paused.contains(*id);
                let status = match () {
                    () if paused => MonitorStatus::Paused,
                    () if *checks_app && app_down => MonitorStatus::Down,
                    () => MonitorStatus::Up,
                };
                Monitor {
                    id: (*id).into(),
                    name: (*name).into(),
                    url: (*url).into(),
                    status: Some(status),
                    last_checked_at: (!paused).then(|| now - chrono::Duration::seconds(17)),
                    paused,
                }
            })
            .collect())
    }

    /// Availability as the simulated monitors saw it: whole, but for the bad day in thirteen
    /// the app's monitors recorded (the same days the simulated CloudWatch shows as bad).
    async fn availability(&self, monitor: &str, from: chrono::NaiveDate, to: chrono::NaiveDate) -> CloudResult<f64> {
        use chrono::Datelike;
        self.betterstack_answers().await?;
        let checks_app = MONITORS.iter().any(|(id, _, _, app)| *id == monitor && *app);
        let days = (to - from).num_days() + 1;
        let bad = from
            .iter_days()
            .take(usize::try_from(days).unwrap_or(0))
            .filter(|d| d.num_days_from_ce() % 13 == 0)
            .count();
        let down_minutes = if checks_app { bad as f64 * 14.0 } else { 0.0 };
        Ok(100.0 - down_minutes / (days.max(1) as f64 * 1440.0) * 100.0)
    }

    async fn set_paused(&self, id: &str, paused: bool) -> CloudResult<()> {
        self.betterstack_answers().await?;
        if !MONITORS.iter().any(|(known, ..)| *known == id) {
            return Err(CloudError::Unavailable("BetterStack does not know that monitor (HTTP 404)".into()));
        }
        let mut set = self.paused_monitors.lock().unwrap_or_else(|e| e.into_inner());
        if paused {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
        Ok(())
    }

    async fn raise_alert(&self, name: &str, _summary: &str, _requester_email: &str) -> CloudResult<String> {
        self.betterstack_answers().await?;
        // Nobody answers while the pager is silent.
        let silent = self.has("pager_silent").await?;
        let mut alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("{}", 90_000_001 + alerts.len());
        let now = chrono::Utc::now();
        let answered = chrono::Duration::milliseconds((ANSWERED_AFTER_SECS * 1000.0 * self.time_scale) as i64);
        alerts.push(SimAlert {
            id: id.clone(),
            name: name.to_owned(),
            started_at: now,
            acknowledged_at: (!silent).then(|| now + answered),
            resolved_at: None,
        });
        Ok(id)
    }

    async fn find_alert(&self, name: &str) -> CloudResult<Option<String>> {
        let alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        Ok(alerts.iter().find(|a| a.name == name).map(|a| a.id.clone()))
    }

    async fn alert(&self, id: &str) -> CloudResult<RaisedAlert> {
        self.betterstack_answers().await?;
        let alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        let a = alerts.iter().find(|a| a.id == id).ok_or_else(|| {
            CloudError::Unavailable("BetterStack does not know that monitor or alert (HTTP 404)".into())
        })?;
        let now = chrono::Utc::now();
        let acknowledged_at = a.acknowledged_at.filter(|at| *at <= now);
        Ok(RaisedAlert {
            id: a.id.clone(),
            started_at: Some(a.started_at),
            acknowledged_by: acknowledged_at.map(|_| "oncall-primary@getdrop.no".to_owned()),
            acknowledged_at,
            resolved_at: a.resolved_at,
        })
    }

    async fn resolve_alert(&self, id: &str, _by: &str) -> CloudResult<()> {
        self.betterstack_answers().await?;
        let mut alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = alerts.iter_mut().find(|a| a.id == id) {
            a.resolved_at.get_or_insert_with(chrono::Utc::now);
        }
        Ok(())
    }

    async fn publish_report(&self, page: &str, _resources: &[String], _report: &StatusReport) -> CloudResult<String> {
        self.betterstack_answers().await?;
        if page != STATUS_PAGE {
            return Err(CloudError::Unavailable("BetterStack does not know that status page (HTTP 404)".into()));
        }
        Ok(format!("{}", 70_000_000 + chrono::Utc::now().timestamp_subsec_micros()))
    }

    async fn update_report(
        &self,
        _page: &str,
        _report: &str,
        _resources: &[String],
        _message: &crate::notify::PublicText,
        _status: ResourceStatus,
    ) -> CloudResult<()> {
        self.betterstack_answers().await?;
        Ok(())
    }
}

/// The simulated account's status page and the resource on it (Drop).
pub const STATUS_PAGE: &str = "sim-status-page";
pub const STATUS_RESOURCE: &str = "sim-drop";

/// How long the simulated on-call takes to acknowledge a test alert (times the time scale).
const ANSWERED_AFTER_SECS: f64 = 90.0;

/// An alert raised by hand, as the simulated BetterStack keeps it.
pub struct SimAlert {
    id: String,
    name: String,
    started_at: chrono::DateTime<chrono::Utc>,
    acknowledged_at: Option<chrono::DateTime<chrono::Utc>>,
    resolved_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_trait]
impl Ci for Simulator {
    async fn commit_state(&self, _sha: &str) -> CloudResult<Option<String>> {
        let state = if self.has("ci_failing").await? { "failure" } else { "success" };
        Ok(Some(state.into()))
    }
}

#[async_trait]
impl MaintenanceRelay for Simulator {
    async fn tell(&self, _key: &str, _event: &Value) -> CloudResult<()> {
        if self.has(UNREACHABLE).await? {
            return Err(CloudError::Unreachable("the monitoring relay did not answer".into()));
        }
        Ok(())
    }
}

/// Slack, played: every post is accepted (the messages page shows it as delivered to the
/// simulator) unless `slack_unreachable` is on.
#[async_trait]
impl Chat for Simulator {
    async fn post(&self, _channel: &str, _text: &str) -> Result<(), ChatError> {
        match self.has("slack_unreachable").await {
            Ok(false) => Ok(()),
            Ok(true) => Err(ChatError::Passing("Slack could not be reached".into())),
            Err(e) => Err(ChatError::Passing(e.to_string())),
        }
    }
}

/// Drop's data-export API, played: Drop's records of the person from its tables, unless
/// `export_api_down` is on (the console then answers from its own reading, and says so).
#[async_trait]
impl DataExports for Simulator {
    async fn export(&self, user_id: &str) -> Result<serde_json::Map<String, Value>, ExportError> {
        match self.has("export_api_down").await {
            Ok(false) => {}
            Ok(true) => return Err(ExportError::Unavailable("Drop's data-export API answered HTTP 503".into())),
            Err(e) => return Err(ExportError::Unavailable(e.to_string())),
        }
        let mut conn = self.pool.acquire().await.map_err(|e| ExportError::Unavailable(e.to_string()))?;
        let records = crate::compliance::drop_export(&mut conn, user_id)
            .await
            .map_err(|e| ExportError::Unavailable(e.to_string()))?;
        records.ok_or(ExportError::Unknown)
    }
}

/// Sumsub, played: every customer Drop has is an applicant, reviewed as their KYC status says;
/// those pending at Drop wait at Sumsub for one of the reasons Sumsub gives, chosen by their
/// id so a demo shows each. A check may be requested unless Sumsub is already reviewing.
#[async_trait]
impl Kyc for Simulator {
    async fn applicant(&self, user_id: &str) -> Result<Option<Applicant>, KycError> {
        let row = sqlx::query!(
            r#"select kyc_status, coalesce((to_jsonb(u) ->> 'kyc_updated_at')::timestamptz, created_at) as "changed!"
               from users u where id = $1"#,
            user_id
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| KycError::Unavailable(e.to_string()))?;
        let Some(row) = row else { return Ok(None) };
        let waiting = ["pending", "onHold", "init", "queued", "awaitingUser"];
        let review_status = match row.kyc_status.as_str() {
            "pending" => waiting[user_id.bytes().map(usize::from).sum::<usize>() % waiting.len()],
            "not_started" => "init",
            _ => "completed",
        };
        Ok(Some(Applicant {
            id: format!("sim{}", user_id.trim_start_matches("usr_")),
            review_status: review_status.into(),
            changed_at: Some(row.changed),
            level: Some("basic-kyc-level".into()),
        }))
    }

    async fn request_check(&self, applicant_id: &str, _reason: &str) -> Result<(), KycError> {
        let user_id = format!("usr_{}", applicant_id.trim_start_matches("sim"));
        match self.applicant(&user_id).await? {
            None => Err(KycError::Refused("Sumsub has no such applicant".into())),
            Some(a) if !a.may_recheck() => Err(KycError::Refused(format!(
                "the applicant is already {} at Sumsub, and a check cannot be requested now",
                a.review_status
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// One of staging's machines, played: the image it was given and when it was last replaced.
pub struct SimMachine {
    id: &'static str,
    region: &'static str,
    image: String,
    replaced_at: Option<DateTime<Utc>>,
}

impl SimMachine {
    /// Two machines running `image`, the newest pushed (CI deployed it to staging).
    pub fn initial(image: &str) -> Vec<Self> {
        [("e8204d7a1b09f8", "arn"), ("3d8d9016b5e7e8", "iad")]
            .into_iter()
            .map(|(id, region)| SimMachine { id, region, image: image.to_owned(), replaced_at: None })
            .collect()
    }
}

impl Simulator {
    fn staging_image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.staging_repository)
    }

    /// Staging's machines as Fly reports them: a replaced machine starts for a while, then
    /// passes its check — unless it runs the broken release (`release_unhealthy`).
    async fn staging_now(&self) -> CloudResult<Vec<Machine>> {
        let broken = self.has("release_unhealthy").await?;
        let now = Utc::now();
        let machines = self.staging.lock().map_err(|_| CloudError::Unavailable("Fly.io is unwell".into()))?;
        Ok(machines
            .iter()
            .map(|m| {
                let tag = crate::cloud::fly::tag_in(&m.image);
                let starting = m.replaced_at.is_some_and(|at| now - at < self.takes(super::FLY_MACHINE_SECS));
                let failing = broken && tag.as_deref() == Some(super::SIM_TAGS[0]);
                Machine {
                    id: m.id.into(),
                    region: m.region.into(),
                    state: if starting { "starting" } else { "started" }.into(),
                    image: m.image.clone(),
                    tag,
                    checks: Some((usize::from(!starting && !failing), 1)),
                }
            })
            .collect())
    }

    /// What staging's health endpoint reports: the version its machines run, ok when they pass.
    pub(super) async fn staging_health(&self) -> CloudResult<(String, bool)> {
        let machines = self.staging_now().await?;
        let version = machines.first().and_then(|m| m.tag.clone()).unwrap_or_default();
        Ok((version, machines.iter().all(Machine::healthy)))
    }
}

/// Fly.io staging, played: machines replaced one image at a time, and the releases CI made.
#[async_trait]
impl Staging for Simulator {
    async fn machines(&self) -> CloudResult<Vec<Machine>> {
        self.staging_now().await
    }

    async fn set_image(&self, machine: &str, image: &str) -> CloudResult<()> {
        let known = crate::cloud::fly::tag_in(image).is_some_and(|t| super::SIM_TAGS.contains(&t.as_str()));
        if !known || !image.starts_with(&self.staging_repository) {
            return Err(CloudError::Unavailable(format!("Fly.io could not pull {image}: manifest unknown")));
        }
        let mut machines = self.staging.lock().map_err(|_| CloudError::Unavailable("Fly.io is unwell".into()))?;
        let Some(m) = machines.iter_mut().find(|m| m.id == machine) else {
            return Err(CloudError::Unavailable("Fly.io has no app drop-staging or no such machine".into()));
        };
        if m.image != image {
            m.image = image.to_owned();
            m.replaced_at = Some(Utc::now());
        }
        Ok(())
    }

    /// The releases CI's `fly deploy` made: one a day, the newest image last.
    async fn releases(&self, limit: usize) -> CloudResult<Vec<Release>> {
        Ok(super::SIM_TAGS
            .iter()
            .take(4)
            .enumerate()
            .map(|(n, tag)| Release {
                version: 42 - n as i64,
                status: "complete".into(),
                description: "Release".into(),
                image: Some(self.staging_image(tag)),
                by: Some("ci@getdrop.no".into()),
                at: self.booted + Span::hours(24) - Span::days(n as i64),
            })
            .take(limit)
            .collect())
    }
}

//! What the console tells Slack, and how it gets there.
//!
//! Only a [`Notice`] can be posted, and a notice is built from closed types alone: run ids and
//! procedures, incident numbers and severities, checklist names, and the display names of
//! staff. There is no variant that takes text, so an AML alert, an STR, a customer or an
//! incident's free-text title cannot reach a chat channel (tipping-off, GDPR): the compiler
//! refuses it.
//!
//! ```compile_fail
//! // Free text is not a notice.
//! let notice: dropops::notify::Notice = String::from("Ola Nordmann's STR was filed").into();
//! ```
//!
//! A notice is written to `console.chat_messages` in the transaction of the event it reports,
//! then posted by the courier ([`deliver_due`]), which retries passing failures a bounded
//! number of times and never holds up the action that caused it. Pages show the messages of
//! what they show (a run, an incident, a hand-off) with their delivery.

pub mod db;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::auth::CurrentUser;
use crate::cloud::slack::ChatError;
use crate::runs::{Procedure, RunId, RunStatus};
use crate::state::AppState;

/// Attempts at posting a message before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 5;

crate::db::text_enum! {
    /// Where a message goes (`slack.*_channel` names the Slack channel).
    pub enum Channel {
        /// Runs and their maintenance windows: `#drop-ops`.
        Runs = "runs",
        /// Incidents: `#drop-alerts`.
        Incidents = "incidents",
        /// On-call: hand-offs, overdue checklists: `#ops`.
        Oncall = "oncall",
        /// Compliance: break-glass uses to review (no personal data): `#compliance`.
        Compliance = "compliance",
    }
}

crate::db::text_enum! {
    /// An incident's severity (runbook §7's triage; SEV1 is the worst).
    pub enum Severity {
        Sev1 = "sev1",
        Sev2 = "sev2",
        Sev3 = "sev3",
    }
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
        }
    }
}

crate::db::text_enum! {
    /// Where an incident is.
    pub enum IncidentStatus {
        Investigating = "investigating",
        Identified = "identified",
        Monitoring = "monitoring",
        Resolved = "resolved",
    }
}

crate::db::text_enum! {
    /// Where a message is (`console.chat_messages.status`).
    pub enum Delivery {
        Pending = "pending",
        Sent = "sent",
        /// Given up: the attempts ran out, or Slack refused it for good.
        Failed = "failed",
        /// Slack is not connected: kept as what would have been sent.
        Unsent = "unsent",
    }
}

/// The display name of a member of the console's staff, as signed in: the only name a notice
/// can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffName(String);

impl StaffName {
    pub fn of(user: &CurrentUser) -> Self {
        Self(user.name.clone())
    }
}

/// Text a person wrote for the public (the status page), checked for what must never be
/// public: an e-mail address, one of Drop's ids (a customer, a transaction, an alert, an STR)
/// or a long number (an account, a phone). Names cannot be recognised, so the form says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicText(String);

impl PublicText {
    pub fn parse(text: &str, max: usize) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("Write it: the public sees this.".into());
        }
        if text.chars().count() > max {
            return Err(format!("At most {max} characters."));
        }
        let words = text.split(|c: char| c.is_whitespace() || ",;:()[]\"'".contains(c));
        for word in words {
            if word.contains('@') && word.contains('.') {
                return Err("No e-mail addresses on the public status page.".into());
            }
            if ["usr_", "tx_", "alert_", "str_", "kyc_"].iter().any(|p| word.to_ascii_lowercase().starts_with(p)) {
                return Err("No customer, transaction, alert or report ids on the public status page.".into());
            }
            if word.chars().filter(char::is_ascii_digit).count() >= 8 {
                return Err("No account or phone numbers on the public status page.".into());
            }
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Something worth telling a channel, in closed types only (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    RunStarted {
        run: RunId,
        procedure: Procedure,
        by: StaffName,
    },
    RunEnded {
        run: RunId,
        procedure: Procedure,
        status: RunStatus,
        rolled_back: bool,
    },
    WindowOpened {
        run: RunId,
        procedure: Procedure,
        minutes: u32,
    },
    WindowClosed {
        run: RunId,
        procedure: Procedure,
    },
    IncidentDeclared {
        incident: i64,
        severity: Severity,
        by: StaffName,
    },
    /// A status or severity change: `entry` is the timeline entry that made it.
    IncidentChanged {
        incident: i64,
        entry: i64,
        severity: Severity,
        status: IncidentStatus,
        by: StaffName,
    },
    ChecklistOverdue {
        checklist: &'static str,
        title: &'static str,
        on: NaiveDate,
    },
    HandoffWritten {
        handoff: i64,
        by: StaffName,
    },
    HandoffAcknowledged {
        handoff: i64,
        by: StaffName,
    },
    /// An on-call engineer opened emergency access to customers' accounts: compliance must
    /// review it. Which customer is never said.
    BreakGlassOpened {
        access: i64,
        by: StaffName,
        minutes: u32,
    },
}

impl Notice {
    pub fn channel(&self) -> Channel {
        match self {
            Notice::RunStarted { .. }
            | Notice::RunEnded { .. }
            | Notice::WindowOpened { .. }
            | Notice::WindowClosed { .. } => Channel::Runs,
            Notice::IncidentDeclared { .. } | Notice::IncidentChanged { .. } => Channel::Incidents,
            Notice::ChecklistOverdue { .. } | Notice::HandoffWritten { .. } | Notice::HandoffAcknowledged { .. } => {
                Channel::Oncall
            }
            Notice::BreakGlassOpened { .. } => Channel::Compliance,
        }
    }

    /// The page the message belongs to: `run:<id>`, `incident:<n>`, `handoff:<n>`,
    /// `checklist:<name>`.
    pub fn source(&self) -> String {
        match self {
            Notice::RunStarted { run, .. }
            | Notice::RunEnded { run, .. }
            | Notice::WindowOpened { run, .. }
            | Notice::WindowClosed { run, .. } => run_source(*run),
            Notice::IncidentDeclared { incident, .. } | Notice::IncidentChanged { incident, .. } => {
                incident_source(*incident)
            }
            Notice::ChecklistOverdue { checklist, .. } => format!("checklist:{checklist}"),
            Notice::HandoffWritten { handoff, .. } | Notice::HandoffAcknowledged { handoff, .. } => {
                handoff_source(*handoff)
            }
            Notice::BreakGlassOpened { access, .. } => format!("break_glass:{access}"),
        }
    }

    /// One message per event, however often the event is reported (a run resumed after a
    /// crash finishes once).
    fn key(&self) -> String {
        let what = match self {
            Notice::RunStarted { .. } => "started".to_owned(),
            Notice::RunEnded { .. } => "ended".to_owned(),
            Notice::WindowOpened { .. } => "window-opened".to_owned(),
            Notice::WindowClosed { .. } => "window-closed".to_owned(),
            Notice::IncidentDeclared { .. } => "declared".to_owned(),
            Notice::IncidentChanged { entry, .. } => format!("entry-{entry}"),
            Notice::ChecklistOverdue { on, .. } => format!("overdue-{on}"),
            Notice::HandoffWritten { .. } => "written".to_owned(),
            Notice::HandoffAcknowledged { .. } => "acknowledged".to_owned(),
            Notice::BreakGlassOpened { .. } => "opened".to_owned(),
        };
        format!("{}:{what}", self.source())
    }

    /// The message, with links into the console at `base` (its public address).
    pub fn text(&self, base: &str) -> String {
        let link = |path: String, label: &str| format!("<{base}{path}|{label}>");
        let run_link = |run: &RunId| link(format!("/runs/{run}"), "open the run");
        match self {
            Notice::RunStarted { run, procedure, by } => {
                format!(
                    ":arrow_forward: {} started by {} — {}",
                    crate::runs::capitalise(procedure.label()),
                    by.0,
                    run_link(run)
                )
            }
            Notice::RunEnded { run, procedure, status, rolled_back } => {
                let what = crate::runs::capitalise(procedure.label());
                let said = match (status, rolled_back) {
                    (RunStatus::Succeeded, _) => format!(":white_check_mark: {what} succeeded"),
                    (RunStatus::Failed, true) => {
                        format!(":leftwards_arrow_with_hook: {what} failed and was rolled back automatically")
                    }
                    (RunStatus::Failed, false) => format!(":x: {what} failed"),
                    (RunStatus::Cancelled, _) => format!(":black_square_for_stop: {what} was cancelled"),
                    (other, _) => format!("{what} is {}", other.label()),
                };
                format!("{said} — {}", run_link(run))
            }
            Notice::WindowOpened { run, procedure, minutes } => format!(
                ":construction: Maintenance window opened for {minutes} minutes ({}): Drop's monitors are paused — {}",
                procedure.label(),
                run_link(run)
            ),
            Notice::WindowClosed { run, procedure } => format!(
                ":construction: Maintenance window closed ({}): Drop's monitors are watching again — {}",
                procedure.label(),
                run_link(run)
            ),
            Notice::IncidentDeclared { incident, severity, by } => format!(
                ":rotating_light: {} incident #{incident} declared by {} — {}",
                severity.label(),
                by.0,
                link(format!("/incidents/{incident}"), "open it in the console")
            ),
            Notice::IncidentChanged { incident, severity, status, by, .. } => {
                let icon =
                    if *status == IncidentStatus::Resolved { ":white_check_mark:" } else { ":large_orange_diamond:" };
                format!(
                    "{icon} Incident #{incident} ({}) is {} — {} — {}",
                    severity.label(),
                    status.as_str(),
                    by.0,
                    link(format!("/incidents/{incident}"), "open it in the console")
                )
            }
            Notice::ChecklistOverdue { checklist, title, .. } => format!(
                ":alarm_clock: The {} routine checks are overdue — {}",
                title.to_lowercase(),
                link(format!("/health/checks/{checklist}"), "do them")
            ),
            Notice::HandoffWritten { handoff, by } => format!(
                ":clipboard: On-call hand-off written by {}, waiting for the incoming on-call — {}",
                by.0,
                link(format!("/incidents/handoffs/{handoff}"), "read and acknowledge it")
            ),
            Notice::HandoffAcknowledged { handoff, by } => format!(
                ":clipboard: On-call hand-off #{handoff} acknowledged: {} is on call — {}",
                by.0,
                link(format!("/incidents/handoffs/{handoff}"), "read it")
            ),
            Notice::BreakGlassOpened { access, by, minutes } => format!(
                ":rotating_light: Break-glass #{access}: {} opened emergency access to customer accounts for {minutes} min — {}",
                by.0,
                link("/compliance/break-glass".into(), "review it")
            ),
        }
    }
}

pub fn run_source(run: RunId) -> String {
    format!("run:{run}")
}

pub fn incident_source(incident: i64) -> String {
    format!("incident:{incident}")
}

pub fn handoff_source(handoff: i64) -> String {
    format!("handoff:{handoff}")
}

/// Queue a notice in the caller's transaction: it is posted if, and only if, the event commits.
pub async fn queue(conn: &mut PgConnection, state: &AppState, notice: &Notice) -> Result<(), sqlx::Error> {
    let text = notice.text(&state.config.base_url());
    db::insert(conn, &notice.key(), notice.channel(), &notice.source(), &text).await
}

/// A message as the pages show it.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: i64,
    pub channel: Channel,
    pub source: String,
    pub body: String,
    pub status: Delivery,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Message {
    pub fn tone(&self) -> &'static str {
        match self.status {
            Delivery::Sent => "green",
            Delivery::Pending => "blue",
            Delivery::Failed => "red",
            Delivery::Unsent => "grey",
        }
    }

    pub fn label(&self) -> String {
        match self.status {
            Delivery::Sent => "Sent".into(),
            Delivery::Pending if self.attempts == 0 => "Sending".into(),
            Delivery::Pending => format!("Retrying (attempt {} of {MAX_ATTEMPTS})", self.attempts + 1),
            Delivery::Failed => "Not sent".into(),
            Delivery::Unsent => "Would have been sent".into(),
        }
    }

    /// The path of the page the message is about.
    pub fn about(&self) -> Option<String> {
        let (kind, id) = self.source.split_once(':')?;
        Some(match kind {
            "run" => format!("/runs/{id}"),
            "incident" => format!("/incidents/{id}"),
            "handoff" => format!("/incidents/handoffs/{id}"),
            "checklist" => format!("/health/checks/{id}"),
            _ => return None,
        })
    }
}

/// How long to wait before attempt `attempts + 1`: 10 s, 20 s, 40 s, 80 s.
fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(10 << attempts.clamp(0, 6))
}

/// Post every message that is due, one at a time; returns how many were tried. A message
/// is taken with `for update skip locked`, so replicas share the work without posting twice.
pub async fn deliver_due(state: &AppState) -> Result<usize, sqlx::Error> {
    let mut tried = 0;
    while let Some(message) = db::take_due(&state.pool).await? {
        tried += 1;
        let channel = match message.channel {
            Channel::Runs => &state.config.slack.runs_channel,
            Channel::Incidents => &state.config.slack.incidents_channel,
            Channel::Oncall => &state.config.slack.oncall_channel,
            Channel::Compliance => &state.config.slack.compliance_channel,
        };
        let Some(chat) = &state.cloud.chat else {
            db::settle(&state.pool, message.id, Delivery::Unsent, Some("Slack is not connected (slack.token)"), None)
                .await?;
            continue;
        };
        let attempts = message.attempts + 1;
        match chat.post(channel, &message.body).await {
            Ok(()) => db::settle(&state.pool, message.id, Delivery::Sent, None, None).await?,
            Err(e @ ChatError::Refused(_)) => {
                db::settle(&state.pool, message.id, Delivery::Failed, Some(&e.to_string()), None).await?
            }
            Err(e) if attempts >= MAX_ATTEMPTS => {
                let why = format!("{e}; gave up after {attempts} attempts");
                db::settle(&state.pool, message.id, Delivery::Failed, Some(&why), None).await?
            }
            Err(e) => {
                let wait = match &e {
                    ChatError::RateLimited(after) => *after,
                    _ => backoff(message.attempts),
                };
                tracing::warn!(message = message.id, error = %e, "Slack post failed; it will be tried again");
                db::settle(&state.pool, message.id, Delivery::Pending, Some(&e.to_string()), Some(wait)).await?
            }
        }
    }
    Ok(tried)
}

/// The courier of a replica: delivers what is due every second until the process ends.
pub fn spawn_courier(state: AppState) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = deliver_due(&state).await {
                tracing::warn!(error = %e, "cannot deliver Slack messages");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time() {
        assert_eq!(backoff(0), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(80));
        assert!(backoff(100) <= Duration::from_secs(640));
    }

    #[test]
    fn public_text_keeps_customers_out() {
        assert!(PublicText::parse("Transfers are delayed; we are on it.", 500).is_ok());
        for bad in ["Contact ola@example.no", "usr_8f2k stuck", "account 12345678901", "", "   "] {
            assert!(PublicText::parse(bad, 500).is_err(), "{bad}");
        }
        assert!(PublicText::parse(&"a".repeat(501), 500).is_err());
    }

    #[test]
    fn a_repeated_event_is_one_message() {
        let run = RunId::new();
        let a = Notice::RunEnded { run, procedure: Procedure::Deploy, status: RunStatus::Failed, rolled_back: true };
        let b = Notice::RunEnded { run, procedure: Procedure::Deploy, status: RunStatus::Failed, rolled_back: true };
        assert_eq!(a.key(), b.key());
        let started = Notice::RunStarted { run, procedure: Procedure::Deploy, by: StaffName("Kari".into()) };
        assert_ne!(a.key(), started.key());
        assert_eq!(a.source(), started.source());
    }

    #[test]
    fn messages_link_into_the_console() {
        let text = Notice::IncidentDeclared { incident: 12, severity: Severity::Sev1, by: StaffName("Kari".into()) }
            .text("https://ops.getdrop.no");
        assert_eq!(
            text,
            ":rotating_light: SEV1 incident #12 declared by Kari — <https://ops.getdrop.no/incidents/12|open it in the console>"
        );
    }
}

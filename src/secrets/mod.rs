//! Secrets Drop rotates (runbook.md §4): which ones the console manages, when each was last
//! rotated against its maximum age, and the rotations themselves as runs — behind a
//! confirmation that says plainly what rotating does. Values are never read into a page.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, ONCALL, OPS, Route};
use crate::cloud::{bounded, reference_tag, tag_of};
use crate::error::AppError;
use crate::runs::confirm::{self, Fact, Impact, Proposal, Proposer, ReasonRule, RunForm, Understand};
use crate::runs::params::RotationParams;
use crate::runs::rotation::Rotated;
use crate::runs::{self, NewRun, Plan, Procedure, Run, RunId, RunParams};
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/secrets", Access::Roles(OPS), show_secrets),
        Route::get(Rotations::PAGE, Access::Roles(ONCALL), confirm::confirmation::<Rotations>),
        Route::post("/secrets/rotations", Access::Roles(ONCALL), confirm::confirmed::<Rotations>).step_up(),
    ]
}

const HISTORY_PAGE: i64 = 20;
const LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where a secret stands against its rotation schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Next due on this date.
    Fine(DateTime<Utc>),
    /// Due on this date, within the warning period.
    Soon(DateTime<Utc>),
    /// Was due on this date.
    Overdue(DateTime<Utc>),
    /// Secrets Manager has no date for it.
    Never,
    /// Why the date cannot be read.
    Unknown(String),
}

impl Due {
    /// The schedule's maths: due `max_age` after the last rotation, "soon" within `warn` of it.
    pub fn of(last: Option<DateTime<Utc>>, max_age_days: u32, warn_days: u32, now: DateTime<Utc>) -> Self {
        let Some(last) = last else { return Due::Never };
        let due = last + Duration::days(i64::from(max_age_days));
        if now >= due {
            Due::Overdue(due)
        } else if now >= due - Duration::days(i64::from(warn_days)) {
            Due::Soon(due)
        } else {
            Due::Fine(due)
        }
    }

    pub fn tone(&self) -> &'static str {
        match self {
            Due::Fine(_) => "green",
            Due::Soon(_) => "amber",
            Due::Overdue(_) | Due::Never => "red",
            Due::Unknown(_) => "grey",
        }
    }

    pub fn label(&self) -> String {
        let now = Utc::now();
        match self {
            Due::Fine(at) => format!("Due {} (in {} days)", at.format("%Y-%m-%d"), (*at - now).num_days()),
            Due::Soon(at) => format!("Due soon: {} (in {} days)", at.format("%Y-%m-%d"), (*at - now).num_days().max(0)),
            Due::Overdue(at) => format!("Overdue since {} ({} days)", at.format("%Y-%m-%d"), (now - *at).num_days()),
            Due::Never => "Never rotated".into(),
            Due::Unknown(why) => format!("Unknown: {why}"),
        }
    }

    pub fn needs_rotation(&self) -> bool {
        matches!(self, Due::Soon(_) | Due::Overdue(_) | Due::Never)
    }
}

pub struct ManagedSecret {
    pub rotated: Rotated,
    pub name: &'static str,
    /// The Secrets Manager id, when configured.
    pub secret_id: Option<String>,
    pub location: String,
    pub generated: &'static str,
    pub impact: &'static str,
    pub max_age_days: u32,
    /// When Secrets Manager last saw it change, or why that cannot be read.
    pub last_changed: Result<Option<DateTime<Utc>>, String>,
    pub due: Due,
}

impl ManagedSecret {
    pub fn age(&self) -> Option<String> {
        let at = (*self.last_changed.as_ref().ok()?)?;
        Some(format!("{} days ago", (Utc::now() - at).num_days()))
    }
}

/// Every managed secret with its schedule, read from Secrets Manager (bounded in time).
pub async fn managed(state: &AppState) -> Vec<ManagedSecret> {
    let d = &state.config.drop;
    let warn = d.secret_due_soon_days.unwrap_or(14);
    let changed = |id: Option<String>| {
        let secrets = state.cloud.secrets.clone();
        async move {
            match id {
                None => Err("not configured".to_owned()),
                Some(id) => {
                    bounded(LIMIT, secrets.secret_info(&id)).await.map(|i| i.last_changed).map_err(|e| e.to_string())
                }
            }
        }
    };
    let (jwt_changed, db_changed) =
        tokio::join!(changed(d.jwt_secret_id.clone()), changed(d.database_url_secret_id.clone()));
    let due = |changed: &Result<Option<DateTime<Utc>>, String>, max: u32| match changed {
        Ok(last) => Due::of(*last, max, warn, Utc::now()),
        Err(why) => Due::Unknown(why.clone()),
    };
    let jwt_max = d.jwt_secret_max_age_days.unwrap_or(90);
    let db_max = d.database_password_max_age_days.unwrap_or(90);
    vec![
        ManagedSecret {
            rotated: Rotated::JwtSecret,
            name: "JWT_SECRET",
            secret_id: d.jwt_secret_id.clone(),
            location: d.jwt_secret_id.clone().unwrap_or_else(|| "not configured".into()),
            generated: "48 random bytes, base64",
            impact: "Every Drop user session is invalidated: all customers are signed out.",
            max_age_days: jwt_max,
            due: due(&jwt_changed, jwt_max),
            last_changed: jwt_changed,
        },
        ManagedSecret {
            rotated: Rotated::DatabaseUrl,
            name: "Database master password",
            secret_id: d.database_url_secret_id.clone(),
            location: match &d.database_url_secret_id {
                Some(id) => format!("RDS instance {} and the DATABASE_URL secret {id}", d.instance()),
                None => format!("RDS instance {}", d.instance()),
            },
            generated: "32 random bytes, base64 (URL-safe alphabet: RDS refuses /)",
            impact: "Production is down if the password changes but DATABASE_URL is not updated; the rotation must run to completion.",
            max_age_days: db_max,
            due: due(&db_changed, db_max),
            last_changed: db_changed,
        },
    ]
}

#[derive(Template)]
#[template(path = "secrets/index.html")]
pub struct SecretsPage {
    pub shell: Shell,
    pub secrets: Vec<ManagedSecret>,
    pub active: Option<Run>,
    /// Rotations that ended half-way and are not repaired yet.
    pub needing_repair: Vec<Run>,
    pub history: Vec<Run>,
    pub next: Option<String>,
}

pub async fn show_secrets(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<runs::HistoryQuery>,
) -> Result<Html<String>, AppError> {
    let history = runs::history_page(&state.pool, Area::Secrets, &q, HISTORY_PAGE).await?;
    render(&SecretsPage {
        shell: Shell::new(&state, &user, Area::Secrets, "Secrets"),
        secrets: managed(&state).await,
        active: runs::active_on(&state.pool, &state.config.service_target()).await?,
        needing_repair: runs::needing_repair(&state.pool).await?,
        history: history.runs,
        next: history.next,
    })
}

/// The runs of the secrets page: the rotations.
pub struct Rotations;

impl Proposer for Rotations {
    const PAGE: &'static str = "/secrets/rotate";

    async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
        propose(state, form).await
    }
}

/// The confirmation of a rotation: what rotating this secret does, and the run it starts.
async fn propose(state: &AppState, form: &RunForm) -> Result<Proposal, AppError> {
    let run = RunId::from_form(&form.run)?;
    let d = &state.config.drop;
    let (rotated, secret_id) = match form.secret.as_str() {
        "jwt_secret" => (Rotated::JwtSecret, d.jwt_secret_id.clone()),
        "database_url" => (Rotated::DatabaseUrl, d.database_url_secret_id.clone()),
        _ => return Err(AppError::Validation("Choose JWT_SECRET or the database master password.".into())),
    };
    let secret_id = secret_id.ok_or_else(|| {
        AppError::Validation(format!(
            "{} is not configured: set drop.{} first.",
            rotated.env_name(),
            if rotated == Rotated::JwtSecret { "jwt_secret_id" } else { "database_url_secret_id" }
        ))
    })?;
    let (running, images) =
        tokio::join!(bounded(LIMIT, state.cloud.app_runner.service_status()), bounded(LIMIT, state.cloud.ecr.images()));
    let running = running
        .map_err(|e| AppError::Unavailable(format!("What runs now cannot be read, so nothing can be planned: {e}")))?;
    // A redeploy of the same reference reports the tag it names.
    let tag = tag_of(&images.unwrap_or_default(), &running.image)
        .or_else(|| reference_tag(&running.image))
        .unwrap_or_else(|| "the running image".into());
    let service = d.service_name().to_owned();
    let (procedure, plan, heading, impact, understand) = match rotated {
        Rotated::JwtSecret => (
            Procedure::RotateJwtSecret,
            Plan::rotate_jwt_secret(&service, &secret_id, &tag),
            "Rotate JWT_SECRET in production",
            Impact::RotateJwtSecret,
            "I understand that every Drop user will be signed out.",
        ),
        Rotated::DatabaseUrl => (
            Procedure::RotateDbPassword,
            Plan::rotate_db_password(&service, d.instance(), &secret_id, &tag),
            "Rotate the database master password in production",
            Impact::RotateDbPassword,
            "I understand the rotation must run to completion once the password has changed.",
        ),
    };
    let rotation = RotationParams {
        rotated,
        env_name: rotated.env_name().to_owned(),
        secret_id: secret_id.clone(),
        version: Uuid::new_v4().to_string(),
        tag,
    };
    Ok(Proposal {
        procedure,
        heading: heading.to_owned(),
        impact,
        environment: state.config.service_environment(),
        facts: vec![
            Fact::Code("Secret in AWS Secrets Manager", secret_id),
            Fact::Text(
                "New value",
                "Generated by the console, stored only in Secrets Manager. It is never shown, logged or put in the audit log, which records its HMAC fingerprint.".into(),
            ),
        ],
        understand: Some(Understand {
            statement: understand,
            missing: "Tick the box to confirm you have read what this rotation does.",
        }),
        reason: ReasonRule::Optional,
        reason_example: "e.g. scheduled rotation, or: suspected leak",
        scale: None,
        staging: None,
        action: "/secrets/rotations",
        new: NewRun::production(
            run,
            state.config.service_target(),
            match rotated {
                Rotated::JwtSecret => RunParams::RotateJwtSecret(rotation),
                Rotated::DatabaseUrl => RunParams::RotateDbPassword(rotation),
            },
            plan,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap() + Duration::days(n)
    }

    #[test]
    fn the_schedule_counts_from_the_last_rotation() {
        let last = Some(day(0));
        assert_eq!(Due::of(last, 90, 14, day(10)), Due::Fine(day(90)));
        assert_eq!(Due::of(last, 90, 14, day(75)), Due::Fine(day(90)), "one day before the warning");
        assert_eq!(Due::of(last, 90, 14, day(76)), Due::Soon(day(90)), "14 days before");
        assert_eq!(Due::of(last, 90, 14, day(89)), Due::Soon(day(90)));
        assert_eq!(Due::of(last, 90, 14, day(90)), Due::Overdue(day(90)), "due on the day");
        assert_eq!(Due::of(last, 90, 14, day(400)), Due::Overdue(day(90)));
        assert_eq!(Due::of(None, 90, 14, day(0)), Due::Never);
        assert!(Due::Never.needs_rotation() && Due::Soon(day(1)).needs_rotation());
        assert!(!Due::Fine(day(1)).needs_rotation() && !Due::Unknown("x".into()).needs_rotation());
    }
}

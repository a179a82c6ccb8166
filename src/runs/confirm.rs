//! The one confirmation page every run passes through: what will happen, where, the steps,
//! the run in the way (if any), and the button — with the reason and, where the impact needs
//! it, a ticked statement.
//!
//! A feature works out a [`Proposal`] from what it was asked (`RunForm`) and the world as it
//! is; [`show`] renders it, [`start`] checks the answers and starts the run it carries. The
//! proposal is worked out again on POST from the same form, and the run id chosen when the
//! page was shown (`run`) fixes every name derived from it, so what runs is what was shown.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tower_sessions::Session;

use super::params::StagingCheck;
use super::{NewRun, Procedure, Run, RunParams};
use crate::audit::{AuditContext, Reason};
use crate::auth::CurrentUser;
use crate::cloud::{Image, Scaling};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Shell, render};

/// What the person asked for, from the query string or the confirmation form. Each feature
/// reads the fields its procedures need; the page sends back those that are set.
#[derive(Deserialize, Default, Clone)]
pub struct RunForm {
    #[serde(default)]
    pub procedure: String,
    /// The image chosen for a deploy or rollback.
    #[serde(default)]
    pub digest: String,
    /// The image chosen by its tag (rolling staging back to what ran before a run).
    #[serde(default)]
    pub tag: String,
    /// A production deploy of an image that has not passed staging: "yes" when ticked.
    #[serde(default)]
    pub skip_staging: String,
    #[serde(default)]
    pub skip_reason: String,
    /// The secret chosen for a rotation.
    #[serde(default)]
    pub secret: String,
    /// The table chosen for a vacuum (`schema.table`).
    #[serde(default)]
    pub table: String,
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub understood: String,
    /// The run's id, chosen when the confirmation was shown ([`super::RunId`]).
    #[serde(default)]
    pub run: String,
}

impl RunForm {
    /// Back from a step-up sign-in: everything typed before it is filled in again.
    pub async fn restored(mut self, session: &Session, path: &str) -> Self {
        let stash = crate::auth::take_stashed_form(session, path).await;
        for (name, field) in [
            ("reason", &mut self.reason),
            ("understood", &mut self.understood),
            ("min", &mut self.min),
            ("max", &mut self.max),
            ("run", &mut self.run),
            ("skip_staging", &mut self.skip_staging),
            ("skip_reason", &mut self.skip_reason),
        ] {
            stash.restore(name, field);
        }
        self
    }
}

/// One line of "What will happen".
pub enum Fact {
    Text(&'static str, String),
    /// A value shown as code: an id, a name in AWS.
    Code(&'static str, String),
    /// What the service runs now: the image ECR knows, or the reference it does not.
    Running(Option<Image>, String),
    /// The image the run puts in place.
    WillRun(Image),
}

/// What a run does to Drop while it runs, said on the confirmation page in the words of
/// `runs/_impact.html` (operator prose lives in the template, the facts it needs here).
pub enum Impact {
    /// A new image; rolled back to `rollback_to` if health fails, or not at all when what
    /// runs now is unknown.
    Deploy {
        rollback_to: Option<String>,
    },
    /// Back to an earlier image: `to` replaces `replaces`.
    Rollback {
        to: String,
        replaces: String,
    },
    Restart {
        tag: String,
    },
    /// Pause and resume: Drop is down in between.
    EmergencyRestart,
    Scale,
    /// Every Drop user is signed out.
    RotateJwtSecret,
    /// Must run to completion once RDS has the new password.
    RotateDbPassword,
    Snapshot,
    RestoreDrill {
        drill: String,
        taken: DateTime<Utc>,
    },
    /// Reads the whole table and its indexes; blocks only schema changes.
    Vacuum {
        table: String,
    },
    /// Pages the on-call for real; nothing in Drop changes.
    EscalationTest {
        within_minutes: u32,
    },
    /// Fly.io staging only: `to` replaces `replaces` there, machine by machine.
    Staging {
        to: String,
        replaces: String,
    },
}

impl Impact {
    /// An outage, or a change that cannot be stopped half-way: said in red, on a red button.
    pub fn dangerous(&self) -> bool {
        matches!(self, Impact::EmergencyRestart | Impact::RotateJwtSecret | Impact::RotateDbPassword)
    }
}

/// A statement the person must tick, and what to say when they did not.
pub struct Understand {
    pub statement: &'static str,
    pub missing: &'static str,
}

/// Whether the run must say why.
pub enum ReasonRule {
    /// Required; the words say what the reason is about.
    Required(&'static str),
    Optional,
}

/// The number of instances, for a scaling run: as App Runner has them now, and what is wrong
/// with the numbers given.
pub struct ScaleChoice {
    pub now: Option<Scaling>,
    pub error: Option<String>,
    /// The service's instances and their load now (CloudWatch), to size the change by.
    pub capacity: Option<crate::cloud::Capacity>,
}

/// A production deploy's staging gate: how the image passed staging, or — when it did not, or
/// staging cannot be asked — the "skip staging" tick and its reason.
pub struct StagingGate {
    /// How it passed; `None` asks for the tick and a reason.
    pub passed: Option<StagingCheck>,
    /// Why staging could not be asked (not connected, no answer).
    pub unknown: Option<String>,
    /// The staging run to open instead: a link to its confirmation.
    pub deploy_there: Option<String>,
}

/// Everything a run's confirmation shows and the run it starts when confirmed.
pub struct Proposal {
    pub procedure: Procedure,
    pub heading: String,
    pub impact: Impact,
    pub environment: String,
    pub facts: Vec<Fact>,
    pub understand: Option<Understand>,
    pub reason: ReasonRule,
    pub reason_example: &'static str,
    pub scale: Option<ScaleChoice>,
    /// A production deploy: whether the image passed staging.
    pub staging: Option<StagingGate>,
    /// Where the form posts: the feature's start route.
    pub action: &'static str,
    pub new: NewRun,
}

#[derive(Template)]
#[template(path = "runs/confirm.html")]
pub struct ConfirmPage {
    pub shell: Shell,
    pub form: RunForm,
    pub proposal: Proposal,
    pub steps: Vec<String>,
    pub active: Option<Run>,
    pub reason_error: Option<String>,
    pub understood_error: Option<String>,
    pub skip_error: Option<String>,
    pub skip_reason_error: Option<String>,
}

impl ConfirmPage {
    pub fn reason_required(&self) -> bool {
        matches!(self.proposal.reason, ReasonRule::Required(_))
    }

    pub fn scaling_error(&self) -> Option<&str> {
        self.proposal.scale.as_ref()?.error.as_deref()
    }

    /// The number shown in a scaling field: what was typed, else what App Runner has now.
    pub fn scaling_value(&self, typed: &str, now: fn(&Scaling) -> i32) -> String {
        if !typed.is_empty() {
            return typed.to_owned();
        }
        self.proposal.scale.as_ref().and_then(|s| s.now.as_ref()).map(|s| now(s).to_string()).unwrap_or_default()
    }

    pub fn min_of(s: &Scaling) -> i32 {
        s.min
    }

    pub fn max_of(s: &Scaling) -> i32 {
        s.max
    }
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    proposal: Proposal,
    form: RunForm,
) -> Result<ConfirmPage, AppError> {
    let form = RunForm { run: proposal.new.id.to_string(), ..form };
    Ok(ConfirmPage {
        shell: Shell::new(state, user, proposal.procedure.area(), proposal.heading.clone()),
        steps: proposal.new.plan.steps.iter().map(|s| s.title.clone()).collect(),
        active: super::active_on(&state.pool, &proposal.new.target).await?,
        form,
        proposal,
        reason_error: None,
        understood_error: None,
        skip_error: None,
        skip_reason_error: None,
    })
}

/// A feature whose runs pass this page: it works out the [`Proposal`] from what was asked
/// and the world as it is, and names the page (where a step-up sign-in brings the form back).
/// Its routes are [`confirmation::<Self>`] and [`confirmed::<Self>`].
pub trait Proposer: Send + Sync + 'static {
    /// The confirmation page's path.
    const PAGE: &'static str;

    fn propose(state: &AppState, form: &RunForm) -> impl Future<Output = Result<Proposal, AppError>> + Send;
}

/// `GET` of a feature's confirmation page: what will happen, where, and the button.
pub async fn confirmation<P: Proposer>(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    Query(form): Query<RunForm>,
) -> Result<Html<String>, AppError> {
    let form = form.restored(&session, P::PAGE).await;
    show(&state, &user, P::propose(&state, &form).await?, form).await
}

/// `POST` of a feature's confirmation: start the confirmed run and follow it.
pub async fn confirmed<P: Proposer>(
    State(state): State<AppState>,
    user: CurrentUser,
    ctx: AuditContext,
    Form(form): Form<RunForm>,
) -> Result<Response, AppError> {
    start(&state, &user, &ctx, P::propose(&state, &form).await?, form).await
}

/// `GET` of a confirmation: what will happen, and the button.
pub async fn show(
    state: &AppState,
    user: &CurrentUser,
    proposal: Proposal,
    form: RunForm,
) -> Result<Html<String>, AppError> {
    render(&page(state, user, proposal, form).await?)
}

/// `POST` of a confirmation: the answers checked (a 422 re-render keeps what was typed and
/// says what is missing next to it), then the run started and followed.
pub async fn start(
    state: &AppState,
    user: &CurrentUser,
    ctx: &AuditContext,
    proposal: Proposal,
    form: RunForm,
) -> Result<Response, AppError> {
    let mut page = page(state, user, proposal, form).await?;
    let form = &page.form;
    if let Some(understand) = &page.proposal.understand
        && form.understood != "yes"
    {
        page.understood_error = Some(understand.missing.to_owned());
    }
    if let Some(scale) = &mut page.proposal.scale
        && scale.error.is_none()
        && form.min.trim().is_empty()
    {
        scale.error = Some("Give the minimum and maximum number of instances.".into());
    }
    let reason = match page.proposal.reason {
        ReasonRule::Required(what) => Reason::parse(&form.reason, what).map(Some),
        ReasonRule::Optional => Reason::optional(&form.reason, "the reason"),
    };
    match reason {
        Ok(reason) => page.proposal.new.reason = reason,
        Err(e) => page.reason_error = Some(e),
    }
    if let Some(gate) = &page.proposal.staging
        && gate.passed.is_none()
    {
        let skipped = if page.form.skip_staging != "yes" {
            page.skip_error = Some(
                "This image has not passed staging: deploy it to staging first, or tick the box and say why it goes to production without staging.".into(),
            );
            None
        } else {
            match Reason::parse(&page.form.skip_reason, "why this image goes to production without staging") {
                Ok(reason) => Some(StagingCheck::Skipped { reason: reason.as_str().to_owned() }),
                Err(e) => {
                    page.skip_reason_error = Some(e);
                    None
                }
            }
        };
        if let RunParams::Deploy(image) = &mut page.proposal.new.params {
            image.staging = skipped;
        }
    }
    if page.scaling_error().is_some()
        || page.understood_error.is_some()
        || page.reason_error.is_some()
        || page.skip_error.is_some()
        || page.skip_reason_error.is_some()
    {
        let mut response = render(&page)?.into_response();
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    }
    let id = super::start(state, ctx, user, page.proposal.new).await?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

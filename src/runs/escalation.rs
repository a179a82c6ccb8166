//! The monthly alert escalation test (runbook §2: "test that monitor alerts escalate"): raise
//! a test alert at BetterStack, which pages through the escalation policy as a monitor's
//! alert does; wait until someone on the path acknowledges it; resolve it. The time to
//! acknowledge is the evidence the monthly checklist records.
//!
//! A retried raise finds the alert it raised by its name (unique to the run), so a crash
//! between BetterStack's answer and the step's record raises no second alert.

use serde_json::json;

use super::facts::{Fact, learned};
use super::plan::StepKind;
use super::steps::{Progress, StepContext, trouble};

pub async fn attempt(cx: &StepContext<'_>, kind: StepKind) -> Progress {
    let Some(monitoring) = &cx.state.cloud.monitoring else {
        return Progress::Failed(
            "BetterStack is not connected (betterstack.token), so no alert can be raised: the test cannot run".into(),
        );
    };
    let Some(params) = cx.run.params.escalation() else {
        return Progress::Failed("the run names no test alert".into());
    };
    let retry = cx.state.config.runs.retry_limit;
    match kind {
        StepKind::RaiseAlert => {
            let found = match monitoring.find_alert(&params.alert_name).await {
                Ok(found) => found,
                Err(e) => return trouble(cx, retry, e),
            };
            let raised = match found {
                Some(id) => Ok(id),
                None => {
                    let summary = "Monthly escalation test from the Drop operations console: acknowledge it to pass the test. Nothing is wrong.";
                    monitoring.raise_alert(&params.alert_name, summary, &params.requester_email).await
                }
            };
            match raised {
                Ok(id) => {
                    let mut facts = learned([(Fact::TestAlert, json!(id))]);
                    facts[Fact::Did.key()] = json!(format!("test alert {id} raised at BetterStack"));
                    Progress::Done(facts)
                }
                Err(e) => trouble(cx, retry, e),
            }
        }
        StepKind::WaitAcknowledged => {
            let Some(id) = cx.fact(Fact::TestAlert) else {
                return Progress::Failed("no test alert was raised".into());
            };
            let within = std::time::Duration::from_secs(u64::from(params.answer_within_minutes) * 60);
            match monitoring.alert(id).await {
                Ok(alert) => match alert.acknowledged_at {
                    Some(at) => {
                        let since = alert.started_at.unwrap_or_else(|| cx.started());
                        let took = super::duration_text((at - since).num_seconds().max(0));
                        let by = alert.acknowledged_by.unwrap_or_else(|| "someone".into());
                        Progress::Done(json!({
                            "acknowledged_by": by,
                            "acknowledged_after_secs": (at - since).num_seconds().max(0),
                            (Fact::Did.key()): format!("acknowledged by {by} after {took}: alerts escalate"),
                        }))
                    }
                    None if alert.resolved_at.is_some() => Progress::Failed(
                        "the test alert was resolved at BetterStack before anyone acknowledged it".into(),
                    ),
                    None if cx.overdue(within) => Progress::Failed(format!(
                        "nobody acknowledged the test alert within {} minutes: alerts do not reach the on-call. Check BetterStack's on-call calendar, the escalation policy and everyone's notification settings",
                        params.answer_within_minutes
                    )),
                    None => Progress::Waiting("waiting for someone to acknowledge the test alert".into()),
                },
                Err(e) => trouble(cx, within.max(retry), e),
            }
        }
        StepKind::ResolveAlert => {
            let Some(id) = cx.fact(Fact::TestAlert) else {
                // Nothing was raised: nothing to resolve.
                return Progress::Done(json!({ (Fact::Did.key()): "no test alert to resolve" }));
            };
            match monitoring.resolve_alert(id, &params.requester_email).await {
                Ok(()) => Progress::Done(json!({ (Fact::Did.key()): format!("test alert {id} resolved") })),
                Err(e) => trouble(cx, retry, e),
            }
        }
        _ => Progress::Failed("not a step of the escalation test".into()),
    }
}

/// "acknowledged by kari@getdrop.no after 1 min 30 s": what a passed test proved.
pub fn evidence(run: &super::Run) -> Option<String> {
    let by = run.facts["acknowledged_by"].as_str()?;
    let secs = run.facts["acknowledged_after_secs"].as_i64()?;
    Some(format!("acknowledged by {by} after {}", super::duration_text(secs)))
}

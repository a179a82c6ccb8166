//! What a run was started with, one type per procedure. Stored as `console.runs.params`
//! (JSONB, in the shape each struct serialises to; the procedure is its own column) and read
//! back by the run's procedure, so a step asks for `params.image()`, never `params["image"]`,
//! and a deploy cannot be started with a scaling change's parameters: the procedure is the
//! variant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Procedure;
use super::rotation::Rotated;
use crate::cloud::Scaling;

/// An image to run: deploy or rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageParams {
    /// The full image reference App Runner is given (`…/drop-api@sha256:…`).
    pub image: String,
    pub digest: String,
    pub tag: String,
    /// The manual snapshot a deploy takes first; rollbacks take none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// A production deploy: how the image got past staging (rollbacks, and deploys made
    /// before the staging gate, have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<StagingCheck>,
}

/// Whether the image of a production deploy ran on staging first, as the confirmation found
/// it: kept in the run's parameters, and so in its `run_started` audit row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum StagingCheck {
    /// A staging run of this image ended with staging healthy on it.
    Passed { run_id: Uuid, passed_at: DateTime<Utc> },
    /// Staging ran it with every machine healthy when the deploy was confirmed (deployed there
    /// outside the console, by CI's `fly deploy`).
    SeenHealthy { seen_at: DateTime<Utc> },
    /// Deployed without staging: the person ticked "skip staging" and said why.
    Skipped { reason: String },
}

impl StagingCheck {
    /// In a sentence, for the run page.
    pub fn describe(&self) -> String {
        match self {
            Self::Passed { passed_at, .. } => {
                format!("passed staging ({} UTC)", passed_at.format("%Y-%m-%d %H:%M"))
            }
            Self::SeenHealthy { seen_at } => {
                format!("healthy on staging when confirmed ({} UTC)", seen_at.format("%Y-%m-%d %H:%M"))
            }
            Self::Skipped { reason } => format!("staging skipped: {reason}"),
        }
    }

    pub fn skipped(&self) -> bool {
        matches!(self, Self::Skipped { .. })
    }
}

/// An image to run on Fly.io staging: deploy or rollback there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingParams {
    /// The Fly.io app (`drop-staging`).
    pub app: String,
    /// The reference the machines are given (`registry.fly.io/drop-staging:b2e9f14`).
    pub image: String,
    pub tag: String,
    /// The ECR image it was chosen as: what a pass on staging is recorded against, and what
    /// a production deploy names.
    pub digest: String,
}

/// A restart of what runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartParams {
    /// The tag running when the restart was planned: health must report it after.
    pub tag: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleParams {
    pub min: i32,
    pub max: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotParams {
    pub snapshot_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillParams {
    pub from_snapshot: String,
    /// The temporary instance, named when the run is created so every step may repeat.
    pub drill_instance: String,
}

/// The monthly escalation test (runbook §2): a test alert raised at BetterStack under a name
/// unique to the run, so a resumed step finds the alert it raised instead of raising another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationParams {
    pub alert_name: String,
    /// Who the alert is raised and resolved as (the person who started the test).
    pub requester_email: String,
    /// How long the on-call has to acknowledge it before the test fails.
    pub answer_within_minutes: u32,
}

/// A table to `VACUUM (ANALYZE)`, as `pg_stat_user_tables` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VacuumParams {
    pub schema: String,
    pub table: String,
}

impl VacuumParams {
    /// "public.transactions".
    pub fn name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationParams {
    pub rotated: Rotated,
    /// The name the runbook and the audit log use (`JWT_SECRET`).
    pub env_name: String,
    pub secret_id: String,
    /// The pending version's id: Secrets Manager's client token, fixed when the run is created
    /// so that a resumed run finds the value it stored instead of making another.
    pub version: String,
    /// The tag the redeploy must still report.
    pub tag: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunParams {
    Deploy(ImageParams),
    Rollback(ImageParams),
    Restart(RestartParams),
    EmergencyRestart(RestartParams),
    Scale(ScaleParams),
    RotateJwtSecret(RotationParams),
    RotateDbPassword(RotationParams),
    Snapshot(SnapshotParams),
    RestoreDrill(DrillParams),
    Vacuum(VacuumParams),
    EscalationTest(EscalationParams),
    StagingDeploy(StagingParams),
    StagingRollback(StagingParams),
    /// Parameters this version cannot read: a procedure a newer console wrote, or damage. The
    /// run still shows; a step that needs them fails saying so.
    Unreadable(Value),
}

impl RunParams {
    /// The stored parameters of a run of `procedure` (as the column spells it).
    pub fn read(procedure: &str, value: Value) -> Self {
        fn typed<T: for<'de> Deserialize<'de>>(value: &Value, make: fn(T) -> RunParams) -> Option<RunParams> {
            serde_json::from_value(value.clone()).ok().map(make)
        }
        let read = match Procedure::parse(procedure) {
            Some(Procedure::Deploy) => typed(&value, Self::Deploy),
            Some(Procedure::Rollback) => typed(&value, Self::Rollback),
            Some(Procedure::Restart) => typed(&value, Self::Restart),
            Some(Procedure::EmergencyRestart) => typed(&value, Self::EmergencyRestart),
            Some(Procedure::Scale) => typed(&value, Self::Scale),
            Some(Procedure::RotateJwtSecret) => typed(&value, Self::RotateJwtSecret),
            Some(Procedure::RotateDbPassword) => typed(&value, Self::RotateDbPassword),
            Some(Procedure::Snapshot) => typed(&value, Self::Snapshot),
            Some(Procedure::RestoreDrill) => typed(&value, Self::RestoreDrill),
            Some(Procedure::Vacuum) => typed(&value, Self::Vacuum),
            Some(Procedure::EscalationTest) => typed(&value, Self::EscalationTest),
            Some(Procedure::StagingDeploy) => typed(&value, Self::StagingDeploy),
            Some(Procedure::StagingRollback) => typed(&value, Self::StagingRollback),
            None => None,
        };
        read.unwrap_or(Self::Unreadable(value))
    }

    /// The procedure these parameters are for; `None` for unreadable ones.
    pub fn procedure(&self) -> Option<Procedure> {
        Some(match self {
            Self::Deploy(_) => Procedure::Deploy,
            Self::Rollback(_) => Procedure::Rollback,
            Self::Restart(_) => Procedure::Restart,
            Self::EmergencyRestart(_) => Procedure::EmergencyRestart,
            Self::Scale(_) => Procedure::Scale,
            Self::RotateJwtSecret(_) => Procedure::RotateJwtSecret,
            Self::RotateDbPassword(_) => Procedure::RotateDbPassword,
            Self::Snapshot(_) => Procedure::Snapshot,
            Self::RestoreDrill(_) => Procedure::RestoreDrill,
            Self::Vacuum(_) => Procedure::Vacuum,
            Self::EscalationTest(_) => Procedure::EscalationTest,
            Self::StagingDeploy(_) => Procedure::StagingDeploy,
            Self::StagingRollback(_) => Procedure::StagingRollback,
            Self::Unreadable(_) => return None,
        })
    }

    /// As stored.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn image(&self) -> Option<&ImageParams> {
        match self {
            Self::Deploy(p) | Self::Rollback(p) => Some(p),
            _ => None,
        }
    }

    /// The version health must report once the run is done.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Deploy(p) | Self::Rollback(p) => Some(&p.tag),
            Self::Restart(p) | Self::EmergencyRestart(p) => Some(&p.tag),
            Self::RotateJwtSecret(p) | Self::RotateDbPassword(p) => Some(&p.tag),
            _ => None,
        }
    }

    /// The manual snapshot the run takes, if it takes one.
    pub fn snapshot_id(&self) -> Option<&str> {
        match self {
            Self::Deploy(p) => p.snapshot_id.as_deref(),
            Self::Snapshot(p) => Some(&p.snapshot_id),
            _ => None,
        }
    }

    pub fn scaling(&self) -> Option<Scaling> {
        match self {
            Self::Scale(p) => Some(Scaling { min: p.min, max: p.max }),
            _ => None,
        }
    }

    pub fn escalation(&self) -> Option<&EscalationParams> {
        match self {
            Self::EscalationTest(p) => Some(p),
            _ => None,
        }
    }

    pub fn staging(&self) -> Option<&StagingParams> {
        match self {
            Self::StagingDeploy(p) | Self::StagingRollback(p) => Some(p),
            _ => None,
        }
    }

    pub fn drill(&self) -> Option<&DrillParams> {
        match self {
            Self::RestoreDrill(p) => Some(p),
            _ => None,
        }
    }

    pub fn vacuum(&self) -> Option<&VacuumParams> {
        match self {
            Self::Vacuum(p) => Some(p),
            _ => None,
        }
    }

    pub fn rotation(&self) -> Option<&RotationParams> {
        match self {
            Self::RotateJwtSecret(p) | Self::RotateDbPassword(p) => Some(p),
            _ => None,
        }
    }

    /// What the run is about, in a few words: "b2e9f14", "min 2 / max 6", "JWT_SECRET".
    pub fn subject(&self) -> String {
        match self {
            Self::Deploy(p) | Self::Rollback(p) => p.tag.clone(),
            Self::Restart(p) | Self::EmergencyRestart(p) => p.tag.clone(),
            // A rotation is about its secret, not the image it redeploys.
            Self::RotateJwtSecret(p) | Self::RotateDbPassword(p) => p.env_name.clone(),
            Self::Scale(p) => format!("min {} / max {}", p.min, p.max),
            Self::Snapshot(p) => p.snapshot_id.clone(),
            Self::RestoreDrill(p) => p.drill_instance.clone(),
            Self::Vacuum(p) => p.name(),
            Self::EscalationTest(p) => p.alert_name.clone(),
            Self::StagingDeploy(p) | Self::StagingRollback(p) => p.tag.clone(),
            Self::Unreadable(_) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_round_trip_in_the_stored_shape_and_unknown_ones_stay_readable() {
        let deploy = RunParams::Deploy(ImageParams {
            image: "r/drop-api@sha256:ab".into(),
            digest: "sha256:ab".into(),
            tag: "b2e9f14".into(),
            snapshot_id: Some("drop-db-pre-deploy-1".into()),
            staging: Some(StagingCheck::Skipped { reason: "hotfix for payouts".into() }),
        });
        let stored = deploy.to_json();
        assert_eq!(stored["snapshot_id"], "drop-db-pre-deploy-1", "the shape older runs were stored in");
        assert_eq!(stored["staging"], json!({ "verdict": "skipped", "reason": "hotfix for payouts" }));
        let older = json!({ "image": "r@sha256:ab", "digest": "sha256:ab", "tag": "b2e9f14" });
        assert_eq!(RunParams::read("deploy", older).image().map(|i| i.staging.clone()), Some(None));
        assert_eq!(RunParams::read("deploy", stored.clone()), deploy);
        assert_eq!(deploy.procedure(), Some(Procedure::Deploy));
        assert_eq!(deploy.subject(), "b2e9f14");
        let scale = RunParams::read("scale", json!({ "min": 2, "max": 6 }));
        assert_eq!(scale.scaling(), Some(Scaling { min: 2, max: 6 }));
        assert_eq!(scale.subject(), "min 2 / max 6");
        // A deploy's parameters read as a scale change are not silently half-read.
        assert!(matches!(RunParams::read("scale", stored.clone()), RunParams::Unreadable(_)));
        assert!(matches!(RunParams::read("teleport", stored), RunParams::Unreadable(_)));
        let rotation = RunParams::read(
            "rotate_jwt_secret",
            json!({ "rotated": "jwt_secret", "env_name": "JWT_SECRET", "secret_id": "s", "version": "v", "tag": "t" }),
        );
        assert_eq!(rotation.rotation().map(|r| r.rotated), Some(Rotated::JwtSecret));
        assert_eq!(rotation.subject(), "JWT_SECRET");
    }
}

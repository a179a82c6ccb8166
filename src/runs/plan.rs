//! What a run will do, decided before it starts: the kinds of step there are, and the plan of
//! each procedure (its steps, in order, with the titles the confirmation page shows).

use crate::cloud::Scaling;

crate::db::text_enum! {
    /// What a step does, as stored in `console.run_steps.name`.
    pub enum StepKind {
        /// The service is RUNNING; records what runs before the change.
        Precheck = "precheck",
        /// Start the pre-deploy snapshot (its id is the client token).
        Snapshot = "snapshot",
        WaitSnapshot = "wait_snapshot",
        OpenWindow = "open_window",
        /// Point the service at the run's image; App Runner deploys it.
        DeployImage = "deploy_image",
        /// Redeploy the image the service is set to (rolling restart, rotations).
        Redeploy = "redeploy",
        WaitDeployment = "wait_deployment",
        VerifyHealth = "verify_health",
        /// Automatic rollback after failed health: point at the image that ran before.
        RollbackImage = "rollback_image",
        WaitRollback = "wait_rollback",
        VerifyRollback = "verify_rollback",
        CloseWindow = "close_window",
        Pause = "pause",
        WaitPaused = "wait_paused",
        Resume = "resume",
        WaitResumed = "wait_resumed",
        SetScaling = "set_scaling",
        WaitScaling = "wait_scaling",
        /// After a scaling change: the app's health is ok (whatever version runs).
        VerifyServing = "verify_serving",
        /// After a scaling change: the active instances are within the new bounds.
        VerifyInstances = "verify_instances",
        /// Generate a new value and store it as the secret's pending version (never regenerated).
        StageSecret = "stage_secret",
        /// Set the RDS master password to the one in the pending DATABASE_URL.
        SetDbPassword = "set_db_password",
        WaitDbAvailable = "wait_db_available",
        /// Make the pending version current: the app reads it on its next deployment.
        PromoteSecret = "promote_secret",
        /// Restore a snapshot to the drill's temporary instance (its name is the client token).
        RestoreDrill = "restore_drill",
        WaitDrillAvailable = "wait_drill_available",
        /// Connect to the copy as the read-only role and compare Drop's main tables with
        /// production; records the drill's RTO.
        VerifyDrillData = "verify_drill_data",
        /// Delete the drill's temporary instance (runs even after a failure: no instance is left).
        DeleteDrill = "delete_drill",
        WaitDrillDeleted = "wait_drill_deleted",
        /// `VACUUM (ANALYZE)` one table, following it in pg_stat_progress_vacuum.
        Vacuum = "vacuum",
        /// Raise a test alert at BetterStack (found again by its name on a retry).
        RaiseAlert = "raise_alert",
        /// Wait until someone on the escalation path acknowledges it.
        WaitAcknowledged = "wait_acknowledged",
        /// Resolve the test alert (runs even after a failure: no test alert is left open).
        ResolveAlert = "resolve_alert",
        /// Fly.io staging has machines; notes the image they run (what to roll staging back to).
        StagingPrecheck = "staging_precheck",
        /// Point staging's machines at the run's image one at a time, each started and passing
        /// its checks before the next (a machine already on the image is left as it is).
        StagingUpdate = "staging_update",
        /// Staging's health reports ok and the version; the pass is recorded.
        StagingVerify = "staging_verify",
    }
}

impl StepKind {
    /// Whether the step is a point of no return: once it has started, stopping the run
    /// would leave production inconsistent, so the run may no longer be cancelled and finishes
    /// on its own. The text says what stopping would leave behind.
    pub fn commits(self) -> Option<&'static str> {
        match self {
            StepKind::SetDbPassword => Some(
                "RDS would keep the new password while the app's DATABASE_URL holds the old one, and the next restart of Drop could not connect",
            ),
            StepKind::PromoteSecret => {
                Some("the new secret would be current while the app still runs with the old one")
            }
            StepKind::DeployImage | StepKind::RollbackImage | StepKind::Redeploy => {
                Some("the new version would go live with no health check and no automatic rollback")
            }
            StepKind::SetScaling => Some("the scaling change would be applied without being checked"),
            _ => None,
        }
    }

    /// For a step that waits for an App Runner operation: the steps that may have started it.
    pub fn started_by(self) -> &'static [StepKind] {
        match self {
            StepKind::WaitRollback => &[StepKind::RollbackImage],
            StepKind::WaitPaused => &[StepKind::Pause],
            StepKind::WaitResumed => &[StepKind::Resume],
            StepKind::WaitScaling => &[StepKind::SetScaling],
            StepKind::WaitDeployment => &[StepKind::DeployImage, StepKind::Redeploy],
            _ => &[],
        }
    }

    /// The audit action of the step's intent and outcome.
    pub fn action(self) -> &'static str {
        match self {
            StepKind::Precheck | StepKind::StagingPrecheck => "run_precheck",
            StepKind::StagingUpdate => "fly_machines_update",
            StepKind::StagingVerify => "run_verify_health",
            StepKind::Snapshot => "rds_snapshot_create",
            StepKind::WaitSnapshot | StepKind::WaitDeployment | StepKind::WaitRollback => "run_wait",
            StepKind::WaitPaused | StepKind::WaitResumed | StepKind::WaitScaling | StepKind::WaitDbAvailable => {
                "run_wait"
            }
            StepKind::OpenWindow => "maintenance_window_open",
            StepKind::CloseWindow => "maintenance_window_close",
            StepKind::DeployImage => "apprunner_deploy_image",
            StepKind::RollbackImage => "apprunner_rollback_image",
            StepKind::Redeploy => "apprunner_start_deployment",
            StepKind::VerifyHealth | StepKind::VerifyRollback | StepKind::VerifyServing => "run_verify_health",
            StepKind::VerifyInstances => "run_verify_instances",
            StepKind::Pause => "apprunner_pause",
            StepKind::Resume => "apprunner_resume",
            StepKind::SetScaling => "apprunner_set_scaling",
            StepKind::StageSecret => "secret_value_staged",
            StepKind::SetDbPassword => "rds_master_password_set",
            StepKind::PromoteSecret => "secret_rotated",
            StepKind::RestoreDrill => "rds_restore_drill_start",
            StepKind::WaitDrillAvailable | StepKind::WaitDrillDeleted => "run_wait",
            StepKind::DeleteDrill => "rds_restore_drill_delete",
            StepKind::VerifyDrillData => "rds_restore_drill_verify",
            StepKind::Vacuum => "db_vacuum",
            StepKind::RaiseAlert => "betterstack_alert_raise",
            StepKind::WaitAcknowledged => "run_wait",
            StepKind::ResolveAlert => "betterstack_alert_resolve",
        }
    }
}

pub struct PlannedStep {
    pub kind: StepKind,
    pub title: String,
    pub always: bool,
}

/// The ordered steps of a run.
#[derive(Default)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    fn step(mut self, kind: StepKind, title: impl Into<String>) -> Self {
        self.steps.push(PlannedStep { kind, title: title.into(), always: false });
        self
    }

    /// A step that runs even after an earlier one failed.
    fn cleanup(mut self, kind: StepKind, title: impl Into<String>) -> Self {
        self.steps.push(PlannedStep { kind, title: title.into(), always: true });
        self
    }

    /// runbook §3: snapshot, maintenance window, deploy, poll, verify, close.
    pub fn deploy(service: &str, tag: &str, snapshot: &str, window_minutes: u32) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(StepKind::Snapshot, format!("Take the pre-deploy RDS snapshot {snapshot}"))
            .step(StepKind::WaitSnapshot, "Wait until the snapshot is available")
            .step(StepKind::OpenWindow, format!("Open a {window_minutes}-minute monitoring maintenance window"))
            .step(StepKind::DeployImage, format!("Point {service} at image {tag} and start the deployment"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .cleanup(StepKind::CloseWindow, "Close the maintenance window")
    }

    /// What a failed deploy health check appends: back to the image that ran before.
    pub fn automatic_rollback(service: &str, previous_tag: &str) -> Self {
        // Added after a failure, so they run as clean-up steps do.
        Plan::default()
            .cleanup(
                StepKind::RollbackImage,
                format!("Roll back: point {service} at the previous image {previous_tag}"),
            )
            .cleanup(StepKind::WaitRollback, format!("Wait until {service} is RUNNING again"))
            .cleanup(StepKind::VerifyRollback, format!("Verify health reports ok and version {previous_tag}"))
    }

    /// The monitoring maintenance window around a change that can alarm: opened before its
    /// first disruptive step, closed (and the monitors resumed) even when a step fails.
    fn window(self) -> Self {
        self.step(StepKind::OpenWindow, "Open a monitoring maintenance window (pause the BetterStack monitors)")
    }

    fn close_window(self) -> Self {
        self.cleanup(StepKind::CloseWindow, "Close the maintenance window (resume the monitors)")
    }

    /// runbook §3 rollback: point at an earlier image, deploy, poll, verify.
    pub fn rollback(service: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .window()
            .step(StepKind::DeployImage, format!("Point {service} at image {tag} and start the deployment"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .close_window()
    }

    /// Rolling restart: redeploy the same image, no downtime.
    pub fn restart(service: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .window()
            .step(StepKind::Redeploy, format!("Start a deployment of the running image {tag}"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .close_window()
    }

    /// Emergency restart: pause, then resume. Drop is down in between.
    pub fn emergency_restart(service: &str, tag: &str) -> Self {
        Plan::default()
            .window()
            .step(StepKind::Pause, format!("Pause {service} (Drop stops answering)"))
            .step(StepKind::WaitPaused, format!("Wait until {service} is PAUSED"))
            .cleanup(StepKind::Resume, format!("Resume {service}"))
            .cleanup(StepKind::WaitResumed, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .close_window()
    }

    /// runbook §4, JWT_SECRET: new value, make it current, redeploy so the app reads it.
    pub fn rotate_jwt_secret(service: &str, secret_id: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(
                StepKind::StageSecret,
                format!("Generate 48 random bytes and store them as the pending version of {secret_id}"),
            )
            .step(StepKind::PromoteSecret, format!("Make the new value of {secret_id} current"))
            .window()
            .step(
                StepKind::Redeploy,
                format!("Redeploy {service} ({tag}) so the app reads it: every Drop user is signed out"),
            )
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .close_window()
    }

    /// runbook §4, database master password. The new DATABASE_URL is stored (pending) before
    /// RDS changes, so a stopped run always resumes with the same password.
    pub fn rotate_db_password(service: &str, instance: &str, secret_id: &str, tag: &str) -> Self {
        Plan::default()
            .step(StepKind::Precheck, format!("Check that {service} is RUNNING and note the image it runs"))
            .step(
                StepKind::StageSecret,
                format!(
                    "Generate a 32-byte password and store the new DATABASE_URL as the pending version of {secret_id}"
                ),
            )
            .window()
            .step(
                StepKind::SetDbPassword,
                format!("Set the master password of RDS instance {instance} (applied immediately)"),
            )
            .step(StepKind::WaitDbAvailable, format!("Wait until {instance} is available"))
            .step(StepKind::PromoteSecret, format!("Make the new DATABASE_URL in {secret_id} current"))
            .step(StepKind::Redeploy, format!("Redeploy {service} ({tag}) so the app connects with the new password"))
            .step(StepKind::WaitDeployment, format!("Wait until {service} is RUNNING again"))
            .step(StepKind::VerifyHealth, format!("Verify health reports ok and version {tag}"))
            .close_window()
    }

    /// runbook §5: a manual snapshot, waited for.
    pub fn snapshot(instance: &str, snapshot: &str) -> Self {
        Plan::default()
            .step(StepKind::Snapshot, format!("Take the manual RDS snapshot {snapshot} of {instance}"))
            .step(StepKind::WaitSnapshot, "Wait until the snapshot is available")
    }

    /// runbook §2 monthly: prove a snapshot restores — restore it to a temporary instance,
    /// check it, delete it.
    pub fn restore_drill(snapshot: &str, drill: &str) -> Self {
        Plan::default()
            .step(StepKind::RestoreDrill, format!("Restore snapshot {snapshot} to the temporary instance {drill}"))
            .step(
                StepKind::WaitDrillAvailable,
                format!("Wait until {drill} is available and check its engine and storage"),
            )
            .step(
                StepKind::VerifyDrillData,
                "Compare Drop's main tables in the copy with production and record the time to a verified copy",
            )
            .cleanup(StepKind::DeleteDrill, format!("Delete {drill} (no final snapshot)"))
            .cleanup(StepKind::WaitDrillDeleted, format!("Wait until {drill} is gone"))
    }

    /// runbook §5: `VACUUM (ANALYZE)` a table. It cannot run in a transaction, so it runs on a
    /// connection of its own while the step reports its progress.
    pub fn vacuum(table: &str) -> Self {
        Plan::default().step(
            StepKind::Vacuum,
            format!("VACUUM (ANALYZE) {table}, following its progress in pg_stat_progress_vacuum"),
        )
    }

    /// runbook §2 monthly: test that monitor alerts escalate — raise a test alert, see someone
    /// on the escalation path acknowledge it, resolve it.
    pub fn escalation_test(alert: &str, within_minutes: u32) -> Self {
        Plan::default()
            .step(StepKind::RaiseAlert, format!("Raise the test alert “{alert}” at BetterStack: it pages the on-call"))
            .step(
                StepKind::WaitAcknowledged,
                format!("Wait up to {within_minutes} minutes for someone to acknowledge it at BetterStack"),
            )
            .cleanup(StepKind::ResolveAlert, "Resolve the test alert")
    }

    /// Fly.io staging to an image (a deploy or a rollback there): machines one at a time, then
    /// staging's health. Nothing of production is touched.
    pub fn staging(app: &str, tag: &str, machines: usize, health_url: &str) -> Self {
        Plan::default()
            .step(StepKind::StagingPrecheck, format!("Read {app}'s machines and note the image they run"))
            .step(
                StepKind::StagingUpdate,
                format!(
                    "Update {app}'s {machines} machine(s) to {tag} one at a time, each started with its checks passing before the next"
                ),
            )
            .step(
                StepKind::StagingVerify,
                format!("Verify {health_url} reports ok and version {tag}, and record that {tag} passed staging"),
            )
    }

    /// A scaling change; scaling down (or from bounds unknown) can alarm, so it runs in a
    /// maintenance window.
    pub fn scale(service: &str, scaling: Scaling, down: bool) -> Self {
        let plan = if down { Plan::default().window() } else { Plan::default() };
        let plan = plan
            .step(
                StepKind::SetScaling,
                format!("Set {service} auto-scaling to {} – {} instances", scaling.min, scaling.max),
            )
            .step(StepKind::WaitScaling, format!("Wait until {service} is RUNNING with the new bounds"))
            .step(StepKind::VerifyServing, "Check that the app's health is ok")
            .step(
                StepKind::VerifyInstances,
                format!("Check that the active instances are within {} – {}", scaling.min, scaling.max),
            );
        if down { plan.close_window() } else { plan }
    }
}

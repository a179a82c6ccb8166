//! Deployments as runs, over the simulated environment at a thousandth of real time: deploy,
//! rollback, restarts and scaling end to end through the pages; the kill test; one run per
//! service; automatic rollback; cancel; audit order; roles.

use std::sync::Arc;

use dropops::cloud::Scaling;
use dropops::runs::worker::{Driven, Phase, Worker};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{Browser, TestApp, config_with};

/// Simulated AWS a thousand times faster than life; the worker polls every 10 ms.
pub fn fast() -> dropops::config::Config {
    config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__HEALTH_TIMEOUT_SECS", "2"),
    ])
}

pub async fn oncall(pool: PgPool) -> TestApp {
    let app = TestApp::spawn_with(pool, fast()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    app
}

/// Submit the confirmation form; the answer is a redirect to the run page. A deploy needs a
/// reason, and one of an image that has not passed staging says why staging is skipped: both
/// are given unless the test gives its own.
pub async fn start(app: &Browser, fields: &[(&str, &str)]) -> Uuid {
    let mut fields = fields.to_vec();
    if fields.contains(&("procedure", "deploy")) && !fields.iter().any(|(k, _)| *k == "reason") {
        fields.push(("reason", "release 2026-12-02"));
    }
    if fields.contains(&("procedure", "deploy")) && !fields.iter().any(|(k, _)| *k == "skip_staging") {
        fields.extend([("skip_staging", "yes"), ("skip_reason", "tested without staging")]);
    }
    let page = app.confirm_run(&fields).await;
    assert_eq!(page.status, 303, "the run did not start:\n{}", page.body);
    page.location().trim_start_matches("/runs/").parse().expect("a run id in the redirect")
}

/// As if the worker holding the run had died long enough ago for its lease to lapse.
pub async fn expire_lease(pool: &PgPool, run: Uuid) {
    sqlx::query("update console.runs set lease_until = now() - interval '1 second' where id = $1")
        .bind(run)
        .execute(pool)
        .await
        .unwrap();
}

pub async fn drive(app: &TestApp) {
    assert_eq!(Worker::new(app.state.clone()).run_until_idle().await.unwrap(), Driven::Finished);
}

/// The digest of a tag in the simulated repository.
pub async fn digest(app: &TestApp, tag: &str) -> String {
    let images = app.state.cloud.ecr.images().await.unwrap();
    images.into_iter().find(|i| i.tags.iter().any(|t| t == tag)).expect("the tag is in ECR").digest
}

pub async fn running_tag(app: &TestApp) -> String {
    app.state.cloud.probes.app_health(dropops::cloud::Environment::Production).await.unwrap().version
}

pub async fn run_row(pool: &PgPool, id: Uuid) -> (String, Option<String>) {
    sqlx::query_as("select status, outcome from console.runs where id = $1").bind(id).fetch_one(pool).await.unwrap()
}

pub async fn step_statuses(pool: &PgPool, id: Uuid) -> Vec<(String, String)> {
    sqlx::query_as("select name, status from console.run_steps where run_id = $1 order by position")
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// App Runner operations the simulator started while a run was going.
pub async fn operations_during(pool: &PgPool, run: Uuid, kind: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from console.sim_operations o, console.runs r
          where r.id = $1 and o.kind = $2 and o.started_at between r.created_at and coalesce(r.finished_at, now())",
    )
    .bind(run)
    .bind(kind)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_deploy_snapshots_opens_a_window_deploys_and_verifies(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    assert_eq!(running_tag(&app).await, "7f3c2a1");
    let newest = digest(&app, "b2e9f14").await;

    let page = app.visit("/deployments").await;
    assert_eq!(page.status, 200);
    assert!(page.has(&format!("a[href='/deployments/confirm?procedure=deploy&digest={newest}']")), "{}", page.body);
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={newest}")).await;
    assert_eq!(confirm.status, 200);
    let what = confirm.text("main");
    assert!(what.contains("Deploy b2e9f14 to production"), "{what}");
    assert!(what.contains("App Runner service drop-web in eu-west-1"), "the environment is named: {what}");
    assert!(what.contains(&newest), "the full digest is shown");
    assert!(what.contains("drop-db-pre-deploy-"), "the snapshot is named");

    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest), ("reason", "release 42")]).await;
    let queued = app.visit(&format!("/runs/{run}")).await;
    assert!(queued.has("#run-progress[hx-trigger='every 2s']"), "an active run refreshes itself");
    let health = app.visit("/health").await;
    assert!(health.text(".active-run").contains("deploy of b2e9f14 by Ola Oncall"), "the dashboard says why");
    assert!(health.has(&format!(".active-run a[href='/runs/{run}']")));
    let compliance = app.another_browser();
    compliance.sign_in(&["compliance"]).await;
    let theirs = compliance.visit("/health").await;
    assert!(theirs.has(".active-run") && !theirs.has(".active-run a"), "told, but no link to a page they may not open");
    drive(&app).await;

    assert_eq!(run_row(&pool, run).await, ("succeeded".into(), None));
    assert_eq!(running_tag(&app).await, "b2e9f14");
    let statuses = step_statuses(&pool, run).await;
    assert!(statuses.iter().all(|(_, s)| s == "succeeded"), "{statuses:?}");
    let names: Vec<&str> = statuses.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "precheck",
            "snapshot",
            "wait_snapshot",
            "open_window",
            "deploy_image",
            "wait_deployment",
            "verify_health",
            "close_window"
        ]
    );
    let snapshot: String = sqlx::query_scalar("select params ->> 'snapshot_id' from console.runs where id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    let snap = app.state.cloud.rds.snapshot(&snapshot).await.unwrap().expect("the pre-deploy snapshot exists");
    assert_eq!(snap.status, "available");
    let window: (bool,) =
        sqlx::query_as("select closed_at is not null from console.maintenance_windows where run_id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(window.0, "the maintenance window is closed again");
    assert!(!app.visit("/health").await.has(".active-run, .maintenance-window"), "nothing in progress any more");
    assert_eq!(operations_during(&pool, run, "UPDATE_SERVICE").await, 1);

    let done = app.visit(&format!("/runs/{run}")).await;
    assert!(!done.has("#run-progress[hx-trigger]"), "a finished run stops polling");
    assert!(done.text("main").contains("Succeeded"));
    assert!(done.text(".run-log").contains("Done: Take the pre-deploy RDS snapshot"), "{}", done.text(".run-log"));
    let deployments = app.visit("/deployments").await;
    assert!(deployments.text("main").contains("by Ola Oncall"), "who deployed what runs now");
    let previous = digest(&app, "7f3c2a1").await;
    assert_eq!(
        deployments.text(&format!(
            "#now-title ~ .actions a[href='/deployments/confirm?procedure=rollback&digest={previous}']"
        )),
        "Roll back to 7f3c2a1…",
        "the previous image by push time is one click away"
    );
    assert!(deployments.has(&format!("tr[data-run='{run}']")), "the run is in the history");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_step_writes_its_intent_before_it_acts_and_its_outcome_after(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    let rows: Vec<(String, i64, String, i64, String)> = sqlx::query_as(
        "select s.name, i.seq, i.action, o.seq, o.outcome
           from console.run_steps s
           join console.audit_entries i on i.id = s.intent_id and i.kind = 'intent'
           join console.audit_entries o on o.intent_id = i.id and o.kind = 'outcome'
          where s.run_id = $1 order by s.position",
    )
    .bind(run)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 8, "every step has an intent and an outcome: {rows:?}");
    for (name, intent, _, outcome, result) in &rows {
        assert!(intent < outcome, "{name}: intent first");
        assert_eq!(result, "succeeded", "{name}");
    }
    assert_eq!(rows[4].2, "apprunner_deploy_image");
    // The deployment itself started after its intent was in the log.
    let ordered: bool = sqlx::query_scalar(
        "select i.created_at <= o.started_at
           from console.run_steps s join console.audit_entries i on i.id = s.intent_id, console.sim_operations o
          where s.run_id = $1 and s.name = 'deploy_image' and o.kind = 'UPDATE_SERVICE'",
    )
    .bind(run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(ordered);
    let snapshot_ordered: bool = sqlx::query_scalar(
        "select i.created_at <= s.created_at
           from console.run_steps r join console.audit_entries i on i.id = r.intent_id, console.sim_snapshots s
          where r.run_id = $1 and r.name = 'snapshot'",
    )
    .bind(run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(snapshot_ordered, "the snapshot was asked for after its intent was in the log");
    assert_eq!(crate::harness::audit_trail(&pool, "run_started").await, crate::harness::intent_then_success());
    let actor: String = sqlx::query_scalar("select actor from console.audit_entries where id = (select intent_id from console.run_steps where run_id = $1 and position = 4)")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(actor, "Ola Oncall", "the worker acts for the person who started the run");
}

/// The kill test: stop the worker dead before and after every step's action; another worker
/// takes over once the lease lapses, the run ends well, and App Runner was asked to deploy
/// exactly once per run.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_deploy_killed_at_any_step_resumes_and_deploys_once(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    for position in 0..8 {
        for phase in [Phase::BeforeAct, Phase::AfterAct] {
            let target = if running_tag(&app).await == "b2e9f14" { "7f3c2a1" } else { "b2e9f14" };
            let image = digest(&app, target).await;
            let run = start(&app, &[("procedure", "deploy"), ("digest", &image)]).await;
            let halt = Arc::new(move |p: i32, ph: Phase| p == position && ph == phase);
            let dying = Worker::new(app.state.clone()).halting(halt);
            assert_eq!(dying.run_until_idle().await.unwrap(), Driven::Halted, "halted at {position} {phase:?}");
            // Its lease still holds: nobody else may touch the run…
            assert!(Worker::new(app.state.clone()).claim().await.unwrap().is_none());
            // …until it lapses.
            expire_lease(&pool, run).await;
            drive(&app).await;
            let (status, outcome) = run_row(&pool, run).await;
            assert_eq!(status, "succeeded", "killed at step {position} {phase:?}: {outcome:?}");
            assert_eq!(running_tag(&app).await, target);
            assert_eq!(
                operations_during(&pool, run, "UPDATE_SERVICE").await,
                1,
                "killed at step {position} {phase:?}: one deployment"
            );
            let open_intents: i64 = sqlx::query_scalar(
                "select count(*) from console.run_steps s where s.run_id = $1 and not exists
                   (select 1 from console.audit_entries o where o.intent_id = s.intent_id and o.kind = 'outcome')",
            )
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(open_intents, 0, "every step's intent got its outcome");
        }
    }
    let resumed: i64 =
        sqlx::query_scalar("select count(*) from console.run_log where line like 'Resumed after an interruption%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(resumed, 16, "every interrupted step was resumed, not started again");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn two_deploys_at_once_make_one_run_and_the_second_is_told_why(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let other = app.another_browser();
    other.sign_in_as("Kari Oncall", &["oncall"]).await;
    let newest = digest(&app, "b2e9f14").await;
    let form = [("procedure", "deploy"), ("digest", newest.as_str()), ("reason", "release")];
    let (a, b) = tokio::join!(app.confirm_run(&form), other.confirm_run(&form));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [303, 409], "{}\n{}", a.body, b.body);
    let refused = if a.status == 409 { &a } else { &b };
    let text = refused.text("main");
    assert!(text.contains("is already running"), "{text}");
    assert!(refused.has("main a.error-link[href^='/runs/']"), "the run in the way is a link: {}", refused.body);
    let runs: i64 = sqlx::query_scalar("select count(*) from console.runs").fetch_one(&pool).await.unwrap();
    assert_eq!(runs, 1);
    // The confirmation page says so before anyone presses the button.
    let confirm = other.visit("/deployments/confirm?procedure=restart").await;
    assert!(confirm.text("[role=alert]").contains("already running"));
    assert!(confirm.has("button[type=submit][disabled]"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn failed_health_after_a_deploy_rolls_back_to_the_previous_image(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    assert_eq!(admin.set_fault("release_unhealthy", true).await.status, 303);
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, run).await;
    assert_eq!(status, "failed");
    let outcome = outcome.unwrap();
    assert!(
        outcome.contains("health") && outcome.contains("Rolled back automatically: 7f3c2a1"),
        "{outcome}\n{:?}",
        step_statuses(&pool, run).await
    );
    assert_eq!(running_tag(&app).await, "7f3c2a1");
    let statuses = step_statuses(&pool, run).await;
    let status_of = |n: &str| statuses.iter().find(|(name, _)| name == n).map(|(_, s)| s.as_str());
    assert_eq!(status_of("verify_health"), Some("failed"));
    assert_eq!(status_of("rollback_image"), Some("succeeded"));
    assert_eq!(status_of("verify_rollback"), Some("succeeded"));
    assert_eq!(statuses.last().map(|(n, s)| (n.as_str(), s.as_str())), Some(("close_window", "succeeded")));
    let page = app.visit(&format!("/runs/{run}")).await;
    assert!(page.text("[role=status]").contains("Rolled back automatically"));
    // The image the automatic rollback put back was deployed by the console, and says by whom.
    let deployments = app.visit("/deployments").await;
    assert!(!deployments.text("main").contains("not deployed through the console"), "{}", deployments.text("main"));
    assert!(deployments.has(&format!("a[href='/runs/{run}']")));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_failed_deployment_fails_the_run_and_still_closes_the_window(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    admin.set_fault("deploy_fails", true).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, run).await;
    assert_eq!(status, "failed");
    assert!(outcome.unwrap().contains("ended FAILED"));
    assert_eq!(running_tag(&app).await, "7f3c2a1", "App Runner keeps the old version");
    let statuses = step_statuses(&pool, run).await;
    assert_eq!(statuses[6], ("verify_health".into(), "skipped".into()));
    assert_eq!(statuses[7], ("close_window".into(), "succeeded".into()));
    let monitors = app.state.cloud.monitoring.as_ref().unwrap().monitors().await.unwrap();
    assert!(monitors.iter().all(|m| !m.paused), "the monitors run again after a failed deploy");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn rollback_rolling_and_emergency_restart_and_scaling(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let older = digest(&app, "c0ffee4").await;
    let page = app.visit("/deployments").await;
    assert!(page.has(&format!("a[href='/deployments/confirm?procedure=rollback&digest={older}']")));
    let rollback = start(&app, &[("procedure", "rollback"), ("digest", &older)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, rollback).await.0, "succeeded");
    assert_eq!(running_tag(&app).await, "c0ffee4");

    let restart = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, restart).await.0, "succeeded");
    assert_eq!(operations_during(&pool, restart, "START_DEPLOYMENT").await, 1);
    assert_eq!(running_tag(&app).await, "c0ffee4", "a rolling restart keeps the image");

    let confirm = app.visit("/deployments/confirm?procedure=emergency_restart").await;
    assert!(confirm.text("main").contains("Drop is DOWN for every user"), "the impact is stated");
    let unconfirmed = app.confirm_run(&[("procedure", "emergency_restart")]).await;
    assert_eq!(unconfirmed.status, 422);
    assert!(unconfirmed.text("#understood-error").contains("Tick the box"));
    let emergency = start(&app, &[("procedure", "emergency_restart"), ("understood", "yes")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, emergency).await.0, "succeeded");
    assert_eq!(operations_during(&pool, emergency, "PAUSE_SERVICE").await, 1);
    assert_eq!(operations_during(&pool, emergency, "RESUME_SERVICE").await, 1);
    assert_eq!(app.state.cloud.app_runner.service_status().await.unwrap().status, "RUNNING");

    let bad = app.confirm_run(&[("procedure", "scale"), ("min", "5"), ("max", "2")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text("#scaling-error").contains("minimum not above maximum"));
    assert_eq!(bad.attrs("#min", "value"), ["5"], "what was typed stays");
    let confirm = app.visit("/deployments/confirm?procedure=scale").await;
    assert!(confirm.text(".capacity-now").contains("active instance(s), CPU"), "the load now, to size the change by");
    let scale = start(&app, &[("procedure", "scale"), ("min", "2"), ("max", "6")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, scale).await.0, "succeeded");
    let checked: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select name, status, state ->> 'did' from console.run_steps where run_id = $1 and name in ('verify_serving', 'verify_instances') order by position",
    )
    .bind(scale)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(checked.len(), 2, "a scaling run ends by checking health and the instance count");
    assert!(checked.iter().all(|(_, status, _)| status == "succeeded"));
    assert_eq!(checked[1].2.as_deref(), Some("2 active instance(s), within 2 – 6"));
    assert_eq!(app.state.cloud.app_runner.scaling().await.unwrap(), Scaling { min: 2, max: 6 });
    assert!(app.visit("/deployments").await.text("main").contains("2 – 6 instances"));

    // App Runner takes the bounds but starts no instance: the run does not call that a success.
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    assert_eq!(admin.set_fault("instances_stuck", true).await.status, 303);
    let stuck = start(&app, &[("procedure", "scale"), ("min", "3"), ("max", "6")]).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, stuck).await;
    assert_eq!(status, "failed");
    let outcome = outcome.unwrap_or_default();
    assert!(outcome.contains("did not settle") && outcome.contains("1 active instance(s), outside 3 – 6"), "{outcome}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_cancelled_run_stops_before_its_next_step_and_cleans_up(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    // The worker stops just before opening the maintenance window (step 3)…
    let halt = Arc::new(|p: i32, ph: Phase| p == 3 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    let page = app.visit(&format!("/runs/{run}")).await;
    assert!(page.has(&format!("form[action='/runs/{run}/cancel']")));
    assert_eq!(app.cancel_run(run).await.status, 303);
    assert_eq!(app.cancel_run(run).await.status, 409, "once is enough");
    expire_lease(&pool, run).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, run).await;
    assert_eq!(status, "cancelled");
    assert_eq!(outcome.as_deref(), Some("Cancelled by Ola Oncall before anything changed: 7f3c2a1 still serves."));
    // The step in progress finished; nothing after it touched the service.
    let statuses = step_statuses(&pool, run).await;
    assert_eq!(statuses[3].1, "succeeded");
    assert!(statuses[4..7].iter().all(|(_, s)| s == "cancelled"), "{statuses:?}");
    assert_eq!(statuses[7].1, "succeeded", "the window is closed anyway");
    assert_eq!(operations_during(&pool, run, "UPDATE_SERVICE").await, 0);
    assert_eq!(running_tag(&app).await, "7f3c2a1");
    assert_eq!(
        crate::harness::audit_trail(&pool, "run_cancel_requested").await,
        crate::harness::intent_then_success(),
        "the refused second cancel left nothing"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn compliance_and_viewers_cannot_deploy(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), fast()).await;
    app.sign_in(&["compliance"]).await;
    assert_eq!(app.visit("/deployments/confirm?procedure=restart").await.status, 403);
    assert_eq!(app.confirm_run(&[("procedure", "restart")]).await.status, 403);
    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    let page = viewer.visit("/deployments").await;
    assert_eq!(page.status, 200);
    assert!(!page.has("a[href^='/deployments/confirm']"), "no buttons a viewer cannot use");
    assert_eq!(viewer.confirm_run(&[("procedure", "restart")]).await.status, 403);
    let runs: i64 = sqlx::query_scalar("select count(*) from console.runs").fetch_one(&pool).await.unwrap();
    assert_eq!(runs, 0);
    let denied: Vec<Value> =
        sqlx::query_scalar("select details from console.audit_entries where action = 'access_denied' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(denied.len() >= 3);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn bad_choices_are_explained_and_start_nothing(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let unknown = app.confirm_run(&[("procedure", "deploy"), ("digest", "sha256:nope")]).await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.text("main").contains("Choose a tagged image"));
    let odd = app.visit("/deployments/confirm?procedure=format_disk").await;
    assert_eq!(odd.status, 422);
    let runs: i64 = sqlx::query_scalar("select count(*) from console.runs").fetch_one(&pool).await.unwrap();
    assert_eq!(runs, 0);
}

/// The same procedures through the AWS adapter: RDS and ECR in moto, App Runner recorded,
/// health served by the recorded service.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn deploy_rollback_and_restart_through_the_aws_adapter(pool: PgPool) {
    use crate::aws::{create_instance, moto, sdk, unique};

    let sdk = sdk().await;
    let db = unique("drop-db");
    create_instance(&sdk, &db).await;
    let repo = unique("drop-web");
    let ecr =
        aws_sdk_ecr::Client::from_conf(aws_sdk_ecr::config::Builder::from(&sdk).endpoint_url(&moto().url).build());
    ecr.create_repository().repository_name(&repo).send().await.unwrap();
    let uri = format!("324480209768.dkr.ecr.eu-west-1.amazonaws.com/{repo}");
    let mut tags = std::collections::HashMap::new();
    let mut digests = std::collections::HashMap::new();
    for (n, tag) in ["7f3c2a1", "b2e9f14"].into_iter().enumerate() {
        let manifest = serde_json::json!({ "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023 + n, "digest": format!("sha256:{:064x}", n + 1) },
            "layers": [] });
        let put = ecr
            .put_image()
            .repository_name(&repo)
            .image_manifest(manifest.to_string())
            .image_tag(tag)
            .send()
            .await
            .unwrap();
        let digest = put.image().and_then(|i| i.image_id()).and_then(|i| i.image_digest()).unwrap().to_owned();
        tags.insert(format!("{uri}@{digest}"), tag.to_owned());
        tags.insert(format!("{uri}:{tag}"), tag.to_owned());
        digests.insert(tag, digest);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // distinct push times
    }
    let mock =
        crate::apprunner::MockAppRunner::start(&format!("{uri}:7f3c2a1"), tags, std::time::Duration::from_millis(60))
            .await;
    let mut config = fast();
    config.aws.endpoints.rds = Some(moto().url.clone());
    config.aws.endpoints.ecr = Some(moto().url.clone());
    config.drop.rds_instance = Some(db.clone());
    config.drop.ecr_repository = Some(repo);
    let app = crate::apprunner::console_on_aws(pool.clone(), config, &sdk, &mock).await;

    let page = app.visit("/deployments").await;
    assert!(
        page.has(&format!("a[href='/deployments/confirm?procedure=deploy&digest={}']", digests["b2e9f14"])),
        "{}",
        page.body
    );
    let deploy = start(&app, &[("procedure", "deploy"), ("digest", &digests["b2e9f14"])]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, deploy).await, ("succeeded".into(), None));
    assert!(mock.image().ends_with(&format!("@{}", digests["b2e9f14"])), "pinned by digest: {}", mock.image());
    assert_eq!(mock.calls("UpdateService"), 1);
    let snapshot: String = sqlx::query_scalar("select params ->> 'snapshot_id' from console.runs where id = $1")
        .bind(deploy)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(snapshot.starts_with(&format!("{db}-pre-deploy-")));
    assert!(app.state.cloud.rds.snapshot(&snapshot).await.unwrap().is_some(), "the snapshot is in RDS");

    let rollback = start(&app, &[("procedure", "rollback"), ("digest", &digests["7f3c2a1"])]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, rollback).await.0, "succeeded");
    assert!(mock.image().ends_with(&format!("@{}", digests["7f3c2a1"])));
    assert_eq!(mock.calls("UpdateService"), 2);

    let restart = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, restart).await.0, "succeeded");
    assert_eq!(mock.calls("StartDeployment"), 1);
}

/// A CI status endpoint answering `state` per commit, as GitHub's combined status does; for
/// the `broken` commit it answers HTTP 500.
async fn ci_status(green: &'static str, broken: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/commits/{sha}/status",
        axum::routing::get(
            move |axum::extract::Path(sha): axum::extract::Path<String>, headers: axum::http::HeaderMap| async move {
                assert_eq!(headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer ci-read-token"));
                let state = if sha == green { "success" } else { "pending" };
                let status = if sha == broken {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                };
                (status, axum::Json(serde_json::json!({ "state": state, "sha": sha })))
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{url}/commits/{{sha}}/status")
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_deploy_needs_green_ci_when_ci_is_configured(pool: PgPool) {
    let ci = ci_status("7f3c2a1", "c0ffee4").await;
    let config = config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__CI_STATUS_URL", ci.as_str()),
        ("DROPOPS_RUNS__CI_TOKEN", "ci-read-token"),
    ]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, run).await;
    assert_eq!(status, "failed");
    assert!(outcome.unwrap().contains("CI is not green for b2e9f14 (state: pending)"));
    assert_eq!(operations_during(&pool, run, "UPDATE_SERVICE").await, 0, "nothing was changed");
    let snapshots: i64 =
        sqlx::query_scalar("select count(*) from console.sim_snapshots").fetch_one(&pool).await.unwrap();
    assert_eq!(snapshots, 0, "not even the snapshot");
    // CI that cannot answer stops the deploy the same way, saying why.
    let broken = start(&app, &[("procedure", "deploy"), ("digest", &digest(&app, "c0ffee4").await)]).await;
    drive(&app).await;
    assert!(run_row(&pool, broken).await.1.unwrap().contains("could not be read (HTTP 500): nothing was changed"));
    assert_eq!(operations_during(&pool, broken, "UPDATE_SERVICE").await, 0);
    // A green commit deploys.
    let older = digest(&app, "c0ffee4").await;
    let rollback = start(&app, &[("procedure", "rollback"), ("digest", &older)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, rollback).await.0, "succeeded", "a rollback does not wait for CI");
    let green = digest(&app, "7f3c2a1").await;
    let deploy = start(&app, &[("procedure", "deploy"), ("digest", &green)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, deploy).await.0, "succeeded");
}

/// In demo mode the simulator plays CI and the monitoring relay, so training meets both: a red
/// CI stops a deploy before anything changes; a relay that is down is said in the run, which
/// carries on.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn in_demo_mode_the_simulator_plays_ci_and_the_monitoring_relay(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let window = |run: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "select state ->> 'webhook' from console.run_steps where run_id = $1 and name = 'open_window'",
            )
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let switch = |name: &'static str, on: bool| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "insert into console.sim_faults (name, active, changed_by) values ($1, $2, 'test')
                 on conflict (name) do update set active = excluded.active",
            )
            .bind(name)
            .bind(on)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    switch("ci_failing", true).await;
    let newest = digest(&app, "b2e9f14").await;
    let red = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    assert!(run_row(&pool, red).await.1.unwrap().contains("CI is not green for b2e9f14 (state: failure)"));
    assert_eq!(operations_during(&pool, red, "UPDATE_SERVICE").await, 0, "nothing was changed");
    switch("ci_failing", false).await;
    switch("monitoring_unreachable", true).await;
    let unannounced = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, unannounced).await.0, "succeeded", "a relay that is down does not stop a deploy");
    assert_eq!(window(unannounced).await, "did not answer");
    let log = app.visit(&format!("/runs/{unannounced}")).await.text(".run-log");
    assert!(log.contains("WARNING: BetterStack could not be read"), "never a silent skip: {log}");
    switch("monitoring_unreachable", false).await;
    let older = digest(&app, "7f3c2a1").await;
    let announced = start(&app, &[("procedure", "deploy"), ("digest", &older)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, announced).await.0, "succeeded");
    assert_eq!(window(announced).await, "told");
    let log = app.visit(&format!("/runs/{announced}")).await.text(".run-log");
    assert!(log.contains("paused at BetterStack: Drop health, Drop landing page, Drop health from US east"), "{log}");
    assert!(log.contains("monitors resumed at BetterStack"), "{log}");
    let monitors = app.state.cloud.monitoring.as_ref().unwrap().monitors().await.unwrap();
    assert!(monitors.iter().all(|m| !m.paused), "every monitor runs again");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_manual_snapshot_and_a_restore_drill_from_the_database_page(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let page = app.visit("/database").await;
    assert!(page.has("a[href='/database/confirm?procedure=snapshot']"));
    assert!(page.texts("table.snapshots tbody tr").len() >= 7, "the nightly snapshots are listed");
    let confirm = app.visit("/database/confirm?procedure=snapshot").await;
    assert!(confirm.text("main").contains("production — RDS instance drop-db in eu-west-1"));
    assert!(!confirm.text("main").contains("Running now"), "a snapshot does not touch the service");
    let snapshot = start(&app, &[("procedure", "snapshot")]).await;
    // Followed live while it runs; once it has ended, polling is told to stop (htmx's 286).
    assert_eq!(app.visit_htmx(&format!("/runs/{snapshot}")).await.status, 200);
    drive(&app).await;
    assert_eq!(run_row(&pool, snapshot).await.0, "succeeded");
    let ended = app.visit_htmx(&format!("/runs/{snapshot}")).await;
    assert_eq!(ended.status, 286, "the page stops polling a run that has ended");
    assert!(ended.has("#steps-title"), "with the final progress swapped in");
    let page = app.visit(&format!("/runs/{snapshot}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.texts("nav a[aria-current=page]"), ["Database"], "a snapshot run is under Database");
    assert_eq!(page.attrs("main p.muted a", "href")[0], "/database");
    let id: String = sqlx::query_scalar("select params ->> 'snapshot_id' from console.runs where id = $1")
        .bind(snapshot)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(id.starts_with("drop-db-manual-"), "{id}");
    assert_eq!(app.state.cloud.rds.snapshot(&id).await.unwrap().unwrap().status, "available");
    assert!(app.visit("/database").await.has(&format!("tr[data-snapshot='{id}']")));

    let confirm = app.visit("/database/confirm?procedure=restore_drill").await;
    assert!(confirm.text("main").contains("deleted again — even if a step fails"));
    let drill = start(&app, &[("procedure", "restore_drill"), ("reason", "monthly check")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, drill).await.0, "succeeded");
    let (instance, deleted): (String, bool) =
        sqlx::query_as("select id, deleted_at is not null from console.sim_instances").fetch_one(&pool).await.unwrap();
    assert!(instance.starts_with("drop-db-restore-drill-"));
    assert!(deleted, "the temporary instance is gone again");
    let facts: Value =
        sqlx::query_scalar("select facts from console.runs where id = $1").bind(drill).fetch_one(&pool).await.unwrap();
    assert_eq!(facts["drill_engine"], "postgres 16.4", "the restored instance was checked");
    // Its data was compared with production and the time to a verified copy recorded.
    assert!(facts["rto_minutes"].as_i64().is_some(), "{facts}");
    assert_eq!(facts["checks"].as_array().map(Vec::len), Some(4), "Drop's four main tables");
    let monthly = app.visit("/health/checks/monthly").await;
    assert!(
        monthly.text("[data-item='restore_drill']").contains("verified the copy"),
        "the checklist measures the drill"
    );
    assert!(app.visit("/database").await.has(&format!("tr[data-run='{drill}']")));
    // A deploy may run meanwhile: snapshots and drills lock the database, not the service.
    let run = start(&app, &[("procedure", "restart")]).await;
    let meanwhile = app.confirm_run(&[("procedure", "snapshot")]).await;
    assert_eq!(
        app.submit("/deployments/runs", &[("procedure", "snapshot")]).await.status,
        422,
        "each area starts only its own procedures"
    );
    assert_eq!(meanwhile.status, 303, "the database is free while the service restarts");
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_maintenance_window_is_announced_to_the_monitoring_webhook(pool: PgPool) {
    let told = Arc::new(std::sync::Mutex::new(Vec::<(String, String, Value)>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/maintenance", listener.local_addr().unwrap());
    let seen = told.clone();
    let receiver = axum::Router::new().route(
        "/maintenance",
        axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| async move {
            let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            seen.lock().unwrap().push((body["event"].as_str().unwrap_or_default().to_owned(), key, body));
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let config = config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__MAINTENANCE_WEBHOOK", hook.as_str()),
    ]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    // Stopped just before the deployment: the window is open, and the dashboard says so.
    let halt = Arc::new(|p: i32, ph: Phase| p == 4 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    assert!(app.visit("/health").await.text(".maintenance-window").contains("open until"));
    expire_lease(&pool, run).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    let told = told.lock().unwrap().clone();
    let events: Vec<(&str, &str)> = told.iter().map(|(e, k, _)| (e.as_str(), k.as_str())).collect();
    assert_eq!(events, [("opened", format!("{run}-opened").as_str()), ("closed", format!("{run}-closed").as_str())]);
    assert_eq!(told[0].2["service"], "drop-web");
    assert!(told[0].2["ends_at"].is_string(), "monitoring knows when the window ends");
    assert!(told[1].2["ends_at"].is_null(), "a closed window has no end to announce");
    assert_eq!(told[0].2["run_id"], run.to_string());
    assert!(told[0].2["reason"].as_str().unwrap().contains("deploy by Ola Oncall"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_emergency_restart_whose_pause_fails_leaves_the_service_as_it_was(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    // Someone started a deployment in the AWS console: App Runner refuses to pause.
    app.state.cloud.app_runner.start_deployment().await.unwrap();
    // It lasts as long as a real one, however slowly this machine drives the run.
    sqlx::query(
        "update console.sim_operations set ends_at = now() + interval '1 hour' where kind = 'START_DEPLOYMENT'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let run = start(&app, &[("procedure", "emergency_restart"), ("understood", "yes")]).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, run).await;
    assert_eq!(status, "failed");
    assert!(outcome.unwrap().contains("OPERATION_IN_PROGRESS"));
    let statuses = step_statuses(&pool, run).await;
    let names: Vec<(&str, &str)> = statuses.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    assert_eq!(
        names,
        [
            ("open_window", "succeeded"),
            ("pause", "failed"),
            ("wait_paused", "skipped"),
            ("resume", "succeeded"),
            ("wait_resumed", "succeeded"),
            ("verify_health", "skipped"),
            ("close_window", "succeeded")
        ],
        "nothing to resume after a pause that never happened"
    );
    assert_eq!(operations_during(&pool, run, "RESUME_SERVICE").await, 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn metrics_count_active_runs_and_those_no_replica_drives(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let run = start(&app, &[("procedure", "restart")]).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains(r#"dropops_runs_active{procedure="restart"} 1"#), "{metrics}");
    assert!(metrics.contains("dropops_runs_unattended 0"));
    // Ten minutes later nobody has claimed it: every replica's worker is down.
    sqlx::query("update console.runs set created_at = now() - interval '10 minutes' where id = $1")
        .bind(run)
        .execute(&pool)
        .await
        .unwrap();
    assert!(app.metrics().await.contains("dropops_runs_unattended 1"), "alert-worthy");
    drive(&app).await;
    let after = app.metrics().await;
    assert!(!after.contains("dropops_runs_active{"), "{after}");
    assert!(after.contains("dropops_runs_unattended 0"));
}

/// The service runs a tag reference (the seeded state, or a deploy made outside the console):
/// "Running now" is the image that tag names, not the one about to be deployed; an image ECR
/// cannot resolve is "unknown", and deploying then needs an explicit acknowledgement that
/// there is no automatic rollback.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_deploy_confirmation_names_what_really_runs_or_says_unknown(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let newest = digest(&app, "b2e9f14").await;
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={newest}")).await;
    let reference: String = sqlx::query_scalar("select image from console.sim_service").fetch_one(&pool).await.unwrap();
    assert!(reference.ends_with(":7f3c2a1"), "the seeded service runs a tag reference: {reference}");
    let facts = confirm.text("dl.facts");
    assert!(confirm.texts("dl.facts dd")[1].starts_with("7f3c2a1"), "running now: {facts}");
    assert!(facts.contains("rolls back to 7f3c2a1"), "{facts}");
    assert!(!confirm.has("input[name=understood]"), "a known rollback target needs no acknowledgement");

    // Someone deployed a tag that is not (or no longer) in ECR.
    sqlx::query("update console.sim_service set image = regexp_replace(image, ':[^:]+$', ':hotfix-outside')")
        .execute(&pool)
        .await
        .unwrap();
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={newest}")).await;
    let facts = confirm.text("dl.facts");
    assert!(facts.contains("Unknown") && facts.contains("hotfix-outside"), "{facts}");
    assert!(facts.contains("NO automatic rollback"), "{facts}");
    let refused = app.confirm_run(&[("procedure", "deploy"), ("digest", &newest), ("reason", "release")]).await;
    assert_eq!(refused.status, 422, "not without the acknowledgement");
    assert!(refused.text("#understood-error").contains("without an automatic rollback"), "{}", refused.body);
    let run =
        start(&app, &[("procedure", "deploy"), ("digest", &newest), ("reason", "release"), ("understood", "yes")])
            .await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    let facts: Value =
        sqlx::query_scalar("select facts from console.runs where id = $1").bind(run).fetch_one(&pool).await.unwrap();
    assert_eq!(facts["previous_tag"], "unknown");
    assert!(facts["previous_image"].is_null(), "no guessed rollback target: {facts}");
}

/// A production deploy says why, next to the field; nothing starts without it, and no reason
/// anywhere is unbounded.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_production_deploy_needs_a_bounded_reason(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let newest = digest(&app, "b2e9f14").await;
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={newest}")).await;
    assert!(confirm.has("input#reason[required]"));
    let missing = app.confirm_run(&[("procedure", "deploy"), ("digest", &newest), ("reason", "  ")]).await;
    assert_eq!(missing.status, 422);
    assert!(missing.text("#reason-error").contains("why you deploy"), "{}", missing.body);
    let long = "x".repeat(dropops::audit::Reason::MAX + 1);
    let too_long = app.confirm_run(&[("procedure", "restart"), ("reason", &long)]).await;
    assert_eq!(too_long.status, 422);
    assert!(too_long.text("#reason-error").contains("under 2000 characters"), "{}", too_long.body);
    let runs: i64 = sqlx::query_scalar("select count(*) from console.runs").fetch_one(&pool).await.unwrap();
    assert_eq!(runs, 0, "nothing started");
    let rotation = app.confirm_rotation(&[("secret", "jwt_secret"), ("understood", "yes"), ("reason", &long)]).await;
    assert_eq!(rotation.status, 422);
    assert!(rotation.has("#reason-error"));
}

/// The run page reads as a record of events: headings without guesswork, one line per event
/// with its evidence, and the next sensible action on a finished deploy.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_finished_run_reads_well_and_offers_what_comes_next(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    let page = app.visit(&format!("/runs/{run}")).await;
    assert_eq!(page.text("h1").split_whitespace().take(2).collect::<Vec<_>>(), ["Deploy", "b2e9f14"]);
    let log = page.text(".run-steps");
    assert!(!log.contains("Started:"), "no Started/Done pairs: {log}");
    assert!(log.contains("Done: health ok, version b2e9f14"), "the health step records its evidence: {log}");
    let actions = page.texts("a.next-action");
    assert_eq!(actions, ["Roll back to 7f3c2a1"], "{actions:?}");
    let back = page.attrs("a.next-action", "href").pop().unwrap();
    let confirm = app.visit(&back).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text("h1").contains("Roll back production to 7f3c2a1"), "{}", confirm.text("h1"));

    let rollback = start(&app, &[("procedure", "rollback"), ("digest", &digest(&app, "7f3c2a1").await)]).await;
    drive(&app).await;
    assert!(app.visit(&format!("/runs/{rollback}")).await.text("h1").starts_with("Rollback to 7f3c2a1"));
    let rotation =
        app.confirm_rotation(&[("secret", "jwt_secret"), ("understood", "yes"), ("reason", "schedule")]).await;
    let title = app.visit(rotation.location()).await.text("h1");
    assert!(title.starts_with("JWT secret rotation") && !title.contains("7f3c2a1"), "{title}");
}

/// The restore drill's data check against two real databases: production (the test's) and a
/// copy made from it, as a restored snapshot would be; then the copy loses rows.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_restore_drill_compares_the_copy_with_production_and_says_when_it_cannot_reach_it(pool: PgPool) {
    use dropops::runs::drill;
    dropops::demo::seed_if_empty(&pool, dropops::demo::DEFAULT_SEED).await.unwrap();
    let name = format!("drill_copy_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}")).execute(&pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let base = base.rsplit_once('/').unwrap().0.to_owned();
    let copy = sqlx::PgPool::connect(&format!("{base}/{name}")).await.unwrap();
    for file in ["20261101000001_dropapp_runbook.sql", "20261101000002_dropapp_demo_columns.sql"] {
        let sql = std::fs::read_to_string(format!("{}/fixtures/dropapp/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        sqlx::raw_sql(&sql).execute(&copy).await.unwrap();
    }
    // The snapshot: every row as production has it now.
    for table in drill::TABLES {
        let rows: serde_json::Value =
            sqlx::query_scalar(&format!("select coalesce(jsonb_agg(t), '[]') from {table} t"))
                .fetch_one(&pool)
                .await
                .unwrap();
        sqlx::query(&format!("insert into {table} select * from jsonb_populate_recordset(null::{table}, $1)"))
            .bind(rows)
            .execute(&copy)
            .await
            .unwrap();
    }
    let checks = drill::compare(&pool, &copy, 0.1).await.unwrap();
    assert_eq!(checks.len(), 4);
    assert!(checks.iter().all(|c| c.ok && c.copy_rows == c.production_rows && c.copy_rows > 0), "{checks:?}");
    // Production moves on after the snapshot: still the same copy.
    sqlx::query("update transactions set created_at = now() + interval '1 minute' where id = (select id from transactions order by id limit 1)")
        .execute(&pool)
        .await
        .unwrap();
    // The copy lost a tenth of its transactions: the check fails, naming the table.
    sqlx::query(
        "delete from transactions t where not exists (select 1 from aml_alerts a where a.transaction_id = t.id)
           and id in (select id from transactions order by id limit (select count(*) / 10 from transactions))",
    )
    .execute(&copy)
    .await
    .unwrap();
    let checks = drill::compare(&pool, &copy, 0.1).await.unwrap();
    let wrong: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.table).collect();
    assert_eq!(wrong, ["transactions"]);
    copy.close().await;
    sqlx::query(&format!("drop database {name} with (force)")).execute(&pool).await.unwrap();

    // An instance in a network the console cannot reach is said to be just that.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let why = drill::connect("127.0.0.1", port, "dropapp", "drill_reader", "x").await.unwrap_err();
    assert!(why.contains("cannot reach the drill instance") && why.contains("network"), "{why}");
}

//! Staging first (issue 20): images go to Fly.io staging as runs — machines updated one at a
//! time through the Machines API, staging's health checked, the pass recorded — and a
//! production deploy of an image that never passed staging needs "skip staging" and a reason.
//! Fly.io's request shapes are checked against a local server that answers as Fly does.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{TestApp, config_with};
use crate::runs::{digest, drive, start};

/// The simulated world at a thousandth of real time, with a short deadline for machines that
/// never come up.
fn fast() -> dropops::config::Config {
    config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__HEALTH_TIMEOUT_SECS", "2"),
        ("DROPOPS_RUNS__DEPLOY_TIMEOUT_SECS", "2"),
    ])
}

async fn oncall(pool: PgPool) -> TestApp {
    let app = TestApp::spawn_with(pool, fast()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    app
}

async fn run_row(pool: &PgPool, run: Uuid) -> (String, String, String, Value) {
    sqlx::query_as("select status, environment, target, params from console.runs where id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn log_lines(app: &TestApp, run: Uuid) -> Vec<String> {
    dropops::runs::log(&app.state.pool, run).await.unwrap().into_iter().map(|l| l.line).collect()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_image_deployed_to_staging_is_recorded_as_passed_and_production_reads_it(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let c0ffee4 = digest(&app, "c0ffee4").await;
    let page = app.visit("/deployments").await;
    assert!(page.has(&format!("a.to-staging[href='/deployments/confirm?procedure=staging_deploy&digest={c0ffee4}']")));
    assert_eq!(page.texts("table.releases tr[data-release]").len(), 4, "CI's releases, from Fly.io");

    let confirm = app.visit(&format!("/deployments/confirm?procedure=staging_deploy&digest={c0ffee4}")).await;
    assert_eq!(confirm.status, 200);
    let text = confirm.text("main");
    assert!(text.contains("Deploy c0ffee4 to staging") && text.contains("Production is not touched"), "{text}");
    assert!(text.contains("registry.fly.io/drop-staging:c0ffee4"), "the image staging pulls is said");
    assert!(text.contains("b2e9f14 on 2 machine(s), all healthy"), "what staging runs now: {text}");

    let run = start(&app, &[("procedure", "staging_deploy"), ("digest", &c0ffee4)]).await;
    drive(&app).await;
    let (status, environment, target, params) = run_row(&pool, run).await;
    assert_eq!((status.as_str(), environment.as_str(), target.as_str()), ("succeeded", "staging", "fly:drop-staging"));
    assert_eq!(params["digest"], c0ffee4.as_str());
    let machines = app.state.cloud.staging.as_ref().unwrap().machines().await.unwrap();
    assert!(machines.iter().all(|m| m.tag.as_deref() == Some("c0ffee4") && m.healthy()), "{machines:?}");
    let lines = log_lines(&app, run).await;
    let replaced =
        |id: &str| lines.iter().position(|l| l.starts_with(&format!("machine {id}")) && l.contains("being replaced"));
    let (first, second) = (replaced("3d8d9016b5e7e8").unwrap(), replaced("e8204d7a1b09f8").unwrap());
    assert!(first < second, "one machine after the other: {lines:#?}");
    assert_eq!(crate::harness::audit_trail(&pool, "fly_machines_update").await, crate::harness::intent_then_success());

    // The image shows as passed; production's confirmation reads the pass and asks nothing more.
    let page = app.visit("/deployments").await;
    let row = page.text(&format!("tr[data-image='{c0ffee4}']"));
    assert!(row.contains("Passed staging"), "{row}");
    assert_eq!(page.attrs(&format!("tr[data-image='{c0ffee4}'] a.badge"), "href"), [format!("/runs/{run}")]);
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={c0ffee4}")).await;
    assert!(confirm.text(".staging-gate").contains("passed staging"));
    assert!(!confirm.has("input[name=skip_staging]"));
    let deploy = start(&app, &[("procedure", "deploy"), ("digest", &c0ffee4), ("skip_staging", "")]).await;
    let (_, environment, _, params) = run_row(&pool, deploy).await;
    assert_eq!(environment, "production");
    assert_eq!(params["staging"]["verdict"], "passed");
    assert_eq!(params["staging"]["run_id"], run.to_string());
    // A succeeded staging run offers production next.
    let run_page = app.visit(&format!("/runs/{run}")).await;
    assert_eq!(
        run_page.attrs("a.next-action", "href"),
        [format!("/deployments/confirm?procedure=deploy&digest={c0ffee4}")]
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn production_asks_to_skip_staging_with_a_reason_for_an_image_that_never_passed_it(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let never = digest(&app, "5d1e9b2").await;
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={never}")).await;
    assert!(confirm.has("input[name=skip_staging]"), "{}", confirm.body);
    assert_eq!(
        confirm.attrs(".staging-gate a", "href"),
        [format!("/deployments/confirm?procedure=staging_deploy&digest={never}")]
    );

    let fields = [("procedure", "deploy"), ("digest", never.as_str()), ("reason", "release")];
    let refused = app.confirm_run(&fields).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text("#skip-error").contains("has not passed staging"));
    let unexplained = app.confirm_run(&[&fields[..], &[("skip_staging", "yes"), ("skip_reason", " ")]].concat()).await;
    assert_eq!(unexplained.status, 422);
    assert!(!unexplained.text("#skip-reason-error").is_empty());
    assert_eq!(unexplained.attrs("input[name=skip_staging]", "checked").len(), 1, "the tick is kept");
    let runs: i64 = sqlx::query_scalar("select count(*) from console.runs").fetch_one(&pool).await.unwrap();
    assert_eq!(runs, 0, "nothing started");

    let skipped = [("skip_staging", "yes"), ("skip_reason", "staging is down; this hotfix stops failed payouts")];
    let run = start(&app, &[&fields[..], &skipped[..]].concat()).await;
    let (_, _, _, params) = run_row(&pool, run).await;
    assert_eq!(
        params["staging"],
        json!({ "verdict": "skipped", "reason": "staging is down; this hotfix stops failed payouts" })
    );
    let started: Value = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'run_started' and resource_id = $1 and kind = 'intent'",
    )
    .bind(run.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(started["params"]["staging"]["verdict"], "skipped", "the skip is in the audit row: {started}");
    let page = app.visit(&format!("/runs/{run}")).await;
    assert!(
        page.text(".staging-check").contains("staging skipped: staging is down"),
        "{}",
        page.text(".staging-check")
    );

    // What staging runs healthily now (CI deployed it there) passes, and says so.
    let newest = digest(&app, "b2e9f14").await;
    let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={newest}")).await;
    assert!(confirm.text(".staging-gate").contains("healthy on staging"), "{}", confirm.body);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_staging_run_that_fails_stops_at_the_machine_and_staging_rolls_back(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let c0ffee4 = digest(&app, "c0ffee4").await;
    let first = start(&app, &[("procedure", "staging_deploy"), ("digest", &c0ffee4)]).await;
    // One staging run at a time; production is another target and is not held up.
    let b2 = digest(&app, "b2e9f14").await;
    let second = app.confirm_run(&[("procedure", "staging_deploy"), ("digest", &b2)]).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(second.text("main").contains("staging deploy"));
    let restart = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, first).await.0, "succeeded");
    assert_eq!(run_row(&pool, restart).await.0, "succeeded");

    // The newest release is broken: its first machine never passes its checks.
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    assert_eq!(admin.set_fault("release_unhealthy", true).await.status, 303);
    let broken = start(&app, &[("procedure", "staging_deploy"), ("digest", &b2)]).await;
    drive(&app).await;
    let (status, ..) = run_row(&pool, broken).await;
    assert_eq!(status, "failed");
    let page = app.visit(&format!("/runs/{broken}")).await;
    assert!(page.text("main").contains("machine 3d8d9016b5e7e8 (iad) on b2e9f14 is started, 0 of 1 checks passing"));
    let machines = app.state.cloud.staging.as_ref().unwrap().machines().await.unwrap();
    let tags: Vec<_> = machines.iter().map(|m| m.tag.clone().unwrap()).collect();
    assert_eq!(tags.iter().filter(|t| *t == "c0ffee4").count(), 1, "the machine after it was left as it was: {tags:?}");
    let back = "/deployments/confirm?procedure=staging_rollback&tag=c0ffee4";
    assert!(
        page.attrs("a.next-action", "href").contains(&back.to_owned()),
        "{:?}",
        page.attrs("a.next-action", "href")
    );
    let passes: i64 = sqlx::query_scalar("select count(*) from console.staging_passes where tag = 'b2e9f14'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(passes, 0, "a failed run records no pass");

    let confirm = app.visit(back).await;
    assert!(confirm.text("h1").contains("Roll staging back to c0ffee4"));
    let rollback = start(&app, &[("procedure", "staging_rollback"), ("tag", "c0ffee4")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, rollback).await.0, "succeeded");
    let machines = app.state.cloud.staging.as_ref().unwrap().machines().await.unwrap();
    assert!(machines.iter().all(|m| m.tag.as_deref() == Some("c0ffee4") && m.healthy()));
}

/// Fly.io as documented, for one app: machines with a whole configuration, updated by POSTing
/// the configuration back with `current_version`; a replaced machine fails its check for the
/// next two reads; releases through GraphQL.
#[derive(Default)]
struct Fly {
    machines: Vec<Value>,
    /// (machine, image) of every accepted update, and whether every machine already on that
    /// image passed its checks when it came.
    updates: Vec<(String, String, bool)>,
    /// Reads left before a replaced machine's check passes, by machine.
    starting: std::collections::HashMap<String, u32>,
    /// The next update is answered 429.
    throttle_next: bool,
    /// Requests whose body was not what Fly expects.
    malformed: Vec<String>,
}

type Shared = Arc<Mutex<Fly>>;

fn fly_machine(id: &str, region: &str, tag: &str) -> Value {
    json!({
        "id": id, "name": format!("drop-staging-{region}"), "state": "started", "region": region,
        "instance_id": format!("01J{id}"),
        "image_ref": { "registry": "registry.fly.io", "repository": "drop-staging", "tag": tag, "digest": "sha256:abc" },
        "config": {
            "image": format!("registry.fly.io/drop-staging:{tag}"),
            "env": { "PRIMARY_REGION": "arn", "NODE_ENV": "staging" },
            "guest": { "cpu_kind": "shared", "cpus": 1, "memory_mb": 512 },
            "services": [{ "protocol": "tcp", "internal_port": 3000, "ports": [{ "port": 443, "handlers": ["tls", "http"] }] }],
            "metadata": { "fly_process_group": "app", "fly_release_version": "7" }
        },
        "checks": [{ "name": "servicecheck-00-http-3000", "status": "passing", "output": "" }]
    })
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer fly-test-token")
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "Authenticate: token validation error" }))).into_response()
}

/// A machine as read now: a replaced one fails its check until its reads are used up.
fn read(fly: &mut Fly, index: usize) -> Value {
    let id = fly.machines[index]["id"].as_str().unwrap().to_owned();
    let mut machine = fly.machines[index].clone();
    if let Some(left) = fly.starting.get_mut(&id) {
        if *left > 0 {
            *left -= 1;
            machine["checks"][0]["status"] = "critical".into();
        }
    }
    machine
}

async fn list(State(fly): State<Shared>, Path(app): Path<String>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    if app != "drop-staging" {
        return (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "app not found" }))).into_response();
    }
    let mut fly = fly.lock().unwrap();
    let all: Vec<Value> = (0..fly.machines.len()).map(|i| read(&mut fly, i)).collect();
    axum::Json(all).into_response()
}

async fn one(State(fly): State<Shared>, Path((_, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let fly = fly.lock().unwrap();
    match fly.machines.iter().find(|m| m["id"] == id.as_str()) {
        Some(m) => axum::Json(m.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "machine not found" }))).into_response(),
    }
}

async fn update(
    State(fly): State<Shared>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let mut fly = fly.lock().unwrap();
    if std::mem::take(&mut fly.throttle_next) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
    }
    let Some(index) = fly.machines.iter().position(|m| m["id"] == id.as_str()) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "machine not found" }))).into_response();
    };
    let current = fly.machines[index].clone();
    if body["current_version"] != current["instance_id"] {
        return (StatusCode::PRECONDITION_FAILED, axum::Json(json!({ "error": "machine version mismatch" })))
            .into_response();
    }
    let image = body["config"]["image"].as_str().unwrap_or_default().to_owned();
    let mut expected = current["config"].clone();
    expected["image"] = image.clone().into();
    if body["config"] != expected {
        fly.malformed.push(format!("{id}: {body}"));
        return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "the whole config is required" })))
            .into_response();
    }
    let others_ready = fly
        .machines
        .iter()
        .filter(|m| m["config"]["image"] == image.as_str() && m["id"] != id.as_str())
        .all(|m| fly.starting.get(m["id"].as_str().unwrap()).is_none_or(|left| *left == 0));
    fly.updates.push((id.clone(), image.clone(), others_ready));
    let tag = image.rsplit(':').next().unwrap_or_default().to_owned();
    let machine = &mut fly.machines[index];
    machine["config"] = body["config"].clone();
    machine["image_ref"]["tag"] = tag.into();
    machine["instance_id"] = format!("01J{id}-{}", Uuid::new_v4().simple()).into();
    fly.starting.insert(id, 2);
    axum::Json(fly.machines[index].clone()).into_response()
}

async fn graphql(headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    if !authorised(&headers) {
        return unauthorised();
    }
    let query = body["query"].as_str().unwrap_or_default();
    if !query.contains("releasesUnprocessed") || body["variables"]["appName"] != "drop-staging" {
        return axum::Json(json!({ "errors": [{ "message": "Could not find App" }] })).into_response();
    }
    let limit = body["variables"]["limit"].as_u64().unwrap_or(0) as usize;
    let nodes: Vec<Value> = [(8, "b2e9f14", "complete"), (7, "c0ffee4", "complete"), (6, "5d1e9b2", "failed")]
        .into_iter()
        .take(limit)
        .map(|(version, tag, status)| {
            json!({
                "id": format!("rel_{version}"), "version": version, "description": "Release", "reason": "release",
                "status": status, "imageRef": format!("registry.fly.io/drop-staging:{tag}"), "stable": status == "complete",
                "user": { "id": "u1", "email": "ci@getdrop.no", "name": "" }, "createdAt": format!("2026-12-0{version}T08:00:00Z")
            })
        })
        .collect();
    axum::Json(json!({ "data": { "app": { "releases": { "nodes": nodes } } } })).into_response()
}

async fn local_fly(fly: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/v1/apps/{app}/machines", axum::routing::get(list))
        .route("/v1/apps/{app}/machines/{id}", axum::routing::get(one).post(update))
        .route("/graphql", axum::routing::post(graphql))
        .with_state(fly);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

async fn with_local_fly(pool: PgPool, machines: Vec<Value>) -> (TestApp, Shared) {
    let fly: Shared = Arc::new(Mutex::new(Fly { machines, ..Default::default() }));
    let url = local_fly(fly.clone()).await;
    let graphql = format!("{url}/graphql");
    let mut vars = vec![
        ("DROPOPS_FLY__TOKEN", "fly-test-token"),
        ("DROPOPS_FLY__API_URL", url.as_str()),
        ("DROPOPS_FLY__GRAPHQL_URL", graphql.as_str()),
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__HEALTH_TIMEOUT_SECS", "2"),
    ];
    vars.push(("DROPOPS_RUNS__RETRY_LIMIT_SECS", "30"));
    let app = TestApp::spawn_with(pool, config_with(&vars)).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    (app, fly)
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn flys_machines_api_is_updated_one_machine_at_a_time_with_the_whole_config(pool: PgPool) {
    let machines =
        vec![fly_machine("e82d4d7a1b09f8", "arn", "c0ffee4"), fly_machine("3d8d9016b5e7e8", "iad", "c0ffee4")];
    let (app, fly) = with_local_fly(pool.clone(), machines).await;
    let page = app.visit("/deployments").await;
    let releases = page.texts("table.releases tr[data-release]");
    assert_eq!(releases.len(), 3, "{releases:?}");
    assert!(releases[0].contains("v8") && releases[0].contains("b2e9f14") && releases[0].contains("ci@getdrop.no"));
    assert!(page.text("tr[data-release='6']").contains("failed"));
    let c0 = digest(&app, "c0ffee4").await;
    assert!(page.text("tr[data-release='7']").contains("On staging"));
    assert_eq!(
        page.attrs("tr[data-release='6'] a", "href"),
        [format!("/deployments/confirm?procedure=staging_rollback&digest={}", digest(&app, "5d1e9b2").await)]
    );
    assert!(!page.has(&format!("a.to-staging[href$='{c0}']")), "what staging runs healthily is not offered again");

    // b2e9f14: the version the played staging health endpoint reports.
    fly.lock().unwrap().throttle_next = true;
    let b2 = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "staging_deploy"), ("digest", &b2)]).await;
    drive(&app).await;
    let (status, ..) = run_row(&pool, run).await;
    let lines = log_lines(&app, run).await;
    assert_eq!(status, "succeeded", "{lines:#?}");
    let fly = fly.lock().unwrap();
    assert!(fly.malformed.is_empty(), "{:?}", fly.malformed);
    let image = "registry.fly.io/drop-staging:b2e9f14".to_owned();
    assert_eq!(
        fly.updates,
        [("3d8d9016b5e7e8".into(), image.clone(), true), ("e82d4d7a1b09f8".into(), image, true)],
        "in order, each after the one before passed its checks, once each despite the 429"
    );
    assert!(
        lines.iter().any(|l| l.contains("3d8d9016b5e7e8 (iad) on b2e9f14 is started, 0 of 1 checks passing")),
        "{lines:#?}"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_machine_already_on_the_image_is_not_updated_again(pool: PgPool) {
    // As a run stopped after its first update leaves staging: one machine on the new image.
    let machines =
        vec![fly_machine("3d8d9016b5e7e8", "iad", "b2e9f14"), fly_machine("e82d4d7a1b09f8", "arn", "c0ffee4")];
    let (app, fly) = with_local_fly(pool.clone(), machines).await;
    let b2 = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "staging_deploy"), ("digest", &b2)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    let updated: Vec<String> = fly.lock().unwrap().updates.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(updated, ["e82d4d7a1b09f8"]);
}

/// The kill test, for staging: the worker stopped dead before and after each step's action;
/// another takes over once the lease lapses, and each machine was updated exactly once.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_staging_deploy_killed_at_any_step_resumes_and_updates_each_machine_once(pool: PgPool) {
    use dropops::runs::worker::{Driven, Phase, Worker};
    let (app, fly) = with_local_fly(pool.clone(), vec![]).await;
    let b2 = digest(&app, "b2e9f14").await;
    for position in 0..3 {
        for phase in [Phase::BeforeAct, Phase::AfterAct] {
            {
                let mut fly = fly.lock().unwrap();
                fly.machines = vec![
                    fly_machine("e82d4d7a1b09f8", "arn", "c0ffee4"),
                    fly_machine("3d8d9016b5e7e8", "iad", "c0ffee4"),
                ];
                fly.updates.clear();
                fly.starting.clear();
            }
            let run = start(&app, &[("procedure", "staging_deploy"), ("digest", &b2)]).await;
            let halt = Arc::new(move |p: i32, ph: Phase| p == position && ph == phase);
            let dying = Worker::new(app.state.clone()).halting(halt);
            assert_eq!(dying.run_until_idle().await.unwrap(), Driven::Halted, "halted at {position} {phase:?}");
            crate::runs::expire_lease(&pool, run).await;
            drive(&app).await;
            let (status, ..) = run_row(&pool, run).await;
            assert_eq!(status, "succeeded", "killed at step {position} {phase:?}: {:#?}", log_lines(&app, run).await);
            let updated: Vec<String> = fly.lock().unwrap().updates.iter().map(|(id, ..)| id.clone()).collect();
            assert_eq!(updated, ["3d8d9016b5e7e8", "e82d4d7a1b09f8"], "killed at step {position} {phase:?}");
        }
    }
    let passes: i64 = sqlx::query_scalar("select count(*) from console.staging_passes").fetch_one(&pool).await.unwrap();
    assert_eq!(passes, 6, "one pass per run, however often its last step was tried");
}

/// The played staging follows the configured repository: machines report the image they were
/// given, so a run for `fly.image_repository` settles instead of updating them for ever.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_played_staging_runs_images_from_the_configured_repository(pool: PgPool) {
    let mut config = fast();
    config.fly.image_repository = Some("registry.fly.io/drop-staging-eu/".into());
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let c0ffee4 = digest(&app, "c0ffee4").await;
    let run = start(&app, &[("procedure", "staging_deploy"), ("digest", &c0ffee4)]).await;
    drive(&app).await;
    let (status, _, _, params) = run_row(&pool, run).await;
    assert_eq!(status, "succeeded", "{:#?}", log_lines(&app, run).await);
    assert_eq!(params["image"], "registry.fly.io/drop-staging-eu:c0ffee4");
    let machines = app.state.cloud.staging.as_ref().unwrap().machines().await.unwrap();
    assert!(machines.iter().all(|m| m.image == "registry.fly.io/drop-staging-eu:c0ffee4"), "{machines:?}");
}

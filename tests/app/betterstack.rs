//! BetterStack Uptime through its REST API v2, against a local server that answers as
//! BetterStack does: bearer token, JSON:API pages followed by `pagination.next`,
//! `PATCH /api/v2/monitors/{id}` with `{"paused": …}`, 401 for a wrong token, 429 when
//! throttled, 404 for an unknown monitor. A deploy pauses Drop's monitors for its maintenance
//! window and resumes exactly those it paused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dropops::cloud::betterstack::BetterStack;
use dropops::cloud::{CloudError, MonitorStatus, Monitoring};
use dropops::config::Secret;
use dropops::runs::worker::{Phase, Worker};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::{TestApp, config_with};
use crate::runs::{digest, drive, expire_lease, run_row, start};

const TOKEN: &str = "bs-test-token-123";

#[derive(Default)]
struct Account {
    origin: String,
    /// id → (name, paused)
    monitors: BTreeMap<String, (String, bool)>,
    /// Every PATCH body, with its monitor.
    patches: Vec<(String, Value)>,
    /// Answer the next request with 429.
    throttle_next: bool,
    /// Incidents raised by hand: (id, name, requester, acknowledged by, resolved by).
    incidents: Vec<Incident>,
    /// Status page posts: (path, body).
    status_posts: Vec<(String, Value)>,
}

#[derive(Clone, Debug, Default)]
struct Incident {
    id: String,
    name: String,
    requester: String,
    acknowledged_by: Option<String>,
    resolved_by: Option<String>,
}

fn incident_doc(i: &Incident) -> Value {
    json!({
        "id": i.id,
        "type": "incident",
        "attributes": {
            "name": i.name,
            "cause": "Manual incident",
            "started_at": "2026-12-06T10:00:00.000Z",
            "acknowledged_at": i.acknowledged_by.as_ref().map(|_| "2026-12-06T10:02:30.000Z"),
            "acknowledged_by": i.acknowledged_by,
            "resolved_at": i.resolved_by.as_ref().map(|_| "2026-12-06T10:05:00.000Z"),
            "resolved_by": i.resolved_by,
            "status": if i.resolved_by.is_some() { "Resolved" } else if i.acknowledged_by.is_some() { "Acknowledged" } else { "Started" },
            "call": false, "sms": true, "email": true, "push": true
        }
    })
}

async fn raise(State(account): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let (Some(requester), Some(name)) = (body["requester_email"].as_str(), body["name"].as_str()) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "errors": { "requester_email": ["can't be blank"] } })),
        )
            .into_response();
    };
    let mut a = account.lock().unwrap();
    let incident = Incident {
        id: format!("{}", 5_000 + a.incidents.len()),
        name: name.to_owned(),
        requester: requester.to_owned(),
        ..Incident::default()
    };
    a.incidents.push(incident.clone());
    (StatusCode::CREATED, Json(json!({ "data": incident_doc(&incident) }))).into_response()
}

async fn incidents(
    State(account): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    assert!(q.contains_key("from"), "the list is asked for recent incidents only");
    let a = account.lock().unwrap();
    Json(json!({ "data": a.incidents.iter().map(incident_doc).collect::<Vec<_>>(), "pagination": { "next": null } }))
        .into_response()
}

async fn incident(State(account): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let a = account.lock().unwrap();
    match a.incidents.iter().find(|i| i.id == id) {
        Some(i) => Json(json!({ "data": incident_doc(i) })).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "errors": "Resource not found" }))).into_response(),
    }
}

async fn resolve(State(account): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: String) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut a = account.lock().unwrap();
    let Some(i) = a.incidents.iter_mut().find(|i| i.id == id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "errors": "Resource not found" }))).into_response();
    };
    if i.resolved_by.is_some() {
        return (StatusCode::CONFLICT, Json(json!({ "errors": "Incident already resolved" }))).into_response();
    }
    i.resolved_by = body["resolved_by"].as_str().map(str::to_owned);
    Json(json!({ "data": incident_doc(i) })).into_response()
}

type Shared = Arc<Mutex<Account>>;

fn refused(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    (auth != format!("Bearer {TOKEN}"))
        .then(|| (StatusCode::UNAUTHORIZED, Json(json!({ "errors": "Invalid Team API token" }))).into_response())
}

fn resource(id: &str, name: &str, paused: bool) -> Value {
    json!({
        "id": id,
        "type": "monitor",
        "attributes": {
            "url": "https://getdrop.no/api/health",
            "pronounceable_name": name,
            "monitor_type": "status",
            "last_checked_at": "2026-12-06T03:59:41.000Z",
            "status": if paused { "paused" } else { "up" },
            "paused": paused,
            "check_frequency": 30
        }
    })
}

async fn list(
    State(account): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let mut a = account.lock().unwrap();
    if std::mem::take(&mut a.throttle_next) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "Too Many Requests").into_response();
    }
    // Two per page, as a small per_page would give.
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let all: Vec<Value> = a.monitors.iter().map(|(id, (name, paused))| resource(id, name, *paused)).collect();
    let data: Vec<Value> = all.iter().skip((page - 1) * 2).take(2).cloned().collect();
    let next = (page * 2 < all.len()).then(|| format!("{}/api/v2/monitors?page={}", a.origin, page + 1));
    Json(json!({ "data": data, "pagination": { "first": format!("{}/api/v2/monitors?page=1", a.origin), "next": next } }))
        .into_response()
}

async fn patch(State(account): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: String) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let json_body = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/json");
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut a = account.lock().unwrap();
    let Some(paused) = body["paused"].as_bool().filter(|_| json_body) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": { "paused": ["is invalid"] } })))
            .into_response();
    };
    a.patches.push((id.clone(), body.clone()));
    match a.monitors.get_mut(&id) {
        Some(m) => {
            m.1 = paused;
            let answer = resource(&id, &m.0.clone(), paused);
            Json(json!({ "data": answer })).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({ "errors": "Resource not found" }))).into_response(),
    }
}

/// A monitor's SLA over `from`..`to` (BetterStack's `GET /api/v2/monitors/{id}/sla`); both
/// dates are required.
async fn sla(
    State(account): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let a = account.lock().unwrap();
    if !a.monitors.contains_key(&id) {
        return (StatusCode::NOT_FOUND, Json(json!({ "errors": "Resource not found" }))).into_response();
    }
    let (Some(from), Some(to)) = (q.get("from"), q.get("to")) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": "from and to are required" })))
            .into_response();
    };
    let availability = if id == "101" { 99.95 } else { 100.0 };
    Json(json!({ "data": { "id": id, "type": "monitor_sla", "attributes": {
        "availability": availability, "total_downtime": 1296, "number_of_incidents": 2,
        "longest_incident": 900, "average_incident": 648, "from": from, "to": to
    } } }))
    .into_response()
}

/// A BetterStack account with Drop's three monitors; the landing page's was paused by hand.
async fn betterstack() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let account = Arc::new(Mutex::new(Account {
        origin: origin.clone(),
        monitors: [
            ("101", "Drop health", false),
            ("102", "Drop landing page", true),
            ("103", "Drop health from US east", false),
        ]
        .into_iter()
        .map(|(id, name, paused)| (id.to_owned(), (name.to_owned(), paused)))
        .collect(),
        ..Account::default()
    }));
    let router = Router::new()
        .route("/api/v2/monitors", get(list))
        .route("/api/v2/monitors/{id}", axum::routing::patch(patch))
        .route("/api/v2/monitors/{id}/sla", get(sla))
        .route("/api/v2/incidents", get(incidents).post(raise))
        .route("/api/v2/incidents/{id}", get(incident))
        .route("/api/v2/incidents/{id}/resolve", axum::routing::post(resolve))
        .route("/api/v2/status-pages/{page}/status-reports", axum::routing::post(status_report))
        .route(
            "/api/v2/status-pages/{page}/status-reports/{report}/status-updates",
            axum::routing::post(status_update),
        );
    let served = router.with_state(account.clone());
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    (origin, account)
}

#[tokio::test]
async fn monitors_are_read_page_by_page_and_paused_as_the_api_documents() {
    let (origin, account) = betterstack().await;
    let api = BetterStack::new(&origin, Secret::new(TOKEN), vec![]);
    let monitors = api.monitors().await.unwrap();
    let names: Vec<&str> = monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Drop health", "Drop landing page", "Drop health from US east"], "both pages");
    assert_eq!(monitors[0].status, Some(MonitorStatus::Up));
    assert!(monitors[1].paused && monitors[1].status == Some(MonitorStatus::Paused));
    assert!(monitors[0].last_checked_at.is_some());

    api.set_paused("101", true).await.unwrap();
    assert_eq!(account.lock().unwrap().patches, [("101".to_owned(), json!({ "paused": true }))]);
    assert!(account.lock().unwrap().monitors["101"].1);

    // Only Drop's monitors, when they are named.
    let only = BetterStack::new(&origin, Secret::new(TOKEN), vec!["103".into()]);
    assert_eq!(only.monitors().await.unwrap().len(), 1);

    // What goes wrong is said as BetterStack means it.
    account.lock().unwrap().throttle_next = true;
    assert_eq!(api.monitors().await.unwrap_err(), CloudError::Throttled);
    let wrong = BetterStack::new(&origin, Secret::new("not-the-token"), vec![]);
    let refused = wrong.monitors().await.unwrap_err().to_string();
    assert!(refused.contains("refused the token (HTTP 401)"), "{refused}");
    assert!(api.set_paused("999", true).await.unwrap_err().to_string().contains("HTTP 404"));
    let unreachable = BetterStack::new("http://127.0.0.1:9", Secret::new(TOKEN), vec![]);
    assert!(matches!(unreachable.monitors().await, Err(CloudError::Unreachable(_))));

    // A month's SLA, as the monthly report asks for it.
    let (from, to) =
        (chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
    assert_eq!(api.availability("101", from, to).await.unwrap(), 99.95);
    assert!(api.availability("999", from, to).await.unwrap_err().to_string().contains("HTTP 404"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_deploy_pauses_drops_monitors_for_its_window_and_resumes_exactly_those(pool: PgPool) {
    let (origin, account) = betterstack().await;
    let config = config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_BETTERSTACK__TOKEN", TOKEN),
        ("DROPOPS_BETTERSTACK__API_URL", origin.as_str()),
    ]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let card = app.visit("/health").await.text("[data-card='monitors']");
    assert!(card.contains("1 paused") && card.contains("Drop landing page: paused"), "{card}");

    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    // Stopped just before the deployment: the window is open and the monitors paused.
    let halt = Arc::new(|p: i32, ph: Phase| p == 4 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    let paused: Vec<bool> = account.lock().unwrap().monitors.values().map(|m| m.1).collect();
    assert_eq!(paused, [true, true, true]);
    let log = app.visit(&format!("/runs/{run}")).await.text(".run-log");
    assert!(log.contains("paused at BetterStack: Drop health, Drop health from US east"), "{log}");
    assert!(log.contains("already paused by someone else, left as they are: Drop landing page"), "{log}");

    // Resumed after a crash: it finishes, and resumes exactly what it paused.
    expire_lease(&pool, run).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    let (paused, resumed) = {
        let a = account.lock().unwrap();
        let paused: Vec<bool> = a.monitors.values().map(|m| m.1).collect();
        let resumed: Vec<String> =
            a.patches.iter().filter(|(_, body)| body["paused"] == false).map(|(id, _)| id.clone()).collect();
        (paused, resumed)
    };
    assert_eq!(paused, [false, true, false], "the landing page stays paused as someone left it");
    assert_eq!(resumed, ["101", "103"]);
    let log = app.visit(&format!("/runs/{run}")).await.text(".run-log");
    assert!(log.contains("monitors resumed at BetterStack: Drop health, Drop health from US east"), "{log}");
}

async fn status_report(
    State(account): State<Shared>,
    headers: HeaderMap,
    Path(page): Path<String>,
    body: String,
) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    if page != "424242" {
        return (StatusCode::NOT_FOUND, Json(json!({ "errors": "Resource not found" }))).into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let maintenance = body["report_type"] == "maintenance";
    let affected_ok = body["affected_resources"].as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter().all(|r| {
                r["status_page_resource_id"].is_string()
                    && (if maintenance {
                        r["status"] == "maintenance"
                    } else {
                        ["resolved", "degraded", "downtime"].contains(&r["status"].as_str().unwrap_or_default())
                    })
            })
    });
    if !body["title"].is_string() || !affected_ok || (maintenance && !body["ends_at"].is_string()) {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": "invalid report" }))).into_response();
    }
    let mut a = account.lock().unwrap();
    a.status_posts.push((format!("/status-pages/{page}/status-reports"), body.clone()));
    let id = format!("{}", 880 + a.status_posts.len());
    (StatusCode::CREATED, Json(json!({ "data": { "id": id, "type": "status_report", "attributes": { "title": body["title"], "report_type": body["report_type"], "aggregate_state": "degraded" } } })))
        .into_response()
}

async fn status_update(
    State(account): State<Shared>,
    headers: HeaderMap,
    Path((page, report)): Path<(String, String)>,
    body: String,
) -> Response {
    if let Some(no) = refused(&headers) {
        return no;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    if !body["affected_resources"].is_array() {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": "affected_resources is required" })))
            .into_response();
    }
    let mut a = account.lock().unwrap();
    a.status_posts.push((format!("/status-pages/{page}/status-reports/{report}/status-updates"), body.clone()));
    (
        StatusCode::CREATED,
        Json(
            json!({ "data": { "id": "9911", "type": "status_update", "attributes": { "message": body["message"] } } }),
        ),
    )
        .into_response()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn incidents_and_maintenance_are_published_on_the_status_page_without_anything_personal(pool: PgPool) {
    let (origin, account) = betterstack().await;
    let config = config_with(&[
        ("DROPOPS_BETTERSTACK__TOKEN", TOKEN),
        ("DROPOPS_BETTERSTACK__API_URL", origin.as_str()),
        ("DROPOPS_BETTERSTACK__STATUS_PAGE_ID", "424242"),
        ("DROPOPS_BETTERSTACK__STATUS_PAGE_RESOURCES", "[\"8765\"]"),
    ]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let declared = app.submit("/incidents", &[("title", "Transfers failing"), ("severity", "sev1")]).await;
    assert_eq!(declared.status, 303);
    let incident = declared.location().to_owned();

    let personal = app
        .submit(
            &format!("{incident}/status-page"),
            &[("title", "Delays"), ("public_status", "degraded"), ("message", "Ola at ola@example.no is affected")],
        )
        .await;
    assert_eq!(personal.status, 422);
    assert!(personal.text("#public_message-error").contains("No e-mail addresses"), "{}", personal.body);
    assert!(account.lock().unwrap().status_posts.is_empty(), "nothing left the console");

    let opened = app
        .submit(
            &format!("{incident}/status-page"),
            &[
                ("title", "Transfers are delayed"),
                ("public_status", "degraded"),
                ("message", "We are looking into it."),
            ],
        )
        .await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    let updated = app
        .submit(
            &format!("{incident}/status-page"),
            &[("public_status", "resolved"), ("message", "Transfers work again.")],
        )
        .await;
    assert_eq!(updated.status, 303, "{}", updated.body);
    {
        let a = account.lock().unwrap();
        assert_eq!(a.status_posts.len(), 2);
        let (path, body) = &a.status_posts[0];
        assert_eq!(path, "/status-pages/424242/status-reports");
        assert_eq!(body["report_type"], "manual");
        assert_eq!(body["affected_resources"], json!([{ "status_page_resource_id": "8765", "status": "degraded" }]));
        let (path, body) = &a.status_posts[1];
        assert_eq!(path, "/status-pages/424242/status-reports/881/status-updates");
        assert_eq!(body["affected_resources"][0]["status"], "resolved");
    }
    assert_eq!(crate::harness::audit_trail(&pool, "status_page_published").await.len(), 4);
    let page = app.visit(&incident).await;
    assert!(page.text(".incident-timeline").contains("resolved on the status page: Transfers work again."));

    let planned = app
        .submit("/incidents/maintenance", &[("title", "DB upgrade"), ("start", "2026-12-20T22:00"), ("minutes", "45")])
        .await;
    let maintenance = planned.location().to_owned();
    let announced = app
        .submit(
            &format!("{maintenance}/status-page"),
            &[("title", "Scheduled maintenance"), ("message", "Drop may be slow for a few minutes.")],
        )
        .await;
    assert_eq!(announced.status, 303, "{}", announced.body);
    let body = account.lock().unwrap().status_posts[2].1.clone();
    assert_eq!(body["report_type"], "maintenance");
    assert_eq!(body["starts_at"], "2026-12-20T22:00:00+00:00");
    assert_eq!(body["ends_at"], "2026-12-20T22:45:00+00:00");
    let shown = app.visit(&maintenance).await;
    assert!(
        shown.text("[data-step='status_page']").contains("Scheduled maintenance report 883"),
        "{}",
        shown.text("[data-step='status_page']")
    );
}

async fn escalation_app(pool: PgPool, origin: &str) -> TestApp {
    let config = config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_BETTERSTACK__TOKEN", TOKEN),
        ("DROPOPS_BETTERSTACK__API_URL", origin),
        ("DROPOPS_BETTERSTACK__REQUESTER_EMAIL", "ops@getdrop.no"),
    ]);
    let app = TestApp::spawn_with(pool, config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    app
}

async fn start_escalation_test(app: &TestApp) -> uuid::Uuid {
    let form = app.visit("/incidents/escalation-test").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let run = form.attrs("input[name=run]", "value").pop().expect("the run id");
    let unticked = app.submit("/incidents/runs", &[("procedure", "escalation_test"), ("run", &run)]).await;
    assert_eq!(unticked.status, 422, "the on-call must be told first");
    let started =
        app.submit("/incidents/runs", &[("procedure", "escalation_test"), ("run", &run), ("understood", "yes")]).await;
    assert_eq!(started.status, 303, "{}", started.body);
    started.location().trim_start_matches("/runs/").parse().unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_escalation_test_raises_an_alert_waits_for_its_acknowledgement_and_resolves_it(pool: PgPool) {
    let (origin, account) = betterstack().await;
    let app = escalation_app(pool.clone(), &origin).await;
    let run = start_escalation_test(&app).await;

    // BetterStack answered the raise, but the step stopped before recording it: the retry
    // finds the alert by its name and raises no second one.
    let halt = Arc::new(|p: i32, ph: Phase| p == 0 && ph == Phase::AfterAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    expire_lease(&pool, run).await;
    let halt = Arc::new(|p: i32, ph: Phase| p == 1 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    {
        let a = account.lock().unwrap();
        assert_eq!(a.incidents.len(), 1, "one test alert");
        assert_eq!(a.incidents[0].requester, "ops@getdrop.no");
        assert!(a.incidents[0].name.starts_with("dropops escalation test "));
    }
    // The on-call's phone rings; they acknowledge it at BetterStack.
    account.lock().unwrap().incidents[0].acknowledged_by = Some("kari@getdrop.no".into());
    expire_lease(&pool, run).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    assert_eq!(account.lock().unwrap().incidents[0].resolved_by.as_deref(), Some("ops@getdrop.no"));
    let log = app.visit(&format!("/runs/{run}")).await.text(".run-log");
    assert!(log.contains("acknowledged by kari@getdrop.no after 2 min 30 s: alerts escalate"), "{log}");

    // The monthly checklist measures it instead of asking.
    let monthly = app.visit("/health/checks/monthly").await;
    let item = monthly.text("[data-item='escalation_test']");
    assert!(item.contains("OK") && item.contains("acknowledged by kari@getdrop.no"), "{item}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_unanswered_test_alert_fails_the_test_and_is_still_resolved(pool: PgPool) {
    let (origin, account) = betterstack().await;
    let app = escalation_app(pool.clone(), &origin).await;
    let run = start_escalation_test(&app).await;
    let halt = Arc::new(|p: i32, ph: Phase| p == 1 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    // Half an hour passes and nobody answers.
    sqlx::query(
        "update console.run_steps set started_at = now() - interval '31 minutes' where run_id = $1 and position = 1",
    )
    .bind(run)
    .execute(&pool)
    .await
    .unwrap();
    expire_lease(&pool, run).await;
    drive(&app).await;
    let (status, outcome) = run_row(&pool, run).await;
    assert_eq!(status, "failed");
    assert!(outcome.unwrap_or_default().contains("nobody acknowledged the test alert within 30 minutes"));
    assert!(account.lock().unwrap().incidents[0].resolved_by.is_some(), "no test alert is left open");
    let monthly = app.visit("/health/checks/monthly").await;
    let item = monthly.text("[data-item='escalation_test']");
    assert!(item.contains("Check") && item.contains("failed"), "{item}");
    assert!(monthly.has("a[href='/incidents/escalation-test']"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_simulator_plays_the_escalation_test_for_the_demo(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), crate::runs::fast()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let run = start_escalation_test(&app).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
}

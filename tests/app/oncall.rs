//! The incident side of on-call: Slack through `chat.postMessage` against a local server that
//! answers as Slack does (bearer token, JSON body, `{"ok": false, "error": …}`, 429 with
//! `Retry-After`); runs, incidents and hand-offs telling their channels; nothing of casework
//! ever queued; incidents with a self-filling timeline; hand-offs; planned maintenance.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use dropops::cloud::slack::{Chat, ChatError, Slack};
use dropops::config::Secret;
use dropops::runs::worker::{Phase, Worker};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::{Browser, TestApp, audit_trail, config_with, intent_then_success};
use crate::runs::{digest, drive, run_row, start};

const TOKEN: &str = "xoxb-test-token";

/// How the fake Slack answers the next posts (then: ok).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Ok,
    RateLimited,
    ServerError,
    ChannelNotFound,
}

#[derive(Default)]
struct Workspace {
    /// (channel, text) of every accepted post.
    posts: Vec<(String, String)>,
    /// Answers to give, in order, before answering ok.
    script: Vec<Answer>,
    /// Answer this to everything (after the script).
    always: Option<Answer>,
}

type Shared = Arc<Mutex<Workspace>>;

async fn post_message(State(ws): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if header("authorization") != format!("Bearer {TOKEN}") {
        return Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    if !header("content-type").starts_with("application/json") {
        return Json(json!({ "ok": false, "error": "invalid_form_data" })).into_response();
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Json(json!({ "ok": false, "error": "invalid_json" })).into_response();
    };
    let (Some(channel), Some(text)) = (body["channel"].as_str(), body["text"].as_str()) else {
        return Json(json!({ "ok": false, "error": "no_text" })).into_response();
    };
    let mut ws = ws.lock().unwrap();
    let answer = if ws.script.is_empty() { ws.always.unwrap_or(Answer::Ok) } else { ws.script.remove(0) };
    match answer {
        Answer::Ok => {
            ws.posts.push((channel.to_owned(), text.to_owned()));
            Json(json!({ "ok": true, "channel": "C024BE91L", "ts": "1765000000.000100", "message": { "text": text } }))
                .into_response()
        }
        Answer::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({ "ok": false, "error": "ratelimited" })),
        )
            .into_response(),
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "upstream trouble").into_response(),
        Answer::ChannelNotFound => Json(json!({ "ok": false, "error": "channel_not_found" })).into_response(),
    }
}

/// A Slack workspace on a local port: its Web API root (`…/api`) and what it received.
async fn slack() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}/api", listener.local_addr().unwrap());
    let ws = Shared::default();
    let router = Router::new().route("/api/chat.postMessage", post(post_message)).with_state(ws.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (api, ws)
}

fn config(api: &str) -> dropops::config::Config {
    config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__HEALTH_TIMEOUT_SECS", "2"),
        ("DROPOPS_SLACK__TOKEN", TOKEN),
        ("DROPOPS_SLACK__API_URL", api),
    ])
}

async fn oncall_with_slack(pool: PgPool) -> (TestApp, Shared) {
    let (api, ws) = slack().await;
    let app = TestApp::spawn_with(pool, config(&api)).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    (app, ws)
}

fn posted(ws: &Shared) -> Vec<(String, String)> {
    ws.lock().unwrap().posts.clone()
}

async fn deliveries(pool: &PgPool) -> Vec<(String, String, i32)> {
    sqlx::query_as("select body, status, attempts from console.chat_messages order by id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Make every pending message due now (as if its retry time had come).
async fn due_now(pool: &PgPool) {
    sqlx::query("update console.chat_messages set next_attempt_at = now() where status = 'pending'")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn slack_is_posted_to_as_chat_post_message_documents_and_its_refusals_are_told_apart() {
    let (api, ws) = slack().await;
    let chat = Slack::new(&api, Secret::new(TOKEN));
    chat.post("#drop-ops", "Deploy started").await.unwrap();
    assert_eq!(posted(&ws), [("#drop-ops".to_owned(), "Deploy started".to_owned())]);

    ws.lock().unwrap().script = vec![Answer::RateLimited, Answer::ServerError, Answer::ChannelNotFound];
    assert_eq!(chat.post("#drop-ops", "x").await, Err(ChatError::RateLimited(Duration::from_secs(1))));
    assert!(matches!(chat.post("#drop-ops", "x").await, Err(ChatError::Passing(e)) if e.contains("HTTP 500")));
    assert!(matches!(chat.post("#nowhere", "x").await, Err(ChatError::Refused(e)) if e.contains("channel_not_found")));
    let wrong = Slack::new(&api, Secret::new("xoxb-revoked"));
    assert!(matches!(wrong.post("#drop-ops", "x").await, Err(ChatError::Refused(e)) if e.contains("invalid_auth")));
    let unreachable = Slack::new("http://127.0.0.1:9/api", Secret::new(TOKEN));
    assert!(matches!(unreachable.post("#drop-ops", "x").await, Err(ChatError::Passing(_))));
    assert_eq!(posted(&ws).len(), 1, "nothing refused was accepted");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn deploys_tell_the_runs_channel_and_a_broken_one_says_it_failed_and_rolled_back(pool: PgPool) {
    let (app, ws) = oncall_with_slack(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    admin.set_fault("release_unhealthy", true).await;
    let newest = digest(&app, "b2e9f14").await;
    let back = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, back).await.0, "failed");

    admin.set_fault("release_unhealthy", false).await;
    let good = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, good).await.0, "succeeded");

    assert_eq!(dropops::notify::deliver_due(&app.state).await.unwrap(), 8);
    let posts = posted(&ws);
    assert!(posts.iter().all(|(channel, _)| channel == "#drop-ops"), "{posts:?}");
    let texts: Vec<&str> = posts.iter().map(|(_, t)| t.as_str()).collect();
    let about = |run: uuid::Uuid| -> Vec<&str> {
        texts.iter().copied().filter(|t| t.contains(&format!("/runs/{run}|"))).collect()
    };
    let good_posts = about(good);
    assert!(good_posts[0].starts_with(":arrow_forward: Deploy started by Ola Oncall"), "{good_posts:?}");
    assert!(good_posts[1].contains("Maintenance window opened for 30 minutes"), "{good_posts:?}");
    assert!(good_posts[2].contains("Maintenance window closed"), "{good_posts:?}");
    assert!(good_posts[3].contains("Deploy succeeded"), "{good_posts:?}");
    let back_posts = about(back);
    assert!(back_posts[0].contains("Deploy started"), "{back_posts:?}");
    assert!(
        back_posts[2].contains("Maintenance window closed"),
        "a failing deploy still closes its window: {back_posts:?}"
    );
    assert!(back_posts[3].contains("Deploy failed and was rolled back automatically"), "{back_posts:?}");

    // The run page shows what was posted about it.
    let page = app.visit(&format!("/runs/{back}")).await;
    assert_eq!(page.texts(".slack-messages [data-delivery=sent]").len(), 4, "{}", page.text(".slack-messages"));
    // A repeated event is one message: nothing more to send.
    assert_eq!(dropops::notify::deliver_due(&app.state).await.unwrap(), 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn failed_posts_are_retried_a_bounded_number_of_times_shown_and_never_block_the_run(pool: PgPool) {
    let (app, ws) = oncall_with_slack(pool.clone()).await;
    ws.lock().unwrap().always = Some(Answer::ServerError);
    let run = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded", "Slack being down does not hold up the run");

    for _ in 0..dropops::notify::MAX_ATTEMPTS {
        dropops::notify::deliver_due(&app.state).await.unwrap();
        due_now(&pool).await;
    }
    assert_eq!(dropops::notify::deliver_due(&app.state).await.unwrap(), 0, "given up: no more attempts");
    let rows = deliveries(&pool).await;
    assert!(!rows.is_empty());
    for (body, status, attempts) in &rows {
        assert_eq!((status.as_str(), *attempts), ("failed", dropops::notify::MAX_ATTEMPTS), "{body}");
    }
    let page = app.visit(&format!("/runs/{run}")).await;
    let shown = page.text(".slack-messages");
    assert!(shown.contains("Not sent") && shown.contains("gave up after 5 attempts"), "{shown}");

    // Rate-limited: kept for after Retry-After, then sent.
    ws.lock().unwrap().always = None;
    ws.lock().unwrap().script = vec![Answer::RateLimited];
    let second = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    dropops::notify::deliver_due(&app.state).await.unwrap();
    let waiting: Vec<(String, Option<String>)> = sqlx::query_as(
        "select status, last_error from console.chat_messages where source = $1 and attempts = 1 order by id limit 1",
    )
    .bind(format!("run:{second}"))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].0, "pending");
    assert!(waiting[0].1.as_deref().unwrap_or_default().contains("rate-limiting"), "{waiting:?}");
    due_now(&pool).await;
    dropops::notify::deliver_due(&app.state).await.unwrap();
    let statuses: Vec<String> = sqlx::query_scalar("select status from console.chat_messages where source = $1")
        .bind(format!("run:{second}"))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| s == "sent"), "{statuses:?}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn nothing_about_alerts_strs_or_people_is_ever_queued_for_slack(pool: PgPool) {
    dropops::demo::seed_if_empty(&pool, dropops::demo::DEFAULT_SEED).await.unwrap();
    let (api, ws) = slack().await;
    let app = TestApp::spawn_with(pool.clone(), config(&api)).await;
    let (alert, user, tx) = crate::harness::open_alert_with_transaction(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    assert_eq!(app.visit(&format!("/compliance/people/{user}")).await.status, 200);
    let drafted =
        app.draft_str(&user, &alert, "Structuring below the threshold", "Five transfers in one hour.", &[&tx]).await;
    assert_eq!(drafted.status, 303, "{}", drafted.body);
    let id = drafted.location().trim_start_matches("/compliance/str/").to_owned();
    assert_eq!(app.submit_str(&id).await.status, 303);
    let mlro = app.another_browser();
    mlro.sign_in_as("Mari MLRO", &["mlro"]).await;
    assert_eq!(mlro.approve_str(&id).await.status, 303);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(mlro.file_str(&id, "OKO-2026-0042", &today).await.status, 303);
    assert_eq!(app.close_alert(&alert, "escalated_to_str", "Filed as OKO-2026-0042").await.status, 303);
    assert_eq!(app.revoke_sessions(&user, "Account takeover reported by phone").await.status, 303);

    let queued: i64 = sqlx::query_scalar("select count(*) from console.chat_messages").fetch_one(&pool).await.unwrap();
    assert_eq!(queued, 0, "casework queued a chat message");
    dropops::notify::deliver_due(&app.state).await.unwrap();
    assert!(posted(&ws).is_empty());
}

/// Declare an incident through the form; its number.
async fn declare(browser: &Browser, fields: &[(&str, &str)]) -> i64 {
    let page = browser.submit("/incidents", fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location().trim_start_matches("/incidents/").parse().expect("an incident number")
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_incident_declared_during_a_deploy_shows_it_says_who_to_call_and_resolves_with_a_report(pool: PgPool) {
    let (app, ws) = oncall_with_slack(pool.clone()).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &newest)]).await;
    // The deploy is half-way (its window open) when errors climb.
    let halt = Arc::new(|p: i32, ph: Phase| p == 4 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();

    // Bad input changes nothing and says what is wrong next to the field.
    let refused = app.submit("/incidents", &[("title", ""), ("severity", "sev9")]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text("#title-error").contains("short title"), "{}", refused.body);
    assert!(refused.text("#severity-error").contains("Choose a severity"), "{}", refused.body);
    let none: i64 = sqlx::query_scalar("select count(*) from console.incidents").fetch_one(&pool).await.unwrap();
    assert_eq!(none, 0);

    let form = app.visit("/incidents/new?alert=high_error_rate").await;
    assert_eq!(form.attrs("input[name=severity][checked]", "value"), ["sev1"], "the triage table's suggestion");
    let id = declare(
        &app,
        &[
            ("title", "5xx on transfers for Ola Nordmann and others"),
            ("severity", "sev1"),
            ("alert", "high_error_rate"),
            ("note", "Error rate 12 % since 10:02"),
            ("_once", &uuid::Uuid::new_v4().to_string()),
        ],
    )
    .await;
    assert_eq!(audit_trail(&pool, "incident_declared").await, intent_then_success());

    let page = app.visit(&format!("/incidents/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.has(&format!(".incident-timeline a[href='/runs/{run}']")), "{}", page.text(".incident-timeline"));
    assert!(page.text(".incident-timeline").contains("Deploy started"), "{}", page.text(".incident-timeline"));
    assert!(page.text(".incident-timeline").contains("Error rate 12 %"));
    let call = page.text(".call-now");
    assert!(call.contains("On-call (primary)") && call.contains("Tech lead"), "{call}");
    assert!(call.contains("In 15 min") && call.contains("CTO"), "{call}");
    assert!(page.has("a[href='/health/playbook#high-error-rate']"));

    // Resolving needs a word on how.
    let update = format!("/incidents/{id}/update");
    let unsaid = app.submit(&update, &[("status", "resolved"), ("severity", "sev1"), ("note", "")]).await;
    assert_eq!(unsaid.status, 422);
    assert!(unsaid.text("#note-error").contains("how it was resolved"), "{}", unsaid.body);
    let resolved = app
        .submit(
            &update,
            &[("status", "resolved"), ("severity", "sev1"), ("note", "Rolled back to 7f3c2a1; errors gone")],
        )
        .await;
    assert_eq!(resolved.status, 303);
    assert_eq!(audit_trail(&pool, "incident_updated").await, intent_then_success());
    let page = app.visit(&format!("/incidents/{id}")).await;
    assert_eq!(page.text(".incident-status"), "Resolved");
    assert!(page.text(".call-now").contains("nobody needs calling"));

    let saved = app
        .submit(
            &format!("/incidents/{id}/report"),
            &[
                ("impact", "Transfers failed for 14 minutes"),
                ("cause", "A bad release"),
                ("follow_ups", "Canary deploys"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(audit_trail(&pool, "incident_report_saved").await, intent_then_success());
    let helper = app.another_browser();
    helper.sign_in_as("Kari Helper", &["oncall"]).await;
    assert_eq!(helper.submit(&format!("/incidents/{id}/join"), &[]).await.status, 303);
    assert_eq!(audit_trail(&pool, "incident_joined").await, intent_then_success());
    assert!(app.visit(&format!("/incidents/{id}")).await.text(".incident-people").contains("Kari Helper"));
    let report = app.visit(&format!("/incidents/{id}/report")).await;
    let text = report.text(".print-report");
    assert!(text.contains("Transfers failed for 14 minutes") && text.contains("Deploy started"), "{text}");

    // Slack heard of the incident by number and severity, never its free-text title.
    dropops::notify::deliver_due(&app.state).await.unwrap();
    let incidents: Vec<String> =
        posted(&ws).into_iter().filter(|(c, _)| c == "#drop-alerts").map(|(_, text)| text).collect();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert!(incidents[0].contains(&format!("SEV1 incident #{id} declared by Ola Oncall")), "{incidents:?}");
    assert!(incidents[1].contains("is resolved"), "{incidents:?}");
    assert!(posted(&ws).iter().all(|(_, text)| !text.contains("Nordmann")), "the title stays in the console");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_handoff_is_prefilled_written_by_one_on_call_and_acknowledged_by_another(pool: PgPool) {
    let (app, ws) = oncall_with_slack(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    admin.set_fault("storage_low", true).await;
    let id = declare(
        &app,
        &[("title", "Disk filling on drop-db"), ("severity", "sev2"), ("alert", "disk_almost_full"), ("_once", "")],
    )
    .await;
    let run = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");

    let draft = app.visit("/incidents/handoffs/new").await;
    let open = draft.text("textarea[name=open_incidents]");
    assert!(open.contains(&format!("#{id} SEV2 Investigating — Disk filling on drop-db")), "{open}");
    let anomalies = draft.text("textarea[name=anomalies]");
    assert!(anomalies.contains("storage") || anomalies.contains("Storage"), "{anomalies}");
    let mitigations = draft.text("textarea[name=mitigations]");
    assert!(mitigations.contains("by Ola Oncall") && mitigations.contains("succeeded"), "{mitigations}");
    assert!(draft.text("textarea[name=upcoming]").contains("routine checks are overdue"));

    // Every heading needs words; nothing is stored until they are there.
    let empty = app.submit("/incidents/handoffs", &[("open_incidents", &open)]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.text("#anomalies-error").contains("Monitoring anomalies"), "{}", empty.body);
    let written = app
        .submit(
            "/incidents/handoffs",
            &[
                ("open_incidents", &open),
                ("anomalies", &anomalies),
                ("upcoming", "DB storage grows on Tuesday"),
                ("mitigations", &mitigations),
                ("noisy_alerts", "US east monitor flaps at night"),
            ],
        )
        .await;
    assert_eq!(written.status, 303, "{}", written.body);
    let path = written.location().to_owned();
    assert_eq!(audit_trail(&pool, "handoff_written").await, intent_then_success());

    let own = app.submit(&format!("{path}/acknowledge"), &[]).await;
    assert_eq!(own.status, 409);
    assert!(own.text("[role=alert]").contains("the incoming on-call acknowledges it"));
    let incoming = app.another_browser();
    incoming.sign_in_as("Kari Incoming", &["oncall"]).await;
    assert!(incoming.visit(&path).await.has(&format!("form[action='{path}/acknowledge']")));
    assert_eq!(incoming.submit(&format!("{path}/acknowledge"), &[]).await.status, 303);
    assert_eq!(audit_trail(&pool, "handoff_acknowledged").await, intent_then_success());
    let shown = incoming.visit(&path).await;
    assert!(shown.text(".lead").contains("Acknowledged by Kari Incoming"), "{}", shown.text(".lead"));
    assert_eq!(incoming.submit(&format!("{path}/acknowledge"), &[]).await.status, 409, "once");

    let found = app.visit("/incidents/handoffs?q=flaps+at+night").await;
    assert_eq!(found.texts("[data-handoff]").len(), 1);
    assert_eq!(app.visit("/incidents/handoffs?q=nothing+like+this").await.texts("[data-handoff]").len(), 0);

    dropops::notify::deliver_due(&app.state).await.unwrap();
    let oncall: Vec<String> = posted(&ws).into_iter().filter(|(c, _)| c == "#ops").map(|(_, t)| t).collect();
    assert!(oncall.iter().any(|t| t.contains("hand-off written by Ola Oncall")), "{oncall:?}");
    assert!(oncall.iter().any(|t| t.contains("acknowledged: Kari Incoming is on call")), "{oncall:?}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn planned_maintenance_keeps_its_steps_its_runs_and_its_report(pool: PgPool) {
    let (app, _ws) = oncall_with_slack(pool.clone()).await;
    let bad = app
        .submit("/incidents/maintenance", &[("title", "Postgres minor upgrade"), ("start", "soon"), ("minutes", "2")])
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.text("#start-error").contains("date and time"), "{}", bad.body);
    assert!(bad.text("#minutes-error").contains("5 to 1440"), "{}", bad.body);
    assert_eq!(bad.attrs("input[name=title]", "value"), ["Postgres minor upgrade"], "nothing typed is lost");

    let planned = app
        .submit(
            "/incidents/maintenance",
            &[("title", "Postgres minor upgrade"), ("start", "2026-12-06T22:00"), ("minutes", "60")],
        )
        .await;
    assert_eq!(planned.status, 303, "{}", planned.body);
    let path = planned.location().to_owned();
    assert_eq!(audit_trail(&pool, "maintenance_planned").await, intent_then_success());
    assert_eq!(app.submit(&format!("{path}/phase"), &[("phase", "start")]).await.status, 303);
    assert_eq!(audit_trail(&pool, "maintenance_started").await, intent_then_success());
    let run = start(&app, &[("procedure", "restart")]).await;
    drive(&app).await;
    let steps = format!("{path}/steps");
    assert_eq!(app.submit(&steps, &[("step", "announced"), ("note", "#ops and support at 21:00")]).await.status, 303);
    let no_report = app.submit(&steps, &[("step", "reported"), ("note", "")]).await;
    assert_eq!(no_report.status, 422);
    assert!(no_report.text("#note-reported-error").contains("Write the report"), "{}", no_report.body);
    assert_eq!(
        app.submit(&steps, &[("step", "reported"), ("note", "Upgraded to 16.6; 4 minutes of read-only")]).await.status,
        303
    );
    let page = app.visit(&path).await;
    assert!(page.has(&format!("a[href='/runs/{run}']")), "the run inside it is listed");
    assert_eq!(page.texts("[data-step] .badge-green").len(), 2);
    assert_eq!(app.submit(&format!("{path}/phase"), &[("phase", "end")]).await.status, 303);
    assert_eq!(app.submit(&format!("{path}/phase"), &[("phase", "end")]).await.status, 409, "ends once");
    assert_eq!(audit_trail(&pool, "maintenance_ended").await, intent_then_success(), "the refused end left no row");
    let report = app.visit(&format!("{path}/report")).await.text(".print-report");
    assert!(report.contains("4 minutes of read-only") && report.contains("Rolling restart"), "{report}");
    assert_eq!(audit_trail(&pool, "maintenance_step_done").await.len(), 4);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn overdue_checklists_are_announced_once_a_day(pool: PgPool) {
    let (app, ws) = oncall_with_slack(pool.clone()).await;
    assert_eq!(dropops::health::announce_overdue(&app.state).await.unwrap(), 3, "never submitted: all overdue");
    dropops::health::announce_overdue(&app.state).await.unwrap();
    dropops::notify::deliver_due(&app.state).await.unwrap();
    let posts = posted(&ws);
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert!(posts.iter().all(|(c, t)| c == "#ops" && t.contains("routine checks are overdue")), "{posts:?}");
    let page = app.visit("/incidents/messages").await;
    assert_eq!(page.texts("[data-delivery=sent]").len(), 3);
}

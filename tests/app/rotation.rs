//! Secret rotation (runbook §4) over the simulated environment: JWT_SECRET and the database
//! master password, the kill test at every step of the dangerous one, resuming a failed one,
//! the value absent from everything the console shows, logs or audits, and the schedule.

use std::sync::Arc;

use dropops::cloud::sim::Simulator;
use dropops::runs::rotation::password_of;
use dropops::runs::worker::{Driven, Phase, Worker};
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{TestApp, captured_logs, config_with};
use crate::runs::{drive, expire_lease};

const JWT: &str = "drop/production/jwt-secret";
const DB_URL: &str = "drop/production/database-url";

fn config(extra: &[(&str, &str)]) -> dropops::config::Config {
    let mut vars = vec![
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__HEALTH_TIMEOUT_SECS", "2"),
        ("DROPOPS_RUNS__RETRY_LIMIT_SECS", "1"),
    ];
    vars.extend_from_slice(extra);
    config_with(&vars)
}

async fn oncall(pool: PgPool) -> TestApp {
    let app = TestApp::spawn_with(pool, config(&[])).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    app
}

/// The simulated world the console under test talks to (its state is in the database).
pub fn sim(app: &TestApp) -> Simulator {
    assert!(app.state.cloud.is_simulated(), "demo mode simulates AWS");
    Simulator::new(app.state.pool.clone(), &app.state.config)
}

pub async fn current(app: &TestApp, id: &str) -> String {
    app.state.cloud.secrets.value(id, None).await.unwrap().unwrap().expose().to_owned()
}

pub async fn rotate(app: &TestApp, secret: &str) -> Uuid {
    let page = app.confirm_rotation(&[("secret", secret), ("understood", "yes"), ("reason", "schedule")]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location().trim_start_matches("/runs/").parse().unwrap()
}

pub async fn status(pool: &PgPool, run: Uuid) -> String {
    sqlx::query_scalar("select status from console.runs where id = $1").bind(run).fetch_one(pool).await.unwrap()
}

/// The value must appear nowhere the console keeps or shows anything.
async fn assert_nowhere(app: &TestApp, pool: &PgPool, value: &str, run: Uuid) {
    let tables: i64 = sqlx::query_scalar(
        "select (select count(*) from console.audit_entries a where row_to_json(a)::text like '%' || $1 || '%')
              + (select count(*) from console.run_log l where row_to_json(l)::text like '%' || $1 || '%')
              + (select count(*) from console.run_steps s where row_to_json(s)::text like '%' || $1 || '%')
              + (select count(*) from console.runs r where row_to_json(r)::text like '%' || $1 || '%')
              + (select count(*) from console.web_sessions w where row_to_json(w)::text like '%' || $1 || '%')",
    )
    .bind(value)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(tables, 0, "the value is in the console's tables");
    for path in [format!("/runs/{run}"), "/secrets".into(), "/deployments".into(), "/audit".into(), "/health".into()] {
        let page = app.visit(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(value), "the value is on {path}");
    }
    assert!(!captured_logs().contains(value), "the value is in the logs");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn rotating_the_jwt_secret_says_everyone_is_signed_out_and_leaves_no_trace(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let before = current(&app, JWT).await;
    let page = app.visit("/secrets").await;
    assert!(page.has("tr[data-secret='jwt_secret'] a[href='/secrets/rotate?secret=jwt_secret']"));
    let confirm = app.visit("/secrets/rotate?secret=jwt_secret").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text("main").contains("Every Drop user will be signed out"), "the impact is said plainly");
    assert!(confirm.text("main").contains("production — App Runner service drop-web"));
    let unconfirmed = app.confirm_rotation(&[("secret", "jwt_secret")]).await;
    assert_eq!(unconfirmed.status, 422);
    assert!(unconfirmed.text("#understood-error").contains("Tick the box"));
    assert_eq!(sqlx::query_scalar::<_, i64>("select count(*) from console.runs").fetch_one(&pool).await.unwrap(), 0);

    let run = rotate(&app, "jwt_secret").await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded");
    let after = current(&app, JWT).await;
    assert_ne!(after, before);
    assert_eq!(after.len(), 64, "48 random bytes, base64");
    let redeploys: i64 =
        sqlx::query_scalar("select count(*) from console.sim_operations where kind = 'START_DEPLOYMENT'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(redeploys, 1, "the app was redeployed to read it");

    let (resource, details): (String, serde_json::Value) = sqlx::query_as(
        "select resource_type || '/' || resource_id, details from console.audit_entries where action = 'secret_rotated' and kind = 'intent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(resource, "secret/JWT_SECRET");
    assert!(details["rotated_at"].is_string());
    assert_eq!(
        details["fingerprint"],
        dropops::audit::fingerprint(&app.state.config, &after),
        "the audit log proves which value"
    );
    assert_nowhere(&app, &pool, &after, run).await;
    assert!(app.visit("/secrets").await.has(&format!("tr[data-run='{run}']")), "in the rotation history");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn rotating_the_database_password_keeps_rds_and_the_secret_in_step(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let old_url = current(&app, DB_URL).await;
    let old_password = sim(&app).master_password().await.unwrap();
    let run = rotate(&app, "database_url").await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded");
    let url = current(&app, DB_URL).await;
    assert_ne!(url, old_url);
    let password = password_of(&dropops::config::Secret::new(url.clone())).unwrap();
    assert_eq!(
        password.expose(),
        sim(&app).master_password().await.unwrap().expose(),
        "RDS has the password in DATABASE_URL"
    );
    assert_ne!(password.expose(), old_password.expose());
    assert_eq!(password.expose().len(), 43, "32 random bytes, URL-safe base64");
    assert_nowhere(&app, &pool, password.expose(), run).await;
}

/// The kill test: stop the worker before and after the action of every step; another worker
/// resumes; RDS and the secret agree at the end, and exactly one new value was made per run.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_password_rotation_killed_at_any_step_resumes_to_a_consistent_state(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    for position in 0..10 {
        for phase in [Phase::BeforeAct, Phase::AfterAct] {
            let run = rotate(&app, "database_url").await;
            let halt = Arc::new(move |p: i32, ph: Phase| p == position && ph == phase);
            assert_eq!(Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap(), Driven::Halted);
            if position == 3 && phase == Phase::AfterAct {
                // RDS took the new password; the secret still has the old one. Visible as such.
                let page = app.visit(&format!("/runs/{run}")).await;
                assert!(page.text("[role=alert]").contains("Half-finished rotation"), "{}", page.body);
                let url = current(&app, DB_URL).await;
                assert_ne!(
                    password_of(&dropops::config::Secret::new(url)).unwrap().expose(),
                    sim(&app).master_password().await.unwrap().expose()
                );
            }
            expire_lease(&pool, run).await;
            drive(&app).await;
            assert_eq!(status(&pool, run).await, "succeeded", "killed at {position} {phase:?}");
            let url = current(&app, DB_URL).await;
            assert_eq!(
                password_of(&dropops::config::Secret::new(url)).unwrap().expose(),
                sim(&app).master_password().await.unwrap().expose(),
                "killed at {position} {phase:?}: RDS and DATABASE_URL agree"
            );
        }
    }
    let versions: i64 = sqlx::query_scalar("select count(*) from console.sim_secret_versions where secret_id = $1")
        .bind(DB_URL)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(versions, 1 + 20, "the first value, then one per run: never a second password in a run");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_failed_rotation_is_resumed_with_the_same_password(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    let run = rotate(&app, "database_url").await;
    // Stop just before RDS is asked; AWS starts throttling; the step gives up after its limit.
    let halt = Arc::new(|p: i32, ph: Phase| p == 2 && ph == Phase::BeforeAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    assert_eq!(admin.set_fault("throttling", true).await.status, 303);
    expire_lease(&pool, run).await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "failed");
    let page = app.visit(&format!("/runs/{run}")).await;
    assert!(page.text("[role=alert]").contains("Half-finished rotation"));
    assert!(page.text("main").contains("throttling"), "the reason is shown");
    assert!(page.has(&format!("form[action='/runs/{run}/resume']")));
    let staged: String = sqlx::query_scalar("select params ->> 'version' from console.runs where id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    let pending = app.state.cloud.secrets.value(DB_URL, Some(&staged)).await;
    assert!(pending.is_err(), "still throttled");

    admin.set_fault("throttling", false).await;
    let pending = app.state.cloud.secrets.value(DB_URL, Some(&staged)).await.unwrap().unwrap();
    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    assert_eq!(viewer.resume_run(run).await.status, 403);
    // While a restart holds the service, the rotation cannot carry on: told why, not queued.
    let restart = app.confirm_run(&[("procedure", "restart")]).await;
    assert_eq!(restart.status, 303);
    let blocked = app.resume_run(run).await;
    assert_eq!(blocked.status, 409);
    assert!(
        blocked.text("main").contains("rolling restart by Ola Oncall is already running"),
        "{}",
        blocked.text("main")
    );
    assert_eq!(status(&pool, run).await, "failed", "unchanged");
    drive(&app).await;
    assert_eq!(app.resume_run(run).await.status, 303);
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded");
    assert_eq!(current(&app, DB_URL).await, pending.expose(), "the value staged before the failure, not a new one");
    assert_eq!(password_of(&pending).unwrap().expose(), sim(&app).master_password().await.unwrap().expose());
    assert_eq!(
        crate::harness::audit_trail(&pool, "run_resumed").await,
        crate::harness::intent_then_success(),
        "the viewer's refused attempt wrote no intent"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_schedule_flags_due_secrets_on_the_secrets_page_and_the_dashboard(pool: PgPool) {
    // The simulated JWT secret was rotated 60 days ago; a 30-day maximum makes it overdue.
    let app = TestApp::spawn_with(pool.clone(), config(&[("DROPOPS_DROP__JWT_SECRET_MAX_AGE_DAYS", "30")])).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let page = app.visit("/secrets").await;
    assert!(page.text("tr[data-secret='jwt_secret']").contains("Overdue since"), "{}", page.text("main"));
    assert!(page.text("tr[data-secret='database_url']").contains("Due "));
    let health = app.visit("/health").await;
    assert!(health.has("[data-card='secrets'].tone-red"), "{}", health.body);
    assert!(health.text("[data-card='secrets']").contains("JWT_SECRET"));
    let run = rotate(&app, "jwt_secret").await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded");
    assert!(app.visit("/secrets").await.text("tr[data-secret='jwt_secret']").contains("Due "));
    assert!(app.visit("/health").await.has("[data-card='secrets'].tone-green"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn only_oncall_and_admins_rotate(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config(&[])).await;
    app.sign_in(&["compliance"]).await;
    assert_eq!(app.visit("/secrets/rotate?secret=jwt_secret").await.status, 403);
    assert_eq!(app.confirm_rotation(&[("secret", "jwt_secret"), ("understood", "yes")]).await.status, 403);
    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    let page = viewer.visit("/secrets").await;
    assert_eq!(page.status, 200);
    assert!(!page.has("a[href^='/secrets/rotate']"));
    assert_eq!(viewer.confirm_rotation(&[("secret", "jwt_secret"), ("understood", "yes")]).await.status, 403);
    let admin = app.another_browser();
    admin.sign_in(&["admin"]).await;
    let unknown = admin.confirm_rotation(&[("secret", "root_password"), ("understood", "yes")]).await;
    assert_eq!(unknown.status, 422);
    assert_eq!(sqlx::query_scalar::<_, i64>("select count(*) from console.runs").fetch_one(&pool).await.unwrap(), 0);
}

/// RDS through a recording proxy in front of moto: moto keeps no readable master password, so
/// the proxy notes the last one RDS accepted (ModifyDBInstance answered 200).
#[derive(Clone, Default)]
struct RdsRecorder {
    moto: String,
    accepted: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn forward(
    axum::extract::State(rec): axum::extract::State<RdsRecorder>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: String,
) -> (axum::http::StatusCode, axum::http::HeaderMap, String) {
    let client = reqwest::Client::new();
    let mut request =
        client.post(format!("{}{}", rec.moto, uri.path_and_query().map_or("/", |p| p.as_str()))).body(body.clone());
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.unwrap();
    let status = axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut out = axum::http::HeaderMap::new();
    if let Some(ct) = response.headers().get("content-type") {
        out.insert("content-type", ct.to_str().unwrap().parse().unwrap());
    }
    let text = response.text().await.unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if form.get("Action").map(String::as_str) == Some("ModifyDBInstance") && status.is_success() {
        if let Some(password) = form.get("MasterUserPassword") {
            rec.accepted.lock().unwrap().push(password.clone());
        }
    }
    (status, out, text)
}

/// Both rotations through the AWS adapter: RDS and Secrets Manager in moto, App Runner
/// recorded.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn both_rotations_through_the_aws_adapter(pool: PgPool) {
    use crate::aws::{create_instance, moto, sdk, unique};

    let sdk = sdk().await;
    let db = unique("drop-db");
    create_instance(&sdk, &db).await;
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    let jwt = unique("drop/production/jwt-secret");
    let db_url = unique("drop/production/database-url");
    sm.create_secret().name(&jwt).secret_string("old-jwt-secret").send().await.unwrap();
    let old_url = format!("postgres://drop:not-a-real-password@{db}.c8xyzqrt.eu-west-1.rds.amazonaws.com:5432/dropapp");
    sm.create_secret().name(&db_url).secret_string(&old_url).send().await.unwrap();

    let recorder = RdsRecorder { moto: moto().url.clone(), ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rds_url = format!("http://{}", listener.local_addr().unwrap());
    let proxy = axum::Router::new().fallback(axum::routing::post(forward)).with_state(recorder.clone());
    tokio::spawn(async move { axum::serve(listener, proxy).await.unwrap() });

    let image = "324480209768.dkr.ecr.eu-west-1.amazonaws.com/drop-web:7f3c2a1";
    let mock =
        crate::apprunner::MockAppRunner::start(image, Default::default(), std::time::Duration::from_millis(60)).await;
    let mut config = config(&[]);
    config.aws.endpoints.rds = Some(rds_url);
    config.aws.endpoints.secretsmanager = Some(moto().url.clone());
    config.aws.endpoints.ecr = Some(moto().url.clone());
    config.drop.rds_instance = Some(db.clone());
    config.drop.jwt_secret_id = Some(jwt.clone());
    config.drop.database_url_secret_id = Some(db_url.clone());
    let app = crate::apprunner::console_on_aws(pool.clone(), config, &sdk, &mock).await;

    let page = app.visit("/secrets").await;
    assert!(page.text("tr[data-secret='jwt_secret']").contains("0 days ago"), "read from moto: {}", page.text("main"));
    let run = rotate(&app, "jwt_secret").await;
    drive(&app).await;
    let why: Option<String> =
        sqlx::query_scalar("select outcome from console.runs where id = $1").bind(run).fetch_one(&pool).await.unwrap();
    assert_eq!(status(&pool, run).await, "succeeded", "{why:?}");
    let new_jwt = current(&app, &jwt).await;
    assert_ne!(new_jwt, "old-jwt-secret");
    assert_eq!(new_jwt.len(), 64);
    assert_eq!(mock.calls("StartDeployment"), 1, "redeployed to read it");

    let run = rotate(&app, "database_url").await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded");
    let url = current(&app, &db_url).await;
    assert!(
        url.starts_with("postgres://drop:")
            && url.ends_with(&format!("@{db}.c8xyzqrt.eu-west-1.rds.amazonaws.com:5432/dropapp"))
    );
    let password = password_of(&dropops::config::Secret::new(url.clone())).unwrap();
    assert_eq!(
        recorder.accepted.lock().unwrap().as_slice(),
        [password.expose().to_owned()],
        "RDS was given exactly the password in DATABASE_URL, once"
    );
    assert_eq!(mock.calls("StartDeployment"), 2);
    assert_nowhere(&app, &pool, password.expose(), run).await;
    assert_nowhere(&app, &pool, &new_jwt, run).await;
}

//! Sign-in through a real OIDC provider: the npm package `oauth2-mock-server`, run by node
//! (installed by `scripts/test` into tests/oidc). Each test sets the claims of its own code.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use dropops::config::{Config, Mode, Role, Secret};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::{Browser, Page, TestApp};

struct Provider {
    issuer: String,
    control: String,
    _node: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One provider for the whole test run, started on first use.
fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
        assert!(
            std::path::Path::new(dir).join("node_modules/oauth2-mock-server").exists(),
            "oauth2-mock-server is not installed: ./scripts/test runs `npm ci --prefix tests/oidc`"
        );
        let (port, control_port) = (free_port(), free_port());
        let node = Command::new("node")
            .current_dir(dir)
            .args(["mock-server.mjs", &port.to_string(), &control_port.to_string(), &std::process::id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts the OIDC provider");
        let issuer = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", control_port)).is_ok();
            if up {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Provider { issuer, control: format!("http://127.0.0.1:{control_port}"), _node: node }
    })
}

fn config() -> Config {
    let mut config = Config::demo();
    config.mode = Mode::Production;
    config.oidc.issuer_url = Some(provider().issuer.clone());
    config.oidc.client_id = Some("dropops-test".into());
    config.oidc.client_secret = Some(Secret::new("test-secret"));
    config.oidc.roles =
        [("drop-ops-admins".to_owned(), Role::Admin), ("drop-ops-viewers".to_owned(), Role::Viewer)].into();
    config
}

/// Run a sign-in from `/auth/login?<query>` to our callback, with `claims` in the ID token.
/// Returns the callback's answer and the callback URL (for replay tests).
async fn sign_in_via_provider(browser: &Browser, query: &str, claims: Value) -> (Page, String) {
    let start = browser.visit(&format!("/auth/login?{query}")).await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = start.location().to_owned();
    assert!(authorize.starts_with(&provider().issuer), "{authorize}");
    assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="), "{authorize}");
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = plain.get(&authorize).send().await.unwrap();
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    let url = reqwest::Url::parse(&callback).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    plain.post(&provider().control).json(&json!({ "code": code, "claims": claims })).send().await.unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    (browser.visit(&path).await, path)
}

fn person(sub: &str, groups: &[&str]) -> Value {
    json!({ "sub": sub, "groups": groups, "email": format!("{sub}@getdrop.example"), "name": format!("Person {sub}") })
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_provider_sign_in_maps_groups_to_roles(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let (page, _) =
        sign_in_via_provider(&app, "next=%2Faudit", person("kari", &["drop-ops-viewers", "unrelated"])).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/audit");
    let overview = app.visit("/").await;
    assert_eq!(overview.status, 200);
    assert_eq!(overview.text(".user-name"), "Person kari");
    let (issuer, subject, roles): (String, String, Vec<String>) =
        sqlx::query_as("select issuer, subject, roles from console.staff").fetch_one(&pool).await.unwrap();
    assert_eq!((issuer, subject, roles), (provider().issuer.clone(), "kari".into(), vec!["viewer".to_owned()]));
    assert_eq!(app.visit("/admin/staff").await.status, 403, "viewer only");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn staff_are_identified_by_issuer_and_subject_not_email(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let shared_email = json!({ "email": "shared@getdrop.example", "groups": ["drop-ops-viewers"] });
    let mut first = shared_email.clone();
    first["sub"] = json!("first");
    let mut second = shared_email;
    second["sub"] = json!("second");
    sign_in_via_provider(&app, "", first).await;
    sign_in_via_provider(&app.another_browser(), "", second).await;
    let people: i64 = sqlx::query_scalar("select count(*) from console.staff").fetch_one(&pool).await.unwrap();
    assert_eq!(people, 2, "two subjects with one email are two people");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_person_without_a_console_group_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let (page, _) = sign_in_via_provider(&app, "", person("outsider", &["marketing"])).await;
    assert_eq!(page.status, 403);
    assert!(page.text("main").contains("no role in the console"));
    assert_eq!(app.visit("/").await.status, 303);
}

async fn refused_with(pool: &PgPool, page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.body);
    assert_eq!(page.text("main h1"), "Sign-in refused");
    let failures: i64 =
        sqlx::query_scalar("select count(*) from console.audit_entries where action = 'sign_in_failed'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(failures, 1, "the refusal is audited");
    let staff: i64 = sqlx::query_scalar("select count(*) from console.staff").fetch_one(pool).await.unwrap();
    assert_eq!(staff, 0, "nobody was signed in");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_token_with_the_wrong_nonce_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let mut claims = person("kari", &["drop-ops-admins"]);
    claims["nonce"] = json!("a-nonce-from-another-login");
    let (page, _) = sign_in_via_provider(&app, "", claims).await;
    refused_with(&pool, &page, 401).await;
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_token_for_another_audience_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let mut claims = person("kari", &["drop-ops-admins"]);
    claims["aud"] = json!("some-other-app");
    let (page, _) = sign_in_via_provider(&app, "", claims).await;
    refused_with(&pool, &page, 401).await;
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_expired_token_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let now = chrono::Utc::now().timestamp();
    let mut claims = person("kari", &["drop-ops-admins"]);
    claims["exp"] = json!(now - 120);
    claims["iat"] = json!(now - 3600);
    let (page, _) = sign_in_via_provider(&app, "", claims).await;
    refused_with(&pool, &page, 401).await;
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_token_from_another_issuer_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let mut claims = person("kari", &["drop-ops-admins"]);
    claims["iss"] = json!("https://evil.example");
    let (page, _) = sign_in_via_provider(&app, "", claims).await;
    refused_with(&pool, &page, 401).await;
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_tampered_state_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let start = app.visit("/auth/login").await;
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let callback = plain.get(start.location()).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let url = reqwest::Url::parse(&callback).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let page = app.visit(&format!("/auth/callback?code={code}&state=forged")).await;
    refused_with(&pool, &page, 400).await;
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_replayed_callback_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let (first, callback) = sign_in_via_provider(&app, "", person("kari", &["drop-ops-viewers"])).await;
    assert_eq!(first.status, 303);
    // Same code and state again, from the same browser (now signed in) and from an attacker's.
    for browser in [&*app, &app.another_browser()] {
        let replay = browser.visit(&callback).await;
        assert_eq!(replay.status, 400, "{}", replay.body);
        assert!(replay.text("main").contains("expired or was already used"));
    }
    let sessions: i64 =
        sqlx::query_scalar("select count(*) from console.staff_sessions").fetch_one(&pool).await.unwrap();
    assert_eq!(sessions, 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_open_redirect_in_next_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool, config()).await;
    let (page, _) =
        sign_in_via_provider(&app, "next=https%3A%2F%2Fevil.example%2F", person("kari", &["drop-ops-viewers"])).await;
    assert_eq!(page.location(), "/");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn step_up_sends_a_stale_sign_in_back_to_the_provider_and_returns_to_the_form(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    sign_in_via_provider(&app.another_browser(), "", person("ola", &["drop-ops-viewers"])).await;
    let mut admin = person("astrid", &["drop-ops-admins"]);
    admin["auth_time"] = json!(chrono::Utc::now().timestamp() - 3600);
    sign_in_via_provider(&app, "", admin.clone()).await;
    let ola: String =
        sqlx::query_scalar("select id::text from console.staff where subject = 'ola'").fetch_one(&pool).await.unwrap();
    let form = format!("/admin/staff/{ola}/disable");

    let stepped = app.submit(&form, &[("reason", "Lost laptop")]).await;
    assert_eq!(stepped.status, 303);
    let query = stepped.location().strip_prefix("/auth/login?").unwrap().to_owned();
    let start = app.visit(stepped.location()).await;
    assert!(
        start.location().contains("max_age=0") && start.location().contains("prompt=login"),
        "{}",
        start.location()
    );

    admin["auth_time"] = json!(chrono::Utc::now().timestamp());
    let (back, _) = sign_in_via_provider(&app, &query, admin).await;
    assert_eq!(back.location(), form);
    let page = app.visit(&form).await;
    assert_eq!(page.text("#reason"), "Lost laptop");
    let done = app.submit(&form, &[("reason", "Lost laptop")]).await;
    assert_eq!(done.location(), "/admin/staff");
    let disabled: bool =
        sqlx::query_scalar("select disabled from console.staff where subject = 'ola'").fetch_one(&pool).await.unwrap();
    assert!(disabled);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn signing_out_also_ends_the_provider_session(pool: PgPool) {
    let app = TestApp::spawn_with(pool, config()).await;
    sign_in_via_provider(&app, "", person("kari", &["drop-ops-viewers"])).await;
    let out = app.sign_out().await;
    assert_eq!(out.status, 303);
    let to = out.location();
    assert!(to.starts_with(&format!("{}/endsession", provider().issuer)), "{to}");
    assert!(to.contains("post_logout_redirect_uri="), "{to}");
    assert_eq!(app.visit("/").await.status, 303);
}

/// Signed in an hour ago, about to re-confirm for a sensitive action: the step-up query.
async fn stale_admin_about_to_step_up(app: &TestApp, pool: &PgPool) -> (Value, String) {
    let mut admin = person("astrid", &["drop-ops-admins"]);
    admin["auth_time"] = json!(chrono::Utc::now().timestamp() - 3600);
    sign_in_via_provider(app, "", admin.clone()).await;
    sqlx::query(
        "insert into console.staff (issuer, subject, display_name, roles) values ('x', 'ola', 'Ola', '{viewer}')",
    )
    .execute(pool)
    .await
    .unwrap();
    let ola: String =
        sqlx::query_scalar("select id::text from console.staff where subject = 'ola'").fetch_one(pool).await.unwrap();
    let stepped = app.disable_staff(&ola, "Lost laptop").await;
    assert_eq!(stepped.status, 303);
    (admin, stepped.location().strip_prefix("/auth/login?").unwrap().to_owned())
}

async fn refused_step_ups(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from console.audit_entries where action = 'sign_in_failed' and reason like '%auth_time%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_re_confirmation_without_the_providers_auth_time_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let (mut admin, query) = stale_admin_about_to_step_up(&app, &pool).await;
    // The provider skipped the re-authentication and sent no auth_time: iat must not stand in.
    admin["auth_time"] = Value::Null; // the mock provider then leaves the claim out
    let (page, _) = sign_in_via_provider(&app, &query, admin).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(refused_step_ups(&pool).await, 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_re_confirmation_with_the_old_sign_ins_auth_time_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let (admin, query) = stale_admin_about_to_step_up(&app, &pool).await;
    // The provider ignored max_age=0 and vouched for the hour-old sign-in again.
    let (page, _) = sign_in_via_provider(&app, &query, admin).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(refused_step_ups(&pool).await, 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_sign_in_from_the_future_is_refused(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config()).await;
    let mut kari = person("kari", &["drop-ops-viewers"]);
    kari["auth_time"] = json!(chrono::Utc::now().timestamp() + 3600);
    let (page, _) = sign_in_via_provider(&app, "", kari).await;
    refused_with(&pool, &page, 401).await;
}

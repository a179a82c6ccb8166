//! Side doors around the access table (the outside-in assessment): each test names the attack
//! it stops.

use sqlx::PgPool;

use crate::harness::{TestApp, captured_logs, staff_id};

async fn audit_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from console.audit_entries").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_control_character_in_a_form_field_is_refused_before_anything_is_written(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    let before = audit_rows(&pool).await;
    for evil in ["left\u{0}", "vertical\u{b}tab", "form\u{c}feed", "escape\u{1b}[31m", "c1\u{85}"] {
        let page = app.disable_staff(&ola, evil).await;
        assert_eq!(page.status, 422, "{evil:?}: {}", page.body);
        assert!(page.body.contains("control character"), "{evil:?}: {}", page.body);
    }
    assert_eq!(audit_rows(&pool).await, before, "nothing was written, not even an intent");
    let disabled: bool = sqlx::query_scalar("select disabled from console.staff where display_name = 'Ola'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!disabled);
    // A textarea's line breaks are not control characters to refuse.
    let page = app.disable_staff(&ola, "left the company\r\nticket 42").await;
    assert_ne!(page.status, 422, "{}", page.body);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_control_character_in_a_query_string_is_a_422_not_a_500(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    for query in ["/audit?actor=%00", "/audit?resource=%0B", "/auth/sign-in?next=/%09/evil.example"] {
        let page = app.visit(query).await;
        assert_eq!(page.status, 422, "{query}: {}", page.body);
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_tab_in_next_cannot_send_a_person_off_site_after_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Decoded from next=/%09/evil.example: browsers drop the TAB and follow //evil.example.
    for next in ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example"] {
        let page = app.submit("/auth/dev", &[("name", "Kari"), ("role", "viewer"), ("next", next)]).await;
        assert_eq!(page.status, 303, "{next:?}: {}", page.body);
        assert_eq!(page.location(), "/", "{next:?} stays on this site");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_undeclared_method_on_a_declared_path_is_405_and_logs_no_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["viewer"]).await;
    let page = app.request(app.client().delete(app.url("/audit"))).await;
    assert_eq!(page.status, 405, "{}", page.body);
    assert_eq!(page.header("allow"), "GET, HEAD");
    let page = app.request(app.client().put(app.url("/audit/verify")).header("x-csrf-token", app.csrf().await)).await;
    assert_eq!(page.status, 405);
    assert_eq!(page.header("allow"), "POST");
    let logs = captured_logs();
    assert!(
        !logs.lines().any(|l| l.contains("route has no access rule") && l.contains("/audit")),
        "a wrong method is not an error of the console"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_page_on_a_rebound_dns_name_gets_nothing_from_the_console(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let port = app.address.port();
    // DNS rebinding: the attacker's name now resolves to the console, so the browser sends
    // the attacker's Host and, on a POST, the attacker's Origin with it.
    let read = app.request(app.client().get(app.url("/audit")).header("host", format!("evil.example:{port}"))).await;
    assert_eq!(read.status, 421, "{}", read.body);
    let write = app
        .request(
            app.client()
                .post(app.url("/audit/verify"))
                .header("host", format!("evil.example:{port}"))
                .header("origin", format!("http://evil.example:{port}"))
                .header("x-csrf-token", app.csrf().await),
        )
        .await;
    assert_eq!(write.status, 421);
    // Loopback names of the same console are one site in demo mode; probes come by address.
    let local = app.request(app.client().get(app.url("/audit")).header("host", format!("localhost:{port}"))).await;
    assert_eq!(local.status, 200);
    let probe = app.request(app.client().get(app.url("/health/live")).header("host", "10.0.3.7:8080")).await;
    assert_eq!(probe.status, 200);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_metrics_scrape_needs_the_token_and_cannot_watch_casework(pool: PgPool) {
    let token = "a-scrape-token-of-at-least-thirty-two-chars";
    let app = TestApp::spawn_with(pool, crate::harness::config_with(&[("DROPOPS_METRICS_TOKEN", token)])).await;
    app.sign_in(&["mlro"]).await;
    // Casework an outsider would like to watch: the STR pages and the alert queue.
    app.visit("/compliance/str").await;
    app.visit("/compliance/str/new").await;
    app.visit("/compliance/alerts").await;
    app.visit("/compliance").await;

    let anonymous = app.another_browser().visit("/metrics").await;
    assert_eq!(anonymous.status, 401);
    assert!(!anonymous.body.contains("dropops_http_requests"));
    let wrong = app.request(app.client().get(app.url("/metrics")).bearer_auth("not-the-token")).await;
    assert_eq!(wrong.status, 401);

    let scrape = app.request(app.client().get(app.url("/metrics")).bearer_auth(token)).await;
    assert_eq!(scrape.status, 200);
    assert!(scrape.body.contains(r#"route="casework""#), "casework is counted, as one route");
    assert!(!scrape.body.contains("/compliance/str") && !scrape.body.contains("/compliance/alerts"), "{}", scrape.body);
    assert!(scrape.body.contains(r#"route="/compliance""#), "the counts-only summary is not casework");
}

#[test]
fn production_refuses_to_start_without_a_metrics_token() {
    let err = dropops::config::Config::load(None, [("DROPOPS_MODE".to_owned(), "production".to_owned())]).unwrap_err();
    assert!(err.to_string().contains("metrics_token: required in production mode"), "{err}");
}

async fn sign_in_row(pool: &PgPool) -> (Option<String>, Option<String>) {
    sqlx::query_as(
        "select client_ip, request_id from console.audit_entries where action = 'sign_in' order by seq desc limit 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_client_cannot_choose_the_address_or_request_id_the_audit_log_records(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let token = app.csrf().await;
    let form = [("name", "Mallory"), ("role", "viewer"), ("next", "/"), ("_csrf", token.as_str())];
    let page = app
        .request(
            app.client()
                .post(app.url("/auth/dev"))
                .header("origin", app.url(""))
                .header("x-forwarded-for", "6.6.6.6")
                .header("x-request-id", "forged-request-id")
                .form(&form),
        )
        .await;
    assert_eq!(page.status, 303);
    assert_ne!(page.header("x-request-id"), "forged-request-id", "the console names its own requests");
    let (ip, request_id) = sign_in_row(&pool).await;
    assert_eq!(ip.as_deref(), Some("127.0.0.1"), "no proxy is trusted in demo mode: the socket's address");
    assert_eq!(request_id.as_deref(), Some(page.header("x-request-id")));
    let shown: String =
        sqlx::query_scalar("select client_ip from console.staff_sessions order by created_at desc limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(shown, "127.0.0.1", "the sign-ins page shows the same");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn behind_one_proxy_the_address_it_saw_is_recorded_not_the_one_the_client_wrote(pool: PgPool) {
    let app =
        TestApp::spawn_with(pool.clone(), crate::harness::config_with(&[("DROPOPS_TRUSTED_PROXY_HOPS", "1")])).await;
    let token = app.csrf().await;
    let form = [("name", "Mallory"), ("role", "viewer"), ("next", "/"), ("_csrf", token.as_str())];
    // The client wrote 6.6.6.6; App Runner appended the address it really came from.
    app.request(
        app.client()
            .post(app.url("/auth/dev"))
            .header("origin", app.url(""))
            .header("x-forwarded-for", "6.6.6.6, 203.0.113.9")
            .form(&form),
    )
    .await;
    assert_eq!(sign_in_row(&pool).await.0.as_deref(), Some("203.0.113.9"));
}

async fn web_sessions(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from console.web_sessions").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn anonymous_visits_to_the_sign_in_page_do_not_fill_the_session_store(pool: PgPool) {
    // Production: the provider's button is a link, so a visit stores nothing at all.
    let mut config = dropops::config::Config::demo();
    config.mode = dropops::config::Mode::Production;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    for _ in 0..20 {
        assert_eq!(app.another_browser().visit("/auth/sign-in").await.status, 200);
    }
    assert_eq!(web_sessions(&pool).await, 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_demo_sign_in_form_keeps_its_token_for_minutes_not_the_signed_in_lifetime(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.visit("/auth/sign-in").await;
    let minutes: f64 = sqlx::query_scalar(
        "select extract(epoch from max(expiry_date) - now())::float8 / 60 from console.web_sessions",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(minutes <= 15.5, "an anonymous session lives {minutes} minutes");
    app.sign_in(&["viewer"]).await;
    let hours: f64 = sqlx::query_scalar(
        "select extract(epoch from max(expiry_date) - now())::float8 / 3600 from console.web_sessions",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(hours > 12.0, "a sign-in keeps the configured lifetime ({hours} h)");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_stream_of_forged_callbacks_writes_a_bounded_number_of_audit_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    for n in 0..60 {
        let page = app.another_browser().visit(&format!("/auth/callback?state=forged{n}&code=x")).await;
        assert!(page.status >= 400, "{}", page.status);
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from console.audit_entries where action = 'sign_in_failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, i64::from(dropops::auth::flood::ROWS_PER_WINDOW), "the rest are counted, not written");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_huge_search_filter_is_refused_and_nothing_large_is_written(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    let huge = "x".repeat(60_000);
    let page = app.visit(&format!("/audit?actor={huge}")).await;
    assert_eq!(page.status, 422);
    assert_eq!(page.text("#actor-error"), "At most 200 characters.");
    app.sign_in(&["compliance"]).await;
    // Any other page that records its filter keeps at most a bounded head of it.
    app.visit(&format!("/compliance/alerts?rule={}", "y".repeat(20_000))).await;
    let largest: i32 = sqlx::query_scalar("select max(length(details::text)) from console.audit_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(largest <= 4096, "an audit row's details are bounded ({largest} bytes)");
}

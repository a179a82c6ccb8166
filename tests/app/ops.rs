//! The console's own operability: liveness, readiness, metrics, CSP reports.

use sqlx::PgPool;

use crate::harness::TestApp;

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn ready_when_the_database_answers_and_is_migrated(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ready = app.visit("/health/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body, r#"{"database":"ok","optional_columns_absent":0,"status":"ok"}"#);
}

#[sqlx::test(migrations = false)]
async fn not_ready_until_migrations_are_applied(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ready = app.visit("/health/ready").await;
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("no migrations applied"), "{}", ready.body);

    dropops::db::migrate_demo(&pool).await.unwrap();
    assert_eq!(app.visit("/health/ready").await.status, 200);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn not_ready_but_still_live_when_the_database_is_gone(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    pool.close().await;
    let ready = app.visit("/health/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.header("content-type"), "application/json");
    assert!(ready.body.contains("database unreachable"), "{}", ready.body);
    assert_eq!(app.visit("/health/live").await.status, 200);

    // A page that needs the database explains itself instead of showing a raw error.
    let page = app.visit("/compliance").await;
    assert_eq!(page.status, 503);
    assert!(page.text(".error-card").contains("database cannot be reached"), "{}", page.body);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn metrics_count_requests_by_route_template_and_status(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["viewer"]).await;
    app.visit("/health").await;
    app.visit("/health").await;
    app.visit("/no-such-page").await;
    let css = app.visit("/").await.attrs("link[rel=stylesheet]", "href").remove(0);
    app.visit(&css).await;

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"dropops_http_requests_total{method="GET",route="/health",status="200"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"dropops_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/static/{*path}",status="200"} 1"#),
        "asset hashes never become labels:\n{metrics}"
    );
    assert!(metrics.contains(r#"dropops_http_request_duration_seconds_count{route="/health"} 2"#), "{metrics}");
    assert!(metrics.contains("dropops_db_pool_connections "), "{metrics}");
    assert!(metrics.contains("dropops_db_pool_idle_connections "), "{metrics}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn csp_violation_reports_are_counted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let report = r#"{"csp-report":{"violated-directive":"style-src","blocked-uri":"inline"}}"#;
    let response = app
        .request(
            app.client().post(app.url("/csp-report")).header("content-type", "application/csp-report").body(report),
        )
        .await;
    assert_eq!(response.status, 204);
    assert!(app.metrics().await.contains("dropops_csp_violations_total 1"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn anonymous_csp_reports_cannot_flood_or_forge_the_log(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());
    for _ in 0..15 {
        let report = serde_json::json!({ "csp-report": {
            "violated-directive": "style-src",
            "blocked-uri": format!("{marker}\n2026-12-02T03:00:00Z ERROR dropops: forged"),
        }});
        let response = app
            .request(
                app.client()
                    .post(app.url("/csp-report"))
                    .header("content-type", "application/csp-report")
                    .body(report.to_string()),
            )
            .await;
        assert_eq!(response.status, 204);
    }
    assert!(app.metrics().await.contains("dropops_csp_violations_total 15"), "every report is counted");
    let logs = crate::harness::captured_logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&marker)).collect();
    assert_eq!(lines.len(), dropops::metrics::CSP_LOGS_PER_MINUTE as usize, "the rest are counted, not logged");
    assert!(lines.iter().all(|l| l.contains(r"\\n2026")), "the newline is escaped in the field: {}", lines[0]);
}

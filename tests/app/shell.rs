//! The page shell: navigation, demo banner, error pages and toasts, headers on every response.

use sqlx::PgPool;

use crate::harness::{TestApp, config_with};

const AREAS: [(&str, &str); 7] = [
    ("/health", "Health"),
    ("/deployments", "Deployments"),
    ("/incidents", "Incidents"),
    ("/compliance", "Compliance"),
    ("/secrets", "Secrets"),
    ("/database", "Database"),
    ("/audit", "Audit"),
];

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_area_in_the_navigation_opens_inside_the_shell(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let overview = app.visit("/").await;
    assert_eq!(overview.status, 200);
    let links = overview.attrs("nav[aria-label=Main] a", "href");
    assert_eq!(links, AREAS.map(|(href, _)| href.to_owned()));

    for (href, label) in AREAS {
        let page = app.visit(href).await;
        assert_eq!(page.status, 200, "{href}:\n{}", page.body);
        assert_eq!(page.text("nav[aria-label=Main] a[aria-current=page]"), label, "{href}");
        assert_eq!(page.text("main h1"), label, "{href}");
        assert!(page.text(".banner-demo").contains("Demo mode"), "{href}");
        assert_eq!(page.text("title"), format!("{label} · dropops"));
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn production_mode_offers_no_dev_sign_in_and_no_banner(pool: PgPool) {
    let mut config = config_with(&[]);
    config.mode = dropops::config::Mode::Production;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let page = app.visit("/auth/sign-in").await;
    assert_eq!(page.status, 200);
    assert!(!page.has(".banner-demo"));
    assert!(!page.has("form[action='/auth/dev']"), "no dev sign-in outside demo mode");
    assert!(page.attrs("a.button", "href").iter().any(|h| h.starts_with("/auth/login")));
    // The sign-in page gives an anonymous visitor no session, so no CSRF token either: the
    // POST is refused before it could even find that there is no dev sign-in.
    let refused = app.submit("/auth/dev", &[("name", "Mallory"), ("role", "admin")]).await;
    assert!(matches!(refused.status, 403 | 404), "{}", refused.status);
    let staff: i64 = sqlx::query_scalar("select count(*) from console.staff").fetch_one(&pool).await.unwrap();
    assert_eq!(staff, 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn security_headers_are_on_pages_errors_and_assets(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let css = app.visit("/").await.attrs("link[rel=stylesheet]", "href").remove(0);
    for path in ["/", "/no-such-page", css.as_str(), "/health/ready"] {
        let page = app.visit(path).await;
        let csp = page.header("content-security-policy");
        assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert!(!page.header("x-request-id").is_empty(), "{path}");
        // Plain HTTP on loopback: no HSTS, which would pin a developer's localhost to HTTPS.
        assert_eq!(page.header("strict-transport-security"), "", "{path}");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn hsts_is_sent_when_the_console_is_served_over_https(pool: PgPool) {
    let app = TestApp::spawn_with(pool, config_with(&[("DROPOPS_PUBLIC_URL", "https://ops.example.test")])).await;
    let page = app.visit("/health/live").await;
    assert!(page.header("strict-transport-security").starts_with("max-age="));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn pages_are_never_cached_but_hashed_assets_are_for_a_year(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let page = app.visit("/audit").await;
    assert_eq!(page.header("cache-control"), "no-store");
    let css = page.attrs("link[rel=stylesheet]", "href").remove(0);
    let script = page.attrs("script[src]", "src").remove(0);
    assert!(css.starts_with("/static/app.") && css.ends_with(".css"), "{css}");
    for asset in [css, script] {
        let response = app.visit(&asset).await;
        assert_eq!(response.status, 200, "{asset}");
        assert_eq!(response.header("cache-control"), "public, max-age=31536000, immutable");
    }
    let htmx = app.visit(&page.attrs("script[src]", "src").remove(0)).await;
    assert!(htmx.header("content-type").contains("javascript"));
    assert!(htmx.body.contains("htmx"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn assets_are_only_served_under_their_hashed_names(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    assert_eq!(app.visit("/static/app.css").await.status, 404);
    assert_eq!(app.visit("/static/app.0000000000000000.css").await.status, 404);
    let licence = app.visit("/").await.attrs("footer a", "href").remove(0);
    assert!(licence.contains("LICENSE"), "{licence}");
    let licence = app.visit(&licence).await;
    assert_eq!(licence.status, 200);
    assert!(licence.body.contains("Zero-Clause BSD") || licence.body.contains("BSD"), "htmx licence is served");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_unknown_address_gets_a_full_error_page_with_the_request_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let page = app.visit("/no-such-page").await;
    assert_eq!(page.status, 404);
    assert_eq!(page.text("main h1"), "Not found");
    assert_eq!(page.text(".error-card code"), page.header("x-request-id"));
    assert_eq!(page.attrs(".error-card a.button", "href"), ["/"], "the error page leads back");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_htmx_request_gets_an_error_toast_instead_of_a_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let toast = app.visit_htmx("/no-such-page").await;
    assert_eq!(toast.status, 404);
    assert_eq!(toast.header("hx-retarget"), "#toasts");
    assert_eq!(toast.header("hx-reswap"), "beforeend");
    assert!(!toast.body.contains("<html"), "{}", toast.body);
    assert!(toast.text(".toast[role=alert]").contains("There is nothing at this address."));
    assert_eq!(toast.text(".toast .request-id code"), toast.header("x-request-id"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn bad_input_is_explained_without_raw_error_text(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    for bad in ["/audit?before=abc", "/audit?before=0"] {
        let page = app.visit(bad).await;
        assert_eq!(page.status, 422, "{bad}");
        assert!(page.header("content-type").starts_with("text/html"));
        assert_eq!(page.text("#before-error"), "That page link is not valid. Start from the newest entries.");
        assert!(!page.body.contains("invalid digit"), "parser text stays out of the page");
    }
    // A query string the handler cannot even read is explained by the error page.
    let page = app.visit("/audit/not-a-number").await;
    assert_eq!(page.status, 404);
    assert_eq!(page.text("main h1"), "Not found");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn responses_are_gzipped_for_browsers_that_accept_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let response = app.client().get(app.url("/deployments")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_oversized_request_body_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let body = "x".repeat(200 * 1024);
    let page = app.request(app.client().post(app.url("/csp-report")).body(body)).await;
    assert_eq!(page.status, 413);
    assert_eq!(page.text("main h1"), "Too large");
    assert!(page.header("content-security-policy").contains("default-src 'none'"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_request_that_outlives_the_timeout_is_stopped_with_a_clear_page(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config_with(&[("DROPOPS_REQUEST_TIMEOUT_SECS", "1")])).await;
    app.sign_in(&["admin"]).await;
    // Hold a lock the compliance counts need, as a long migration or VACUUM FULL would.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("lock table aml_alerts in access exclusive mode").execute(&mut *blocker).await.unwrap();
    let page = app.visit("/compliance").await;
    blocker.rollback().await.unwrap();
    assert_eq!(page.status, 408);
    assert_eq!(page.text("main h1"), "Took too long");
    assert_eq!(page.header("cache-control"), "no-store");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_database_page_refreshes_its_figures_as_a_fragment(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let page = app.visit("/database").await;
    assert_eq!(
        page.attrs("#db-stats", "hx-get"),
        ["/database?over=60&idle=300&by=total"],
        "the refresh keeps the thresholds and the ranking"
    );
    assert!(page.text("#db-title").starts_with("_sqlx_test"), "shows the database's own name");

    let fragment = app.visit_htmx("/database").await;
    assert_eq!(fragment.status, 200);
    assert!(!fragment.body.contains("<html") && !fragment.body.contains("<nav"), "{}", fragment.body);
    assert_eq!(fragment.text("#db-title"), page.text("#db-title"));
    // The test pool itself is connected, so at least one state is listed with a count.
    assert!(!fragment.texts("tbody td.num").is_empty(), "{}", fragment.body);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn deployments_list_the_images_and_mark_the_running_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["oncall"]).await;
    let page = app.visit("/deployments").await;
    let rows = page.texts("table.images tbody tr");
    assert_eq!(rows.len(), 9);
    assert!(rows[0].contains("Deploy…"), "the newest push is not deployed yet: {rows:?}");
    assert!(rows[1].contains("Running"), "the one before it runs: {rows:?}");
    assert!(rows[2].contains("Roll back to this…"), "older ones are rollback targets: {rows:?}");
    assert_eq!(rows.iter().filter(|r| r.contains("untagged")).count(), 2);
    assert!(page.text("#images-title ~ p.muted").contains("2 untagged image(s)"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn secrets_show_when_they_last_changed_never_their_value(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    let page = app.visit("/secrets").await;
    // The simulator last rotated it 60 days before its service was last deployed (26 h ago).
    assert!(page.text("tr[data-secret='jwt_secret']").contains("61 days ago"));
    assert!(page.text("tr[data-secret='database_url']").contains("41 days ago"));
    assert!(page.text("tr[data-secret='database_url']").contains("drop/production/database-url"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_throttled_cloud_leaves_the_pages_readable(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["admin"]).await;
    app.set_fault("throttling", true).await;
    let deployments = app.visit("/deployments").await;
    assert_eq!(deployments.status, 200);
    assert!(deployments.text("#images-title ~ p").contains("AWS is throttling requests"));
    let secrets = app.visit("/secrets").await;
    assert_eq!(secrets.status, 200);
    assert!(secrets.text("tr[data-secret='jwt_secret']").contains("Unknown"));
}

/// A form sent back with its errors names the page it was posted from, for the browser to
/// put in place of the POST history entry (static/app.js); only the console's own pages, and
/// only on a 422 to a POST.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_rejected_form_names_its_own_page_for_the_history_entry(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["oncall"]).await;
    let token = app.csrf().await;
    let post = |referer: String| {
        app.client().post(app.url("/deployments/runs")).header("origin", app.url("")).header("referer", referer).form(
            &[("procedure", "restart"), ("reason", &"x".repeat(dropops::audit::Reason::MAX + 1)), ("_csrf", &token)],
        )
    };
    let page = app.request(post(app.url("/deployments/confirm?procedure=restart&a=\"b\""))).await;
    assert_eq!(page.status, 422);
    assert_eq!(
        page.attrs("meta[name=dropops-get-url]", "content"),
        ["/deployments/confirm?procedure=restart&a=%22b%22"]
    );
    assert_eq!(page.attrs("script[src*='/static/app.']", "defer").len(), 1, "the script that uses it is loaded");
    let foreign = app.request(post("https://evil.example/deployments/confirm".into())).await;
    assert_eq!(foreign.status, 422);
    assert!(!foreign.has("meta[name=dropops-get-url]"), "another site's page is never put in the history");
    assert!(!app.visit("/deployments/confirm?procedure=restart").await.has("meta[name=dropops-get-url]"));
}

//! The access table, generated into a test: every route × every role, plus anonymous. A new
//! route is declared with its rule (see `dropops::routes`), so it is covered here at once.

use dropops::auth::policy::Access;
use dropops::config::Role;
use reqwest::Method;
use sqlx::PgPool;

use crate::harness::{Browser, TestApp};

/// A concrete URL for a path template: ids that parse but do not exist.
fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{*path}", "app.css")
        .replace("{name}", "storage_low")
}

async fn call(browser: &Browser, method: &Method, path: &str) -> u16 {
    if *method == Method::GET { browser.visit(path).await.status } else { browser.submit(path, &[]).await.status }
}

/// The access table as reviewed: one line per route, "METHOD path: who". The matrix below
/// checks the server against the table; this checks the table against a copy a person signed
/// off, so a rule loosened in the code shows up as a diff here. `UPDATE_GOLDEN=1` rewrites it.
#[test]
fn the_access_table_is_the_reviewed_one() {
    let mut lines: Vec<String> = dropops::routes()
        .iter()
        .map(|route| {
            let who = match route.rule.access {
                Access::Public => "everyone".to_owned(),
                Access::PublicReport => "everyone (reports only)".to_owned(),
                Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            };
            format!("{} {}: {who}", route.method, route.path)
        })
        .collect();
    lines.sort();
    let table = lines.join("\n") + "\n";
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/app/access.golden");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden, &table).expect("write the golden access table");
    }
    let reviewed = std::fs::read_to_string(golden).expect("tests/app/access.golden");
    assert!(
        table == reviewed,
        "the access table differs from tests/app/access.golden (review, then UPDATE_GOLDEN=1):\n{}",
        lines.iter().filter(|l| !reviewed.lines().any(|r| r == l.as_str())).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_route_admits_exactly_the_roles_its_rule_names(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut browsers = Vec::new();
    for role in Role::ALL {
        let browser = app.another_browser();
        browser.sign_in_as(&format!("Only {}", role.as_str()), &[role.as_str()]).await;
        browsers.push((Some(role), browser));
    }
    browsers.push((None, app.another_browser()));

    let mut checked = 0;
    for route in dropops::routes() {
        // Sign-out would end the browser's sign-in halfway through the matrix; it has its own tests.
        if route.path == "/auth/logout" {
            continue;
        }
        let path = concrete(route.path);
        for (role, browser) in &browsers {
            let status = call(browser, &route.method, &path).await;
            let allowed = match (route.rule.access, role) {
                (Access::Public | Access::PublicReport, _) => true,
                (Access::Roles(roles), Some(role)) => roles.contains(role),
                (Access::Roles(_), None) => false,
            };
            let who = role.map_or("anonymous", |r| r.as_str());
            if allowed {
                // A GET that redirects (other than the login redirect) would be a sign-in bounce.
                let bounced = status == 303 && route.method == Method::GET && path != "/auth/login";
                let refused = [401, 403].contains(&status) || bounced;
                assert!(!refused, "{who} should reach {} {path}, got {status}", route.method);
            } else if role.is_some() {
                assert_eq!(status, 403, "{who} must be refused {} {path}", route.method);
            } else {
                assert!(
                    status == 303 || status == 401,
                    "anonymous must be sent to sign in for {} {path}, got {status}",
                    route.method
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "the matrix covered {checked} cases");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_refusal_is_audited_with_the_roles_held(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    assert_eq!(app.visit("/admin/staff").await.status, 403);
    let (resource, details): (String, serde_json::Value) =
        sqlx::query_as("select resource_id, details from console.audit_entries where action = 'access_denied'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(resource, "GET /admin/staff");
    assert_eq!(details["roles_held"], serde_json::json!(["viewer"]));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn navigation_shows_only_the_areas_a_role_may_open(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["compliance"]).await;
    let page = app.visit("/").await;
    let links = page.attrs("nav[aria-label=Main] a", "href");
    assert_eq!(links, ["/health", "/compliance", "/audit"]);
    assert!(!page.has(".user-menu a[href='/admin/staff']"), "no admin link for compliance");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_signed_out_visitor_is_sent_to_sign_in_and_back(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let page = app.visit("/audit?action=sign_in").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/auth/sign-in?next=%2Faudit%3Faction%3Dsign_in");
    let htmx = app.visit_htmx("/database").await;
    assert_eq!(htmx.status, 401);
    assert_eq!(htmx.header("hx-redirect"), "/auth/sign-in?next=%2Fdatabase");

    let signed_in =
        app.submit("/auth/dev", &[("name", "Ola"), ("role", "viewer"), ("next", "/audit?action=sign_in")]).await;
    assert_eq!(signed_in.location(), "/audit?action=sign_in");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn sign_in_never_redirects_off_site(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for next in ["https://evil.example/", "//evil.example", "/\\evil.example"] {
        let page = app.submit("/auth/dev", &[("name", "Ola"), ("role", "viewer"), ("next", next)]).await;
        assert_eq!(page.location(), "/", "{next}");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_state_changing_route_refuses_a_request_without_the_csrf_token(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["admin"]).await;
    let mut checked = 0;
    for route in dropops::routes().into_iter().filter(|r| r.method == Method::POST) {
        if route.rule.access == Access::PublicReport {
            continue; // browser CSP reports carry no token and change nothing
        }
        let path = concrete(route.path);
        let page = app.request(app.client().post(app.url(&path)).form(&[("reason", "no token")])).await;
        assert_eq!(page.status, 403, "POST {path} without a token");
        checked += 1;
    }
    assert!(checked >= 6, "{checked} routes checked");
    assert_eq!(app.visit("/").await.status, 200, "still signed in: nothing was ended");
    let changes: i64 = sqlx::query_scalar("select count(*) from console.audit_entries where kind <> 'event'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(changes, 0, "no action started");
}

/// A refused page keeps the person's navigation and says which role it needs.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_refused_page_keeps_the_navigation_and_names_the_role_it_needs(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in_as("Vera Viewer", &["viewer"]).await;
    let refused = app.visit("/deployments/confirm?procedure=restart").await;
    assert_eq!(refused.status, 403);
    let text = refused.text("main");
    assert!(text.contains("On-call engineer") && text.contains("signed in as Viewer"), "{text}");
    assert!(refused.has("nav a[href='/health']"), "the navigation stays: {}", refused.body);
    assert!(!refused.has("nav a[href='/admin/staff']"), "and shows only what the role may open");
}

/// The overview is a status page for the role: on-call sees production and runs, compliance
/// the queue in counts, an MLRO the reports awaiting review; each sees only the areas it may
/// open.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_overview_is_a_status_page_for_the_role(pool: PgPool) {
    dropops::demo::seed_if_empty(&pool, dropops::demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let oncall = app.visit("/").await;
    assert!(oncall.has(".overview-health h2 .badge"), "production at a glance: {}", oncall.body);
    assert!(oncall.text(".overview-health").contains("Routine checks"), "overdue checks are named");
    assert!(!oncall.has(".overview-queue"), "no compliance queue for on-call");
    assert!(!oncall.has("a.card-link[href='/compliance']") && oncall.has("a.card-link[href='/deployments']"));

    let compliance = app.another_browser();
    compliance.sign_in_as("Cora Compliance", &["compliance"]).await;
    let page = compliance.visit("/").await;
    let open: i64 =
        sqlx::query_scalar("select count(*) from aml_alerts where status = 'open'").fetch_one(&pool).await.unwrap();
    assert!(page.text(".overview-queue").contains(&open.to_string()), "{}", page.text(".overview-queue"));
    assert!(!page.has(".awaiting-review"), "only the MLRO is told about reviews");
    assert!(!page.has("a.card-link[href='/deployments']"));

    let mlro = app.another_browser();
    mlro.sign_in_as("Mari", &["mlro"]).await;
    let waiting: i64 = sqlx::query_scalar("select count(*) from console.str_cases where status = 'pending_review'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mlro.visit("/").await.text(".awaiting-review"), waiting.to_string());
}

/// An id in a path is a typed id: text that is not one (a person's id where an alert's goes,
/// markup, a path) is a 404 before any query runs, for every route that takes one.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_path_id_that_is_not_one_is_not_found(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["viewer", "oncall", "compliance", "mlro", "admin"]).await;
    let mut checked = 0;
    for route in dropops::routes().iter().filter(|r| r.path.contains("{id}")) {
        for bad in ["usr_wrongkind0", "alert_%3Cscript%3E", "12abc", "00000000-0000-0000-0000-00000000000g"] {
            let path = route.path.replace("{id}", bad);
            let status = call(&app, &route.method, &path).await;
            assert_eq!(status, 404, "{} {path}", route.method);
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");
}

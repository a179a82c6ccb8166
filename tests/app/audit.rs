//! The audit core: fail-closed intents, append-only rows, a hash chain that never forks and
//! exposes tampering, the outcome reconciler, and the audit pages.

use std::time::Duration;

use dropops::audit::{self, Actor, AuditContext, Intent, RequestMeta};
use serde_json::json;
use sqlx::PgPool;

use crate::harness::TestApp;

async fn staff_id(pool: &PgPool, name: &str) -> String {
    sqlx::query_scalar("select id::text from console.staff where display_name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn when_the_intent_cannot_be_written_nothing_happens(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    // The audit table refuses this action's row, as a full disk or a revoked grant would.
    sqlx::query(
        "create function refuse_audit() returns trigger language plpgsql as $$
         begin if new.action = 'staff_disabled' then raise exception 'audit storage unavailable'; end if; return new; end $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()")
        .execute(&pool)
        .await
        .unwrap();

    let page = app.submit(&format!("/admin/staff/{ola}/disable"), &[("reason", "Left the company")]).await;
    assert_eq!(page.status, 503);
    assert!(
        page.text(".error-card").contains("The audit log cannot be written right now, so nothing was done."),
        "{}",
        page.body
    );
    let disabled: bool = sqlx::query_scalar("select disabled from console.staff where display_name = 'Ola'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!disabled, "the action did not run");
}

#[sqlx::test]
async fn audit_rows_cannot_be_changed_or_removed(pool: PgPool) {
    sqlx::query("insert into audit_log (action, resource_type, resource_id) values ('a', 'b', 'c')")
        .execute(&pool)
        .await
        .unwrap();
    for sql in ["update audit_log set action = 'x'", "delete from audit_log", "truncate audit_log cascade"] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[sqlx::test]
async fn fifty_concurrent_actions_extend_one_unbroken_chain(pool: PgPool) {
    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (pool, ctx) = (pool.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let intent = Intent {
                action: "test_action",
                resource_type: "test",
                resource_id: n.to_string(),
                reason: None,
                details: json!({ "n": n }),
            };
            let token = audit::intent_committed(&pool, &ctx, intent).await.expect("intent");
            let mut conn = pool.acquire().await.unwrap();
            audit::outcome(&mut conn, &ctx, token, audit::Outcome::Succeeded).await.expect("outcome");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (rows, distinct_prev, max_seq): (i64, i64, i64) =
        sqlx::query_as("select count(*), count(distinct prev_hash) + count(*) filter (where prev_hash is null), max(seq) from audit_log")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 100);
    assert_eq!(distinct_prev, 100, "no two rows follow the same row: the chain did not fork");
    assert_eq!(max_seq, 100);
    let report = audit::verify(&pool).await.unwrap();
    assert_eq!((report.rows, report.first_broken), (100, None));
}

#[sqlx::test]
async fn tampering_by_a_superuser_is_found_by_the_cli_and_the_audit_page(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    for n in 0..5 {
        sqlx::query("insert into audit_log (action, resource_type, resource_id) values ('test_action', 'test', $1)")
            .bind(n.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    let verified = app.submit("/audit/verify", &[]).await;
    assert!(verified.text(".verify-result").contains("Chain intact"), "{}", verified.body);

    // A superuser rewrites history, going around the append-only trigger.
    let victim: i64 =
        sqlx::query_scalar("select id from audit_log where resource_id = '2'").fetch_one(&pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("alter table audit_log disable trigger audit_log_no_change").execute(&mut *conn).await.unwrap();
    sqlx::query("update audit_log set resource_id = 'nothing to see' where id = $1")
        .bind(victim)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("alter table audit_log enable trigger audit_log_no_change").execute(&mut *conn).await.unwrap();
    drop(conn);

    let page = app
        .request(
            app.client()
                .post(app.url("/audit/verify"))
                .header("x-csrf-token", app.csrf().await)
                .header("hx-request", "true"),
        )
        .await;
    assert!(page.text(".verify-result").contains("Chain broken"), "{}", page.body);
    assert_eq!(page.attrs(".verify-result a", "href"), [format!("/audit/{victim}")]);
    let entry = app.visit(&format!("/audit/{victim}")).await;
    assert!(entry.text(".chain-status").contains("Broken"));

    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{database}", base.rsplit_once('/').unwrap().0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dropops"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("BROKEN at entry {victim}")), "{stdout}");
}

#[sqlx::test]
async fn intents_without_an_outcome_are_marked_unknown_and_shown(pool: PgPool) {
    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    let intent = Intent {
        action: "deploy_started",
        resource_type: "service",
        resource_id: "drop-web".into(),
        reason: None,
        details: json!({}),
    };
    let token = audit::intent_committed(&pool, &ctx, intent).await.unwrap();
    let _abandoned = token.intent_id(); // the process "crashed" before writing the outcome
    assert_eq!(audit::reconcile(&pool, Duration::from_secs(3600)).await.unwrap(), 0, "not yet overdue");
    assert_eq!(audit::reconcile(&pool, Duration::ZERO).await.unwrap(), 1);
    assert_eq!(audit::reconcile(&pool, Duration::ZERO).await.unwrap(), 0, "marked once");

    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    let page = app.visit("/audit?outcome=unknown").await;
    let rows = page.texts("table.audit tbody tr");
    assert_eq!(rows.len(), 2, "the intent and its unknown outcome:\n{rows:?}");
    assert!(rows.iter().all(|r| r.contains("deploy_started") && r.contains("Outcome unknown")), "{rows:?}");
}

#[sqlx::test]
async fn searches_and_exports_are_audited_and_the_csv_cannot_run_formulas(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola", &["viewer"]).await;
    sqlx::query("insert into audit_log (action, resource_type, resource_id, reason) values ('test_action', 'test', '=HYPERLINK(\"http://evil\")', '+cmd')")
        .execute(&pool)
        .await
        .unwrap();
    let page = app.visit("/audit?action=test_action").await;
    assert_eq!(page.texts("table.audit tbody tr").len(), 1);

    let export = app.client().get(app.url("/audit/export.csv?action=test_action")).send().await.unwrap();
    assert_eq!(export.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(export.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let csv = export.text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK") && csv.contains("'+cmd"), "{csv}");
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains(",\"=HYPERLINK"), "{csv}");

    let recorded: Vec<(String, String)> = sqlx::query_as(
        "select action, actor from audit_log where action in ('audit_searched', 'audit_exported') order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(recorded, [("audit_searched".into(), "Ola".into()), ("audit_exported".into(), "Ola".into())]);
}

#[sqlx::test]
async fn an_entry_shows_its_intent_outcome_and_chain_status(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    app.submit(&format!("/admin/staff/{ola}/disable"), &[("reason", "<script>alert(1)</script>")]).await;
    let intent: i64 =
        sqlx::query_scalar("select id from audit_log where action = 'staff_disabled' and kind = 'intent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let page = app.visit(&format!("/audit/{intent}")).await;
    assert_eq!(page.status, 200);
    let headings = page.texts("section.card h2");
    assert!(headings.iter().any(|h| h.contains("intent") && h.contains("staff_disabled")), "{headings:?}");
    assert!(headings.iter().any(|h| h.contains("outcome") && h.contains("Succeeded")), "{headings:?}");
    assert!(page.text(".chain-status").contains("Intact"));
    assert!(!page.body.contains("<script>alert(1)"), "reasons are escaped");
    assert_eq!(app.visit("/audit/999999").await.status, 404);
}

//! The audit core: fail-closed intents, append-only rows, a hash chain that never forks and
//! exposes tampering, the outcome reconciler, and the audit pages.

use std::time::Duration;

use dropops::audit::verify::{self, Scope};
use dropops::audit::{self, Actor, AuditContext, Chain, Intent, RequestMeta};
use serde_json::json;
use sqlx::PgPool;

use crate::harness::{TestApp, staff_id};

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
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
    sqlx::query("create trigger refuse_audit before insert on console.audit_entries for each row execute function refuse_audit()")
        .execute(&pool)
        .await
        .unwrap();

    let page = app.disable_staff(&ola, "Left the company").await;
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

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn audit_rows_cannot_be_changed_or_removed(pool: PgPool) {
    sqlx::query("insert into console.audit_entries (action, resource_type, resource_id) values ('a', 'b', 'c')")
        .execute(&pool)
        .await
        .unwrap();
    for sql in [
        "update console.audit_entries set action = 'x'",
        "delete from console.audit_entries",
        "truncate console.audit_entries cascade",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn fifty_concurrent_actions_extend_one_unbroken_chain(pool: PgPool) {
    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (pool, ctx) = (pool.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let intent = Intent {
                action: "test_action",
                resource_type: audit::Resource::Run,
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
        sqlx::query_as("select count(*), count(distinct prev_hash) + count(*) filter (where prev_hash is null), max(seq) from console.audit_entries")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 100);
    assert_eq!(distinct_prev, 100, "no two rows follow the same row: the chain did not fork");
    assert_eq!(max_seq, 100);
    let report = verify::run(&pool, &ctx, Chain::Operations, Scope::Full).await.unwrap();
    let v = &report.verification;
    assert_eq!((v.rows, v.problem.as_deref()), (101, None), "the 100 rows and the verification's own intent");
    let head: (i64, Vec<u8>) =
        sqlx::query_as("select seq, hash from console.audit_chain_head where chain = 'operations'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let newest: (i64, Vec<u8>) =
        sqlx::query_as("select seq, hash from console.audit_entries order by seq desc limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(head, newest, "the head table names the newest row (the verification's outcome)");
}

async fn insert_test_rows(pool: &PgPool, n: usize) {
    for n in 0..n {
        sqlx::query(
            "insert into console.audit_entries (action, resource_type, resource_id) values ('test_action', 'test', $1)",
        )
        .bind(n.to_string())
        .execute(pool)
        .await
        .unwrap();
    }
}

/// A superuser rewrites history, going around the append-only trigger: `sql`, with `$1` bound
/// to `value` when it has one.
async fn rewrite(pool: &PgPool, sql: &str, value: Option<i64>) {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("alter table console.audit_entries disable trigger audit_log_no_change")
        .execute(&mut *conn)
        .await
        .unwrap();
    let query = sqlx::query(sql);
    let query = if let Some(v) = value { query.bind(v) } else { query };
    query.execute(&mut *conn).await.unwrap();
    sqlx::query("alter table console.audit_entries enable trigger audit_log_no_change")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Change the row of `resource_id` behind the chain's back.
async fn tamper(pool: &PgPool, resource_id: &str) -> i64 {
    let victim: i64 = sqlx::query_scalar("select id from console.audit_entries where resource_id = $1")
        .bind(resource_id)
        .fetch_one(pool)
        .await
        .unwrap();
    rewrite(pool, "update console.audit_entries set resource_id = 'nothing to see' where id = $1", Some(victim)).await;
    victim
}

fn run_cli_verify(database: &str, args: &[&str]) -> (Option<i32>, String) {
    let anchors = std::env::temp_dir().join(format!("dropops-anchors-{database}.jsonl"));
    run_cli_verify_with(database, args, &anchors)
}

/// `audit verify` with its anchors in `anchors`.
fn run_cli_verify_with(database: &str, args: &[&str], anchors: &std::path::Path) -> (Option<i32>, String) {
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{database}", base.rsplit_once('/').unwrap().0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dropops"))
        .args(["audit", "verify"])
        .args(args)
        .env("DATABASE_URL", url)
        .env("DROPOPS_AUDIT__ANCHOR_FILE", anchors)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn tampering_before_the_checkpoint_is_found_by_a_full_verification_and_stays_shown(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["admin"]).await;
    insert_test_rows(&pool, 5).await;
    let verified = app.verify_audit().await;
    assert!(verified.text(".verify-result").contains("Chain intact"), "{}", verified.body);
    assert!(verified.has("form[action='/audit/verify/full'] button"), "an admin is offered the full re-verification");

    let victim = tamper(&pool, "2").await;
    // A press verifies only what came after its checkpoint, and says so.
    let since = app.verify_audit().await;
    let since_text = since.text(".verify-result");
    assert!(since_text.contains("Chain intact") && since_text.contains("since the checkpoint"), "{since_text}");

    let full = app
        .request(
            app.client()
                .post(app.url("/audit/verify/full"))
                .header("x-csrf-token", app.csrf().await)
                .header("hx-request", "true"),
        )
        .await;
    assert!(full.text(".verify-result").contains("Chain broken"), "{}", full.body);
    assert_eq!(full.attrs(".verify-result a", "href"), [format!("/audit/{victim}")]);
    let entry = app.visit(&format!("/audit/{victim}")).await;
    assert!(entry.text(".chain-status").contains("Broken"));

    // Later checks since the checkpoint cannot hide the break: it stays until a full pass.
    insert_test_rows(&pool, 1).await;
    let later = app.verify_audit().await;
    assert!(later.text(".verify-result .notice-red").contains("Broken earlier"), "{}", later.body);

    // The full re-verification is an audited action: intent first, then its failed outcome.
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "select kind, outcome, error from console.audit_entries where action = 'audit_chain_full_verification' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[1].0.as_str(), rows[1].1.as_deref()), ("intent", "outcome", Some("failed")));
    assert!(rows[1].2.as_deref().unwrap_or("").contains(&format!("entry {victim}")), "{rows:?}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn tampering_by_a_superuser_is_found_by_the_cli_and_the_audit_page(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    insert_test_rows(&pool, 5).await;
    let victim = tamper(&pool, "2").await;

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
    assert!(!page.has("form[action='/audit/verify/full']"), "a viewer is not offered the full re-verification");
    let refused = app.submit("/audit/verify/full", &[]).await;
    assert_eq!(refused.status, 403);

    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let (code, stdout) = run_cli_verify(&database, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(&format!("BROKEN at entry {victim}")), "{stdout}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_cli_verifies_in_stretches_and_reports_its_speed(pool: PgPool) {
    // More rows than one stretch, so the walk crosses stretch boundaries.
    let rows = verify::STRETCH as usize + 7;
    sqlx::query(
        "insert into console.audit_entries (action, resource_type, resource_id) select 'test_action', 'test', g::text
         from generate_series(1, $1) g",
    )
    .bind(rows as i64)
    .execute(&pool)
    .await
    .unwrap();
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let (code, stdout) = run_cli_verify(&database, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    let checked = rows + 1; // and the verification's own intent
    assert!(stdout.contains(&format!("{checked} entries checked")) && stdout.contains("entries/s"), "{stdout}");
    // The CLI's verification is audited too, and becomes the checkpoint the next one starts at.
    let (code, stdout) = run_cli_verify(&database, &["--since-checkpoint"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("2 entries checked"), "only the first run's intent and outcome: {stdout}");

    // A row removed from the middle is found across the stretch boundary.
    rewrite(&pool, "delete from console.audit_entries where seq = $1", Some(verify::STRETCH + 1)).await;
    let (code, stdout) = run_cli_verify(&database, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("a row before it is missing"), "{stdout}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn appending_reads_the_head_row_not_the_log(pool: PgPool) {
    insert_test_rows(&pool, 50).await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("set local enable_indexscan = off").execute(&mut *tx).await.unwrap();
    sqlx::query("set local enable_bitmapscan = off").execute(&mut *tx).await.unwrap();
    sqlx::query(
        "insert into console.audit_entries (action, resource_type, resource_id) values ('test_action', 'test', 'x')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    // Scans of audit_log and of its indexes made by this transaction, the trigger's included.
    let scans: i64 = sqlx::query_scalar(
        "select pg_stat_get_xact_numscans('console.audit_entries'::regclass)
                + coalesce((select sum(pg_stat_get_xact_numscans(indexrelid)) from pg_index
                            where indrelid = 'console.audit_entries'::regclass), 0)::bigint",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(scans, 0, "the chain trigger found the previous row without reading audit_log");
    let (seq, last): (i64, i64) = sqlx::query_as(
        "select h.seq, (select max(seq) from console.audit_entries) from console.audit_chain_head h where chain = 'operations'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((seq, last), (51, 51));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn intents_without_an_outcome_are_marked_unknown_and_shown(pool: PgPool) {
    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    let intent = Intent {
        action: "deploy_started",
        resource_type: audit::Resource::Run,
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

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn searches_and_exports_are_audited_and_the_csv_cannot_run_formulas(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola", &["viewer"]).await;
    sqlx::query("insert into console.audit_entries (action, resource_type, resource_id, reason) values ('test_action', 'test', '=HYPERLINK(\"http://evil\")', '+cmd')")
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
        "select action, actor from console.audit_entries where action in ('audit_searched', 'audit_exported') order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(recorded, [("audit_searched".into(), "Ola".into()), ("audit_exported".into(), "Ola".into())]);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_entry_shows_its_intent_outcome_and_chain_status(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    app.submit(&format!("/admin/staff/{ola}/disable"), &[("reason", "<script>alert(1)</script>")]).await;
    let intent: i64 =
        sqlx::query_scalar("select id from console.audit_entries where action = 'staff_disabled' and kind = 'intent'")
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

/// Casework done through the console by compliance: a person opened, the alert queue read,
/// the log searched for that person and exported, and a viewer knocking on a casework page.
async fn casework_activity(pool: &PgPool, app: &TestApp) -> (String, crate::harness::Browser) {
    dropops::demo::seed_if_empty(pool, dropops::demo::DEFAULT_SEED).await.unwrap();
    let person: String = sqlx::query_scalar("select id from users order by id limit 1").fetch_one(pool).await.unwrap();
    app.sign_in_as("Kari", &["compliance"]).await;
    assert_eq!(app.visit(&format!("/compliance/people/{person}")).await.status, 200);
    assert_eq!(app.visit("/compliance/alerts").await.status, 200);
    // A search of the operations log for a customer is casework, whichever chain it reads.
    assert_eq!(app.visit(&format!("/audit?resource={person}")).await.status, 200);
    assert_eq!(app.visit(&format!("/audit/casework?resource={person}&action=str_filed")).await.status, 200);
    let export = app.client().get(app.url(&format!("/audit/casework/export.csv?resource={person}"))).send().await;
    assert_eq!(export.unwrap().status(), 200);
    let viewer = app.another_browser();
    viewer.sign_in_as("Vera", &["viewer"]).await;
    assert_eq!(viewer.visit("/compliance/str").await.status, 403);
    assert_eq!(viewer.visit("/audit/casework").await.status, 403);
    (person, viewer)
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn casework_leaves_no_trace_in_the_log_other_roles_read(pool: PgPool) {
    // Attack: tipping-off through the audit log. A viewer, on-call engineer or admin reading
    // the log learns who compliance looked up, that an STR was searched for, or (from a gap in
    // the numbers, a count, or a verification naming a hidden row) when casework happened.
    let app = TestApp::spawn(pool.clone()).await;
    let (person, _) = casework_activity(&pool, &app).await;
    let casework_ids: Vec<i64> = sqlx::query_scalar("select id from console.audit_entries where chain = 'casework'")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(casework_ids.len() == 7, "the views, searches, export and denials are all casework: {casework_ids:?}");
    let kinds: Vec<String> = sqlx::query_scalar(
        "select distinct resource_type from console.audit_entries where chain = 'casework' order by resource_type",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for kind in ["aml_alert_queue", "casework_log", "casework_route", "person"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} rows are casework: {kinds:?}");
    }

    for role in ["viewer", "oncall", "admin"] {
        let other = app.another_browser();
        other.sign_in(&[role]).await;
        let page = other.visit("/audit").await;
        let csv = other.client().get(other.url("/audit/export.csv")).send().await.unwrap().text().await.unwrap();
        for (what, text) in [("page", &page.body), ("csv", &csv)] {
            for secret in
                [person.as_str(), "casework_log", "casework_route", "aml_alert_queue", "str_filed", "/compliance/str"]
            {
                assert!(!text.contains(secret), "{role}'s {what} reveals {secret}");
            }
        }
        assert!(!page.has("nav.tabs"), "{role} is not offered the casework chain");
        for id in &casework_ids {
            assert_eq!(other.visit(&format!("/audit/{id}")).await.status, 404, "{role} opens no casework row");
        }
        // The operations chain is whole: its numbers and ids run without a gap.
        let (rows, max_seq, ids_span): (i64, i64, i64) = sqlx::query_as(
            "select count(*), max(seq), max(id) - min(id) + 1 from console.audit_entries where chain = 'operations'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((rows, max_seq, ids_span), (rows, rows, rows), "no gap where casework was written");
        // A verification counts and names operations rows only.
        let verified = other
            .request(
                other
                    .client()
                    .post(other.url("/audit/verify"))
                    .header("x-csrf-token", other.csrf().await)
                    .header("hx-request", "true"),
            )
            .await;
        let text = verified.text(".verify-result");
        assert!(text.contains("Chain intact"), "{text}");
        let (checked, operations): (i64, i64) = sqlx::query_as(
            "select v.rows, (select count(*) from console.audit_entries where chain = 'operations' and seq <= v.checked_seq)
               from console.audit_verifications v where v.chain = 'operations' order by v.id desc limit 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(checked <= operations, "the result counts operations rows only ({checked} of {operations})");
        assert_eq!(other.visit("/audit/casework").await.status, 403);
    }

    // Compliance reads the casework chain, with its searches, on its own pages.
    let page = app.visit("/audit/casework?action=personal_data_viewed").await;
    assert!(page.body.contains(&person), "{}", page.body);
    assert_eq!(page.attrs("nav.tabs a[aria-current='page']", "href"), ["/audit/casework"]);
    let id = casework_ids[0];
    assert_eq!(app.visit(&format!("/audit/casework/{id}")).await.status, 200);
    assert_eq!(app.visit(&format!("/audit/{id}")).await.status, 404, "each chain's pages name only its rows");
    let denials: Vec<String> = sqlx::query_scalar(
        "select resource_id from console.audit_entries where action = 'access_denied' and chain = 'casework' order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(denials[..2], ["GET /compliance/str", "GET /audit/casework"], "refused casework requests are casework");
    assert_eq!(denials.len(), 5, "and so are the three the roles above got");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_casework_chain_exposes_tampering_to_the_mlro_and_the_cli(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (person, _) = casework_activity(&pool, &app).await;
    let victim: i64 = sqlx::query_scalar(
        "select id from console.audit_entries where chain = 'casework' and resource_id = $1 order by id limit 1",
    )
    .bind(&person)
    .fetch_one(&pool)
    .await
    .unwrap();
    rewrite(&pool, "update console.audit_entries set actor = 'someone else' where id = $1", Some(victim)).await;

    // The operations chain is untouched, and says so to everyone.
    let ops = app.verify_audit().await;
    assert!(ops.text(".verify-result").contains("Chain intact"), "{}", ops.body);
    // Compliance may check the casework chain since its checkpoint; the MLRO recomputes it all.
    let mlro = app.another_browser();
    mlro.sign_in(&["mlro"]).await;
    let checked = mlro
        .request(
            mlro.client()
                .post(mlro.url("/audit/casework/verify/full"))
                .header("x-csrf-token", mlro.csrf().await)
                .header("hx-request", "true"),
        )
        .await;
    assert!(checked.text(".verify-result").contains("Chain broken"), "{}", checked.body);
    assert_eq!(checked.attrs(".verify-result a", "href"), [format!("/audit/casework/{victim}")]);
    assert_eq!(app.submit("/audit/casework/verify/full", &[]).await.status, 403, "compliance cannot start a full pass");

    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let (code, stdout) = run_cli_verify(&database, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("operations chain intact"), "{stdout}");
    assert!(stdout.contains(&format!("casework chain BROKEN at entry {victim}")), "{stdout}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_serving_role_cannot_rewrite_the_chain(pool: PgPool) {
    // Attack: a role that owns audit_log disables its trigger, changes a row and recomputes
    // the chain so that verification passes. Served as a role granted by
    // `grant-serving-role`, the console owns nothing it could do that with.
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    // Roles belong to the cluster: one per test database, left over only by a crashed run.
    let role = format!("serving_{}", &database[database.len().saturating_sub(40)..]).to_lowercase();
    sqlx::query(&format!("drop role if exists {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("create role {role} login")).execute(&pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    {
        // Before the grants, readiness names the privilege that is missing and the fix.
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{database}").replacen("postgres@", &format!("{role}@"), 1);
        let ungranted = PgPool::connect(&url).await.unwrap();
        let why = dropops::db::readiness(&ungranted).await.unwrap_err();
        assert!(why.contains("may not read _sqlx_migrations") && why.contains("grant-serving-role"), "{why}");
        ungranted.close().await;
    }
    dropops::db::grant_serving_role(&pool, &role).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{database}").replacen("postgres@", &format!("{role}@"), 1);
    assert!(url.contains(&role), "{url}");
    let serving = PgPool::connect(&url).await.unwrap();

    // The console works as that role: ready, and an audited action, end to end.
    let app = TestApp::spawn(serving.clone()).await;
    let ready = app.visit("/health/ready").await;
    assert_eq!(ready.status, 200, "the documented grants make the console ready: {}", ready.body);
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    assert_eq!(app.disable_staff(&ola, "Left").await.status, 303);
    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    let report = verify::run(&serving, &ctx, Chain::Operations, Scope::Full).await.unwrap();
    assert_eq!(report.verification.problem, None);

    for attack in [
        "alter table console.audit_entries disable trigger audit_log_no_change",
        "drop trigger audit_log_no_change on console.audit_entries",
        "update console.audit_entries set actor = 'someone else'",
        "delete from console.audit_entries",
        "update console.audit_chain_head set hash = null",
        "select setval('console.audit_operation_ids', 1)",
        "select nextval('console.audit_casework_ids')",
        "create or replace function console.audit_chain() returns trigger language plpgsql as $$ begin return new; end $$",
        "alter table console.audit_entries owner to current_user",
    ] {
        let err = sqlx::query(attack).execute(&serving).await.expect_err(attack);
        let message = err.to_string();
        assert!(message.contains("permission denied") || message.contains("must be owner"), "{attack}: {message}");
    }
    assert!(
        dropops::db::grant_serving_role(&pool, "x; drop table console.audit_entries").await.is_err(),
        "a role name is an identifier, never SQL"
    );
    serving.close().await;
    drop(app);
    sqlx::query(&format!("drop owned by {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("drop role {role}")).execute(&pool).await.unwrap();
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_owner_who_rewrites_and_recomputes_the_chain_is_caught_by_the_anchors(pool: PgPool) {
    // Attack: the database's owner changes a row and recomputes every hash after it, and the
    // head; the chain alone verifies again. The heads published outside the database do not
    // move with it.
    insert_test_rows(&pool, 5).await;
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let path = std::env::temp_dir().join(format!("dropops-anchors-{database}-rewrite.jsonl"));
    let _ = std::fs::remove_file(&path);
    let file = dropops::cloud::FileAnchors::new(&path);
    let config = dropops::config::Config::demo();
    let published = audit::anchor::publish(&pool, &file, &config).await.unwrap();
    assert_eq!(published.len(), 1, "only the operations chain has rows: {published:?}");
    let (code, stdout) = run_cli_verify_with(&database, &[], &path);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("anchors: 1 published heads checked"), "{stdout}");

    rewrite(
        &pool,
        "update console.audit_entries set resource_id = 'nothing to see' where chain = 'operations' and seq = 2",
        None,
    )
    .await;
    rewrite(
        &pool,
        "do $$ declare r console.audit_entries; prev bytea; begin
           select hash into prev from console.audit_entries where chain = 'operations' and seq = 1;
           for r in select * from console.audit_entries where chain = 'operations' and seq >= 2 order by seq loop
             update console.audit_entries set prev_hash = prev, hash = console.audit_row_hash(prev, r) where id = r.id
               returning hash into prev;
           end loop;
           update console.audit_chain_head set hash = prev where chain = 'operations';
         end $$",
        None,
    )
    .await;

    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    let report = verify::run(&pool, &ctx, Chain::Operations, Scope::Full).await.unwrap();
    assert_eq!(report.verification.problem, None, "the recomputed chain verifies on its own");
    let check = audit::anchor::check(&pool, &file, &config).await.unwrap();
    assert_eq!(check.checked, 1);
    assert!(check.problems.iter().any(|p| p.contains("rewritten after it was anchored")), "{:?}", check.problems);

    // Nor can the owner publish an anchor of their own: it is not signed with the audit key.
    let mut forged = published[0].clone();
    forged.seq = 6;
    std::fs::write(&path, format!("{}\n", serde_json::to_string(&forged).unwrap())).unwrap();
    let check = audit::anchor::check(&pool, &file, &config).await.unwrap();
    assert!(check.problems.iter().any(|p| p.contains("forged")), "{:?}", check.problems);

    std::fs::write(&path, format!("{}\n", serde_json::to_string(&published[0]).unwrap())).unwrap();
    let (code, stdout) = run_cli_verify_with(&database, &[], &path);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("operations chain intact") && stdout.contains("anchor MISMATCH"), "{stdout}");
    let _ = std::fs::remove_file(&path);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn granting_the_serving_role_is_audited_intent_first(pool: PgPool) {
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{database}", base.rsplit_once('/').unwrap().0);
    let run = |role: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dropops"))
            .args(["grant-serving-role", role])
            .env("DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    // A refused grant (not an identifier) is recorded as failed; nothing is granted.
    assert!(!run("Not A Role").status.success());
    let role = format!("granted_{}", &database[database.len().saturating_sub(40)..]).to_lowercase();
    sqlx::query(&format!("drop role if exists {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("create role {role}")).execute(&pool).await.unwrap();
    let out = run(&role);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trail: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select resource_id, kind, outcome from console.audit_entries where action = 'serving_role_granted' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected = [
        ("Not A Role".to_owned(), "intent".to_owned(), None),
        ("Not A Role".to_owned(), "outcome".to_owned(), Some("failed".to_owned())),
        (role.clone(), "intent".to_owned(), None),
        (role.clone(), "outcome".to_owned(), Some("succeeded".to_owned())),
    ];
    assert_eq!(trail, expected);
    sqlx::query(&format!("drop owned by {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("drop role {role}")).execute(&pool).await.unwrap();
}

/// One slow audited transaction used to stall everything: every writer queued on the chain's
/// head and the pool ran dry. Now a writer waits at most the lock timeout and is told the audit
/// log is busy (nothing done), and readiness keeps connections of its own.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_transaction_holding_the_chain_does_not_stall_the_console(pool: PgPool) {
    let options = (*pool.connect_options()).clone();
    let probe = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_lazy_with(options);
    let app = TestApp::spawn_state(
        |config| dropops::state::AppState::new(pool.clone(), config).with_probe_pool(probe),
        dropops::config::Config::demo(),
    )
    .await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    // Someone's transaction appended to the operations chain and is taking its time.
    let mut slow = pool.begin().await.unwrap();
    sqlx::query("select * from console.audit_chain_head where chain = 'operations' for update")
        .execute(&mut *slow)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let tab = crate::harness::Browser::clone(&app);
        let path = format!("/admin/staff/{ola}/disable");
        attempts.spawn(async move {
            let page = tab.submit(&path, &[("reason", "Left")]).await;
            (page.status, page.text("main"))
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ready = app.visit("/health/ready").await;
    assert_eq!(ready.status, 200, "readiness is not starved: {}", ready.body);
    let answers = attempts.join_all().await;
    for (status, text) in &answers {
        assert_eq!(*status, 503, "{text}");
        assert!(text.contains("audit log is busy"), "{text}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "each waited the lock timeout, not forever");
    slow.rollback().await.unwrap();
    let disabled: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select disabled_at from console.staff where display_name = 'Ola'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(disabled, None, "nothing was done");
    // Once the transaction ends, the same action works.
    assert_eq!(app.disable_staff(&ola, "Left").await.status, 303);
}

/// Reading the audit log does not flood it: one audit_searched per distinct search in a
/// sign-in, however often it is paged through or refreshed.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn one_audit_searched_per_distinct_search(pool: PgPool) {
    insert_test_rows(&pool, 120).await;
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Vera Viewer", &["viewer"]).await;
    let searched = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from console.audit_entries where action = 'audit_searched'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let first = app.visit("/audit?action=test_action").await;
    assert_eq!(first.status, 200);
    app.visit("/audit?action=test_action").await;
    let older = first.attrs("a[rel=next]", "href").pop().expect("120 rows make more than one page");
    assert_eq!(app.visit(&older).await.status, 200);
    assert_eq!(searched().await, 1, "the same search, refreshed and paged: recorded once");
    app.visit("/audit?action=sign_in").await;
    assert_eq!(searched().await, 2, "a different search is recorded");
}

/// The actor filter takes the start of a name, last name or email; the action is chosen from
/// the actions the chain records; an entry has one number, the same on the list and on its page.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_audit_filter_finds_people_by_part_of_their_name_and_offers_known_actions(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola Nordmann", &["viewer"]).await;
    app.another_browser().sign_in_as("Olav Hansen", &["viewer"]).await;
    app.sign_in_as("Vera Viewer", &["viewer"]).await;
    for (term, expected) in [("nordm", &["Ola Nordmann"][..]), ("OLA", &["Ola Nordmann", "Olav Hansen"][..])] {
        let page = app.visit(&format!("/audit?actor={term}&action=sign_in")).await;
        assert_eq!(page.status, 200);
        let mut actors = page.texts("table.audit tbody tr td:nth-child(3)");
        actors.sort();
        actors.dedup();
        assert_eq!(actors, expected, "{term}");
        assert!(page.text("#actor-matches").contains(expected[0]), "the page says whom the term found");
    }
    // Wildcards typed are text, not patterns.
    assert!(app.visit("/audit?actor=%25").await.texts("table.audit tbody tr").is_empty());
    let page = app.visit("/audit?actor=ola%20nordmann&action=sign_in").await;
    let options = page.attrs("select#action option", "value");
    assert!(options.contains(&"sign_in".to_owned()) && options.contains(&"run_started".to_owned()), "{options:?}");
    assert!(!options.contains(&"str_filed".to_owned()), "casework actions are not listed on the operations chain");
    assert_eq!(page.attrs("select#action option[selected]", "value"), ["sign_in"]);
    let id = page.texts("table.audit tbody tr td:first-child a").pop().unwrap();
    let entry = app.visit(&format!("/audit/{id}")).await;
    assert!(entry.text(&format!("h2#entry-{id}")).starts_with(&format!("#{id}")), "{}", entry.body);
    assert!(!entry.text("main").contains("Sequence"), "one number per entry");
}

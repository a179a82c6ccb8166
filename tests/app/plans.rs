//! Speed by construction: every page and fragment reads Drop's growing tables through an
//! index, and runs a fixed number of statements however many rows it shows (no N+1). Plans are
//! the ones PostgreSQL executed for the real requests (auto_explain), priced as if the tables
//! were large; the timing itself is scripts/bench's job, never a test's.

use dropops::demo;
use serde_json::Value;
use sqlx::PgPool;

use crate::harness::TestApp;
use crate::queries::{explaining_pool, plans_of, statements_of};

/// Tables that grow with Drop's business or with the console's use.
const GROWING: &[&str] = &[
    "users",
    "sessions",
    "transactions",
    "aml_alerts",
    "str_reports",
    "str_cases",
    "alert_reviews",
    "erasures",
    "data_access_requests",
    "audit_log",
    "audit_entries",
    "runs",
    "run_steps",
    "run_log",
    "alert_events",
    "staff",
    "staff_sessions",
    "web_sessions",
    "str_transactions",
    "checklist_runs",
    "audit_verifications",
    "sim_operations",
    "maintenance_windows",
    "staging_passes",
];

/// What is wrong with a plan: scans that read a growing table whole.
fn problems(node: &Value, under_limit: bool, partial: &[String], out: &mut Vec<String>) {
    let kind = node["Node Type"].as_str().unwrap_or("");
    let relation = node["Relation Name"].as_str().unwrap_or("");
    let index = node["Index Name"].as_str().unwrap_or("");
    if GROWING.contains(&relation) {
        let whole_index = matches!(kind, "Index Scan" | "Index Only Scan")
            && node.get("Index Cond").is_none()
            && !under_limit
            && !partial.iter().any(|p| p == index);
        if kind == "Seq Scan" {
            out.push(format!("sequential scan of {relation}"));
        } else if whole_index {
            out.push(format!("whole-index scan of {relation} ({index}) with no limit"));
        }
    }
    // A limit bounds what its input reads only while rows stream to it in order: a sort, a hash
    // or an aggregate below it reads its whole input first.
    let under_limit = match kind {
        "Limit" => true,
        "Sort" | "Incremental Sort" | "Hash" | "Aggregate" | "Materialize" | "Unique" | "WindowAgg" => false,
        _ => under_limit,
    };
    for child in node["Plans"].as_array().into_iter().flatten() {
        problems(child, under_limit, partial, out);
    }
}

/// Enough rows that every list is longer than its statement budget, so per-row queries show.
async fn add_volume(pool: &PgPool) {
    sqlx::query(
        "insert into console.staff (issuer, subject, display_name, email, roles)
         select 'https://id.example', 'volume-' || g, 'Volume Person ' || g, 'v' || g || '@drop.example', '{viewer}'
         from generate_series(1, 30) g",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into console.staff_sessions (id, staff_id, roles, auth_time)
         select gen_random_uuid(), id, '{viewer}', now() from console.staff where subject like 'volume-%'",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into console.runs (id, procedure, target, environment, params, status, started_by, started_by_name,
                                   created_at, finished_at)
         select gen_random_uuid(), 'deploy', 'apprunner:drop-web', 'production', jsonb_build_object('image', 'r/drop-api@sha256:' || g, 'digest', 'sha256:' || g, 'tag', 'v' || g),
                'succeeded', s.id, s.display_name, now() - make_interval(hours => g),
                now() - make_interval(hours => g) + interval '4 minutes'
         from generate_series(1, 30) g, (select id, display_name from console.staff limit 1) s",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into console.run_steps (run_id, position, name, title, status)
         select r.id, p, 'step_' || p, 'Step ' || p, 'succeeded' from console.runs r, generate_series(0, 5) p",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_page_reads_growing_tables_by_index_in_a_fixed_number_of_statements(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    add_volume(&pool).await;
    let partial: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid where i.indpred is not null",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let person: String =
        sqlx::query_scalar("select user_id from transactions group by user_id order by count(*) desc limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let email: String =
        sqlx::query_scalar("select email from users where id = $1").bind(&person).fetch_one(&pool).await.unwrap();
    let alert: String =
        sqlx::query_scalar("select id from aml_alerts order by created_at limit 1").fetch_one(&pool).await.unwrap();
    let run: String = sqlx::query_scalar("select id::text from console.runs order by created_at desc limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let str_id: Option<String> = sqlx::query_scalar("select id from console.str_cases order by created_at limit 1")
        .fetch_optional(&pool)
        .await
        .unwrap();

    let app = TestApp::spawn(explaining_pool(&pool).await).await;
    app.sign_in(&["admin", "compliance", "oncall"]).await;

    // (path, most statements it may run, whether it lists more rows than that budget: then a
    // query per row could not stay within it). The dashboard, deployments and secrets pages
    // also read the simulated AWS, a fixed number of calls each.
    const LIST: bool = true;
    let mut pages: Vec<(String, usize, bool)> = vec![
        // The overview summarises the dashboard's cards: the same fixed reads.
        // (with the BankID and app capacity cards: the vendor, the log, the service's names and
        // three CloudWatch metrics, each a fixed read of the simulator)
        ("/".into(), 60, false),
        ("/health".into(), 56, false),
        ("/health/sla".into(), 12, false),
        ("/health/checks".into(), 6, false),
        ("/deployments".into(), 24, LIST),
        (format!("/runs/{run}"), 8, false),
        ("/secrets".into(), 16, false),
        // Size, connections, backends and powers, tables, recovery, replicas, WAL, statements:
        // a fixed set of catalogue reads, whatever the number of rows.
        ("/database".into(), 16, false),
        // Counts: the queues, overdue alerts, overdue STRs, GDPR deadlines, break-glass to review.
        ("/compliance".into(), 9, false),
        ("/compliance/retention".into(), 8, false),
        ("/compliance/break-glass".into(), 8, false),
        ("/compliance/alerts".into(), 8, LIST),
        ("/compliance/alerts?status=closed".into(), 8, LIST),
        ("/compliance/alerts?status=all&sort=newest".into(), 8, LIST),
        (format!("/compliance/alerts/{alert}"), 12, false),
        ("/compliance/transactions".into(), 8, LIST),
        ("/compliance/transactions?view=failed".into(), 8, LIST),
        ("/compliance/transactions?view=large".into(), 8, LIST),
        ("/compliance/transactions?view=no-threshold".into(), 8, false),
        (format!("/compliance/people/{person}"), 10, LIST),
        (format!("/compliance/people?q={}", email.replace('@', "%40")), 8, false),
        // The start of a name, last name or address: by the prefix indexes.
        (format!("/compliance/people?q={}", &email[..3]), 8, false),
        ("/audit?actor=volume".into(), 8, false),
        ("/compliance/kyc".into(), 8, LIST),
        ("/compliance/gdpr".into(), 8, false),
        ("/compliance/str".into(), 10, false),
        ("/audit".into(), 6, LIST),
        ("/audit?actor=system".into(), 8, false),
        ("/audit?outcome=failed".into(), 8, false),
        ("/audit/casework".into(), 6, LIST),
        ("/audit/casework?actor=system".into(), 8, false),
        ("/admin/staff".into(), 6, LIST),
        ("/admin/sessions".into(), 6, LIST),
    ];
    if let Some(id) = str_id {
        pages.push((format!("/compliance/str/{id}"), 10, false));
    }
    // More audit rows than a page in each chain: an engineer's searches (operations) and
    // compliance's (casework), to list. Each is a different search: repeating one is audited once.
    let engineer = app.another_browser();
    engineer.sign_in(&["oncall"]).await;
    for n in 0..8 {
        engineer.visit(&format!("/audit?actor=nobody-{n}")).await;
        app.visit(&format!("/audit?actor=nobody-{n}")).await;
    }

    let mut report = Vec::new();
    for (path, budget, list) in &pages {
        let page = app.visit(path).await;
        assert!(matches!(page.status, 200 | 303), "{path} answered {}", page.status);
        let request_id = page.header("x-request-id").to_owned();
        let statements = statements_of(&request_id);
        let rows = page.texts("tbody tr").len();
        let plans = plans_of(&request_id);
        assert!(!statements.is_empty() && !plans.is_empty(), "{path}: nothing recorded for request {request_id}");
        println!("{path}: {} statements, {} plans, {rows} rows", statements.len(), plans.len());
        if statements.len() > *budget {
            report.push(format!("{path}: {} statements, more than its {budget}", statements.len()));
        }
        if *list && rows <= *budget {
            report.push(format!("{path}: shows {rows} rows, too few to tell a query per row from its budget"));
        }
        if std::env::var("SHOW_STATEMENTS").is_ok() {
            for s in &statements {
                println!(
                    "    {}",
                    s.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(160).collect::<String>()
                );
            }
        }
        for plan in &plans {
            let mut found = Vec::new();
            problems(&plan["Plan"], false, &partial, &mut found);
            for problem in found {
                report.push(format!("{path}: {problem} in\n    {}", plan["Query Text"].as_str().unwrap_or("?")));
            }
        }
    }
    app.state.pool.close().await;
    assert!(report.is_empty(), "pages that read a growing table whole or query per row:\n{}", report.join("\n"));
}

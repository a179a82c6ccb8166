//! Drop's schema, the demo dataset, and the pages that read them.

use dropops::demo::{self, SeedOutcome};
use sqlx::PgPool;

use crate::harness::TestApp;

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_schema_refuses_values_the_runbook_does_not_allow(pool: PgPool) {
    sqlx::query("insert into users (id, email, full_name, kyc_status, auth_provider) values ('usr_abcdef', 'a@example.invalid', 'A', 'approved', 'bankid')")
        .execute(&pool)
        .await
        .unwrap();
    let refused = [
        "insert into users (id, email, full_name, kyc_status, auth_provider) values ('usr_bcdefg', 'b@example.invalid', 'B', 'maybe', 'bankid')",
        "insert into users (id, email, full_name, kyc_status, auth_provider) values ('user-1', 'c@example.invalid', 'C', 'approved', 'bankid')",
        "insert into transactions (id, user_id, type, status, send_amount, send_currency) values ('tx_abcdef', 'usr_abcdef', 'transfer', 'completed', -5, 'NOK')",
        "insert into transactions (id, user_id, type, status, send_amount, send_currency) values ('tx_abcdef', 'usr_abcdef', 'transfer', 'completed', 5, 'nok')",
        "insert into transactions (id, user_id, type, status, send_amount, send_currency) values ('tx_abcdef', 'usr_abcdef', 'transfer', 'failed', 5, 'NOK')",
        "insert into aml_alerts (id, user_id, rule, status) values ('alert_abcdef', 'usr_abcdef', 'large_transaction', 'closed')",
        "insert into sessions (id, user_id, revoked) values ('s1', 'usr_abcdef', 2)",
        "insert into str_reports (id, user_id, status) values ('str_abcdef', 'usr_abcdef', 'filed')",
        "insert into console.audit_entries (action, resource_type, resource_id, details) values ('x', 'y', 'z', '[1]')",
    ];
    for sql in refused {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{sql}: {err}");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn migrations_can_run_again_without_effect(pool: PgPool) {
    dropops::db::migrate_demo(&pool).await.unwrap();
    dropops::db::migrate(&pool).await.unwrap();
    assert!(dropops::db::readiness(&pool).await.is_ok());
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_runbook_list_has_an_index(pool: PgPool) {
    let indexes: Vec<String> = sqlx::query_scalar("select indexname::text from pg_indexes where schemaname = 'public'")
        .fetch_all(&pool)
        .await
        .unwrap();
    for expected in [
        "users_email_idx",
        "users_kyc_pending_idx",
        "sessions_user_live_idx",
        "transactions_created_idx",
        "transactions_user_created_idx",
        "transactions_failed_idx",
        "aml_alerts_open_idx",
        "str_reports_pending_idx",
        "data_access_requests_open_idx",
        "audit_log_created_idx",
    ] {
        assert!(indexes.contains(&expected.to_owned()), "{expected} missing");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn demo_data_is_seeded_once_and_never_over_real_people(pool: PgPool) {
    let outcome = demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    assert!(matches!(outcome, SeedOutcome::Seeded { users: 240, transactions: 3000 }), "{outcome:?}");
    assert_eq!(demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap(), SeedOutcome::AlreadySeeded);

    let (users, pending_str, currencies): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from users), (select count(*) from console.str_cases where status = 'pending_review'),
                (select count(distinct send_currency) from transactions)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((users, pending_str, currencies), (240, 1, 4));
    let action: String = sqlx::query_scalar("select action from console.audit_entries order by id desc limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(action, "demo_data_seeded");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn demo_seeding_refuses_a_database_with_real_people(pool: PgPool) {
    sqlx::query("insert into users (id, email, full_name, kyc_status, auth_provider) values ('usr_realone', 'real@getdrop.no', 'Real', 'approved', 'bankid')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap(), SeedOutcome::RefusedRealData);
    let users: i64 = sqlx::query_scalar("select count(*) from users").fetch_one(&pool).await.unwrap();
    assert_eq!(users, 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_compliance_page_counts_match_the_database(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await; // sees the summary, and must learn nothing of STRs
    let page = app.visit("/compliance").await;
    assert_eq!(page.status, 200);
    let values = page.texts(".stat-value");
    let (alerts, kyc, requests): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from aml_alerts where status = 'open'),
                (select count(*) from users where kyc_status = 'pending' and deleted_at is null),
                (select count(*) from data_access_requests where status = 'open')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(values, [alerts.to_string(), kyc.to_string(), requests.to_string()]);
    assert_eq!(alerts, dropops::demo::OPEN_ALERTS as i64);
    assert!(!page.body.contains("STR") && !page.body.contains("str_"), "STRs are not revealed on this page");
    assert!(!page.body.contains("@example.invalid"), "no personal data on this page");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_audit_page_pages_through_entries_newest_first(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await; // entry 1: the sign-in itself
    sqlx::query("insert into console.audit_entries (action, resource_type, resource_id) select 'test_action', 'test', 'r' || n from generate_series(1, 120) n")
        .execute(&pool)
        .await
        .unwrap();

    let first = app.visit("/audit").await;
    let ids: Vec<i64> = first.texts("table.audit tbody td.num").iter().map(|t| t.parse().unwrap()).collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(ids[0], 121);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    let next = first.attrs("a[rel=next]", "href").remove(0);
    assert_eq!(next, "/audit?before=72");
    let second = app.visit(&next).await;
    assert_eq!(second.texts("table.audit tbody td.num").first().map(String::as_str), Some("71"));

    let third = app.visit(&second.attrs("a[rel=next]", "href").remove(0)).await;
    assert_eq!(third.texts("table.audit tbody tr").len(), 21);
    assert!(third.attrs("a[rel=next]", "href").is_empty(), "no link past the oldest entry");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_search_that_matches_nothing_says_so(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["viewer"]).await;
    let page = app.visit("/audit?action=no_such_action").await;
    assert_eq!(page.text(".empty"), "Nothing matches this search.");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn audit_details_are_escaped(pool: PgPool) {
    sqlx::query("insert into console.audit_entries (action, resource_type, resource_id, details) values ('x', 'user', '<script>alert(1)</script>', '{\"note\": \"<img src=x onerror=alert(1)>\"}')")
        .execute(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn(pool).await;
    app.sign_in(&["viewer"]).await;
    let page = app.visit("/audit").await;
    assert!(!page.body.contains("<script>alert(1)") && !page.body.contains("<img src=x"), "{}", page.body);
    assert!(page.text("table.audit").contains("<script>alert(1)</script>"), "shown as text");
}

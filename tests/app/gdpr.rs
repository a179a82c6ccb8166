//! GDPR: access requests, exports and erasure with the AML retention clock.

use dropops::demo;
use sqlx::PgPool;

use crate::harness::TestApp;

async fn person_without_alerts(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "select u.id from users u where u.deleted_at is null
           and exists(select 1 from transactions t where t.user_id = u.id)
           and exists(select 1 from sessions s where s.user_id = u.id and s.revoked = 0)
           and not exists(select 1 from aml_alerts a where a.user_id = u.id)
         order by u.id limit 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_export_holds_the_persons_data_but_nothing_about_aml_work(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Cato", &["compliance"]).await;
    let user: String =
        sqlx::query_scalar("select user_id from console.str_cases limit 1").fetch_one(&pool).await.unwrap();
    sqlx::query("update users set full_name = '=HYPERLINK(\"http://evil\")' where id = $1")
        .bind(&user)
        .execute(&pool)
        .await
        .unwrap();

    let (status, json) = app.get_json(&format!("/compliance/people/{user}/export.json")).await;
    assert_eq!(status, 200);
    assert_eq!(json["person"]["id"], user.as_str());
    let txs: i64 = sqlx::query_scalar("select count(*) from transactions where user_id = $1")
        .bind(&user)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(json["transactions"].as_array().unwrap().len() as i64, txs);
    let text = json.to_string();
    assert!(!text.contains("alert_") && !text.contains("str_"), "no alerts or STRs in a subject access export");

    let csv = app
        .client()
        .get(app.url(&format!("/compliance/people/{user}/export.csv")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("table,record,field,value\n"));
    assert!(csv.contains("person,1,full_name,\"'=HYPERLINK"), "formula defused:\n{}", &csv[..300.min(csv.len())]);
    let exports: Vec<serde_json::Value> = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'personal_data_exported' and resource_id = $1 order by seq",
    )
    .bind(&user)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(exports, [serde_json::json!({ "format": "json" }), serde_json::json!({ "format": "csv" })]);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_request_is_marked_fulfilled_once(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["compliance"]).await;
    let id: String = sqlx::query_scalar("select id from data_access_requests where status = 'open' limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let page = app.visit("/compliance/gdpr").await;
    assert!(page.has(&format!("tr[data-request='{id}'] form")));
    assert_eq!(app.fulfil_gdpr(&id).await.status, 303);
    assert_eq!(app.fulfil_gdpr(&id).await.status, 409);
    assert_eq!(
        crate::harness::audit_trail(&pool, "data_access_request_fulfilled").await,
        crate::harness::intent_then_success(),
        "the refused second attempt left no intent behind"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn erasure_waits_for_open_alerts(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["compliance"]).await;
    let user: String = sqlx::query_scalar("select user_id from aml_alerts where status = 'open' limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let page = app.visit(&format!("/compliance/people/{user}/erase")).await;
    assert!(page.text(".notice").contains("Erasure has to wait"));
    assert!(!page.has("form[action$='/erase']"));
    let refused = app.erase_person(&user, "Customer asked").await;
    assert_eq!(refused.status, 409);
    let deleted: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select deleted_at from users where id = $1").bind(&user).fetch_one(&pool).await.unwrap();
    assert!(deleted.is_none());
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn erasure_is_a_soft_delete_with_the_retention_clock(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["compliance"]).await;
    let user = person_without_alerts(&pool).await;
    let confirm = app.visit(&format!("/compliance/people/{user}/erase")).await;
    assert!(confirm.text("dl.facts").contains("Retention ends"));

    let no_reason = app.erase_person(&user, "").await;
    assert_eq!(no_reason.status, 422);
    assert!(no_reason.text("#reason-error").starts_with("Enter the reason"));

    let done = app.erase_person(&user, "GDPR erasure request by email").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (deleted, retention, last_tx): (
        Option<chrono::DateTime<chrono::Utc>>,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    ) = sqlx::query_as(
        "select u.deleted_at, e.retention_ends_at, (select max(created_at) from transactions where user_id = u.id)
           from users u join console.erasures e on e.user_id = u.id where u.id = $1",
    )
    .bind(&user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(deleted.is_some());
    assert!(retention > last_tx + chrono::Duration::days(5 * 365), "kept five years past the relationship");
    let (live, agents): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where revoked = 0), count(user_agent) from sessions where user_id = $1",
    )
    .bind(&user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((live, agents), (0, 0), "sessions revoked, device data removed");
    let kept: i64 = sqlx::query_scalar("select count(*) from transactions where user_id = $1")
        .bind(&user)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(kept > 0, "transactions are kept (AML)");
    let audit: Vec<String> =
        sqlx::query_scalar("select kind from console.audit_entries where action = 'personal_data_erased' order by seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(audit, ["intent", "outcome"]);
    let again = app.erase_person(&user, "again").await;
    assert_eq!(again.status, 409);
}

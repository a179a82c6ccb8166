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
    assert_eq!(json["user"]["id"], user.as_str());
    assert_eq!(json["export"]["source"], "drop_api", "the simulator plays Drop's export API: {}", json["export"]);
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
    assert!(csv.contains("user,1,full_name,\"'=HYPERLINK"), "formula defused:\n{}", &csv[..300.min(csv.len())]);
    let exports: Vec<serde_json::Value> = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'personal_data_exported' and resource_id = $1 order by seq",
    )
    .bind(&user)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        exports,
        [
            serde_json::json!({ "format": "json", "source": "drop_api" }),
            serde_json::json!({ "format": "csv", "source": "drop_api" })
        ]
    );
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

/// What the fake Drop export API received: (query, authorization, accept).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// Drop's data-export API on a local port, answering 200 (with an AML key Drop should not
/// have sent), then 429, then 401, as Drop's API does.
async fn drop_export_api() -> (String, Received) {
    use axum::extract::{RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let received = Received::default();
    async fn export(
        State(received): State<Received>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> axum::response::Response {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let query = query.unwrap_or_default();
        let n = {
            let mut seen = received.lock().unwrap();
            seen.push((query.clone(), header("authorization"), header("accept")));
            seen.len()
        };
        if header("authorization") != "Bearer drop-export-token" {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let user = query.strip_prefix("user_id=").unwrap_or_default().to_owned();
        match n {
            1 => axum::Json(serde_json::json!({
                "user": { "id": user, "email": "from-drop@example.no" },
                "transactions": [{ "id": "tx_fromdrop1", "send_amount": "10.00" }],
                "aml_alerts": [{ "id": "alert_fromdrop" }]
            }))
            .into_response(),
            2 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "slow down").into_response(),
            _ => StatusCode::FORBIDDEN.into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/user/data-export", listener.local_addr().unwrap());
    let router =
        axum::Router::new().route("/api/user/data-export", axum::routing::get(export)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, received)
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn exports_come_from_drops_export_api_as_documented_and_fall_back_saying_why(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let (url, received) = drop_export_api().await;
    let config = crate::harness::config_with(&[
        ("DROPOPS_COMPLIANCE__DATA_EXPORT_URL", &url),
        ("DROPOPS_COMPLIANCE__DATA_EXPORT_TOKEN", "drop-export-token"),
    ]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in(&["compliance"]).await;
    let page = app.visit("/compliance/gdpr").await;
    assert!(page.text("#export-source").contains("Drop's own data-export API"));
    let user = person_without_alerts(&pool).await;

    let (status, first) = app.get_json(&format!("/compliance/people/{user}/export.json")).await;
    assert_eq!(status, 200);
    assert_eq!(first["user"]["email"], "from-drop@example.no", "Drop's own export is what is sent");
    assert_eq!(first["export"]["source"], "drop_api");
    assert!(first.get("aml_alerts").is_none() && !first.to_string().contains("alert_"), "AML records are withheld");

    let (status, second) = app.get_json(&format!("/compliance/people/{user}/export.json")).await;
    assert_eq!(status, 200);
    assert_eq!(second["export"]["source"], "console");
    assert!(
        second["export"]["from"].as_str().unwrap().contains("rate-limiting (retry after 7 s)"),
        "{}",
        second["export"]
    );
    assert_eq!(second["user"]["id"], user.as_str(), "the console's own reading of Drop's tables");

    let (_, third) = app.get_json(&format!("/compliance/people/{user}/export.json")).await;
    assert!(third["export"]["from"].as_str().unwrap().contains("refused the console's token"));

    let asked = received.lock().unwrap().clone();
    assert_eq!(asked.len(), 3);
    for (query, authorization, accept) in &asked {
        assert_eq!(query, &format!("user_id={user}"));
        assert_eq!(authorization, "Bearer drop-export-token");
        assert_eq!(accept, "application/json");
    }
    let details: Vec<serde_json::Value> = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'personal_data_exported' and resource_id = $1 order by seq",
    )
    .bind(&user)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(details[0], serde_json::json!({ "format": "json", "source": "drop_api", "withheld": ["aml_alerts"] }));
    assert_eq!(details[1]["source"], "console");
    assert!(details[1]["why"].as_str().unwrap().contains("rate-limiting"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn requests_are_due_in_a_month_extendable_once_within_it_and_flagged_when_overdue(pool: PgPool) {
    use dropops::compliance::deadlines::Deadline;
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["compliance"]).await;
    let open: Vec<String> =
        sqlx::query_scalar("select id from data_access_requests where status = 'open' order by id limit 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    let (old, young) = (&open[0], &open[1]);
    let received = |id: &str, days: i32| {
        sqlx::query("update data_access_requests set created_at = now() - make_interval(days => $2) where id = $1")
            .bind(id.to_owned())
            .bind(days)
            .execute(&pool)
    };
    received(old, 40).await.unwrap();
    received(young, 10).await.unwrap();

    let page = app.visit("/compliance/gdpr").await;
    assert_eq!(page.attrs(&format!("tr[data-request='{old}']"), "data-standing"), ["red"]);
    assert!(page.text(&format!("tr[data-request='{old}'] .standing")).contains("Overdue"));
    assert!(page.text(".notice").contains("past their answer deadline"));
    assert!(!page.has(&format!("tr[data-request='{old}'] a[href$='/extend']")), "too late to extend");
    assert!(page.has(&format!("tr[data-request='{young}'] a[href$='/extend']")));
    let summary = app.visit("/compliance").await;
    assert!(summary.text(".overdue-requests").contains("past the one-month answer deadline"), "counts on the summary");
    let late_alerts: i64 = sqlx::query_scalar(
        "select count(*) from aml_alerts where status = 'open' and created_at < now() - interval '48 hours'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(summary.text(".overdue-alerts").contains(&late_alerts.to_string()));

    let late = app.submit(&format!("/compliance/gdpr/{old}/extend"), &[("reason", "Complex request")]).await;
    assert_eq!(late.status, 409);
    assert!(late.body.contains("first month is over"));

    let blank = app.submit(&format!("/compliance/gdpr/{young}/extend"), &[("reason", " ")]).await;
    assert_eq!(blank.status, 422);
    assert!(blank.has("#reason-error"));
    let done = app
        .submit(&format!("/compliance/gdpr/{young}/extend"), &[("reason", "Many years of transactions to collect")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        crate::harness::audit_trail(&pool, "data_access_request_extended").await,
        crate::harness::intent_then_success()
    );
    let again = app.submit(&format!("/compliance/gdpr/{young}/extend"), &[("reason", "Once more")]).await;
    assert_eq!(again.status, 409, "one extension only");

    let created: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select created_at from data_access_requests where id = $1")
            .bind(young)
            .fetch_one(&pool)
            .await
            .unwrap();
    let page = app.visit("/compliance/gdpr").await;
    let due = page.text(&format!("tr[data-request='{young}'] .due"));
    assert!(due.starts_with(&Deadline::months_after(created, 3).day.to_string()), "three months from receipt: {due}");
    assert!(due.contains("extended by"));

    assert_eq!(app.fulfil_gdpr(old).await.status, 303);
    let answered: serde_json::Value = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'data_access_request_fulfilled' and kind = 'intent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(answered["late"], true);
    let page = app.visit("/compliance/gdpr").await;
    assert!(page.text(&format!("tr[data-request='{old}'] .standing")).contains("Answered late"));
}

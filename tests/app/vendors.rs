//! Drop's vendors through their documented APIs, against local servers that answer as the
//! vendors do: Sumsub (signed requests, applicant review status, request a check, 409 and 429).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dropops::demo;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use sqlx::PgPool;

use crate::harness::{TestApp, config_with};

const APP_TOKEN: &str = "sbx:test-app-token";
const SECRET: &str = "sumsub-test-secret";

#[derive(Default)]
struct Sumsub {
    /// (method, path and query) of every signed request received.
    received: Vec<(String, String)>,
    /// Requests whose signature did not verify.
    forged: usize,
    /// Answer every request with 429.
    rate_limited: bool,
    /// Answer a check request with Sumsub's 409.
    refuse_checks: bool,
}

type Shared = Arc<Mutex<Sumsub>>;

/// Sumsub as documented: the signature is the hex HMAC-SHA256 of ts + METHOD + path?query +
/// body, keyed by the app token's secret; a wrong one is a 401.
async fn sumsub_api(State(sumsub): State<Shared>, request: Request) -> Response {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let ts = header("x-app-access-ts");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}{method}{path}").as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    let fresh = ts.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 60);
    let mut state = sumsub.lock().unwrap();
    if header("x-app-token") != APP_TOKEN || header("x-app-access-sig") != expected || !fresh {
        state.forged += 1;
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "code": 401, "description": "Invalid signature" })))
            .into_response();
    }
    state.received.push((method.clone(), path.clone()));
    if state.rate_limited {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "9")], "").into_response();
    }
    if let Some(user) =
        path.strip_prefix("/resources/applicants/-;externalUserId=").and_then(|p| p.strip_suffix("/one"))
    {
        // Odd-looking users are unknown; one is already being reviewed; the rest are on hold.
        if user.ends_with('x') {
            return (StatusCode::NOT_FOUND, axum::Json(json!({ "code": 404, "description": "Applicant not found" })))
                .into_response();
        }
        return axum::Json(json!({
            "id": format!("app{}", user.trim_start_matches("usr_")),
            "externalUserId": user,
            "levelName": "basic-kyc-level",
            "review": { "reviewStatus": "onHold", "createDate": "2026-12-01 09:00:00", "reviewDate": "2026-12-02 10:30:15+0000" }
        }))
        .into_response();
    }
    if method == "POST" && path.contains("/status/pending?reason=") {
        if state.refuse_checks {
            return (
                StatusCode::CONFLICT,
                axum::Json(json!({ "code": 409, "description": "Not all required documents or data are submitted." })),
            )
                .into_response();
        }
        return axum::Json(json!({ "ok": 1 })).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

async fn sumsub() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = Shared::default();
    let router = Router::new().fallback(sumsub_api).with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, state)
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn sumsub_is_asked_with_signed_requests_and_a_recheck_is_an_audited_action(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let (url, state) = sumsub().await;
    let config = config_with(&[
        ("DROPOPS_SUMSUB__APP_TOKEN", APP_TOKEN),
        ("DROPOPS_SUMSUB__SECRET_KEY", SECRET),
        ("DROPOPS_SUMSUB__API_URL", &url),
    ]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;

    let page = app.visit("/compliance/kyc").await;
    assert_eq!(page.status, 200);
    let first = page.attrs("tr[data-person]", "data-person").into_iter().next().expect("someone waits in the demo");
    assert_eq!(page.text(&format!("tr[data-person='{first}'] .sumsub-status")), "onHold");
    assert!(page.text(&format!("tr[data-person='{first}'] .sumsub-why")).contains("needs action"));
    {
        let s = state.lock().unwrap();
        assert_eq!(s.forged, 0, "every request is signed as Sumsub documents");
        assert!(s.received.contains(&("GET".into(), format!("/resources/applicants/-;externalUserId={first}/one"))));
    }

    let person = app.visit(&format!("/compliance/people/{first}")).await;
    assert!(person.text("#sumsub").contains("onHold"));
    assert!(person.text("#sumsub").contains("2026-12-02 11:30"), "Sumsub's UTC time shown in Oslo time");
    let blank = app.submit(&format!("/compliance/people/{first}/kyc-recheck"), &[("reason", "")]).await;
    assert_eq!(blank.status, 422);
    assert!(blank.has("#recheck-reason-error"));
    let asked = app
        .submit(&format!("/compliance/people/{first}/kyc-recheck"), &[("reason", "Customer re-uploaded the passport")])
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let applicant = format!("app{}", first.trim_start_matches("usr_"));
    assert!(state.lock().unwrap().received.contains(&(
        "POST".into(),
        format!("/resources/applicants/{applicant}/status/pending?reason=Customer+re-uploaded+the+passport")
    )));
    assert_eq!(crate::harness::audit_trail(&pool, "kyc_check_requested").await, crate::harness::intent_then_success());

    // Sumsub's refusal is said, and recorded as the outcome.
    state.lock().unwrap().refuse_checks = true;
    let refused = app.submit(&format!("/compliance/people/{first}/kyc-recheck"), &[("reason", "Again")]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("Not all required documents"));
    let outcomes: Vec<Option<String>> = sqlx::query_scalar(
        "select outcome from console.audit_entries where action = 'kyc_check_requested' and kind = 'outcome' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(outcomes, [Some("succeeded".to_owned()), Some("failed".to_owned())]);

    // Rate-limited: the page still answers, and says so.
    state.lock().unwrap().rate_limited = true;
    let page = app.visit("/compliance/kyc").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text(&format!("tr[data-person='{first}'] .sumsub-status")).contains("rate-limiting (retry after 9 s)")
    );

    // Oversight reads the status but requests nothing.
    state.lock().unwrap().rate_limited = false;
    let ceo = app.another_browser();
    ceo.sign_in(&["oversight"]).await;
    let person = ceo.visit(&format!("/compliance/people/{first}")).await;
    assert!(person.text("#sumsub").contains("onHold"));
    assert!(!person.has("form[action$='/kyc-recheck']"));
    assert_eq!(ceo.submit(&format!("/compliance/people/{first}/kyc-recheck"), &[("reason", "x")]).await.status, 403);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_simulator_plays_sumsub_for_the_demo(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["compliance"]).await;
    let page = app.visit("/compliance/kyc").await;
    let statuses = page.texts(".sumsub-status");
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| ["pending", "onHold", "init", "queued", "awaitingUser"].contains(&s.as_str())),
        "{statuses:?}"
    );
}

/// Fly.io's Machines API for the staging app: bearer token, `GET /v1/apps/{app}/machines`.
async fn fly(checks: Arc<Mutex<&'static str>>) -> String {
    async fn machines(
        State(checks): State<Arc<Mutex<&'static str>>>,
        axum::extract::Path(app): axum::extract::Path<String>,
        headers: axum::http::HeaderMap,
    ) -> Response {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer fly-test-token") {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "unauthorized" }))).into_response();
        }
        if app != "drop-staging" {
            return (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "app not found" }))).into_response();
        }
        let second = *checks.lock().unwrap();
        let machine = |id: &str, region: &str, check: &str| {
            json!({
                "id": id, "name": format!("drop-staging-{region}"), "state": "started", "region": region,
                "image_ref": { "registry": "registry.fly.io", "repository": "drop-staging", "tag": "c0ffee4", "digest": "sha256:abc" },
                "config": { "image": "registry.fly.io/drop-staging:c0ffee4" },
                "checks": [{ "name": "servicecheck-00-http-8080", "status": check, "output": "" }],
                "updated_at": "2026-12-06T09:00:00Z"
            })
        };
        axum::Json(json!([machine("e82d4d7a1b09f8", "arn", "passing"), machine("3d8d9016b5e7e8", "iad", second)]))
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().route("/v1/apps/{app}/machines", axum::routing::get(machines)).with_state(checks);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn staging_machines_come_from_flys_machines_api_and_mark_the_image_healthy_there(pool: PgPool) {
    let checks = Arc::new(Mutex::new("critical"));
    let url = fly(checks.clone()).await;
    let config = config_with(&[("DROPOPS_FLY__TOKEN", "fly-test-token"), ("DROPOPS_FLY__API_URL", &url)]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in(&["oncall"]).await;
    let page = app.visit("/deployments").await;
    assert_eq!(page.texts("#staging tr[data-machine]").len(), 2);
    assert!(page.text("#staging tr[data-machine='3d8d9016b5e7e8']").contains("0 of 1 passing"));
    assert!(!page.text(".images").contains("On staging"), "a failing check is not healthy");
    *checks.lock().unwrap() = "passing";
    let page = app.visit("/deployments").await;
    let healthy: Vec<String> =
        page.texts("table.images tbody tr").into_iter().filter(|r| r.contains("On staging")).collect();
    assert_eq!(healthy.len(), 1, "{healthy:?}");
    assert!(healthy[0].contains("c0ffee4"));

    let wrong = config_with(&[("DROPOPS_FLY__TOKEN", "not-the-token"), ("DROPOPS_FLY__API_URL", &url)]);
    let other = TestApp::spawn_with(pool, wrong).await;
    other.sign_in(&["oncall"]).await;
    assert!(other.visit("/deployments").await.text("#staging").contains("refused the token (HTTP 401)"));
}

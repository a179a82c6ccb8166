//! Sessions and CSRF: what keeps a sign-in safe between requests.

use sqlx::PgPool;

use crate::harness::{TestApp, config_with, staff_id};

async fn end_reason(pool: &PgPool) -> String {
    sqlx::query_scalar("select end_reason from console.staff_sessions").fetch_one(pool).await.unwrap()
}

fn session_cookie(page: &crate::harness::Page) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("dropops="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_session_id_changes_at_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let before = session_cookie(&app.visit("/auth/sign-in").await).expect("a pre-login session");
    let after = session_cookie(&app.sign_in_as("Ola", &["viewer"]).await).expect("a new cookie at sign-in");
    assert_ne!(before, after, "a fixed session id would let a planted cookie ride the sign-in");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_session_cookie_is_http_only_and_same_site(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let page = app.sign_in_as("Ola", &["viewer"]).await;
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("dropops="))
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn over_https_the_cookie_is_host_prefixed_and_secure(pool: PgPool) {
    let app = TestApp::spawn_with(pool, config_with(&[("DROPOPS_PUBLIC_URL", "https://ops.example.test")])).await;
    // As behind App Runner's TLS front end: the browser asked for the public host.
    let page = app.request(app.client().get(app.url("/auth/sign-in")).header("host", "ops.example.test")).await;
    let cookie = page.header("set-cookie");
    assert!(cookie.starts_with("__Host-dropops=") && cookie.contains("Secure"), "{cookie}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn signing_out_ends_the_session_for_good(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    let out = app.sign_out().await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/auth/sign-in?signed_out=1");
    assert_eq!(app.visit("/").await.status, 303, "signed out");
    assert_eq!(end_reason(&pool).await, "signed_out");
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from console.audit_entries where action = 'sign_out' and kind = 'outcome' and outcome = 'succeeded'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_replayed_cookie_after_sign_out_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let signed_in = app.sign_in_as("Ola", &["viewer"]).await;
    let cookie = signed_in.headers.get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    app.sign_out().await;
    let thief = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let replay = thief.get(app.url("/")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(replay.status(), 303, "the old cookie no longer signs anyone in");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_idle_sign_in_ends(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config_with(&[("DROPOPS_AUTH__IDLE_TIMEOUT_SECS", "1")])).await;
    app.sign_in(&["viewer"]).await;
    assert_eq!(app.visit("/").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.visit("/").await.status, 303);
    assert_eq!(end_reason(&pool).await, "idle");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_sign_in_ends_at_its_absolute_lifetime_however_busy(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config_with(&[("DROPOPS_AUTH__MAX_LIFETIME_SECS", "2")])).await;
    app.sign_in(&["viewer"]).await;
    for _ in 0..4 {
        assert_eq!(app.visit("/").await.status, 200, "busy, so never idle");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(app.visit("/").await.status, 303);
    assert_eq!(end_reason(&pool).await, "expired");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_casework_sign_in_ends_sooner_than_an_engineers(pool: PgPool) {
    // A compliance group removed at the provider takes effect when the sign-in ends: for
    // casework roles that is the shorter auth.casework_max_lifetime_secs.
    let config = config_with(&[("DROPOPS_AUTH__CASEWORK_MAX_LIFETIME_SECS", "1")]);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in(&["compliance"]).await;
    let engineer = app.another_browser();
    engineer.sign_in(&["oncall"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(app.visit("/").await.status, 303, "the compliance sign-in has ended");
    assert_eq!(engineer.visit("/").await.status, 200, "the engineer's has not");
    let reasons: Vec<(Vec<String>, Option<String>)> =
        sqlx::query_as("select roles, end_reason from console.staff_sessions order by created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        reasons,
        [(vec!["compliance".to_owned()], Some("expired".to_owned())), (vec!["oncall".to_owned()], None)]
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_cross_site_post_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["admin"]).await;
    let token = app.csrf().await;
    let form = [("_csrf", token.as_str())];
    let cases = [("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site"), ("origin", "https://evil.example")];
    for (header, value) in cases {
        let page = app.request(app.client().post(app.url("/audit/verify")).header(header, value).form(&form)).await;
        assert_eq!(page.status, 403, "{header}: {value}");
    }
    let no_token = app.request(app.client().post(app.url("/audit/verify")).form(&[("x", "y")])).await;
    assert_eq!(no_token.status, 403, "no token");
    let wrong = app.request(app.client().post(app.url("/audit/verify")).form(&[("_csrf", "0".repeat(64))])).await;
    assert_eq!(wrong.status, 403, "wrong token");
    let verified: i64 =
        sqlx::query_scalar("select count(*) from console.audit_entries where action = 'audit_chain_verified'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(verified, 0, "none of them ran");

    let htmx = app
        .request(
            app.client().post(app.url("/audit/verify")).header("x-csrf-token", &token).header("hx-request", "true"),
        )
        .await;
    assert_eq!(htmx.status, 200, "the htmx header carries the token");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_disabled_person_is_signed_out_on_their_next_request(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Admin Astrid", &["admin"]).await;
    app.sign_in_as("Leaving Lars", &["oncall"]).await;
    assert_eq!(app.visit("/health").await.status, 200);

    let lars = staff_id(&pool, "Leaving Lars").await;
    let confirm = admin.visit(&format!("/admin/staff/{lars}/disable")).await;
    assert!(confirm.text("h1").contains("Disable Leaving Lars?"));
    let done = admin.disable_staff(&lars, "Left the company").await;
    assert_eq!(done.status, 303, "{}", done.body);

    assert_eq!(app.visit("/health").await.status, 303, "kicked out");
    let again = app.submit("/auth/dev", &[("name", "Leaving Lars"), ("role", "oncall")]).await;
    assert_eq!(again.status, 403);
    assert!(again.text("main").contains("disabled"));
    let audited: Vec<String> =
        sqlx::query_scalar("select kind from console.audit_entries where action = 'staff_disabled' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(audited, ["intent", "outcome"]);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn disabling_needs_a_reason_and_changes_nothing_without_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    let page = app.disable_staff(&ola, "   ").await;
    assert_eq!(page.status, 422);
    assert_eq!(page.text("#reason-error"), "Enter a reason: it goes into the audit log.");
    let disabled: bool = sqlx::query_scalar("select disabled from console.staff where display_name = 'Ola'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!disabled);
    let intents: i64 = sqlx::query_scalar("select count(*) from console.audit_entries where action = 'staff_disabled'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(intents, 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_admin_ends_another_persons_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let other = app.another_browser();
    other.sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let page = app.visit("/admin/sessions").await;
    assert_eq!(page.texts("table.sessions tbody tr").len(), 2);
    let ola_session: String = sqlx::query_scalar("select s.id::text from console.staff_sessions s join console.staff st on st.id = s.staff_id where st.display_name = 'Ola'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        page.has(&format!(
            "tr[data-session='{ola_session}'] details.end-sign-in form[action='/admin/sessions/{ola_session}/end']"
        )),
        "ending a sign-in asks first"
    );
    let ended = app.end_session(&ola_session).await;
    assert_eq!(ended.status, 303);
    let bounced = other.visit("/").await;
    assert_eq!(bounced.status, 303, "Ola is signed out");
    // …and told why, once.
    let told = other.visit(bounced.location()).await;
    assert!(told.text("main").contains("An admin ended your sign-in"), "{}", told.text("main"));
    assert!(!other.visit(bounced.location()).await.text("main").contains("An admin ended"), "said once");
    let again = app.end_session(&ola_session).await;
    assert_eq!(again.status, 409, "ending twice is explained, not repeated");
    let outcomes: i64 =
        sqlx::query_scalar("select count(*) from console.audit_entries where action = 'staff_session_ended'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outcomes, 2, "one intent and one outcome; the refused second attempt left nothing");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_stale_sign_in_must_confirm_before_a_sensitive_action_and_keeps_the_input(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config_with(&[("DROPOPS_AUTH__STEP_UP_MAX_AGE_SECS", "1")])).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    let form = format!("/admin/staff/{ola}/disable");
    let stepped = app.submit(&form, &[("reason", "Suspicious sign-ins from abroad")]).await;
    assert_eq!(stepped.status, 303);
    assert_eq!(stepped.location(), format!("/auth/login?step_up=1&next=%2Fadmin%2Fstaff%2F{ola}%2Fdisable"));
    let disabled: bool = sqlx::query_scalar("select disabled from console.staff where id = $1::uuid")
        .bind(&ola)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!disabled, "nothing happened before the fresh sign-in");

    // Demo mode: the login redirect lands on the dev form, which re-confirms the same person.
    let login = app.visit(stepped.location()).await;
    assert_eq!(login.status, 303);
    let confirm_page = app.visit(login.location()).await;
    assert_eq!(confirm_page.text("h1"), "Confirm it is you");
    assert_eq!(confirm_page.attrs("#name", "value"), ["Admin Astrid"]);
    let back = app.submit("/auth/dev", &[("name", "Admin Astrid"), ("role", "admin"), ("next", &form)]).await;
    assert_eq!(back.location(), form);

    let restored = app.visit(&form).await;
    assert_eq!(restored.text("#reason"), "Suspicious sign-ins from abroad", "the typed reason survived the round trip");
    let done = app.submit(&form, &[("reason", "Suspicious sign-ins from abroad")]).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/admin/staff");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn enabling_a_person_again_is_audited_intent_then_outcome(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.another_browser().sign_in_as("Ola", &["viewer"]).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    let ola = staff_id(&pool, "Ola").await;
    app.disable_staff(&ola, "Parental leave").await;
    let listed = app.visit("/admin/staff").await;
    assert!(listed.text(&format!("tr[data-staff='{ola}']")).contains("Disabled"));

    let enabled = app.enable_staff(&ola).await;
    assert_eq!(enabled.status, 303);
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "select kind, outcome, seq from console.audit_entries where action = 'staff_enabled' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.0.as_str(), r.1.as_deref())).collect::<Vec<_>>(),
        [("intent", None), ("outcome", Some("succeeded"))]
    );
    let again = app.enable_staff(&ola).await;
    assert_eq!(again.status, 409, "enabling twice is explained");
    assert!(again.text(".error-card").contains("Ola is not disabled."));
}

/// Step-up after "Rolling restart" (or a rotation) used to end on a GET of the POST-only route
/// (403) with the typed reason lost. Now it returns to the confirmation with everything typed.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn step_up_on_a_run_returns_to_its_confirmation_with_everything_typed(pool: PgPool) {
    let mut config = crate::runs::fast();
    config.auth.step_up_max_age = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    for (confirm, post, fields) in [
        (
            "/deployments/confirm?procedure=restart",
            "/deployments/runs",
            vec![("procedure", "restart"), ("reason", "p99 creeping up after the BankID incident")],
        ),
        (
            "/secrets/rotate?secret=jwt_secret",
            "/secrets/rotations",
            vec![
                ("secret", "jwt_secret"),
                ("reason", "p99 creeping up after the BankID incident"),
                ("understood", "yes"),
            ],
        ),
    ] {
        let count = || async {
            sqlx::query_scalar::<_, i64>("select count(*) from console.runs").fetch_one(&pool).await.unwrap()
        };
        let before = count().await;
        let run_id = app.visit(confirm).await.attrs("input[name=run]", "value").pop().unwrap();
        let mut form = fields.clone();
        form.push(("run", run_id.as_str()));
        form.push(("_csrf", ""));
        let token = app.csrf().await;
        let form: Vec<(&str, &str)> =
            form.into_iter().map(|(k, v)| if k == "_csrf" { (k, token.as_str()) } else { (k, v) }).collect();
        let stepped = app
            .request(
                app.client()
                    .post(app.url(post))
                    .header("origin", app.url(""))
                    .header("referer", app.url(confirm))
                    .form(&form),
            )
            .await;
        assert_eq!(stepped.status, 303, "{}", stepped.body);
        assert!(stepped.location().starts_with("/auth/login?step_up=1"), "{}", stepped.location());
        assert_eq!(count().await, before, "nothing started before the fresh sign-in");
        let login = app.visit(stepped.location()).await;
        let next = url::Url::parse(&format!("http://x{}", login.location()))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(next, confirm, "back to the confirmation, not to a GET of {post}");
        let back = app.submit("/auth/dev", &[("name", "Ola Oncall"), ("role", "oncall"), ("next", &next)]).await;
        let restored = app.visit(back.location()).await;
        assert_eq!(restored.status, 200, "{}", restored.body);
        assert_eq!(restored.attrs("#reason", "value"), ["p99 creeping up after the BankID incident"], "{confirm}");
        assert_eq!(
            restored.attrs("input[name=run]", "value"),
            std::slice::from_ref(&run_id),
            "the same run, so the same plan"
        );
        if confirm.contains("secret") {
            assert_eq!(restored.attrs("input[name=understood][checked]", "value"), ["yes"]);
        }
        // Sign-in is fresh now: the confirmation's button starts the run.
        let mut again: Vec<(&str, &str)> = fields.clone();
        again.push(("run", run_id.as_str()));
        let started = app.submit(post, &again).await;
        assert_eq!(started.status, 303, "{}", started.body);
        assert_eq!(started.location(), format!("/runs/{run_id}"));
        crate::runs::drive(&app).await;
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    }
}

/// A form from a stale tab (its CSRF token belongs to an earlier sign-in) is refused as
/// expired, with the way out — not as a lack of permission.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_expired_form_says_reload_not_no_permission(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let refused = app
        .request(
            app.client()
                .post(app.url("/health/checks/daily"))
                .header("origin", app.url(""))
                .form(&[("_csrf", "from-an-old-tab"), ("monitors_green_ok", "on")]),
        )
        .await;
    assert_eq!(refused.status, 403);
    let text = refused.text("main");
    assert!(text.contains("This form has expired") && text.contains("Reload"), "{text}");
    assert!(!text.contains("permission"), "{text}");
}

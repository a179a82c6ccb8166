//! STR workflow: draft, review with four eyes, file and freeze; and the tipping-off guard.

use dropops::demo;
use sqlx::PgPool;

use crate::harness::{Browser, TestApp};

struct Case {
    alert: String,
    user: String,
    tx: String,
}

async fn escalated_alert(pool: &PgPool) -> Case {
    let (alert, user, tx) = crate::harness::open_alert_with_transaction(pool).await;
    Case { alert, user, tx }
}

async fn draft(browser: &Browser, case: &Case, narrative: &str) -> String {
    let reason = "Large transfer, source of funds unknown";
    let page = browser.draft_str(&case.user, &case.alert, reason, narrative, &[&case.tx]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location().trim_start_matches("/compliance/str/").to_owned()
}

async fn status(pool: &PgPool, id: &str) -> String {
    sqlx::query_scalar("select status from console.str_cases where id = $1").bind(id).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_report_goes_from_draft_through_four_eyes_review_to_a_frozen_filing(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let form = app.visit(&format!("/compliance/str/new?alert={}", case.alert)).await;
    assert_eq!(
        form.attrs("input[name=tx][checked]", "value"),
        std::slice::from_ref(&case.tx),
        "the alert's transaction is preselected"
    );

    let id = draft(&app, &case, "Customer could not explain the origin of the funds.").await;
    assert_eq!(status(&pool, &id).await, "draft");
    assert_eq!(app.submit_str(&id).await.status, 303);
    assert_eq!(status(&pool, &id).await, "pending_review");

    let mlro = app.another_browser();
    mlro.sign_in_as("Mari MLRO", &["mlro"]).await;
    let review = mlro.visit(&format!("/compliance/str/{id}")).await;
    assert!(review.has("form[action$='/approve']"));
    assert_eq!(mlro.approve_str(&id).await.status, 303);
    assert_eq!(status(&pool, &id).await, "approved");

    let (status, doc) = mlro.get_json(&format!("/compliance/str/{id}/export.json")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["form"], "MT-0002");
    assert_eq!(doc["subject"]["customer_id"], case.user.as_str());
    assert_eq!(doc["transactions"][0]["id"], case.tx.as_str());
    assert_eq!(doc["reporting_entity"]["approved_by"], "Mari MLRO");
    // The print view is the form to key in: its sections and fields, not a JSON dump.
    let print = mlro.visit(&format!("/compliance/str/{id}/print")).await;
    assert_eq!(
        print.texts("article h2"),
        ["Reporting entity", "Subject", "Grounds for suspicion", "Transactions (1)", "Filing"]
    );
    assert!(!print.has("pre"), "no raw document");
    assert_eq!(print.texts("table.print-transactions tbody tr td code"), std::slice::from_ref(&case.tx));
    assert!(print.text("article").contains("Customer could not explain the origin of the funds."));
    assert!(print.text("article").contains("not filed yet"), "{}", print.text("article"));

    let future = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().to_string();
    let refused = mlro.file_str(&id, "AR123", &future).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.text("#filed-on-error"), "The filing date cannot be in the future.");
    let today = chrono::Utc::now().date_naive().to_string();
    let filed = mlro.file_str(&id, "AR-2026-0042", &today).await;
    assert_eq!(filed.status, 303, "{}", filed.body);

    let (hash, snapshot): (String, serde_json::Value) =
        sqlx::query_as("select filed_hash, filed_snapshot from console.str_cases where id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let audited: serde_json::Value =
        sqlx::query_scalar("select details from console.audit_entries where action = 'str_filed' and kind = 'intent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited["sha256"], hash.as_str(), "the filed version's hash is in the audit log");
    for action in ["str_drafted", "str_submitted", "str_approved", "str_filed"] {
        assert_eq!(crate::harness::audit_trail(&pool, action).await, crate::harness::intent_then_success(), "{action}");
    }
    assert_eq!(snapshot["filing"]["reference"], "AR-2026-0042");
    let err = sqlx::query("update console.str_cases set details = '{}' where id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is filed and cannot change"), "{err}");

    let archive = app.visit("/compliance/str").await;
    assert!(archive.text("section.card:last-of-type").contains(&id), "readable in the archive");
    let (_, again) = app.get_json(&format!("/compliance/str/{id}/export.json")).await;
    assert_eq!(again, snapshot, "the export of a filed report is exactly what was filed");
    let print = app.visit(&format!("/compliance/str/{id}/print")).await;
    assert!(print.text("article").contains("AR-2026-0042"), "the receipt is on the filed form");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_drafter_can_never_approve_their_own_report(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in_as("Mari MLRO", &["mlro"]).await;
    let id = draft(&app, &case, "Structuring below the threshold.").await;
    app.submit_str(&id).await;
    let page = app.visit(&format!("/compliance/str/{id}")).await;
    assert!(!page.has("form[action$='/approve']"), "no approve button for the drafter");
    assert!(page.text("#review-title + p").contains("four eyes"));
    let refused = app.approve_str(&id).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text(".error-card").contains("another MLRO must review it"));
    assert_eq!(status(&pool, &id).await, "pending_review");
    let returned = app.return_str(&id, "fine by me").await;
    assert_eq!(returned.status, 403, "nor return it");
    // The database holds the same line if the code ever slips.
    let err = sqlx::query("update console.str_cases set approved_by = drafted_by, status = 'approved' where id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("four eyes"), "{err}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_mlro_who_rewrote_or_submitted_a_colleagues_draft_cannot_approve_it(pool: PgPool) {
    // Attack: four eyes ended at drafted_by. An MLRO rewrote a compliance officer's draft,
    // submitted it and approved it alone.
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in_as("Cato", &["compliance"]).await;
    let id = draft(&app, &case, "Customer could not explain the funds.").await;
    let mari = app.another_browser();
    mari.sign_in_as("Mari", &["mlro"]).await;
    let edited = mari
        .submit(
            &format!("/compliance/str/{id}"),
            &[("reason", "Nothing suspicious after all"), ("narrative", "Rewritten by the MLRO."), ("tx", &case.tx)],
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    assert_eq!(mari.submit_str(&id).await.status, 303);

    let page = mari.visit(&format!("/compliance/str/{id}")).await;
    assert!(!page.has("form[action$='/approve']"), "no approve button for an editor");
    let hands = page.texts("table.contributors tbody tr");
    assert_eq!(hands.len(), 3, "{hands:?}");
    assert!(hands[0].contains("Cato") && hands[0].contains("Drafted"), "{hands:?}");
    assert!(hands[1].contains("Mari") && hands[1].contains("Edited"), "{hands:?}");
    assert!(hands[2].contains("Mari") && hands[2].contains("Submitted"), "{hands:?}");
    let refused = mari.approve_str(&id).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text(".error-card").contains("edited or submitted"), "{}", refused.body);
    assert_eq!(mari.return_str(&id, "ok").await.status, 403);
    assert_eq!(status(&pool, &id).await, "pending_review");

    // Each refusal is recorded, in the casework chain only.
    let refusals: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "select chain, actor, details from console.audit_entries where action = 'str_four_eyes_refused' order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(refusals.iter().all(|(chain, actor, _)| chain == "casework" && actor == "Mari"), "{refusals:?}");
    assert_eq!(refusals[0].2["attempted"], "approve");
    assert_eq!(refusals[0].2["contributed"], serde_json::json!(["Edited", "Submitted for review"]));

    // The database holds the line too: no contributor, and only the submitted content.
    let mari_id = crate::harness::staff_id(&pool, "Mari").await;
    let err = sqlx::query("update console.str_cases set approved_by = $2::uuid, status = 'approved' where id = $1")
        .bind(&id)
        .bind(&mari_id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("four eyes"), "{err}");
    sqlx::query("update console.str_cases set details = details || '{\"narrative\": \"swapped\"}' where id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let nils = app.another_browser();
    nils.sign_in_as("Nils", &["mlro"]).await;
    let nils_id = crate::harness::staff_id(&pool, "Nils").await;
    let err = sqlx::query("update console.str_cases set approved_by = $2::uuid, status = 'approved' where id = $1")
        .bind(&id)
        .bind(&nils_id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not what was submitted"), "{err}");
    sqlx::query(
        "update console.str_cases set details = details || '{\"narrative\": \"Rewritten by the MLRO.\"}' where id = $1",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();

    // A colleague who had no hand in it approves.
    assert_eq!(nils.approve_str(&id).await.status, 303);
    assert_eq!(status(&pool, &id).await, "approved");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_mlro_returns_a_report_with_a_comment(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in_as("Cato", &["compliance"]).await;
    let id = draft(&app, &case, "Short.").await;
    app.submit_str(&id).await;
    let mlro = app.another_browser();
    mlro.sign_in_as("Mari", &["mlro"]).await;
    let empty = mlro.return_str(&id, " ").await;
    assert_eq!(empty.status, 422);
    assert_eq!(empty.text("#comment-error"), "Enter a comment for the drafter.");
    assert_eq!(mlro.return_str(&id, "Add the top-up history.").await.status, 303);
    assert_eq!(status(&pool, &id).await, "draft");
    let page = app.visit(&format!("/compliance/str/{id}")).await;
    assert!(page.text(".notice").contains("Add the top-up history."));
    assert_eq!(
        crate::harness::audit_trail(&pool, "str_returned").await,
        crate::harness::intent_then_success(),
        "the refused empty comment wrote nothing"
    );
    assert!(
        page.has("form[action='/compliance/str/".to_owned().as_str()) || page.has("textarea#narrative"),
        "editable again"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_draft_needs_reason_narrative_and_the_persons_own_transactions(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    let stranger_tx: String = sqlx::query_scalar("select id from transactions where user_id <> $1 limit 1")
        .bind(&case.user)
        .fetch_one(&pool)
        .await
        .unwrap();
    app.sign_in(&["compliance"]).await;
    let page = app
        .submit("/compliance/str", &[("person", &case.user), ("reason", ""), ("narrative", ""), ("tx", &stranger_tx)])
        .await;
    assert_eq!(page.status, 422);
    assert_eq!(page.text("#reason-error"), "Enter the reason in one line.");
    assert_eq!(page.text("#narrative-error"), "Enter the narrative.");
    assert_eq!(page.text("#tx-error"), "Link at least one of the person's transactions.");
    let none: i64 = sqlx::query_scalar("select count(*) from console.str_cases where status = 'draft'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(none, 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn narratives_are_escaped(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = draft(&app, &case, "<script>alert(document.cookie)</script>").await;
    let page = app.visit(&format!("/compliance/str/{id}")).await;
    assert!(!page.body.contains("<script>alert(document.cookie)"));
    assert_eq!(page.text("#narrative"), "<script>alert(document.cookie)</script>");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn only_compliance_and_the_mlro_learn_that_an_str_exists(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = draft(&app, &case, "Tipping-off test.").await;
    for role in ["admin", "oncall", "viewer"] {
        let other = app.another_browser();
        other.sign_in(&[role]).await;
        for path in
            ["/compliance/str".to_owned(), format!("/compliance/str/{id}"), format!("/compliance/str/{id}/export.json")]
        {
            assert_eq!(other.visit(&path).await.status, 403, "{role} {path}");
        }
        let audit = other.visit("/audit").await;
        assert!(
            !audit.body.contains(&id) && !audit.body.contains("str_drafted"),
            "{role} sees no STR in the audit log"
        );
        let csv = other.client().get(other.url("/audit/export.csv")).send().await.unwrap().text().await.unwrap();
        assert!(!csv.contains(&id) && !csv.contains("str_"), "{role}'s export reveals nothing");
        let summary = other.visit("/compliance").await;
        assert!(
            !summary.body.contains("STR") && !summary.body.contains("str_") && !summary.body.contains("uspicious"),
            "{role}: no STRs"
        );
        let intent: i64 =
            sqlx::query_scalar("select id from console.audit_entries where action = 'str_drafted' and kind = 'intent'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(other.visit(&format!("/audit/{intent}")).await.status, 404, "{role} cannot open the row either");
    }
    let audit = app.visit("/audit/casework?action=str_drafted").await;
    assert!(audit.body.contains(&id), "compliance sees it");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn approving_and_filing_need_a_recent_sign_in(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let mut config = dropops::config::Config::demo();
    config.auth.step_up_max_age = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let case = escalated_alert(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = draft(&app, &case, "Step-up test.").await;
    app.submit_str(&id).await;
    let mlro = app.another_browser();
    mlro.sign_in_as("Mari", &["mlro"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let stepped = mlro.approve_str(&id).await;
    assert_eq!(stepped.status, 303);
    assert!(stepped.location().starts_with("/auth/login?step_up=1"), "{}", stepped.location());
    assert_eq!(status(&pool, &id).await, "pending_review", "nothing happened");
    // Approve has no page of its own: signing in again returns to the report it was pressed
    // on, not to a GET of the POST-only route (which would be refused).
    let page = format!("/compliance/str/{id}");
    for (referer, back) in [(mlro.url(&page), page.clone()), ("https://evil.example/x".to_owned(), "/".to_owned())] {
        let stepped = mlro
            .request(
                mlro.client()
                    .post(mlro.url(&format!("/compliance/str/{id}/approve")))
                    .header("x-csrf-token", mlro.csrf().await)
                    .header("referer", referer),
            )
            .await;
        let next: String = url::Url::parse(&format!("http://x{}", stepped.location()))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(next, back);
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_report_waiting_for_review_without_a_recorded_submission_is_refused_not_an_error(pool: PgPool) {
    // Found by the scanner: approving the demo's waiting report failed with a 500, because
    // nothing recorded what had been submitted.
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Mari", &["mlro"]).await;
    let waiting: String =
        sqlx::query_scalar("select id from console.str_cases where status = 'pending_review' limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let page = app.visit(&format!("/compliance/str/{waiting}")).await;
    assert!(page.texts("table.contributors tbody tr").iter().any(|r| r.contains("Demo Compliance Officer")));
    assert_eq!(app.approve_str(&waiting).await.status, 303);
    assert_eq!(status(&pool, &waiting).await, "approved");

    // One that reached review outside the console, with no submission on record.
    let case = escalated_alert(&pool).await;
    let officer = app.another_browser();
    officer.sign_in_as("Cato", &["compliance"]).await;
    let id = draft(&officer, &case, "Reached review by hand.").await;
    sqlx::query("update console.str_cases set status = 'pending_review' where id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let refused = app.approve_str(&id).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.text(".error-card").contains("not what was submitted"), "{}", refused.body);
    assert_eq!(status(&pool, &id).await, "pending_review");
}

/// The new-draft form submitted twice makes one draft; the repeat lands on it.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_draft_form_submitted_twice_makes_one_draft(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in(&["compliance"]).await;
    let once = uuid::Uuid::new_v4().to_string();
    let fields = [
        ("person", case.user.as_str()),
        ("alert", case.alert.as_str()),
        ("reason", "Large transfer, source of funds unknown"),
        ("narrative", "Structuring pattern over three days."),
        ("tx", case.tx.as_str()),
        ("_once", once.as_str()),
    ];
    let (a, b) = tokio::join!(app.submit("/compliance/str", &fields), app.submit("/compliance/str", &fields));
    assert_eq!((a.status, b.status), (303, 303), "{}\n{}", a.body, b.body);
    assert_eq!(a.location(), b.location(), "both land on the one draft");
    let drafts: i64 = sqlx::query_scalar("select count(*) from console.str_cases where status = 'draft'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(drafts, 1);
}

/// The STR page links the alert it came from and shows its review history with the MLRO's
/// comments.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_str_links_its_alert_and_shows_its_review_history(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let case = escalated_alert(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let id = draft(&app, &case, "Three transfers just under the threshold.").await;
    assert_eq!(app.submit_str(&id).await.status, 303);
    let mlro = app.another_browser();
    mlro.sign_in_as("Mari", &["mlro"]).await;
    let returned = mlro.return_str(&id, "Add the recipient bank.\nAnd the dates.").await;
    assert_eq!(returned.status, 303, "{}", returned.body);
    let page = app.visit(&format!("/compliance/str/{id}")).await;
    assert_eq!(page.attrs("a.str-alert", "href"), [format!("/compliance/alerts/{}", case.alert)]);
    let history = page.texts("ol.review-history li");
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].starts_with("Submitted for review by Cato Compliance"), "{history:?}");
    assert!(
        history[1].starts_with("Returned by Mari") && history[1].contains("Add the recipient bank."),
        "{history:?}"
    );
}

/// No report is cut from view: past a page, each status is listed page by page.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_report_in_a_status_can_be_reached_page_by_page(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    sqlx::query(
        "insert into console.str_cases (id, user_id, details, status, updated_at)
         select 'str_bulk' || lpad(g::text, 6, '0'), (select id from users order by id limit 1),
                jsonb_build_object('reason', 'bulk ' || g, 'narrative', 'n'), 'draft', now() - make_interval(mins => g)
         from generate_series(1, 110) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    let drafts: i64 = sqlx::query_scalar("select count(*) from console.str_cases where status = 'draft'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["compliance"]).await;
    let list = app.visit("/compliance/str").await;
    let more = list.attrs("nav[aria-label='Drafts pages'] a", "href");
    assert_eq!(more, ["/compliance/str?status=draft"], "the overview says there are more drafts");
    assert!(list.text("h2").contains("50+"), "{}", list.text("main"));
    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some(more[0].clone());
    while let Some(path) = next {
        let page = app.visit(&path).await;
        assert_eq!(page.status, 200, "{path}");
        for id in page.attrs("table.strs tbody tr", "data-str") {
            assert!(seen.insert(id), "a report on two pages");
        }
        next = page.attrs("a[rel=next]", "href").pop();
    }
    assert_eq!(seen.len() as i64, drafts, "every draft is on exactly one page");
    assert_eq!(app.visit("/compliance/str?status=burned").await.status, 422);
    assert_eq!(app.visit("/compliance/str?status=draft&before=garbage").await.status, 422);
}

//! The compliance workspace, end to end over HTTP on the demo dataset.

use dropops::demo;
use sqlx::PgPool;

use crate::harness::TestApp;

async fn seeded(pool: &PgPool) -> TestApp {
    demo::seed_if_empty(pool, demo::DEFAULT_SEED).await.unwrap();
    TestApp::spawn(pool.clone()).await
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The person's sessions still live.
async fn live_sessions(pool: &PgPool, user: &str) -> i64 {
    sqlx::query_scalar("select count(*) from sessions where user_id = $1 and revoked = 0")
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn open_alert(pool: &PgPool) -> String {
    sqlx::query_scalar("select id from aml_alerts where status = 'open' order by created_at limit 1")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn compliance_takes_the_next_alert_and_closes_it_with_an_outcome(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let oldest = open_alert(&pool).await;
    let taken = app.take_next_alert().await;
    assert_eq!(taken.location(), format!("/compliance/alerts/{oldest}"));
    assert_eq!(crate::harness::audit_trail(&pool, "aml_alert_assigned").await, crate::harness::intent_then_success());

    let page = app.visit(taken.location()).await;
    assert_eq!(page.status, 200);
    assert!(page.text(".page-header").contains("Assignee: Cato Compliance"));
    assert!(page.text("#person-title + dl").contains("@example.invalid"), "the person is shown");
    assert!(!page.texts("table.transactions tbody tr").is_empty(), "the person's transactions are shown");

    let closed = app
        .submit(
            &format!("/compliance/alerts/{oldest}/close"),
            &[("outcome", "escalated_to_str"), ("notes", "No source of funds.")],
        )
        .await;
    assert_eq!(closed.status, 303, "{}", closed.body);
    let (status, outcome, notes): (String, String, String) = sqlx::query_as(
        "select a.status, r.outcome, a.reviewer_notes
               from aml_alerts a left join console.alert_reviews r on r.alert_id = a.id where a.id = $1",
    )
    .bind(&oldest)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), outcome.as_str(), notes.as_str()),
        ("closed", "escalated_to_str", "No source of funds.")
    );

    let page = app.visit(&format!("/compliance/alerts/{oldest}")).await;
    let history = page.text("ol.timeline");
    assert!(
        history.contains("assigned by Cato Compliance") && history.contains("closed by Cato Compliance"),
        "{history}"
    );
    assert!(history.contains("Escalated to STR") && history.contains("No source of funds."), "{history}");
    let audit: Vec<(String, Option<String>)> = sqlx::query_as(
        "select kind, outcome from console.audit_entries where action = 'aml_alert_closed' and resource_id = $1 order by seq",
    )
    .bind(&oldest)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audit, [("intent".to_owned(), None), ("outcome".to_owned(), Some("succeeded".to_owned()))]);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn two_people_taking_the_next_alert_get_different_ones(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato", &["compliance"]).await;
    let other = app.another_browser();
    other.sign_in_as("Mia", &["mlro"]).await;
    let (a, b) = tokio::join!(app.take_next_alert(), other.take_next_alert());
    assert_ne!(a.location(), b.location());
    let mine = app.visit("/compliance/alerts?assignee=me").await;
    assert_eq!(mine.texts("table.alerts tbody tr").len(), 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn closing_without_an_outcome_or_notes_explains_and_changes_nothing(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = open_alert(&pool).await;
    let page = app.close_alert(&id, "", "   ").await;
    assert_eq!(page.status, 422);
    assert_eq!(page.text("#outcome-error"), "Choose an outcome.");
    assert_eq!(page.text("#notes-error"), "Enter review notes.");
    let long = "x".repeat(dropops::audit::Reason::MAX + 1);
    let page = app.close_alert(&id, "legitimate", &long).await;
    assert_eq!(page.status, 422);
    assert!(
        page.text("#notes-error")
            .starts_with(&format!("Keep review notes under {} characters", dropops::audit::Reason::MAX))
    );
    assert_eq!(page.attrs("input[name=outcome][checked]", "value"), ["legitimate"], "the choice is kept");
    assert_eq!(count(&pool, "select count(*) from aml_alerts where status = 'open'").await, demo::OPEN_ALERTS as i64);
    assert_eq!(count(&pool, "select count(*) from console.audit_entries where action = 'aml_alert_closed'").await, 0);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn closing_twice_and_unknown_alerts_are_explained(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = open_alert(&pool).await;
    let form = [("outcome", "false_positive"), ("notes", "Salary.")];
    assert_eq!(app.submit(&format!("/compliance/alerts/{id}/close"), &form).await.status, 303);
    let again = app.submit(&format!("/compliance/alerts/{id}/close"), &form).await;
    assert_eq!(again.status, 409);
    assert!(again.text(".error-card").contains("already closed"));
    assert_eq!(count(&pool, "select count(*) from console.alert_events where kind = 'closed'").await, 1);
    assert_eq!(app.submit("/compliance/alerts/alert_doesnotexist/close", &form).await.status, 404);
    assert_eq!(app.visit("/compliance/alerts/alert_doesnotexist").await.status, 404);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn reopening_needs_a_reason_and_is_recorded(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["mlro"]).await;
    let id: String =
        sqlx::query_scalar("select id from aml_alerts where status = 'closed' limit 1").fetch_one(&pool).await.unwrap();
    let refused = app.reopen_alert(&id, "").await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.text("#reopen-error"), "Enter a reason for reopening.");
    let reopened = app.reopen_alert(&id, "New information from the bank").await;
    assert_eq!(reopened.status, 303);
    let status: String =
        sqlx::query_scalar("select status from aml_alerts where id = $1").bind(&id).fetch_one(&pool).await.unwrap();
    assert_eq!(status, "open");
    let reason: String = sqlx::query_scalar(
        "select reason from console.audit_entries where action = 'aml_alert_reopened' and kind = 'intent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(reason, "New information from the bank");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn notes_are_shown_as_text_never_as_markup(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = open_alert(&pool).await;
    let payload = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    app.close_alert(&id, "legitimate", payload).await;
    let page = app.visit(&format!("/compliance/alerts/{id}")).await;
    assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"), "escaped");
    assert!(page.text("ol.timeline").contains(payload), "but readable");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_queue_filters_and_explains_bad_filters(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let all = app.visit("/compliance/alerts").await;
    assert_eq!(all.texts("table.alerts tbody tr").len(), demo::OPEN_ALERTS);
    let overdue = all.texts("table.alerts tbody tr .badge-red").len();
    assert!(overdue > 0, "old demo alerts are past the 48 h SLA");
    let nok = app.visit("/compliance/alerts?status=all&currency=nok&min_amount=100000").await;
    for row in nok.texts("table.alerts tbody td.num") {
        assert!(row.starts_with("NOK "), "{row}");
    }
    let bad = app.visit("/compliance/alerts?min_amount=lots&older_than_hours=-3").await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.text("#min-amount-error"), "Enter an amount like 50000.");
    assert_eq!(bad.text("#age-error"), "Enter whole hours, like 48.");
    assert_eq!(bad.attrs("#min-amount", "value"), ["lots"], "what was typed is kept");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn looking_a_person_up_is_audited_and_opens_their_page(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato", &["compliance"]).await;
    let (id, email): (String, String) =
        sqlx::query_as("select id, email from users order by id limit 1").fetch_one(&pool).await.unwrap();
    let found = app.visit(&format!("/compliance/people?q={}", email.to_uppercase())).await;
    assert_eq!(found.location(), format!("/compliance/people/{id}"));
    let page = app.visit(found.location()).await;
    assert_eq!(page.text(".page-header .lead"), email);
    let views: Vec<String> = sqlx::query_scalar(
        "select resource_id from console.audit_entries where action = 'personal_data_viewed' and actor = 'Cato' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(views, [email.to_uppercase(), id]);
    let none = app.visit("/compliance/people?q=nobody@example.invalid").await;
    assert_eq!(none.text(".empty"), "Nobody whose id, name, last name or email begins with “nobody@example.invalid”.");
}

/// Compliance often has only a name from a bank's letter, or part of an address: the start of
/// a name, a last name or an email lists who it could be, by index, and the look-up is audited
/// with whom it listed.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn people_are_found_by_the_start_of_their_name_last_name_or_email(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato", &["compliance"]).await;
    let (id, email, name): (String, String, String) =
        sqlx::query_as("select id, email, full_name from users where full_name like '% %' order by id limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let last = name.rsplit(' ').next().unwrap().to_owned();
    let first = name.split(' ').next().unwrap().to_owned();
    for term in [first[..2].to_lowercase(), last[..3].to_uppercase(), email[..email.find('@').unwrap()].to_owned()] {
        let page = app.visit(&format!("/compliance/people?q={}", term)).await;
        assert_eq!(page.status, 200, "{term}: {}", page.body);
        let names = page.texts("table.people tbody tr td:first-child a");
        assert!(names.contains(&name), "{term} lists {name}: {names:?}");
        assert!(
            page.texts("table.people tbody tr td:nth-child(2)").iter().all(|e| !e.is_empty()),
            "each row says who it is"
        );
    }
    let listed: serde_json::Value = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'personal_data_viewed' and actor = 'Cato' order by seq desc limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(listed["listed"].as_array().unwrap().iter().any(|v| v == id.as_str()), "{listed}");
    let short = app.visit("/compliance/people?q=k").await;
    assert_eq!(short.status, 422);
    assert_eq!(short.text("#q-error"), "Type at least two letters of a name or an email address.");
    assert_eq!(short.attrs("#q", "value"), ["k"], "what was typed is kept");
    // A pattern typed is text: "%" begins no one's name.
    assert!(app.visit("/compliance/people?q=%25%25").await.texts("table.people tbody tr").is_empty());
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn revoking_a_persons_sessions_needs_a_reason(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let user: String =
        sqlx::query_scalar("select user_id from sessions where revoked = 0 limit 1").fetch_one(&pool).await.unwrap();
    let refused = app.revoke_sessions(&user, "").await;
    assert_eq!(refused.status, 422);
    assert!(live_sessions(&pool, &user).await > 0);
    let done = app.revoke_sessions(&user, "Phone stolen, reported by phone").await;
    assert_eq!(done.status, 303);
    assert_eq!(live_sessions(&pool, &user).await, 0);
    let page = app.visit(&format!("/compliance/people/{user}")).await;
    assert_eq!(page.text("form[action$=revoke-sessions] button"), "Revoke 0 session(s)");
    assert_eq!(
        crate::harness::audit_trail(&pool, "user_sessions_revoked").await,
        crate::harness::intent_then_success()
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_runbook_transaction_lists_hold_what_they_say(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let failed = app.visit("/compliance/transactions?view=failed").await;
    let rows = failed.texts("table.transactions tbody tr");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.contains("Failed") && r.contains("@example.invalid")), "{rows:?}");
    let large = app.visit("/compliance/transactions?view=large").await;
    for amount in large.texts("table.transactions tbody td.num") {
        let (currency, value) = amount.split_once(' ').unwrap();
        let value: f64 = value.replace(',', "").parse().unwrap();
        let floor = match currency {
            "NOK" => 50_000.0,
            "EUR" => 4_300.0,
            "USD" => 4_700.0,
            _ => 18_500.0,
        };
        assert!(value > floor, "{amount}");
    }
    // A currency with no threshold is never left out silently: it has its own list.
    sqlx::query(
        "insert into transactions (id, user_id, type, status, send_amount, send_currency, created_at)
         select 'tx_sekbig0001', id, 'transfer', 'completed', 900000, 'SEK', now() - interval '2 days' from users limit 1",
    )
    .execute(&pool)
    .await
    .unwrap();
    let large = app.visit("/compliance/transactions?view=large").await;
    assert!(!large.text("table.transactions").contains("SEK"));
    assert!(large.has("a[href='/compliance/transactions?view=no-threshold']"));
    let unjudged = app.visit("/compliance/transactions?view=no-threshold").await;
    assert_eq!(unjudged.status, 200);
    let amounts = unjudged.texts("table.transactions tbody td.num");
    assert!(amounts.iter().any(|a| a.starts_with("SEK")), "{amounts:?}");
    assert!(amounts.iter().all(|a| !["NOK", "EUR", "USD", "PLN"].contains(&&a[..3])), "{amounts:?}");
    assert_eq!(app.visit("/compliance/transactions?view=everything").await.status, 422);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_kyc_page_lists_who_waits_too_long(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let page = app.visit("/compliance/kyc").await;
    let over_day = count(&pool, "select count(*) from users where kyc_status = 'pending' and deleted_at is null and kyc_updated_at < now() - interval '24 hours'").await;
    let sections = page.texts("section.card table.kyc");
    assert_eq!(sections.len(), 2);
    assert_eq!(
        page.html.select(&scraper::Selector::parse("section.card:nth-of-type(1) table.kyc tbody tr").unwrap()).count()
            as i64,
        over_day
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn oncall_and_viewers_see_no_personal_data(pool: PgPool) {
    let app = seeded(&pool).await;
    for role in ["oncall", "viewer", "admin"] {
        let browser = app.another_browser();
        browser.sign_in(&[role]).await;
        for path in ["/compliance/alerts", "/compliance/people?q=x", "/compliance/transactions", "/compliance/kyc"] {
            assert_eq!(browser.visit(path).await.status, 403, "{role} {path}");
        }
        let summary = browser.visit("/compliance").await;
        assert!(!summary.body.contains("@example.invalid"));
        assert!(!summary.has("nav[aria-label=Compliance]"), "no casework tabs for {role}");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn when_the_change_fails_its_audit_intent_is_rolled_back_with_it(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let id = open_alert(&pool).await;
    // The change itself fails after the intent was written (a constraint, a lost connection).
    sqlx::query(
        "create function refuse_close() returns trigger language plpgsql as $$
         begin if new.status = 'closed' then raise exception 'storage failure'; end if; return new; end $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("create trigger refuse_close before update on aml_alerts for each row execute function refuse_close()")
        .execute(&pool)
        .await
        .unwrap();
    let page = app.close_alert(&id, "legitimate", "ok").await;
    assert_eq!(page.status, 500);
    assert!(!page.body.contains("storage failure"), "the raw error stays in the log");
    assert_eq!(
        count(&pool, "select count(*) from console.audit_entries where action = 'aml_alert_closed'").await,
        0,
        "no intent claims a change that never happened"
    );
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_casework_form_sent_back_with_errors_records_the_view_it_shows(pool: PgPool) {
    // Attack: reading a person's data without an audit row, by posting a casework form with a
    // field left empty so that the 422 re-render shows the page the GET would have recorded.
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let alert = open_alert(&pool).await;
    let (alert_person, tx): (String, String) =
        sqlx::query_as("select user_id, transaction_id from aml_alerts where id = $1")
            .bind(&alert)
            .fetch_one(&pool)
            .await
            .unwrap();
    let closed: String =
        sqlx::query_scalar("select id from aml_alerts where status <> 'open' order by created_at limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let quiet: String = sqlx::query_scalar(
        "select u.id from users u where u.deleted_at is null
            and not exists (select 1 from aml_alerts a where a.user_id = u.id and a.status = 'open')
            and not exists (select 1 from console.str_cases r where r.user_id = u.id and r.status <> 'filed')
          order by u.id limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let str_id = {
        let page = app
            .submit(
                "/compliance/str",
                &[
                    ("person", &alert_person),
                    ("reason", "Structuring"),
                    ("narrative", "Several transfers."),
                    ("tx", &tx),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        page.location().trim_start_matches("/compliance/str/").to_owned()
    };
    // (path, fields, resource type of the view the re-render records)
    type Posted<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let forms: Vec<Posted> = vec![
        (format!("/compliance/alerts/{alert}/close"), vec![("outcome", ""), ("notes", "")], "person"),
        (format!("/compliance/alerts/{closed}/reopen"), vec![("reason", " ")], "person"),
        (format!("/compliance/people/{quiet}/revoke-sessions"), vec![("reason", "")], "person"),
        (format!("/compliance/people/{quiet}/erase"), vec![("reason", "")], "person"),
        ("/compliance/str".into(), vec![("person", &alert_person), ("reason", ""), ("narrative", "")], "person"),
        (format!("/compliance/str/{str_id}"), vec![("reason", ""), ("narrative", ""), ("tx", &tx)], "str_report"),
    ];
    for (path, fields, resource_type) in forms {
        let before =
            count(&pool, "select count(*) from console.audit_entries where action = 'personal_data_viewed'").await;
        let page = app.submit(&path, &fields).await;
        assert_eq!(page.status, 422, "{path}: {}", page.body);
        let (kind, status): (String, Option<String>) = sqlx::query_as(
            "select resource_type, details->>'status' from console.audit_entries where action = 'personal_data_viewed'
              order by id desc limit 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let after =
            count(&pool, "select count(*) from console.audit_entries where action = 'personal_data_viewed'").await;
        assert_eq!((after - before, kind.as_str(), status.as_deref()), (1, resource_type, Some("422")), "{path}");
    }
}

/// Closing confirms itself and offers the next alert; taking over a colleague's alert asks
/// first and is recorded as a takeover; notes keep their line breaks; "earlier alerts" are
/// earlier.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn closing_offers_the_next_alert_and_taking_over_asks_first(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let colleague = app.another_browser();
    colleague.sign_in_as("Kim Compliance", &["compliance"]).await;
    let first = colleague.take_next_alert().await.location().to_owned();
    let id = first.trim_start_matches("/compliance/alerts/").to_owned();

    let page = app.visit(&first).await;
    assert!(page.text("details.takeover summary").contains("Take over from Kim Compliance"), "{}", page.body);
    let refused = app.assign_alert(&id, false).await;
    assert_eq!(refused.status, 409, "not without confirming");
    assert!(refused.text("main").contains("Kim Compliance is working on this alert"));
    let taken = app.assign_alert(&id, true).await;
    assert_eq!(taken.status, 303);
    let details: serde_json::Value = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'aml_alert_assigned' and kind = 'intent' order by id desc limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((details["takeover"].as_bool(), details["from"].as_str()), (Some(true), Some("Kim Compliance")));

    let closed = app
        .submit(
            &format!("/compliance/alerts/{id}/close"),
            &[("outcome", "legitimate"), ("notes", "Salary.\nEmployer confirmed.")],
        )
        .await;
    assert_eq!(closed.location(), format!("/compliance/alerts/{id}?closed=1"));
    let page = app.visit(closed.location()).await;
    assert!(page.text(".alert-closed").contains("Closed"), "{}", page.body);
    assert!(page.has(".alert-closed form[action='/compliance/alerts/next'] button"), "take the next one");
    assert!(page.has("p.notes"), "notes are shown with their line breaks kept");
    assert!(page.body.contains("Salary.\nEmployer confirmed."));
    let raised: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select created_at from aml_alerts where id = $1").bind(&id).fetch_one(&pool).await.unwrap();
    for earlier in page.attrs("#earlier-title + ul a", "href") {
        let other = earlier.trim_start_matches("/compliance/alerts/");
        let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select created_at from aml_alerts where id = $1")
            .bind(other)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(at < raised, "{other} is not earlier");
    }
}

/// Rules read as compliance speaks: a label rather than the alerting job's code, what the rule
/// looks for, and what in the data made it fire.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_alert_says_which_rule_fired_in_words_and_on_what(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance"]).await;
    let (id, tx): (String, String) = sqlx::query_as(
        "select id, transaction_id from aml_alerts where rule = 'large_transaction' and transaction_id is not null
         order by created_at limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let page = app.visit(&format!("/compliance/alerts/{id}")).await;
    assert!(page.text("h1").ends_with("Large transaction"), "{}", page.text("h1"));
    let why = page.text("section.why-raised");
    assert!(why.contains("A single transfer above the reporting threshold."), "{why}");
    assert!(why.contains(&tx), "the triggering transaction is named: {why}");

    // A rule Drop added after this console was written is still readable.
    sqlx::query("update aml_alerts set rule = 'velocity_check_v2' where id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let page = app.visit(&format!("/compliance/alerts/{id}")).await;
    assert!(page.text("h1").ends_with("Velocity check v2"));
    assert!(!page.text("section.why-raised").contains("Looks for"));
    let queue = app.visit("/compliance/alerts?status=all").await;
    assert!(queue.texts("select#rule option").contains(&"Velocity check v2".to_owned()));
    assert!(!queue.text("table.alerts").contains("large_transaction"), "codes are not what compliance reads");
}

/// Every reason field, wherever it is, keeps the one rule of `audit::Reason`: the forms say
/// the same bound, and a longer reason is refused with the same words, changing nothing.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_reason_field_keeps_one_rule(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance", "mlro", "admin", "oncall"]).await;
    let max = dropops::audit::Reason::MAX.to_string();
    let alert = open_alert(&pool).await;
    let user: String =
        sqlx::query_scalar("select user_id from sessions where revoked = 0 limit 1").fetch_one(&pool).await.unwrap();
    let staff: String =
        sqlx::query_scalar("select id::text from console.staff limit 1").fetch_one(&pool).await.unwrap();
    for (page, field) in [
        (format!("/compliance/alerts/{alert}"), "textarea#notes"),
        (format!("/compliance/people/{user}"), "textarea#reason"),
        (format!("/compliance/people/{user}/erase"), "textarea#reason"),
        (format!("/admin/staff/{staff}/disable"), "textarea#reason"),
        ("/deployments/confirm?procedure=restart".to_owned(), "input#reason"),
        ("/secrets/rotate?secret=jwt_secret".to_owned(), "input#reason"),
    ] {
        let shown = app.visit(&page).await;
        assert_eq!(shown.attrs(field, "maxlength"), [max.as_str()], "{page}");
    }
    let long = "x".repeat(dropops::audit::Reason::MAX + 1);
    let refused = app.revoke_sessions(&user, &long).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text("#reason-error").starts_with(&format!("Keep a reason under {max} characters")));
    assert_eq!(
        count(&pool, "select count(*) from console.audit_entries where action = 'user_sessions_revoked'").await,
        0
    );
}

/// Each page marks its own tab, named by the page (Shell::in_tab), including pages whose
/// titles are a person's name or an id.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn each_page_marks_its_own_tab(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in(&["compliance", "mlro", "admin", "oncall"]).await;
    let alert = open_alert(&pool).await;
    let user: String = sqlx::query_scalar("select id from users order by id limit 1").fetch_one(&pool).await.unwrap();
    for (page, tab) in [
        ("/compliance".to_owned(), "/compliance"),
        (format!("/compliance/alerts/{alert}"), "/compliance/alerts"),
        (format!("/compliance/people/{user}"), "/compliance/people"),
        ("/compliance/kyc".to_owned(), "/compliance/kyc"),
        ("/admin/sessions".to_owned(), "/admin/sessions"),
        ("/health/checks/daily".to_owned(), "/health/checks"),
        ("/health/playbook".to_owned(), "/health/playbook"),
    ] {
        let shown = app.visit(&page).await;
        assert_eq!(shown.attrs("nav.tabs a[aria-current=page]", "href"), [tab], "{page}");
    }
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_alert_escalated_to_an_str_always_lands_on_a_report(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let (alert, person, tx) = crate::harness::open_alert_with_transaction(&pool).await;
    // Nothing unfiled about this person: closing makes the draft and goes to it.
    sqlx::query("delete from console.str_transactions where str_id in (select id from console.str_cases where user_id = $1 and status <> 'filed')")
        .bind(&person)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("delete from console.str_contributions where str_id in (select id from console.str_cases where user_id = $1 and status <> 'filed')")
        .bind(&person)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("delete from console.str_cases where user_id = $1 and status <> 'filed'")
        .bind(&person)
        .execute(&pool)
        .await
        .unwrap();
    let closed = app.close_alert(&alert, "escalated_to_str", "Five transfers just under the threshold").await;
    assert_eq!(closed.status, 303, "{}", closed.body);
    let drafted = closed.location().to_owned();
    assert!(drafted.starts_with("/compliance/str/str_") && drafted.ends_with("?from_alert=drafted"), "{drafted}");
    let str_id = drafted.trim_start_matches("/compliance/str/").split('?').next().unwrap().to_owned();
    let (status, linked, user): (String, Option<String>, String) =
        sqlx::query_as("select status, alert_id, user_id from console.str_cases where id = $1")
            .bind(&str_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), linked.as_deref(), user.as_str()), ("draft", Some(alert.as_str()), person.as_str()));
    let txs: Vec<String> = sqlx::query_scalar("select transaction_id from console.str_transactions where str_id = $1")
        .bind(&str_id)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(txs, std::slice::from_ref(&tx), "the alert's transaction is linked");
    let page = app.visit(&drafted).await;
    assert!(page.text(".from-alert").contains("This draft was made from it"), "{}", page.body);
    assert_eq!(crate::harness::audit_trail(&pool, "aml_alert_closed").await, crate::harness::intent_then_success());

    // A second alert about the same person escalates to that same unfiled report.
    sqlx::query(
        "insert into aml_alerts (id, user_id, transaction_id, status, created_at, rule)
         values ('alert_second1', $1, $2, 'open', now(), (select rule from aml_alerts where id = $3))",
    )
    .bind(&person)
    .bind(&tx)
    .bind(&alert)
    .execute(&pool)
    .await
    .unwrap();
    let again = app.close_alert("alert_second1", "escalated_to_str", "Same pattern a week later").await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.location(), format!("/compliance/str/{str_id}?from_alert=linked"));
    let reports: i64 =
        sqlx::query_scalar("select count(*) from console.str_cases where user_id = $1 and status <> 'filed'")
            .bind(&person)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reports, 1, "no second draft");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn oversight_reads_casework_audited_and_acts_on_nothing(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cora CEO", &["oversight"]).await;
    let alert = open_alert(&pool).await;
    let page = app.visit(&format!("/compliance/alerts/{alert}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.has("main form[method=post]"), "no form to act: {}", page.text("main"));
    assert!(page.has(".read-only"));
    let viewed: i64 = sqlx::query_scalar(
        "select count(*) from console.audit_entries where actor = 'Cora CEO' and action = 'personal_data_viewed'
           and details::text like '%' || $1 || '%'",
    )
    .bind(&alert)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(viewed >= 1, "the view is audited");
    for path in [
        format!("/compliance/alerts/{alert}/close"),
        format!("/compliance/alerts/{alert}/assign"),
        "/compliance/alerts/next".to_owned(),
    ] {
        assert_eq!(app.submit(&path, &[("outcome", "legitimate"), ("notes", "x")]).await.status, 403, "{path}");
    }
    let (_, person, _) = crate::harness::open_alert_with_transaction(&pool).await;
    let person_page = app.visit(&format!("/compliance/people/{person}")).await;
    assert_eq!(person_page.status, 200);
    assert!(!person_page.has("main form[method=post]") && !person_page.has("a[href$='/erase']"));
    assert_eq!(app.visit(&format!("/compliance/people/{person}/export.json")).await.status, 403);
    let strs = app.visit("/compliance/str").await;
    assert_eq!(strs.status, 200);
    let open: String =
        sqlx::query_scalar("select status from aml_alerts where id = $1").bind(&alert).fetch_one(&pool).await.unwrap();
    assert_eq!(open, "open", "nothing changed");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn an_str_shows_its_age_since_the_alert_and_overdue_ones_are_counted_for_casework_only(pool: PgPool) {
    let app = seeded(&pool).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let (alert, _, _) = crate::harness::open_alert_with_transaction(&pool).await;
    sqlx::query("update aml_alerts set created_at = now() - interval '20 days' where id = $1")
        .bind(&alert)
        .execute(&pool)
        .await
        .unwrap();
    let closed = app.close_alert(&alert, "escalated_to_str", "Structuring").await;
    let report = closed.location().split('?').next().unwrap().to_owned();
    let page = app.visit(&report).await;
    let age = page.text(".page-header .str-age");
    assert!(age.contains("20 days since the suspicion") && age.contains("Overdue"), "{age}");
    let str_id = report.trim_start_matches("/compliance/str/");
    let list = app.visit("/compliance/str").await;
    assert!(list.text(&format!("[data-str='{str_id}'] .str-age")).contains("Overdue"));

    let overdue: i64 = sqlx::query_scalar(
        "select count(*) from console.str_cases r where r.status <> 'filed'
           and coalesce((select a.created_at from aml_alerts a where a.id = r.alert_id), r.created_at) < now() - interval '14 days'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let summary = app.visit("/compliance").await;
    let shown = summary.text("[aria-labelledby=str-overdue-title] .stat-value");
    assert_eq!(shown, overdue.to_string());
    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    let counts_only = viewer.visit("/compliance").await;
    assert_eq!(counts_only.status, 200);
    assert!(!counts_only.has("#str-overdue-title"), "no STR figure for roles without casework");
}

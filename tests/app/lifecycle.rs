//! The regulated lifecycle around casework (issue 19): on-call's break-glass access, the end
//! of retention, the CEO's risk page and the inspection evidence pack.

use dropops::demo;
use sqlx::PgPool;

use crate::harness::{TestApp, audit_trail, config_with, intent_then_success};

/// A customer with live sessions and no AML history.
async fn signed_in_customer(pool: &PgPool) -> (String, String) {
    sqlx::query_as(
        "select u.id, u.email from users u where u.deleted_at is null
           and exists(select 1 from sessions s where s.user_id = u.id and s.revoked = 0)
         order by u.id limit 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn break_glass_needs_a_reason_expires_is_audited_as_such_and_is_reviewed_by_compliance(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let app = TestApp::spawn_with(pool.clone(), config_with(&[("DROPOPS_COMPLIANCE__BREAK_GLASS_MINUTES", "5")])).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let (person, email) = signed_in_customer(&pool).await;

    // Closed: nothing of a customer is reachable; the refusal links to where access is opened.
    assert_eq!(app.visit(&format!("/incidents/break-glass/people/{person}")).await.status, 409);
    assert_eq!(app.visit(&format!("/incidents/break-glass?q={email}")).await.status, 409);
    let refused =
        app.submit(&format!("/incidents/break-glass/people/{person}/revoke-sessions"), &[("reason", "x")]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("open break-glass with a reason first"));
    assert!(refused.has("a[href='/incidents/break-glass']"));
    let untouched: i64 = sqlx::query_scalar("select count(*) from console.audit_entries where details ? 'break_glass'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(untouched, 0);

    let blank = app.submit("/incidents/break-glass", &[("reason", "  ")]).await;
    assert_eq!(blank.status, 422);
    assert!(blank.has("#reason-error"));
    let opened: i64 = sqlx::query_scalar("select count(*) from console.break_glass").fetch_one(&pool).await.unwrap();
    assert_eq!(opened, 0, "a refused form opens nothing");

    let open = app.submit("/incidents/break-glass", &[("reason", "INC-12: account takeover reported by phone")]).await;
    assert_eq!(open.status, 303, "{}", open.body);
    assert_eq!(audit_trail(&pool, "break_glass_opened").await, intent_then_success());
    assert_eq!(app.submit("/incidents/break-glass", &[("reason", "again")]).await.status, 409);
    let (minutes, channel, body): (f64, String, String) = sqlx::query_as(
        "select extract(epoch from b.expires_at - b.started_at)::float8 / 60, m.channel, m.body
         from console.break_glass b, console.chat_messages m where m.source = 'break_glass:' || b.id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((minutes - 5.0).abs() < 0.01, "lasts the configured time");
    assert_eq!(channel, "compliance");
    assert!(
        body.contains("Ola Oncall") && !body.contains(&person) && !body.contains(&email),
        "no customer on Slack: {body}"
    );

    // Open: exact look-up, the person page without casework, revoking sessions.
    let found = app.visit(&format!("/incidents/break-glass?q={email}")).await;
    assert_eq!(found.status, 200);
    assert!(found.has(&format!("a[href='/incidents/break-glass/people/{person}']")));
    let partial = app.visit("/incidents/break-glass?q=a").await;
    assert_eq!(partial.status, 422, "no browsing by fragments");
    let page = app.visit(&format!("/incidents/break-glass/people/{person}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("AML") && !page.body.contains("tx_") && !page.body.contains("STR"));
    assert_eq!(app.visit("/compliance/alerts").await.status, 403, "break-glass opens no casework");
    assert_eq!(app.visit(&format!("/compliance/people/{person}")).await.status, 403);
    let blank = app.submit(&format!("/incidents/break-glass/people/{person}/revoke-sessions"), &[("reason", "")]).await;
    assert_eq!(blank.status, 422);
    let revoked = app
        .submit(&format!("/incidents/break-glass/people/{person}/revoke-sessions"), &[("reason", "Takeover, INC-12")])
        .await;
    assert_eq!(revoked.status, 303);
    let live: i64 = sqlx::query_scalar("select count(*) from sessions where user_id = $1 and revoked = 0")
        .bind(&person)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 0);
    assert_eq!(audit_trail(&pool, "user_sessions_revoked").await, intent_then_success(), "intent first, then done");
    let marked: Vec<(String, String)> = sqlx::query_as(
        "select action, kind from console.audit_entries where details ? 'break_glass' and kind <> 'outcome' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let actions: Vec<&str> = marked.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "break_glass_opened",
            "personal_data_viewed",
            "personal_data_viewed",
            "personal_data_viewed",
            "user_sessions_revoked"
        ],
        "the look-up, the page, the refused form's page and the revocation are all marked"
    );

    // Expired: closed again.
    sqlx::query("update console.break_glass set started_at = now() - interval '10 minutes', expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(app.visit(&format!("/incidents/break-glass/people/{person}")).await.status, 409);

    // Compliance sees it waiting, with its trace, and closes it with a finding.
    let officer = app.another_browser();
    officer.sign_in_as("Cato Compliance", &["compliance"]).await;
    let summary = officer.visit("/compliance").await;
    assert_eq!(summary.text("#bg-title + .stat-value"), "1");
    let queue = officer.visit("/compliance/break-glass").await;
    let id: i64 = sqlx::query_scalar("select id from console.break_glass").fetch_one(&pool).await.unwrap();
    assert!(queue.text(&format!("[data-use='{id}']")).contains("account takeover reported by phone"));
    assert_eq!(queue.texts(&format!("[data-use='{id}'] table.traces tbody tr")).len(), 5);
    let blank = officer.submit(&format!("/compliance/break-glass/{id}/review"), &[("note", "")]).await;
    assert_eq!(blank.status, 422);
    assert!(blank.has(&format!("#note-{id}-error")));
    let closed = officer
        .submit(&format!("/compliance/break-glass/{id}/review"), &[("note", "Justified: takeover confirmed")])
        .await;
    assert_eq!(closed.status, 303);
    assert_eq!(audit_trail(&pool, "break_glass_reviewed").await, intent_then_success());
    assert_eq!(officer.submit(&format!("/compliance/break-glass/{id}/review"), &[("note", "again")]).await.status, 409);
    assert_eq!(officer.visit("/compliance").await.text("#bg-title + .stat-value"), "0");

    // A use still open cannot be closed yet.
    assert_eq!(app.submit("/incidents/break-glass", &[("reason", "INC-13: BankID outage")]).await.status, 303);
    let second: i64 = sqlx::query_scalar("select max(id) from console.break_glass").fetch_one(&pool).await.unwrap();
    assert_eq!(
        officer.submit(&format!("/compliance/break-glass/{second}/review"), &[("note", "early")]).await.status,
        409
    );
    assert_eq!(app.submit("/incidents/break-glass/end", &[]).await.status, 303);
    assert_eq!(audit_trail(&pool, "break_glass_ended").await, intent_then_success());
    assert_eq!(app.submit("/incidents/break-glass/end", &[]).await.status, 409, "nothing open to end");
    assert_eq!(app.visit(&format!("/incidents/break-glass/people/{person}")).await.status, 409, "ended by its holder");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_retention_purge_is_counted_first_approved_by_the_mlro_and_spares_anyone_with_open_casework(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    // Someone with an open alert whose retention has (improbably) ended: they must wait.
    let blocked: String =
        sqlx::query_scalar("select user_id from aml_alerts where status = 'open' order by id limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query(
        "with u as (update users set deleted_at = now() - interval '6 years' where id = $1 returning id)
         insert into console.erasures (user_id, erased_at, retention_ends_at)
         select id, now() - interval '6 years', now() - interval '1 year' from u
         on conflict (user_id) do update set retention_ends_at = excluded.retention_ends_at",
    )
    .bind(&blocked)
    .execute(&pool)
    .await
    .unwrap();
    let due: Vec<String> = sqlx::query_scalar(
        "select e.user_id from console.erasures e where e.purged_at is null and e.retention_ends_at <= now()
           and not exists (select 1 from aml_alerts a where a.user_id = e.user_id and a.status = 'open')
           and not exists (select 1 from console.str_cases s where s.user_id = e.user_id and s.status <> 'filed')
         order by e.user_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!due.is_empty(), "the demo has people past retention");
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let page = app.visit("/compliance/retention").await;
    assert_eq!(page.text(".dry-count"), due.len().to_string());
    assert!(page.text(&format!("tr[data-person='{blocked}']")).contains("1 open alert(s)"));
    assert!(!page.has("form[action='/compliance/retention/purge']"), "only the MLRO approves");
    let expected = due.len().to_string();
    assert_eq!(
        app.submit("/compliance/retention/purge", &[("expected", &expected), ("reason", "x")]).await.status,
        403
    );

    let mlro = app.another_browser();
    mlro.sign_in_as("Mari MLRO", &["mlro"]).await;
    let stale = mlro.submit("/compliance/retention/purge", &[("expected", "999"), ("reason", "Review Q4")]).await;
    assert_eq!(stale.status, 409);
    assert!(stale.body.contains("changed since the dry run"));
    let blank = mlro.submit("/compliance/retention/purge", &[("expected", &expected), ("reason", "")]).await;
    assert_eq!(blank.status, 422);
    assert!(blank.has("#reason-error"));
    let purged: i64 = sqlx::query_scalar("select count(*) from console.purges").fetch_one(&pool).await.unwrap();
    assert_eq!(purged, 0, "refusals purge nobody");

    let done =
        mlro.submit("/compliance/retention/purge", &[("expected", &expected), ("reason", "Retention review Q4")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(audit_trail(&pool, "retention_purge").await, intent_then_success());
    for person in &due {
        let (email, name): (String, Option<String>) =
            sqlx::query_as("select email, full_name from users where id = $1")
                .bind(person)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((email, name), (format!("{person}@purged.invalid"), Some("Purged customer".to_owned())));
        let notes: i64 =
            sqlx::query_scalar("select count(*) from aml_alerts where user_id = $1 and reviewer_notes is not null")
                .bind(person)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(notes, 0);
    }
    let kept: String =
        sqlx::query_scalar("select email from users where id = $1").bind(&blocked).fetch_one(&pool).await.unwrap();
    assert!(!kept.ends_with("@purged.invalid"), "an open alert keeps the person's records");
    let page = mlro.visit("/compliance/retention").await;
    assert_eq!(page.text(".dry-count"), "0");
    assert_eq!(page.texts("table.purges tbody tr").len(), 1);
    assert_eq!(
        mlro.submit("/compliance/retention/purge", &[("expected", "0"), ("reason", "again")]).await.status,
        409,
        "nothing to purge"
    );
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_risk_page_shows_the_numbers_the_data_holds_to_oversight_the_mlro_and_admins(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    // One filing in this quarter (Oslo), whatever the seed's dates.
    // (A filed report is frozen: the seed's dates are moved with the guard set aside.)
    sqlx::raw_sql(
        "alter table console.str_cases disable trigger str_cases_frozen;
         update console.str_cases set filed_at = now() where id = (select id from console.str_cases where status = 'filed' order by id limit 1);
         alter table console.str_cases enable trigger str_cases_frozen;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    for refused in ["viewer", "compliance", "oncall"] {
        let other = app.another_browser();
        other.sign_in(&[refused]).await;
        assert_eq!(other.visit("/risk").await.status, 403, "{refused}");
    }
    app.sign_in_as("Otto Oversight", &["oversight"]).await;
    let page = app.visit("/risk").await;
    assert_eq!(page.status, 200);

    let open = count(&pool, "select count(*) from aml_alerts where status = 'open'").await;
    assert_eq!(page.text("#risk-alerts .stat-value"), open.to_string());
    let over_sla = count(
        &pool,
        "select count(*) from aml_alerts where status = 'open' and created_at <= now() - interval '48 hours' and created_at > now() - interval '7 days'",
    )
    .await;
    assert_eq!(page.text(".band-over-sla"), over_sla.to_string());
    let over_week = count(
        &pool,
        "select count(*) from aml_alerts where status = 'open' and created_at <= now() - interval '7 days'",
    )
    .await;
    assert_eq!(page.text(".band-over-week"), over_week.to_string());
    let under_day = count(
        &pool,
        "select count(*) from aml_alerts where status = 'open' and created_at > now() - interval '24 hours'",
    )
    .await;
    assert_eq!(page.text(".band-under-day"), under_day.to_string());

    for (class, status) in [("str-draft", "draft"), ("str-pending", "pending_review"), ("str-approved", "approved")] {
        let n = count(&pool, &format!("select count(*) from console.str_cases where status = '{status}'")).await;
        assert_eq!(page.text(&format!(".{class}")), n.to_string(), "{status}");
    }
    let (from, to) = dropops::compliance::deadlines::quarter_of(chrono::Utc::now());
    let filed: i64 = sqlx::query_scalar(
        "select count(*) from console.str_cases where status = 'filed' and filed_at >= $1 and filed_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(filed >= 1);
    assert_eq!(page.text("#risk-filings .stat-value"), filed.to_string());
    let gdpr_open = count(&pool, "select count(*) from data_access_requests where status = 'open'").await;
    assert_eq!(page.text("#risk-gdpr .stat-value"), gdpr_open.to_string());
    let gdpr_overdue = count(
        &pool,
        "select count(*) from data_access_requests where status = 'open' and created_at < now() - interval '1 month' - interval '1 day'",
    )
    .await;
    let shown: i64 = page.text(".gdpr-overdue").parse().unwrap();
    assert!((shown - gdpr_overdue).abs() <= 1, "overdue GDPR requests {shown} vs about {gdpr_overdue} (day boundary)");
    assert_eq!(page.text("#risk-break-glass .stat-value"), "0");
    let drill: Option<String> = sqlx::query_scalar(
        "select status from console.runs where procedure = 'restore_drill' order by created_at desc limit 1",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    match drill {
        Some(_) => assert!(!page.text(".drill-status").contains("Never")),
        None => assert!(page.text(".drill-status").contains("Never")),
    }
    // The trend: twelve weeks, two bars each, drawn on the server.
    assert_eq!(page.texts("svg.chart rect").len(), 24);
    assert!(!page.has("script:not([src])"), "no inline script");
    assert!(page.attrs("script", "src").iter().all(|src| !src.contains("chart")), "no chart library");
    // Oversight may open the casework lists; operations pages are not linked for them.
    assert!(page.has("#risk-alerts a[href='/compliance/alerts']"));
    assert!(!page.has("a[href='/secrets']"));
    let viewed = count(
        &pool,
        "select count(*) from console.audit_entries where action = 'personal_data_viewed' and resource_id = 'risk'",
    )
    .await;
    assert_eq!(viewed, 1);

    let admin = app.another_browser();
    admin.sign_in(&["admin"]).await;
    let page = admin.visit("/risk").await;
    assert_eq!(page.status, 200);
    assert!(!page.has("a[href='/compliance/alerts']"), "admins read no casework lists");
    assert!(page.has("a[href='/secrets']"));
}

/// The pack as downloaded: (status, bytes).
async fn download_pack(browser: &crate::harness::Browser, fields: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let token = browser.csrf().await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("_csrf", &token));
    let answer = browser
        .client()
        .post(browser.url("/compliance/evidence"))
        .header("origin", browser.url("").trim_end_matches('/'))
        .form(&form)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.bytes().await.unwrap().to_vec())
}

fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            (file.name().to_owned(), text)
        })
        .collect()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_evidence_pack_is_the_same_bytes_twice_verifies_its_chain_and_holds_narratives_only_when_ticked(
    pool: PgPool,
) {
    use sha2::Digest;
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let today = dropops::compliance::deadlines::oslo_day(chrono::Utc::now());
    let (from, to) = ((today - chrono::Days::new(3)).to_string(), (today - chrono::Days::new(1)).to_string());
    // Five operations rows, chained by the trigger like any other, then moved two days back
    // (the trigger stamps now()) and re-hashed so the chain holds as if written then.
    for n in 0..5 {
        sqlx::query(
            "insert into console.audit_entries (actor, action, resource_type, resource_id, details)
             values ('Ola Oncall', 'deploy_started', 'run', $1, '{}')",
        )
        .bind(format!("run-{n}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(
        "alter table console.audit_entries disable trigger audit_log_no_change;
         do $$ declare r record; prev bytea; begin
           for r in select id, seq from console.audit_entries where chain = 'operations' and action = 'deploy_started'
                    and resource_id like 'run-%' order by seq loop
             select hash into prev from console.audit_entries where chain = 'operations' and seq = r.seq - 1;
             update console.audit_entries set created_at = now() - interval '2 days', prev_hash = prev where id = r.id;
             update console.audit_entries a set hash = console.audit_row_hash(a.prev_hash, a) where id = r.id;
           end loop;
           update console.audit_chain_head set hash = (select hash from console.audit_entries
                                                       where chain = 'operations' order by seq desc limit 1)
            where chain = 'operations';
         end $$;
         alter table console.audit_entries enable trigger audit_log_no_change;",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(
        "alter table console.str_cases disable trigger str_cases_frozen;
         update console.str_cases set filed_at = now() - interval '2 days' where id = (select id from console.str_cases where status = 'filed' order by id limit 1);
         alter table console.str_cases enable trigger str_cases_frozen;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let filed: String = sqlx::query_scalar("select id from console.str_cases where filed_at > now() - interval '3 days' and filed_at < now() - interval '1 day'")
        .fetch_one(&pool)
        .await
        .unwrap();

    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Mari MLRO", &["mlro"]).await;
    assert!(app.visit("/compliance/evidence").await.has("input[name='narratives']"));
    let unfinished = app.submit("/compliance/evidence", &[("from", &from), ("to", &today.to_string())]).await;
    assert_eq!(unfinished.status, 422);
    assert!(unfinished.text("#to-error").contains("must have ended"));

    let (status, first) = download_pack(&app, &[("from", &from), ("to", &to)]).await;
    assert_eq!(status, 200);
    let (_, second) = download_pack(&app, &[("from", &from), ("to", &to)]).await;
    assert_eq!(first, second, "the same period gives the same bytes");

    let files = unzip(&first);
    for name in [
        "index.html",
        "audit/operations.csv",
        "audit/casework.csv",
        "audit/verification.json",
        "checklists.csv",
        "runs.csv",
        "aml_alerts.csv",
        "str_filings.csv",
        "gdpr_requests.csv",
        "staff_changes.csv",
    ] {
        assert!(files.contains_key(name), "{name} in the pack: {:?}", files.keys());
        assert!(
            name == "index.html" || files["index.html"].contains(&format!("href=\"{name}\"")),
            "the index links {name}"
        );
    }
    assert_eq!(files["audit/operations.csv"].lines().count(), 6, "a header and the five rows of the period");
    let verification: serde_json::Value = serde_json::from_str(&files["audit/verification.json"]).unwrap();
    let ops = &verification["chains"][0];
    assert_eq!(
        (ops["chain"].as_str(), ops["rows"].as_i64(), ops["intact"].as_bool()),
        (Some("operations"), Some(5), Some(true))
    );
    let last_hash: String = sqlx::query_scalar(
        "select encode(hash, 'hex') from console.audit_entries where chain = 'operations' and resource_id = 'run-4'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ops["last_hash"], last_hash.as_str());
    assert!(files["index.html"].contains("Intact") && files["index.html"].contains("dropops audit verify"));
    assert!(files["str_filings.csv"].contains(&filed));
    assert!(!files.keys().any(|k| k.starts_with("str_narratives/")), "no narratives unless ticked");
    let recorded: Vec<serde_json::Value> = sqlx::query_scalar(
        "select details from console.audit_entries where action = 'evidence_pack_created' order by seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0]["sha256"], hex::encode(sha2::Sha256::digest(&first)));

    let (_, with_narratives) = download_pack(&app, &[("from", &from), ("to", &to), ("narratives", "on")]).await;
    let files = unzip(&with_narratives);
    assert!(files[&format!("str_narratives/{filed}.json")].contains("narrative"));

    // Someone changes a row of the period: the pack says so.
    sqlx::raw_sql(
        "alter table console.audit_entries disable trigger audit_log_no_change;
         update console.audit_entries set action = 'deploy_cancelled' where resource_id = 'run-2';
         alter table console.audit_entries enable trigger audit_log_no_change;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (_, tampered) = download_pack(&app, &[("from", &from), ("to", &to)]).await;
    let files = unzip(&tampered);
    assert!(files["index.html"].contains("Broken at entry"));

    let admin = app.another_browser();
    admin.sign_in(&["admin"]).await;
    assert!(!admin.visit("/compliance/evidence").await.has("input[name='narratives']"));
    let refused = admin.submit("/compliance/evidence", &[("from", &from), ("to", &to), ("narratives", "on")]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text("#narratives-error").contains("Only the MLRO"));
    let officer = app.another_browser();
    officer.sign_in(&["compliance"]).await;
    assert_eq!(officer.visit("/compliance/evidence").await.status, 403);
}

//! The schema contract (src/contract): Drop's tables as the console relies on them. What
//! `check-db` says of a database, what readiness and the dashboard say, that every page still
//! answers when Drop's tables lack the optional columns, and that the main flows work as the
//! least-privileged role the contract's grants make.

use dropops::demo;
use sqlx::PgPool;

use crate::harness::{TestApp, open_alert_with_transaction, staff_id};
use crate::runs::{digest, drive, fast, run_row, start};

/// This test's database, as a URL another process (or role) can connect to.
async fn database_url(pool: &PgPool, role: Option<&str>) -> String {
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{database}", base.rsplit_once('/').unwrap().0);
    match role {
        Some(role) => url.replacen("postgres@", &format!("{role}@"), 1),
        None => url,
    }
}

fn check_db(url: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dropops"))
        .arg("check-db")
        .env("DATABASE_URL", url)
        .output()
        .expect("dropops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// What Drop's tables may lack: every optional column of the contract.
const OPTIONAL: &str = "alter table users drop column full_name cascade, drop column country cascade,
                                      drop column kyc_updated_at cascade;
                        alter table transactions drop column receive_amount cascade,
                                             drop column receive_currency cascade,
                                             drop column recipient_country cascade,
                                             drop column failure_reason cascade;
                        alter table aml_alerts drop column rule cascade;
                        alter table sessions drop column user_agent cascade;
                        alter table str_reports drop column created_at cascade;
                        alter table data_access_requests drop column kind cascade";

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn check_db_names_what_is_missing_and_refuses_to_pass_without_a_required_column(pool: PgPool) {
    let url = database_url(&pool, None).await;
    let (code, out, err) = check_db(&url);
    assert_eq!(code, 0, "the demo schema holds the whole contract:\n{out}{err}");
    assert!(!out.contains("MISSING") && !out.contains("DEGRADES"), "{out}");
    assert!(err.contains("serves the console"), "{err}");

    execute(&pool, "alter table users drop column full_name cascade").await;
    execute(&pool, "drop index transactions_created_idx").await;
    let (code, out, _) = check_db(&url);
    assert_eq!(code, 0, "an optional column and an index only narrow or slow the console:\n{out}");
    assert!(
        out.contains("DEGRADES users.full_name (optional) is missing: people are shown and searched by email only")
    );
    assert!(out.contains(
        "INDEX    no index serves transactions of the last 24 h, large transactions on transactions: \
         create index concurrently transactions_created_idx"
    ));

    execute(&pool, "alter table sessions drop column revoked cascade").await;
    execute(&pool, "alter table aml_alerts alter column reviewed_at type text").await;
    let (code, out, err) = check_db(&url);
    assert_eq!(code, 2, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("MISSING"), "the worst first: {out}");
    assert!(out.contains("sessions.revoked (required) is missing"), "{out}");
    assert!(out.contains("aml_alerts.reviewed_at (required) is text, expected timestamptz"), "{out}");
    assert!(err.contains("2 problems stop the console from serving"), "{err}");

    // Readiness and the dashboard say the same, without naming columns to an anonymous probe.
    let app = TestApp::spawn(pool.clone()).await;
    let ready = app.visit("/health/ready").await;
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("2 items of the schema contract are missing"), "{}", ready.body);
    assert!(!ready.body.contains("revoked"), "{}", ready.body);
    app.sign_in(&["oncall"]).await;
    let card = app.visit("/health").await;
    let console = card.text("[data-card='console']");
    assert!(console.contains("Not ready") && console.contains("sessions.revoked"), "{console}");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_page_answers_when_drops_tables_lack_the_optional_columns(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let (alert, person, tx) = open_alert_with_transaction(&pool).await;
    let email: String =
        sqlx::query_scalar("select email from users where id = $1").bind(&person).fetch_one(&pool).await.unwrap();
    sqlx::raw_sql(OPTIONAL).execute(&pool).await.unwrap();

    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["admin", "compliance", "oncall"]).await;
    assert_eq!(app.visit("/health/ready").await.status, 200, "optional columns never stop the console");
    for path in [
        "/".to_owned(),
        "/health".into(),
        "/deployments".into(),
        "/database".into(),
        "/secrets".into(),
        "/audit".into(),
        "/compliance".into(),
        "/compliance/alerts".into(),
        format!("/compliance/alerts/{alert}"),
        format!("/compliance/people?q={}", &email[..4]),
        format!("/compliance/people/{person}"),
        "/compliance/transactions".into(),
        "/compliance/transactions?view=failed".into(),
        "/compliance/transactions?view=large".into(),
        "/compliance/kyc".into(),
        "/compliance/str".into(),
        format!("/compliance/str/new?alert={alert}"),
        "/compliance/gdpr".into(),
        format!("/compliance/people/{person}/erase"),
        "/admin/staff".into(),
    ] {
        let page = app.visit(&path).await;
        assert_eq!(page.status, 200, "{path}:\n{}", page.body);
    }
    // What degrades says so, instead of showing nothing or failing.
    let card = app.visit("/health").await.text("[data-card='console']");
    assert!(card.contains("Ready, shows less") && card.contains("users.full_name"), "{card}");
    let shown = app.visit(&format!("/compliance/people/{person}")).await;
    assert_eq!(shown.text("main h1"), email, "named by email where Drop keeps no names");
    assert!(
        shown.text("main").contains("Country—") || shown.text("main").contains("Country —"),
        "{}",
        shown.text("main")
    );
    assert!(app.visit("/compliance/kyc").await.text("main").contains("waiting is counted from sign-up"));
    let queue = app.visit("/compliance/alerts").await;
    assert!(queue.attrs("select#rule option", "value").iter().all(|v| v.is_empty()), "no rules to filter by");
    assert!(app.visit(&format!("/compliance/alerts/{alert}")).await.text("main").contains("Rule not recorded"));
    let found = app.visit(&format!("/compliance/people?q={}", &email[..4])).await;
    assert!(found.body.contains(&person), "found by the start of the address: {}", found.text("main"));

    // And the casework still gets done.
    assert_eq!(app.close_alert(&alert, "legitimate", "Salary, documented").await.status, 303);
    let draft = app.draft_str(&person, "", "Structuring", "Many transfers just below the threshold.", &[&tx]).await;
    assert_eq!(draft.status, 303, "{}", draft.body);
    assert_eq!(app.revoke_sessions(&person, "Phone stolen").await.status, 303);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_main_flows_work_as_the_least_privileged_role(pool: PgPool) {
    demo::seed_if_empty(&pool, demo::DEFAULT_SEED).await.unwrap();
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let role = format!("least_{}", &database[database.len().saturating_sub(40)..]).to_lowercase();
    execute(&pool, &format!("drop role if exists {role}")).await;
    execute(&pool, &format!("create role {role} login")).await;
    dropops::db::grant_serving_role(&pool, &role).await.unwrap();
    let url = database_url(&pool, Some(&role)).await;

    // check-db as that role: every table grant the contract asks for is held.
    let (code, out, err) = check_db(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(" on users") && !out.contains("may not"), "no table grant missing:\n{out}");
    assert!(out.contains("GRANT    the role is not a member of pg_signal_backend"), "{out}");

    let serving = PgPool::connect(&url).await.unwrap();
    let app = TestApp::spawn_with(serving.clone(), fast()).await;
    app.sign_in_as("Cato Compliance", &["compliance"]).await;
    let mlro = app.another_browser();
    mlro.sign_in_as("Mari MLRO", &["mlro"]).await;
    let (alert, person, tx) = open_alert_with_transaction(&pool).await;
    // Alert close, STR draft → submit → approve → file.
    assert_eq!(app.close_alert(&alert, "escalated_to_str", "Source of funds unknown").await.status, 303);
    let draft = app.draft_str(&person, &alert, "Source of funds unknown", "Could not explain the funds.", &[&tx]).await;
    assert_eq!(draft.status, 303, "{}", draft.body);
    let str_id = draft.location().trim_start_matches("/compliance/str/").to_owned();
    assert_eq!(app.submit_str(&str_id).await.status, 303);
    assert_eq!(mlro.approve_str(&str_id).await.status, 303);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(mlro.file_str(&str_id, "AR-2026-0099", &today).await.status, 303);
    let status: String = sqlx::query_scalar("select status from console.str_cases where id = $1")
        .bind(&str_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "filed");
    let (kind, filed): (String, String) = sqlx::query_as("select report_type, status from str_reports where id = $1")
        .bind(&str_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (kind.as_str(), filed.as_str()),
        ("suspicious_transaction", "filed"),
        "Drop's table holds the filed report"
    );
    // Session revoke and GDPR erasure, of a person with nothing open.
    let quiet: String = sqlx::query_scalar(
        "select u.id from users u where deleted_at is null
            and not exists (select 1 from aml_alerts a where a.user_id = u.id and a.status = 'open')
            and not exists (select 1 from console.str_cases r where r.user_id = u.id and r.status <> 'filed')
          order by id limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(app.revoke_sessions(&quiet, "Account takeover reported").await.status, 303);
    assert_eq!(app.erase_person(&quiet, "GDPR erasure request by email").await.status, 303);
    // A deploy run, and the audit chain verified.
    let ops = app.another_browser();
    ops.sign_in_as("Ola Oncall", &["oncall", "admin"]).await;
    let newest = digest(&app, "b2e9f14").await;
    let run = start(&ops, &[("procedure", "deploy"), ("digest", newest.as_str()), ("reason", "release")]).await;
    drive(&app).await;
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    let verified = ops.verify_audit().await;
    assert!(verified.text(".verify-result").contains("Chain intact"), "{}", verified.body);
    assert!(!staff_id(&pool, "Ola Oncall").await.is_empty());

    serving.close().await;
    drop(app);
    execute(&pool, &format!("drop owned by {role}")).await;
    execute(&pool, &format!("drop role {role}")).await;
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn drops_audit_log_keeps_its_shape_and_every_row_in_it_is_chained(pool: PgPool) {
    use dropops::audit::verify::{self, Scope};
    use dropops::audit::{Actor, AuditContext, Chain, RequestMeta};

    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Admin Astrid", &["admin"]).await;
    // The console's own entry is a row of Drop's audit_log too, in Drop's shape, with a uuid.
    let (drop_id, action, details): (uuid::Uuid, String, serde_json::Value) = sqlx::query_as(
        "select d.id, d.action, d.details from console.audit_entries e join audit_log d on d.id = e.drop_id
          where e.action = 'sign_in' order by e.seq limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(action, "sign_in");
    assert_eq!(details["actor"], "Admin Astrid", "{details}");
    assert!(!drop_id.is_nil());

    // The runbook's own insert (§4, recording a rotation) keeps working after attaching...
    let manual: uuid::Uuid = sqlx::query_scalar(
        "insert into audit_log (id, action, resource_type, resource_id, details)
         values (gen_random_uuid(), 'secret_rotated', 'secret', 'JWT_SECRET', '{\"rotated_at\": \"2026-12-06T03:00:00Z\"}')
         returning id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // ...and the row is taken into the ledger, chained, by whoever wrote it.
    let (kind, actor, chain): (String, String, String) =
        sqlx::query_as("select kind, actor, chain from console.audit_entries where drop_id = $1")
            .bind(manual)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((kind.as_str(), actor.as_str(), chain.as_str()), ("event", "database: postgres", "operations"));
    // A row Drop's app writes about a customer is casework: operations staff never see it.
    sqlx::query(
        "insert into audit_log (id, action, resource_type, resource_id, details)
         values (gen_random_uuid(), 'kyc_approved', 'user', 'usr_abcdef', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let chain: String = sqlx::query_scalar("select chain from console.audit_entries where action = 'kyc_approved'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(chain, "casework");
    let shown = app.visit("/audit?action=secret_rotated").await;
    assert!(shown.text("table.audit").contains("database: postgres"), "{}", shown.text("main"));
    assert!(!app.visit("/audit").await.body.contains("kyc_approved"), "casework stays out of the operations log");

    // Both chains verify with the hand-written rows in them.
    let ctx = AuditContext { actor: Actor::system(), meta: RequestMeta::default() };
    for chain in Chain::ALL {
        let report = verify::run(&pool, &ctx, chain, Scope::Full).await.unwrap();
        assert_eq!(report.verification.problem, None, "{chain:?}");
    }
    // And Drop's audit_log stays append-only.
    for attack in ["update audit_log set action = 'nothing'", "delete from audit_log", "truncate audit_log"] {
        let err = sqlx::query(attack).execute(&pool).await.expect_err(attack);
        assert!(err.to_string().contains("append-only"), "{attack}: {err}");
    }
}

/// The acceptance test: Drop's tables written only from the runbook's columns (uuid
/// audit ids, integer `revoked`), owned by another role; `dropops migrate` attaches to them.
#[sqlx::test(migrations = false)]
async fn the_console_attaches_to_a_dropapp_of_the_runbook_shape_owned_by_drop(pool: PgPool) {
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let owner = format!("dropapp_{}", &database[database.len().saturating_sub(40)..]).to_lowercase();
    execute(&pool, &format!("drop role if exists {owner}")).await;
    execute(&pool, &format!("create role {owner}")).await;
    execute(&pool, &format!("grant create on schema public to {owner}")).await;
    {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql(&format!(
            "set role {owner}; {} reset role;",
            include_str!("../../fixtures/dropapp/20261101000001_dropapp_runbook.sql")
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let objects = |kind: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = match kind {
                "relations" => {
                    "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'"
                }
                _ => {
                    "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'"
                }
            };
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap()
        }
    };
    let (relations, functions) = (objects("relations").await, objects("functions").await);

    // The production path: the console's migrations only.
    dropops::db::migrate(&pool).await.unwrap();
    let added: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relname like '\\_sqlx%' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(added, ["_sqlx_migrations", "_sqlx_migrations_pkey"], "the migrator's own record");
    assert_eq!(objects("relations").await, relations + 2, "no other table, index or sequence in Drop's schema");
    assert_eq!(objects("functions").await, functions, "no function added to Drop's schema");
    let triggers: Vec<String> = sqlx::query_scalar(
        "select c.relname || '.' || t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid
           join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and not t.tgisinternal order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        triggers,
        ["audit_log.audit_log_adopt", "audit_log.audit_log_no_change", "audit_log.audit_log_no_truncate"],
        "the documented triggers, and nothing else on Drop's tables"
    );
    let owned: String = sqlx::query_scalar("select tableowner::text from pg_tables where tablename = 'users'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(owned, owner, "Drop's tables stay Drop's");

    // A little of Drop's business, in the runbook's columns only.
    sqlx::raw_sql(
        "insert into users (id, email, kyc_status, auth_provider) values ('usr_runbook1', 'kari@example.invalid', 'pending', 'bankid');
         insert into sessions (user_id, revoked) values ('usr_runbook1', 0);
         insert into transactions (id, user_id, type, status, send_amount, send_currency)
              values ('tx_runbook1', 'usr_runbook1', 'transfer', 'completed', 75000, 'NOK');
         insert into aml_alerts (id, user_id, transaction_id, status) values ('alert_runbook1', 'usr_runbook1', 'tx_runbook1', 'open');
         insert into data_access_requests (id, user_id) values ('dar_runbook1', 'usr_runbook1');",
    )
    .execute(&pool)
    .await
    .unwrap();

    let url = database_url(&pool, None).await;
    let (code, out, err) = check_db(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("MISSING") && !out.contains("MIGRATE"), "{out}");
    assert!(out.contains("DEGRADES users.full_name"), "{out}");

    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["admin", "compliance", "oncall"]).await;
    for path in [
        "/",
        "/health",
        "/deployments",
        "/database",
        "/secrets",
        "/audit",
        "/audit/casework",
        "/compliance",
        "/compliance/alerts",
        "/compliance/alerts/alert_runbook1",
        "/compliance/people?q=kari",
        "/compliance/people/usr_runbook1",
        "/compliance/transactions",
        "/compliance/transactions?view=large",
        "/compliance/kyc",
        "/compliance/str",
        "/compliance/str/new?alert=alert_runbook1",
        "/compliance/gdpr",
        "/admin/staff",
    ] {
        let page = app.visit(path).await;
        assert_eq!(page.status, 200, "{path}:\n{}", page.text("main"));
    }
    assert_eq!(app.visit("/health/ready").await.status, 200);
    assert_eq!(app.close_alert("alert_runbook1", "escalated_to_str", "Could not explain the funds").await.status, 303);
    assert_eq!(app.revoke_sessions("usr_runbook1", "Account takeover").await.status, 303);
    let revoked: i32 = sqlx::query_scalar("select revoked from sessions where user_id = 'usr_runbook1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(revoked, 1);

    // The runbook's manual audit insert, as Drop's own role: accepted, chained, verified.
    {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql(&format!(
            "set role {owner};
             insert into audit_log (id, action, resource_type, resource_id, details)
             values (gen_random_uuid(), 'secret_rotated', 'secret', 'JWT_SECRET', '{{\"rotated_at\": \"2026-12-06\"}}');
             reset role;"
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let actor: String = sqlx::query_scalar("select actor from console.audit_entries where action = 'secret_rotated'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(actor, "database: postgres", "the connecting role, whoever it set");
    let verified = app.verify_audit().await;
    assert!(verified.text(".verify-result").contains("Chain intact"), "{}", verified.text("main"));

    drop(app);
    execute(&pool, &format!("reassign owned by {owner} to postgres")).await;
    execute(&pool, &format!("drop owned by {owner}")).await;
    execute(&pool, &format!("drop role {owner}")).await;
}

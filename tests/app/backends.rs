//! Database firefighting against real backends of the test's PostgreSQL: an idle connection,
//! a long query and a blocking pair are listed; cancel and terminate end exactly the backend
//! chosen, audited intent first; the console's own and a reused pid are refused; a role
//! without pg_read_all_stats is told what it cannot see.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::harness::{Page, TestApp, audit_trail, intent_then_success};

async fn backend(pool: &PgPool, application: &str) -> PgConnection {
    let options: PgConnectOptions = (*pool.connect_options()).clone().application_name(application);
    PgConnection::connect_with(&options).await.expect("a backend")
}

/// A backend of an ordinary role (the console never signals a superuser's).
async fn backend_as(pool: &PgPool, role: &str, application: &str) -> PgConnection {
    let options: PgConnectOptions = (*pool.connect_options()).clone().username(role).application_name(application);
    PgConnection::connect_with(&options).await.expect("a backend")
}

/// A login role of this test's own (roles belong to the cluster).
async fn role(pool: &PgPool, prefix: &str) -> String {
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(pool).await.unwrap();
    let role = format!("{prefix}_{}", &database[database.len().saturating_sub(40)..]).to_lowercase();
    sqlx::query(&format!("drop role if exists {role}")).execute(pool).await.unwrap();
    sqlx::query(&format!("create role {role} login")).execute(pool).await.unwrap();
    role
}

async fn pid_of(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("select pg_backend_pid()").fetch_one(conn).await.unwrap()
}

async fn alive(pool: &PgPool, pid: i32) -> bool {
    sqlx::query_scalar("select exists (select 1 from pg_stat_activity where pid = $1)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The `start` key of a backend as the page links it.
fn start_of(page: &Page, pid: i32, signal: &str) -> String {
    let href = page
        .attrs(&format!("a[href^='/database/backends/{pid}/{signal}?start=']"), "href")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {signal} link for {pid}"));
    href.rsplit('=').next().unwrap().to_owned()
}

/// Poll the page until `ready` holds (the catalog catches up within moments).
async fn page_when(app: &TestApp, path: &str, ready: impl Fn(&Page) -> bool) -> Page {
    for _ in 0..100 {
        let page = app.visit(path).await;
        if ready(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed what was expected");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_page_lists_real_backends_and_signals_exactly_the_chosen_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let app_role = role(&pool, "fire").await;
    sqlx::raw_sql(&format!(
        "create table fire_drill (id int primary key); insert into fire_drill values (1);
         grant select, update on fire_drill to {app_role};"
    ))
    .execute(&pool)
    .await
    .unwrap();

    let mut idle = backend_as(&pool, &app_role, "fire-idle").await;
    let idle_pid = pid_of(&mut idle).await;
    let mut sleeper = backend_as(&pool, &app_role, "fire-sleep").await;
    let sleep_pid = pid_of(&mut sleeper).await;
    let sleeping = tokio::spawn(async move {
        let done = sqlx::query("select pg_sleep(60)").execute(&mut sleeper).await.map(|_| ());
        (sleeper, done)
    });
    let mut holder = backend_as(&pool, &app_role, "fire-holder").await;
    let holder_pid = pid_of(&mut holder).await;
    sqlx::raw_sql("begin; update fire_drill set id = 1 where id = 1;").execute(&mut holder).await.unwrap();
    let mut waiter = backend_as(&pool, &app_role, "fire-waiter").await;
    let waiter_pid = pid_of(&mut waiter).await;
    let waiting = tokio::spawn(async move {
        sqlx::query("update fire_drill set id = 1 where id = 1").execute(&mut waiter).await.map(|_| ())
    });

    let page = page_when(&app, "/database?over=1", |p| {
        p.has(&format!("table.backends-running tr[data-pid='{sleep_pid}']"))
            && p.has(&format!("[data-blocker='{holder_pid}'] tr[data-waits='{waiter_pid}']"))
    })
    .await;
    assert!(page.has(&format!("table.backends-all tr[data-pid='{idle_pid}']")), "every connection is listed");
    let tree = page.text(&format!("[data-blocker='{holder_pid}']"));
    assert!(tree.contains("RowExclusiveLock") || tree.contains("ShareLock"), "the lock it waits for: {tree}");
    assert!(!page.has(&format!("table.backends-running tr[data-pid='{idle_pid}']")), "idle is not running");

    // Cancel the long query: only it stops.
    let start = start_of(&page, sleep_pid, "cancel");
    let confirm = app.visit(&format!("/database/backends/{sleep_pid}/cancel?start={start}")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text("main").contains("pg_sleep(60)"), "it shows exactly what will be cancelled");
    let no_reason = app.submit(&format!("/database/backends/{sleep_pid}/cancel"), &[("start", &start)]).await;
    assert_eq!(no_reason.status, 422);
    assert!(no_reason.has("#reason-error"));
    let done = app
        .submit(
            &format!("/database/backends/{sleep_pid}/cancel"),
            &[("start", &start), ("reason", "SlowP99, runbook §2.3")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text("main"));
    let (mut sleeper, done) = sleeping.await.unwrap();
    let cancelled = done.expect_err("the query was cancelled");
    assert!(cancelled.to_string().contains("canceling statement due to user request"), "{cancelled}");
    assert!(sqlx::query("select 1").execute(&mut sleeper).await.is_ok(), "a cancel leaves the connection");
    assert_eq!(audit_trail(&pool, "db_backend_cancel").await, intent_then_success());
    let (details, reason): (serde_json::Value, Option<String>) = sqlx::query_as(
        "select details, reason from console.audit_entries where action = 'db_backend_cancel' and kind = 'intent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(details["pid"], sleep_pid);
    assert_eq!(details["application"], "fire-sleep");
    assert_eq!(details["query"], "select pg_sleep(60)");
    assert_eq!(details["query_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(reason.as_deref(), Some("SlowP99, runbook §2.3"));

    // Terminate the idle one: not before a cancel was tried or "now" is ticked.
    let page = app.visit("/database").await;
    let start = start_of(&page, idle_pid, "terminate");
    let path = format!("/database/backends/{idle_pid}/terminate");
    let refused = app.submit(&path, &[("start", &start), ("reason", "idle for hours")]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text("#now-error").contains("Cancel its query first"), "{}", refused.text("main"));
    assert!(alive(&pool, idle_pid).await);
    let ended = app.submit(&path, &[("start", &start), ("reason", "idle for hours"), ("now", "yes")]).await;
    assert_eq!(ended.status, 303, "{}", ended.text("main"));
    assert!(sqlx::query("select 1").execute(&mut idle).await.is_err(), "the idle connection is gone");
    assert!(alive(&pool, holder_pid).await && alive(&pool, waiter_pid).await, "the others are untouched");

    // A pid whose backend is not the one the page showed is never signalled.
    let stale = app
        .submit(
            &format!("/database/backends/{holder_pid}/terminate"),
            &[("start", "1"), ("reason", "x"), ("now", "yes")],
        )
        .await;
    assert_eq!(stale.status, 409);
    assert!(stale.text("main").contains("has ended"), "{}", stale.text("main"));
    assert!(alive(&pool, holder_pid).await);

    // The console's own connections are refused, said plainly.
    let mut own = backend_as(&pool, &app_role, dropops::db::APPLICATION_NAME).await;
    let own_pid = pid_of(&mut own).await;
    let page = page_when(&app, "/database", |p| p.has(&format!("table.backends-all tr[data-pid='{own_pid}']"))).await;
    let start = start_of(&page, own_pid, "terminate");
    let shown = app.visit(&format!("/database/backends/{own_pid}/terminate?start={start}")).await;
    assert!(shown.text("main").contains("one of the console's own connections"), "{}", shown.text("main"));
    assert!(!shown.has("form[action$='/terminate']"), "no button to press");
    let forced = app
        .submit(
            &format!("/database/backends/{own_pid}/terminate"),
            &[("start", &start), ("reason", "x"), ("now", "yes")],
        )
        .await;
    assert_eq!(forced.status, 409);
    assert!(alive(&pool, own_pid).await);

    // Lift the lock: the waiter goes on.
    sqlx::raw_sql("rollback").execute(&mut holder).await.unwrap();
    waiting.await.unwrap().unwrap();
    // A superuser's backend is refused too.
    let mut admin = backend(&pool, "psql").await;
    let admin_pid = pid_of(&mut admin).await;
    let page = page_when(&app, "/database", |p| p.has(&format!("table.backends-all tr[data-pid='{admin_pid}']"))).await;
    let start = start_of(&page, admin_pid, "cancel");
    let shown = app.visit(&format!("/database/backends/{admin_pid}/cancel?start={start}")).await;
    assert!(shown.text("main").contains("it belongs to a superuser"), "{}", shown.text("main"));

    for conn in [idle, holder, own, admin, sleeper] {
        drop(conn);
    }
    drop(app);
    sqlx::query(&format!("drop owned by {app_role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("drop role {app_role}")).execute(&pool).await.unwrap();
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_viewer_looks_and_a_role_without_read_all_stats_is_told_what_it_cannot_see(pool: PgPool) {
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let role = role(&pool, "stats").await;
    dropops::db::grant_serving_role(&pool, &role).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{database}", base.rsplit_once('/').unwrap().0).replacen("postgres@", &format!("{role}@"), 1);
    let serving = PgPool::connect(&url).await.unwrap();
    let mut other = backend(&pool, "someone-else").await;
    let other_pid = pid_of(&mut other).await;

    let app = TestApp::spawn(serving.clone()).await;
    app.sign_in(&["viewer"]).await;
    let page = page_when(&app, "/database", |p| p.has(&format!("table.backends-all tr[data-pid='{other_pid}']"))).await;
    assert!(page.text("#backends-unknown").contains("not a member of pg_read_all_stats"), "{}", page.text("main"));
    let row = page.text(&format!("table.backends-all tr[data-pid='{other_pid}']"));
    assert!(row.contains("unknown, because"), "{row}");
    assert!(!page.has("a[href^='/database/backends/']"), "a viewer gets no buttons");
    assert!(page.text("#replication").contains("unknown, because the console's role is not a member of pg_monitor"));
    let refused =
        app.submit(&format!("/database/backends/{other_pid}/cancel"), &[("start", "1"), ("reason", "x")]).await;
    assert_eq!(refused.status, 403);
    assert!(alive(&pool, other_pid).await);

    drop(other);
    serving.close().await;
    drop(app);
    sqlx::query(&format!("drop owned by {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("drop role {role}")).execute(&pool).await.unwrap();
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn idle_connections_end_together_exactly_as_confirmed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let idlers = role(&pool, "idlers").await;
    let mut first = backend_as(&pool, &idlers, "idle-a").await;
    let first_pid = pid_of(&mut first).await;
    let mut second = backend_as(&pool, &idlers, "idle-b").await;
    let second_pid = pid_of(&mut second).await;
    let mut busy = backend_as(&pool, &idlers, "in-a-transaction").await;
    let busy_pid = pid_of(&mut busy).await;
    sqlx::raw_sql("begin; select 1;").execute(&mut busy).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let page = page_when(&app, "/database/backends/idle?idle=1", |p| {
        p.has(&format!("tr[data-pid='{first_pid}']")) && p.has(&format!("tr[data-pid='{second_pid}']"))
    })
    .await;
    assert!(!page.has(&format!("tr[data-pid='{busy_pid}']")), "idle in a transaction is not idle");
    let chosen = page.attrs("input[name=backend]", "value");
    let mut fields: Vec<(&str, &str)> = chosen.iter().map(|c| ("backend", c.as_str())).collect();
    fields.push(("idle", "1"));
    let refused = app.submit("/database/backends/idle/terminate", &fields).await;
    assert_eq!(refused.status, 422);
    assert!(refused.has("#reason-error"));
    assert!(alive(&pool, first_pid).await, "nothing ends without a reason");

    fields.push(("reason", "runbook §5: idle over five minutes"));
    let done = app.submit("/database/backends/idle/terminate", &fields).await;
    assert_eq!(done.status, 200, "{}", done.text("main"));
    for pid in [first_pid, second_pid] {
        assert!(done.text(&format!("li[data-pid='{pid}']")).contains("terminated"), "{}", done.text("main"));
    }
    assert!(sqlx::query("select 1").execute(&mut first).await.is_err());
    assert!(sqlx::query("select 1").execute(&mut second).await.is_err());
    assert!(alive(&pool, busy_pid).await, "the one not listed is untouched");
    let trail = audit_trail(&pool, "db_backend_terminate").await;
    assert_eq!(trail.iter().filter(|(kind, _)| kind == "intent").count(), 2, "{trail:?}");
    assert!(trail.iter().filter(|(kind, _)| kind == "outcome").all(|(_, o)| o.as_deref() == Some("succeeded")));

    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    assert_eq!(viewer.visit("/database/backends/idle").await.status, 403);

    drop((first, second, busy));
    drop(app);
    sqlx::query(&format!("drop owned by {idlers}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("drop role {idlers}")).execute(&pool).await.unwrap();
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_page_shows_the_biggest_tables_replication_and_why_statements_are_unknown(pool: PgPool) {
    sqlx::raw_sql(
        "create table upkeep_drill (id int primary key, note text);
         insert into upkeep_drill select g, repeat('x', 200) from generate_series(1, 2000) g;
         delete from upkeep_drill where id % 2 = 0;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in(&["viewer"]).await;
    // Table statistics reach the view when the writing backend flushes them: within moments.
    let page = page_when(&app, "/database", |p| {
        p.texts("tr[data-table='upkeep_drill'] td.num").get(2).is_some_and(|dead| dead != "0")
    })
    .await;
    let row = page.texts("tr[data-table='upkeep_drill'] td.num");
    assert_eq!(row[1], "1000", "live rows: {row:?}");
    assert_eq!(row[2], "1000", "dead rows: {row:?}");
    assert_eq!(row[3], "50 %", "the dead share: {row:?}");
    assert!(
        page.text("#replication").contains("No replicas stream from this server."),
        "{}",
        page.text("#replication")
    );
    assert!(!page.text("#replication").contains("unknown, because"), "the test role may read the WAL directory");
    assert!(
        page.text("#statements-unknown").contains("pg_stat_statements is not installed"),
        "{}",
        page.text("#statements")
    );
    // Ranked by total time unless asked otherwise; the links keep the thresholds.
    assert_eq!(page.text("#statements-title"), "Top 20 statements by total time");
    let by_mean = app.visit("/database?over=90&by=mean").await;
    assert_eq!(by_mean.text("#statements-title"), "Top 20 statements by mean time");
    assert!(by_mean.attrs(".sort-links a", "href").contains(&"/database?over=90&idle=300&by=calls#statements".into()));
    assert_eq!(app.visit("/database?by=nonsense").await.text("#statements-title"), "Top 20 statements by total time");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn resetting_the_statement_statistics_is_audited_and_says_why_when_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    // Not installed: the confirmation says so, a post changes nothing and writes nothing.
    assert!(app.visit("/database/statements/reset").await.text("main").contains("not installed"));
    let refused = app.submit("/database/statements/reset", &[("reason", "after the index fix")]).await;
    assert_eq!(refused.status, 409);
    assert!(audit_trail(&pool, "db_statements_reset").await.is_empty());

    // Installed: a reason is required, then the intent, the reset and its outcome.
    sqlx::query("create extension if not exists pg_stat_statements").execute(&pool).await.unwrap();
    assert_eq!(app.submit("/database/statements/reset", &[("reason", " ")]).await.status, 422);
    let done = app.submit("/database/statements/reset", &[("reason", "after the index fix")]).await;
    let trail = audit_trail(&pool, "db_statements_reset").await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[0], ("intent".to_owned(), None), "the intent first");
    match done.status {
        // A server that loads the extension (shared_preload_libraries): reset.
        303 => assert_eq!(trail[1].1.as_deref(), Some("succeeded")),
        // This one does not: PostgreSQL's words, and a failed outcome.
        409 => {
            assert!(done.text("main").contains("were not reset"), "{}", done.text("main"));
            assert_eq!(trail[1].1.as_deref(), Some("failed"));
        }
        other => panic!("{other}: {}", done.text("main")),
    }
    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    assert_eq!(viewer.submit("/database/statements/reset", &[("reason", "x")]).await.status, 403);
}

/// A run's status and outcome, once it has ended.
async fn ended(pool: &PgPool, run: uuid::Uuid) -> (String, Option<String>) {
    for _ in 0..300 {
        let row = crate::runs::run_row(pool, run).await;
        if row.0 != "running" && row.0 != "queued" {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} never ended");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_vacuum_is_an_audited_run_that_shows_its_progress_and_can_be_cancelled_from_the_page(pool: PgPool) {
    sqlx::raw_sql(
        "create table vacuum_drill (id int primary key, note text);
         insert into vacuum_drill select g, 'x' from generate_series(1, 2000) g;
         delete from vacuum_drill where id % 2 = 0;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let app = crate::runs::oncall(pool.clone()).await;
    let _worker = dropops::runs::worker::Worker::new(app.state.clone()).spawn();

    // The confirmation says what happens; a table that is not there is refused, nothing starts.
    let confirm = app.visit("/database/confirm?procedure=vacuum&table=public.vacuum_drill").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text("h1").contains("VACUUM (ANALYZE) public.vacuum_drill"), "{}", confirm.text("h1"));
    assert!(confirm.text("main").contains("No downtime"), "{}", confirm.text("main"));
    let unknown = app.visit("/database/confirm?procedure=vacuum&table=public.no_such_table").await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.text("main").contains("is not a table of this database"), "{}", unknown.text("main"));
    let refused = app.confirm_run(&[("procedure", "vacuum"), ("table", "pg_catalog.pg_class")]).await;
    assert_eq!(refused.status, 422, "only the database's own tables");

    // A schema change in progress holds the table: the vacuum waits for its lock, and the page
    // shows it waiting behind the holder, with a cancel link.
    let mut holder = backend(&pool, "fire-ddl").await;
    let holder_pid = pid_of(&mut holder).await;
    sqlx::raw_sql("begin; lock table vacuum_drill in share update exclusive mode;").execute(&mut holder).await.unwrap();
    let run = crate::runs::start(&app, &[("procedure", "vacuum"), ("table", "public.vacuum_drill")]).await;
    let mut vacuum_pid = None;
    for _ in 0..100 {
        vacuum_pid = sqlx::query_scalar("select pid from pg_stat_activity where application_name = 'dropops-vacuum'")
            .fetch_optional(&pool)
            .await
            .unwrap();
        if vacuum_pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let vacuum_pid: i32 = vacuum_pid.expect("the vacuum runs on a connection of its own");
    let page = page_when(&app, "/database?over=1", |p| {
        p.text(&format!("[data-blocker='{holder_pid}']")).contains("VACUUM (ANALYZE) public.vacuum_drill")
            && p.has(&format!("table.backends-running tr[data-pid='{vacuum_pid}'] a"))
    })
    .await;
    let run_page = app.visit(&format!("/runs/{run}")).await;
    assert!(
        run_page.text(".run-log").contains(&format!("runs on backend {vacuum_pid}, waiting for its lock")),
        "the run says what it waits for: {}",
        run_page.text(".run-log")
    );
    let start = start_of(&page, vacuum_pid, "cancel");
    let cancelled = app
        .submit(
            &format!("/database/backends/{vacuum_pid}/cancel"),
            &[("start", &start), ("reason", "the I/O hurts SlowP99")],
        )
        .await;
    assert_eq!(cancelled.status, 303, "the console's vacuum may be cancelled: {}", cancelled.text("main"));
    let (status, outcome) = ended(&pool, run).await;
    assert_eq!(status, "failed");
    assert!(outcome.as_deref().unwrap_or("").contains("canceling statement due to user request"), "{outcome:?}");
    sqlx::raw_sql("commit").execute(&mut holder).await.unwrap();

    // Again, with nothing in the way: done, audited intent then outcome each time.
    let run = crate::runs::start(&app, &[("procedure", "vacuum"), ("table", "public.vacuum_drill")]).await;
    assert_eq!(ended(&pool, run).await.0, "succeeded");
    let log = app.visit(&format!("/runs/{run}")).await.text(".run-log");
    assert!(log.contains("Done: vacuumed and analysed public.vacuum_drill: dead rows"), "{log}");
    assert!(log.contains("→ 0"), "{log}");
    let counted: i64 =
        sqlx::query_scalar("select vacuum_count from pg_stat_user_tables where relname = 'vacuum_drill'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(counted, 1, "one vacuum ran to its end: the cancelled one did not count");
    let trail = audit_trail(&pool, "db_vacuum").await;
    let kinds: Vec<(&str, Option<&str>)> = trail.iter().map(|(k, o)| (k.as_str(), o.as_deref())).collect();
    assert_eq!(
        kinds,
        [("intent", None), ("outcome", Some("failed")), ("intent", None), ("outcome", Some("succeeded"))]
    );

    // A viewer sees the tables, not the button.
    let viewer = app.another_browser();
    viewer.sign_in(&["viewer"]).await;
    let seen = viewer.visit("/database").await;
    assert!(seen.has("#tables") && !seen.has("a.vacuum-link"));
    assert!(app.visit("/database").await.has("a.vacuum-link"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn demo_mode_on_the_embedded_database_has_a_believable_server_to_fight(pool: PgPool) {
    use dropops::database::activity::Simulated;
    let app = TestApp::spawn_state(
        |config| {
            dropops::AppState::new(pool.clone(), config)
                .with_activity(std::sync::Arc::new(Simulated::new(chrono::Utc::now())))
        },
        dropops::config::Config::demo(),
    )
    .await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let page = app.visit("/database").await;
    assert!(page.has("[data-blocker='4120'] tr[data-waits='4121']"), "the forgotten psql transaction blocks");
    assert!(page.has("[data-blocker='4120'] tr[data-waits='4122']"), "and the one behind it");
    assert!(page.has("table.backends-running tr[data-pid='4110']"), "the reporting query has run for minutes");
    assert!(page.texts("table.backends-idle tbody tr").len() >= 3, "idle for more than five minutes");

    // Its cancel changes nothing (an idle transaction has no query); terminate ends it and
    // lets the queue through — as PostgreSQL does.
    let start = start_of(&page, 4120, "terminate");
    let done = app
        .submit(
            "/database/backends/4120/terminate",
            &[("start", &start), ("reason", "forgotten psql session blocks KYC updates"), ("now", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text("main"));
    assert_eq!(audit_trail(&pool, "db_backend_terminate").await, intent_then_success());
    let after = app.visit("/database").await;
    assert!(!after.has("[data-blocker]"), "nobody waits any more");
    assert!(!after.has("tr[data-pid='4120']"));
    // The console's own connection is listed, with nothing to press.
    assert!(after.has("table.backends-all tr[data-pid='4200']") && !after.has("tr[data-pid='4200'] a"));
}

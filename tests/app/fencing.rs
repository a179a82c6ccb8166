//! Runs that cannot hurt production (issue 13): a stalled worker does nothing more once another
//! took its run over, a slow step does not starve the lease, cancel is refused past a point
//! of no return, every run has its own snapshot, a half-finished rotation is red until
//! resumed, and shutdown hands runs over at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dropops::runs::worker::{Driven, Phase, Stall, Worker};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::harness::{TestApp, config_with};
use crate::rotation::{current, rotate, sim, status};
use crate::runs::{digest, drive, expire_lease, oncall, operations_during, run_row, running_tag, start, step_statuses};

/// The fast simulator of the run tests, with a one-second lease.
fn short_lease() -> dropops::config::Config {
    config_with(&[
        ("DROPOPS_SIMULATOR_TIME_SCALE", "0.001"),
        ("DROPOPS_RUNS__POLL_INTERVAL_MS", "10"),
        ("DROPOPS_RUNS__HEALTH_TIMEOUT_SECS", "2"),
        ("DROPOPS_RUNS__LEASE_SECS", "1"),
    ])
}

/// Freeze the worker once at `position`/`phase` until `release` is notified.
fn stall_at(position: i32, phase: Phase, release: Arc<Notify>) -> Stall {
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Arc::new(move |p, ph| {
        if p != position || ph != phase || fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let release = release.clone();
        Some(Box::pin(async move { release.notified().await }) as Pin<Box<dyn Future<Output = ()> + Send>>)
    })
}

/// Poll (10 ms) until `check` holds; fail after 20 s.
async fn until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    for _ in 0..2000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn scalar_i64(pool: &PgPool, sql: &str, run: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(run).fetch_one(pool).await.unwrap()
}

async fn step_status(pool: &PgPool, run: Uuid, position: i32) -> String {
    sqlx::query_scalar("select status from console.run_steps where run_id = $1 and position = $2")
        .bind(run)
        .bind(position)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn lease_lapsed(pool: &PgPool, run: Uuid) -> bool {
    sqlx::query_scalar("select coalesce(lease_until < now(), true) from console.runs where id = $1")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The stalled-worker test: one replica freezes (GC pause, stopped VM) past its lease at the
/// deploy step, before and after acting; a second replica takes the run over and finishes it;
/// then the first wakes up and must do nothing more — no AWS call, no step result, no log
/// line, no audit row.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_worker_that_stalls_past_its_lease_does_nothing_more(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), short_lease()).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    for phase in [Phase::BeforeAct, Phase::AfterAct] {
        let target = if running_tag(&app).await == "b2e9f14" { "7f3c2a1" } else { "b2e9f14" };
        let image = digest(&app, target).await;
        let run = start(&app, &[("procedure", "deploy"), ("digest", &image)]).await;
        let release = Arc::new(Notify::new());
        let stalled = Worker::new(app.state.clone()).stalling(stall_at(4, phase, release.clone()));
        let claim = stalled.claim().await.unwrap().expect("the run is claimable");
        let first = tokio::spawn(async move { stalled.drive(claim).await.unwrap() });
        until("the first worker froze at the deploy step", || async {
            step_status(&pool, run, 4).await == "running" && lease_lapsed(&pool, run).await
        })
        .await;
        // The second replica takes over and finishes the deploy.
        drive(&app).await;
        let (outcome, why) = run_row(&pool, run).await;
        assert_eq!(outcome, "succeeded", "{phase:?}: {why:?}");
        let written = |pool: PgPool| async move {
            scalar_i64(
                &pool,
                "select (select count(*) from console.audit_entries) + (select count(*) from console.run_log where run_id = $1)",
                run,
            )
            .await
        };
        let before = written(pool.clone()).await;
        release.notify_one();
        assert_eq!(first.await.unwrap(), Driven::LostLease, "{phase:?}: the first worker knows it lost the run");
        assert_eq!(written(pool.clone()).await, before, "{phase:?}: the first worker wrote nothing more");
        assert_eq!(operations_during(&pool, run, "UPDATE_SERVICE").await, 1, "{phase:?}: one deployment");
        assert_eq!(running_tag(&app).await, target);
        let intents = scalar_i64(
            &pool,
            "select count(*) from console.audit_entries where resource_id = $1::text and kind = 'intent' and details ->> 'step' = '4'",
            run,
        )
        .await;
        assert_eq!(intents, 1, "{phase:?}: one intent for the deploy step");
        let statuses = step_statuses(&pool, run).await;
        assert!(statuses.iter().all(|(_, s)| s == "succeeded"), "{phase:?}: {statuses:?}");
    }
}

/// A step whose AWS calls take longer than the lease (5 s each, lease 2 s) keeps its lease:
/// it is renewed while the step acts, so no other replica can take the run meanwhile.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_slow_step_does_not_starve_its_lease(pool: PgPool) {
    let mut config = short_lease();
    config.runs.lease = Duration::from_secs(2);
    let app = TestApp::spawn_with(pool.clone(), config).await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    let run = start(&app, &[("procedure", "scale"), ("min", "2"), ("max", "5")]).await;
    assert_eq!(admin.set_fault("slow_responses", true).await.status, 303);
    let worker = Worker::new(app.state.clone());
    let claim = worker.claim().await.unwrap().unwrap();
    let driving = tokio::spawn(async move { worker.drive(claim).await.unwrap() });
    let other = Worker::new(app.state.clone());
    until("the scaling change is being made", || async { step_status(&pool, run, 0).await == "running" }).await;
    // Well past the lease, while the first AWS call is still under way.
    for _ in 0..30 {
        assert!(other.claim().await.unwrap().is_none(), "nobody else may take a run whose step is acting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(admin.set_fault("slow_responses", false).await.status, 303);
    assert_eq!(driving.await.unwrap(), Driven::Finished);
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    assert_eq!(operations_during(&pool, run, "UPDATE_SERVICE").await, 1);
}

/// Cancelled right after RDS took the new password, a rotation broke production: now the
/// cancel is refused with the reason, the page offers no cancel, and the run finishes to a
/// consistent state.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_rotation_cannot_be_cancelled_once_the_password_is_being_set(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let run = rotate(&app, "database_url").await;
    // Stopped after RDS took the new password (step 3 acted), as a crash would.
    let halt = Arc::new(|p: i32, ph: Phase| p == 3 && ph == Phase::AfterAct);
    assert_eq!(Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap(), Driven::Halted);
    let page = app.visit(&format!("/runs/{run}")).await;
    assert!(!page.has(&format!("form[action='/runs/{run}/cancel']")), "no cancel is offered");
    assert!(page.text(".too-late-to-cancel").contains("Too late to cancel"), "{}", page.body);
    let refused = app.cancel_run(run).await;
    assert_eq!(refused.status, 409);
    assert!(refused.text("main").contains("could not connect"), "the reason: {}", refused.text("main"));
    let asked: Option<String> = sqlx::query_scalar("select cancel_requested_by from console.runs where id = $1")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(asked, None);
    assert!(
        crate::harness::audit_trail(&pool, "run_cancel_requested").await.is_empty(),
        "a refused cancel changes nothing"
    );
    expire_lease(&pool, run).await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded");
    let url = dropops::config::Secret::new(current(&app, "drop/production/database-url").await);
    assert_eq!(
        dropops::runs::rotation::password_of(&url).unwrap().expose(),
        sim(&app).master_password().await.unwrap().expose(),
        "RDS and DATABASE_URL agree"
    );
}

/// A cancel that arrives while the step before the point of no return is in progress stops
/// the run before RDS is touched: the world stays as it was.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_rotation_cancelled_before_the_password_is_set_leaves_rds_alone(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let before = sim(&app).master_password().await.unwrap().expose().to_owned();
    let run = rotate(&app, "database_url").await;
    let halt = Arc::new(|p: i32, ph: Phase| p == 1 && ph == Phase::AfterAct);
    Worker::new(app.state.clone()).halting(halt).run_until_idle().await.unwrap();
    assert_eq!(app.cancel_run(run).await.status, 303);
    expire_lease(&pool, run).await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "cancelled");
    let statuses = step_statuses(&pool, run).await;
    assert_eq!(statuses[3], ("set_db_password".to_owned(), "cancelled".to_owned()), "{statuses:?}");
    assert_eq!(sim(&app).master_password().await.unwrap().expose(), before, "RDS was not asked");
    assert!(!app.visit("/secrets").await.has(".needs-repair"), "nothing to repair");
}

/// A rotation whose redeploy failed after RDS and the secret changed is red on the run, the
/// secrets page and the dashboard; resuming redoes the redeploy (not only the wait) and
/// clears it.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_half_finished_rotation_is_red_everywhere_until_resume_repairs_it(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let admin = app.another_browser();
    admin.sign_in_as("Ada Admin", &["admin"]).await;
    assert_eq!(admin.set_fault("deploy_fails", true).await.status, 303);
    let run = rotate(&app, "database_url").await;
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "failed");
    let page = app.visit(&format!("/runs/{run}")).await;
    assert!(page.text("[role=alert]").contains("Half-finished rotation"), "{}", page.body);
    assert!(page.text(&format!("form[action='/runs/{run}/resume'] button")).contains("Resume and repair"));
    let secrets = app.visit("/secrets").await;
    assert!(secrets.has(&format!(".needs-repair a[href='/runs/{run}']")), "{}", secrets.body);
    let dashboard = app.visit("/health").await;
    assert!(dashboard.has(&format!(".needs-repair a[href='/runs/{run}']")), "{}", dashboard.body);

    assert_eq!(admin.set_fault("deploy_fails", false).await.status, 303);
    assert_eq!(app.resume_run(run).await.status, 303);
    drive(&app).await;
    assert_eq!(status(&pool, run).await, "succeeded", "{:?}", step_statuses(&pool, run).await);
    assert_eq!(operations_during(&pool, run, "START_DEPLOYMENT").await, 2, "the redeploy was started again");
    assert!(!app.visit("/secrets").await.has(".needs-repair"));
    assert!(!app.visit("/health").await.has(".needs-repair"));
    let url = dropops::config::Secret::new(current(&app, "drop/production/database-url").await);
    assert_eq!(
        dropops::runs::rotation::password_of(&url).unwrap().expose(),
        sim(&app).master_password().await.unwrap().expose()
    );
}

/// Two deploys in the same minute each get a snapshot of their own, named on the
/// confirmation exactly as used; the same confirmation submitted twice starts one run.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn every_deploy_has_its_own_snapshot_named_on_the_confirmation(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let mut snapshots = vec![];
    for tag in ["b2e9f14", "7f3c2a1"] {
        let image = digest(&app, tag).await;
        let confirm = app.visit(&format!("/deployments/confirm?procedure=deploy&digest={image}")).await;
        let run_id = confirm.attrs("input[name=run]", "value").pop().expect("the confirmation carries its run id");
        let shown = confirm
            .texts("main li")
            .iter()
            .flat_map(|step| step.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find(|w| w.starts_with("drop-db-pre-deploy-"))
            .expect("the snapshot is named");
        let form =
            [("procedure", "deploy"), ("digest", image.as_str()), ("run", run_id.as_str()), ("reason", "release")];
        let run = start(&app, &form).await;
        assert_eq!(run.to_string(), run_id);
        assert_eq!(start(&app, &form).await, run, "submitted twice: still one run");
        let used: String = sqlx::query_scalar("select params ->> 'snapshot_id' from console.runs where id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(used, shown, "the name on the confirmation is the name used");
        drive(&app).await;
        assert_eq!(run_row(&pool, run).await.0, "succeeded");
        snapshots.push(used);
    }
    assert_ne!(snapshots[0], snapshots[1], "each deploy has a snapshot of its own");
    for id in &snapshots {
        assert!(app.state.cloud.rds.snapshot(id).await.unwrap().is_some(), "{id} was taken");
    }
    let runs: i64 = sqlx::query_scalar("select count(*) from console.runs").fetch_one(&pool).await.unwrap();
    assert_eq!(runs, 2);
    // A confirmation id the console did not make is refused, not used.
    let image = digest(&app, "b2e9f14").await;
    let forged = app
        .submit(
            "/deployments/runs",
            &[("procedure", "deploy"), ("digest", &image), ("run", &Uuid::new_v4().to_string())],
        )
        .await;
    assert_eq!(forged.status, 422);
    assert!(forged.text("main").contains("out of date"));
}

/// SIGTERM: the worker stops after the step in progress and releases the lease, so another
/// replica continues at once instead of after the lease.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn shutdown_hands_a_run_over_at_once(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let image = digest(&app, "b2e9f14").await;
    let run = start(&app, &[("procedure", "deploy"), ("digest", &image)]).await;
    let release = Arc::new(Notify::new());
    let worker = Worker::new(app.state.clone()).stalling(stall_at(2, Phase::BeforeAct, release.clone())).spawn();
    until("the worker is at step 2", || async { step_status(&pool, run, 2).await == "running" }).await;
    let stopping = tokio::spawn(worker.stop(Duration::from_secs(20)));
    release.notify_one();
    stopping.await.unwrap();
    let (owner, state): (Option<Uuid>, String) =
        sqlx::query_as("select lease_owner, status from console.runs where id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((owner, state.as_str()), (None, "running"), "released, not finished");
    let next = Worker::new(app.state.clone());
    let claim = next.claim().await.unwrap().expect("claimable at once, without waiting out the lease");
    assert_eq!(claim.run, run);
    assert_eq!(next.drive(claim).await.unwrap(), Driven::Finished);
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
    assert_eq!(operations_during(&pool, run, "UPDATE_SERVICE").await, 1);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn cancelling_an_unknown_run_is_not_found(pool: PgPool) {
    let app = oncall(pool).await;
    assert_eq!(app.submit(&format!("/runs/{}/cancel", Uuid::new_v4()), &[]).await.status, 404);
    assert_eq!(app.submit("/runs/not-a-run/cancel", &[]).await.status, 404);
}

/// During a database outage the first request finds out (the pool's timeout); the next ones
/// answer 503 after one short check instead of each waiting it out, and the sign-in page (whose
/// session store is the database) says 503 too, not 500.
#[tokio::test]
async fn during_a_database_outage_pages_answer_503_fast() {
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy("postgres://postgres@127.0.0.1:9/nothing_listens_here")
        .unwrap();
    let app = TestApp::spawn_with(dead, dropops::config::Config::demo()).await;
    let sign_in = app.visit("/auth/sign-in").await;
    assert_eq!(sign_in.status, 503, "{}", sign_in.body);
    assert!(sign_in.text("main").contains("database cannot be reached"), "{}", sign_in.text("main"));
    for path in ["/health", "/auth/sign-in", "/deployments"] {
        let asked = std::time::Instant::now();
        let page = app.visit(path).await;
        assert_eq!(page.status, 503, "{path}: {}", page.body);
        assert!(asked.elapsed() < Duration::from_secs(2), "{path} answered after {:?}", asked.elapsed());
    }
    assert_eq!(app.visit("/health/live").await.status, 200, "liveness needs no database");
}

/// While the audit log cannot be written (its chain held by a slow transaction) a step does
/// not start; once it recovers the same worker carries on at once, without waiting out a lease.
#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_run_waits_for_the_audit_log_and_carries_on_when_it_recovers(pool: PgPool) {
    let app = oncall(pool.clone()).await;
    let run = start(&app, &[("procedure", "restart")]).await;
    let mut slow = pool.begin().await.unwrap();
    sqlx::query("select * from console.audit_chain_head where chain = 'operations' for update")
        .execute(&mut *slow)
        .await
        .unwrap();
    let worker = Worker::new(app.state.clone());
    let driving = tokio::spawn(async move { worker.run_until_idle().await.unwrap() });
    // Past the lock timeout: the first step's intent could not be written, so it has not started.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(step_status(&pool, run, 0).await, "pending", "no step runs unaudited");
    slow.rollback().await.unwrap();
    // The lease is a minute; the run ends well within it, driven by the same worker.
    let finished = tokio::time::timeout(Duration::from_secs(30), driving).await.expect("carried on at once");
    assert_eq!(finished.unwrap(), Driven::Finished);
    assert_eq!(run_row(&pool, run).await.0, "succeeded");
}

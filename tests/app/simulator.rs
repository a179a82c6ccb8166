//! The simulated environment's state transitions, on its own: operations that take time,
//! refusals while busy, faults that change outcomes, snapshots, restore drills and secret
//! versions, all kept in PostgreSQL so a restart of the console keeps them.

use std::time::Duration;

use dropops::cloud::sim::Simulator;
use dropops::cloud::{AppRunner, Environment, Probes, Rds, Secrets};
use dropops::config::Secret;
use sqlx::PgPool;

use crate::harness::config_with;

/// A twenty-fifth of real time: a deployment takes 6 s, a snapshot 1.8 s — long enough to
/// see them in progress on a busy machine.
fn simulator(pool: &PgPool) -> Simulator {
    Simulator::new(pool.clone(), &config_with(&[("DROPOPS_SIMULATOR_TIME_SCALE", "0.04")]))
}

async fn settle(seconds: f64) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
}

async fn fault(pool: &PgPool, name: &str) {
    sqlx::query("insert into console.sim_faults (name, active, changed_by) values ($1, true, 'test')")
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
}

const REPO: &str = "324480209768.dkr.ecr.eu-west-1.amazonaws.com/drop-web";

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn a_deployment_is_in_progress_then_running_the_new_image(pool: PgPool) {
    let sim = simulator(&pool);
    let before = sim.service_status().await.unwrap();
    assert_eq!(before.status, "RUNNING");
    assert!(before.image.ends_with(":7f3c2a1"));
    let op = sim.deploy_image(&format!("{REPO}:b2e9f14")).await.unwrap();
    let during = sim.service_status().await.unwrap();
    assert_eq!(during.status, "OPERATION_IN_PROGRESS");
    assert!(during.image.ends_with(":7f3c2a1"), "the old version serves until the new one is up");
    assert_eq!(sim.app_health(Environment::Production).await.unwrap().version, "7f3c2a1");
    let refused = sim.start_deployment().await.unwrap_err();
    assert!(refused.to_string().contains("InvalidStateException"), "{refused}");
    assert!(sim.operation(&op).await.unwrap().unwrap().in_progress());
    settle(6.2).await;
    let after = sim.service_status().await.unwrap();
    assert_eq!(after.status, "RUNNING");
    assert!(after.image.ends_with(":b2e9f14"));
    assert_eq!(sim.operation(&op).await.unwrap().unwrap().status, "SUCCEEDED");
    assert_eq!(sim.app_health(Environment::Production).await.unwrap().version, "b2e9f14");
    // A console restart keeps what happened.
    assert!(simulator(&pool).service_status().await.unwrap().image.ends_with(":b2e9f14"));
    let unknown = sim.deploy_image(&format!("{REPO}:nosuchtag")).await.unwrap_err();
    assert!(unknown.to_string().contains("not an image in the repository"));
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn faults_fail_deployments_and_break_the_newest_release(pool: PgPool) {
    let sim = simulator(&pool);
    fault(&pool, "deploy_fails").await;
    let op = sim.deploy_image(&format!("{REPO}:b2e9f14")).await.unwrap();
    settle(6.2).await;
    assert_eq!(sim.operation(&op).await.unwrap().unwrap().status, "FAILED");
    assert!(sim.service_status().await.unwrap().image.ends_with(":7f3c2a1"), "a failed deployment changes nothing");
    sqlx::query("update console.sim_faults set active = false").execute(&pool).await.unwrap();
    fault(&pool, "release_unhealthy").await;
    sim.deploy_image(&format!("{REPO}:b2e9f14")).await.unwrap();
    settle(6.2).await;
    let health = sim.app_health(Environment::Production).await.unwrap();
    assert_eq!(health.version, "b2e9f14");
    assert!(!health.ok, "the newest image is broken");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn pause_and_resume(pool: PgPool) {
    let sim = simulator(&pool);
    let refused = sim.resume().await.unwrap_err();
    assert!(refused.to_string().contains("not paused"));
    sim.pause().await.unwrap();
    settle(1.8).await;
    assert_eq!(sim.service_status().await.unwrap().status, "PAUSED");
    assert!(sim.app_health(Environment::Production).await.unwrap_err().to_string().contains("paused"));
    assert!(sim.start_deployment().await.unwrap_err().to_string().contains("paused"));
    sim.resume().await.unwrap();
    settle(2.6).await;
    assert_eq!(sim.service_status().await.unwrap().status, "RUNNING");
    assert!(sim.app_health(Environment::Production).await.unwrap().ok);
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn snapshots_and_restore_drills_take_time(pool: PgPool) {
    let sim = simulator(&pool);
    let automated = sim.snapshots().await.unwrap();
    assert!(automated.iter().all(|s| s.automated && s.status == "available"));
    sim.create_snapshot("drop-db-manual-20261129-0200").await.unwrap();
    sim.create_snapshot("drop-db-manual-20261129-0200").await.unwrap();
    let creating = sim.snapshot("drop-db-manual-20261129-0200").await.unwrap().unwrap();
    assert_eq!((creating.status.as_str(), creating.automated), ("creating", false));
    settle(2.0).await;
    assert_eq!(sim.snapshot("drop-db-manual-20261129-0200").await.unwrap().unwrap().status, "available");
    let manual: i64 = sqlx::query_scalar("select count(*) from console.sim_snapshots").fetch_one(&pool).await.unwrap();
    assert_eq!(manual, 1, "the id is the client token");

    let missing = sim.restore_to_instance("nope", "drill").await.unwrap_err();
    assert!(missing.to_string().contains("DBSnapshotNotFound"));
    sim.restore_to_instance("drop-db-manual-20261129-0200", "drop-db-drill").await.unwrap();
    assert_eq!(sim.instance_named("drop-db-drill").await.unwrap().unwrap().status, "creating");
    settle(12.2).await;
    assert_eq!(sim.instance_named("drop-db-drill").await.unwrap().unwrap().status, "available");
    sim.delete_instance("drop-db-drill").await.unwrap();
    assert!(sim.instance_named("drop-db-drill").await.unwrap().is_none());
    assert!(sim.delete_instance("drop-db").await.is_err(), "Drop's own database is never deleted");
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn secret_versions_and_the_database_password_agree(pool: PgPool) {
    let sim = simulator(&pool);
    let url_secret = "drop/production/database-url";
    let url = sim.value(url_secret, None).await.unwrap().unwrap();
    let password = sim.master_password().await.unwrap();
    assert!(url.expose().contains(&format!(":{}@", password.expose())), "the seeded URL holds the RDS password");
    let before = sim.secret_info("drop/production/jwt-secret").await.unwrap().last_changed.unwrap();
    assert!(chrono::Utc::now() - before > chrono::Duration::days(60));
    let version = uuid::Uuid::new_v4().to_string();
    sim.stage_value("drop/production/jwt-secret", &version, &Secret::new("next")).await.unwrap();
    let clash = sim.stage_value("drop/production/jwt-secret", &version, &Secret::new("other")).await.unwrap_err();
    assert!(clash.to_string().contains("ResourceExistsException"));
    assert_ne!(sim.value("drop/production/jwt-secret", None).await.unwrap().unwrap().expose(), "next");
    sim.promote("drop/production/jwt-secret", &version).await.unwrap();
    assert_eq!(sim.value("drop/production/jwt-secret", None).await.unwrap().unwrap().expose(), "next");
    let after = sim.secret_info("drop/production/jwt-secret").await.unwrap().last_changed.unwrap();
    assert!(chrono::Utc::now() - after < chrono::Duration::minutes(1));
    sim.set_master_password(&Secret::new("fresh")).await.unwrap();
    assert_eq!(sim.master_password().await.unwrap().expose(), "fresh");
}

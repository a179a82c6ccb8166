//! The one integration-test binary: every module below drives the real app over HTTP against
//! a fresh PostgreSQL database per test (`#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]`:
//! Drop's tables from the demo fixture, then the console's migration; from `DATABASE_URL`).

mod access;
mod apprunner;
mod audit;
mod aws;
mod backends;
mod betterstack;
mod browser;
mod cli;
mod compliance;
mod contract;
mod database;
#[cfg(feature = "embedded-db")]
mod embedded;
mod fencing;
mod gdpr;
mod harness;
mod health;
mod identity;
mod lifecycle;
mod oidc;
mod oncall;
mod ops;
mod plans;
mod queries;
mod rotation;
mod runs;
mod security;
mod shell;
mod simulator;
mod staging;
mod str;
mod vendors;

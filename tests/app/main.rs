//! The one integration-test binary: every module below drives the real app over HTTP against
//! a fresh PostgreSQL database per test (`#[sqlx::test]`, from `DATABASE_URL`).

mod browser;
mod cli;
mod database;
#[cfg(feature = "embedded-db")]
mod embedded;
mod harness;
mod ops;
mod shell;

//! The `dropops` command line, run as a user runs it.

use std::process::Command;

fn dropops(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropops"));
    cmd.args(args).env_remove("DATABASE_URL");
    for (k, _) in std::env::vars() {
        if k.starts_with("DROPOPS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("dropops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_command() {
    let (code, out, _) = dropops(&["--help"], &[]);
    assert_eq!(code, 0);
    for command in ["serve", "migrate", "seed-demo", "check-config", "grant-serving-role", "audit", "--config"] {
        assert!(out.contains(command), "{command} missing from:\n{out}");
    }
}

#[test]
fn check_config_lists_every_missing_production_setting_and_fails() {
    let (code, _, err) =
        dropops(&["check-config"], &[("DROPOPS_MODE", "production"), ("DROPOPS_BIND", "0.0.0.0:8080")]);
    assert_eq!(code, 2, "{err}");
    for key in [
        "database_url",
        "oidc.issuer_url",
        "oidc.client_id",
        "oidc.client_secret",
        "aws.region",
        "drop.apprunner_service_arn",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/drop.example.toml");
    let (code, out, err) = dropops(
        &["--config", example, "check-config"],
        &[
            ("DATABASE_URL", "postgres://dropops:pa55word@db.internal/dropapp"),
            ("DROPOPS_OIDC__CLIENT_SECRET", "oidc-s3cret"),
            ("DROPOPS_AUDIT__FINGERPRINT_KEY", "fingerprint-key-0123456789abcdef0123"),
            ("DROPOPS_METRICS_TOKEN", "metrics-scrape-token-0123456789abcdef"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("metrics-scrape-token"), "{out}");
    assert!(out.contains("mode = \"production\""), "{out}");
    assert!(out.contains("drop/production/jwt-secret"), "{out}");
    assert!(!out.contains("pa55word") && !out.contains("oidc-s3cret"), "{out}");
    assert!(out.contains("[redacted]"));
}

#[test]
fn demo_mode_refuses_to_listen_beyond_loopback() {
    let (code, _, err) = dropops(&["serve"], &[("DROPOPS_BIND", "0.0.0.0:8080")]);
    assert_eq!(code, 2);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn malformed_toml_is_reported_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "mode = \"demo\"\n[runs\nlease_secs = 3\n").unwrap();
    let (code, _, err) = dropops(&["--config", path.to_str().unwrap(), "check-config"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.toml:2:"), "the line is named: {err}");
}

#[test]
fn an_unreachable_database_is_named_with_where_and_why_never_the_password() {
    let (code, out, err) =
        dropops(&["migrate"], &[("DATABASE_URL", "postgres://drop_owner:s3cretpw@127.0.0.1:9/dropapp")]);
    // The error is logged (to stdout, where the logs go).
    let err = out + &err;
    assert_ne!(code, 0);
    assert!(err.contains("cannot connect to the database at 127.0.0.1:9/dropapp as drop_owner"), "{err}");
    assert!(!err.contains("s3cretpw"), "{err}");
}

/// A port in use is found before anything is written to the database, and a migration
/// refused for lack of privilege says so once.
#[sqlx::test(migrations = false)]
async fn serve_binds_before_it_touches_the_database(pool: sqlx::PgPool) {
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = format!("{}/{database}", base.rsplit_once('/').unwrap().0);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (code, out, err) = dropops(
        &["serve"],
        &[("DATABASE_URL", url.as_str()), ("DROPOPS_MODE", "demo"), ("DROPOPS_BIND", bind.as_str())],
    );
    let err = out + &err;
    assert_ne!(code, 0);
    assert!(err.contains(&format!("cannot listen on {bind}")), "{err}");
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 0, "nothing was migrated or seeded");

    let role = format!("nopriv_{}", &database[database.len().saturating_sub(40)..]).to_lowercase();
    sqlx::query(&format!("drop role if exists {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("create role {role} login")).execute(&pool).await.unwrap();
    sqlx::query("revoke create on schema public from public").execute(&pool).await.unwrap();
    let as_role = url.replacen("postgres@", &format!("{role}@"), 1);
    let (code, out, err) = dropops(&["migrate"], &[("DATABASE_URL", as_role.as_str())]);
    let err = out + &err;
    assert_ne!(code, 0);
    assert_eq!(err.matches("permission denied").count(), 1, "said once: {err}");
    sqlx::query(&format!("drop owned by {role}")).execute(&pool).await.unwrap();
    sqlx::query(&format!("drop role {role}")).execute(&pool).await.unwrap();
}

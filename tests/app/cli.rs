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

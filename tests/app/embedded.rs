//! The embedded PostgreSQL that `cargo run` uses, driven through the real binary: it starts
//! with no server configured, migrates and seeds, stops promptly on SIGTERM, and a restart
//! finds the same data without seeding twice.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Console(Child);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &std::path::Path, port: u16) -> Console {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropops"));
    cmd.arg("serve").env_remove("DATABASE_URL");
    for (k, _) in std::env::vars() {
        if k.starts_with("DROPOPS_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .env("DROPOPS_DATA_DIR", data_dir)
        .env("DROPOPS_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dropops starts");
    Console(child)
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the embedded console did not become ready within 90 s");
}

/// SIGTERM, then the process must be gone within the bound App Runner allows.
fn stop(mut console: Console) -> Duration {
    let started = Instant::now();
    let status = Command::new("kill").args(["-TERM", &console.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    loop {
        if let Some(exit) = console.0.try_wait().unwrap() {
            assert!(exit.success(), "dropops exited with {exit}");
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "dropops did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn the_embedded_console_serves_stops_and_restarts_with_its_data() {
    crate::harness::init();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let browser = crate::harness::Browser::at(&base);

    let console = start(dir.path(), port);
    wait_ready(&client, &base).await;
    browser.sign_in(&["admin"]).await;
    let first = browser.visit("/").await.body;
    assert!(first.contains("240 fictional customers"), "{first}");
    stop(console);

    let console = start(dir.path(), port);
    wait_ready(&client, &base).await;
    // The sign-in survived the restart too: sessions live in the database.
    let audit = browser.visit("/audit?action=demo_data_seeded").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert_eq!(audit.texts("table.audit tbody tr").len(), 1, "seeded once, kept across the restart");
    assert_eq!(browser.visit("/compliance").await.status, 200);
    stop(console);
}

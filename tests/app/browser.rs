//! One real-browser smoke test: headless Chromium (Debian `chromium` + `chromium-driver`,
//! installed by `scripts/test`) loads the shell and follows every navigation link, failing on
//! any console error or Content-Security-Policy violation.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{ClientBuilder, Locator};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::TestApp;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromedriver's `POST /session/{id}/se/log`: the browser console since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_chromedriver() -> (Driver, String) {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists(),
        "{CHROMEDRIVER} is missing: ./scripts/test installs Debian's chromium and chromium-driver"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Driver(child), url)
}

/// With `DROPOPS_SCREENSHOTS=<dir>`, save what the browser shows: for reviewing the design.
async fn screenshot(browser: &fantoccini::Client, name: &str) -> Result<(), fantoccini::error::CmdError> {
    if let Ok(dir) = std::env::var("DROPOPS_SCREENSHOTS") {
        let png = browser.screenshot().await?;
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).expect("write screenshot");
    }
    Ok(())
}

fn severe_entries(log: &Value) -> Vec<String> {
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["level"] == "SEVERE" || e["message"].as_str().is_some_and(|m| m.contains("Content Security Policy"))
        })
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_shell_loads_in_a_real_browser_without_errors_or_csp_violations(pool: PgPool) {
    let app = TestApp::spawn_with(pool, crate::runs::fast()).await;
    dropops::runs::worker::Worker::new(app.state.clone()).spawn();
    let (_driver, driver_url) = start_chromedriver().await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--window-size=1280,900"]
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let browser =
        ClientBuilder::rustls().expect("tls").capabilities(caps).connect(&driver_url).await.expect("webdriver session");

    let result = async {
        browser.goto(&app.url("/")).await?;
        // Signed out, the console sends us to the dev sign-in form: use it like a person.
        browser.wait().for_element(Locator::Css("form[action='/auth/dev']")).await?;
        screenshot(&browser, "sign-in").await?;
        browser.find(Locator::Css("#name")).await?.send_keys("Kari Nordmann").await?;
        browser.find(Locator::Css("input[name=role][value=admin]")).await?.click().await?;
        browser.find(Locator::Css("input[name=role][value=compliance]")).await?.click().await?;
        browser.find(Locator::Css("form[action='/auth/dev'] button[type=submit]")).await?.click().await?;
        browser.wait().for_element(Locator::Css("nav[aria-label=Main]")).await?;
        let mut hrefs = Vec::new();
        for link in browser.find_all(Locator::Css("nav[aria-label=Main] a")).await? {
            hrefs.push(link.attr("href").await?.unwrap_or_default());
        }
        assert_eq!(hrefs.len(), 7, "seven areas in the navigation");
        let mut problems = severe_entries(&browser.issue_cmd(BrowserLog).await?);
        for href in &hrefs {
            browser.find(Locator::Css(&format!("nav a[href='{href}']"))).await?.click().await?;
            let heading = browser.wait().for_element(Locator::Css("main h1")).await?.text().await?;
            assert_eq!(browser.current_url().await?.path(), href.as_str());
            assert!(!heading.is_empty());
            screenshot(&browser, href.trim_start_matches('/')).await?;
            // htmx loaded and initialised from the embedded file under the strict CSP.
            let htmx_version = browser.execute("return window.htmx ? htmx.version : null", vec![]).await?;
            assert!(htmx_version.as_str().is_some_and(|v| v.starts_with("2.")), "htmx on {href}: {htmx_version}");
            problems.extend(
                severe_entries(&browser.issue_cmd(BrowserLog).await?).into_iter().map(|m| format!("{href}: {m}")),
            );
        }
        // The admin pages, and one htmx round trip that must carry the CSRF header.
        for href in ["/admin/staff", "/admin/sessions"] {
            browser.goto(&app.url(href)).await?;
            browser.wait().for_element(Locator::Css("main h1")).await?;
            screenshot(&browser, &href.replace('/', "_")).await?;
            problems.extend(
                severe_entries(&browser.issue_cmd(BrowserLog).await?).into_iter().map(|m| format!("{href}: {m}")),
            );
        }
        // A deploy, clicked through as a person would, followed live on the run page.
        browser.goto(&app.url("/deployments")).await?;
        browser.find(Locator::Css("table.images a[href*='procedure=deploy']")).await?.click().await?;
        browser.wait().for_element(Locator::Css("form[action='/deployments/runs']")).await?;
        screenshot(&browser, "deploy-confirm").await?;
        let confirm_url = browser.current_url().await?;
        // A production deploy says why (the field is required). Sent without one anyway (as a
        // browser that does not check `required` would), the form comes back with the error,
        // under the confirmation page's own address, not the POST's.
        browser.execute("document.querySelector('#reason').removeAttribute('required')", vec![]).await?;
        browser.find(Locator::Css("form[action='/deployments/runs'] button[type=submit]")).await?.click().await?;
        browser.wait().for_element(Locator::Css("#reason-error")).await?;
        assert_eq!(browser.current_url().await?, confirm_url, "the rejected POST is not a history entry to resend");
        // Chromium logs the 422 it was just sent, as it should; anything else is a problem.
        problems.extend(
            severe_entries(&browser.issue_cmd(BrowserLog).await?)
                .into_iter()
                .filter(|m| !(m.contains("/deployments/runs") && m.contains("422")))
                .map(|m| format!("deploy confirm: {m}")),
        );
        browser.find(Locator::Css("#reason")).await?.send_keys("release 2026-12-02").await?;
        browser.find(Locator::Css("form[action='/deployments/runs'] button[type=submit]")).await?.click().await?;
        browser.wait().for_element(Locator::Css("#run-progress")).await?;
        let run_url = browser.current_url().await?;
        assert!(run_url.path().starts_with("/runs/"));
        // Back from the run goes to the confirmation page afresh: no "Confirm Form Resubmission".
        browser.back().await?;
        browser.wait().for_element(Locator::Css("form[action='/deployments/runs']")).await?;
        assert_eq!(browser.current_url().await?, confirm_url);
        assert!(browser.find(Locator::Css("#reason-error")).await.is_err(), "a fresh form, not the rejected one");
        browser.goto(run_url.as_str()).await?;
        browser.wait().for_element(Locator::Css("#run-progress")).await?;
        browser
            .wait()
            .at_most(std::time::Duration::from_secs(30))
            .for_element(Locator::Css("li[data-step='close_window'][data-status='succeeded']"))
            .await?;
        screenshot(&browser, "deploy-run").await?;
        // The run page and the pages that start runs, on a phone.
        browser.set_window_size(390, 844).await?;
        screenshot(&browser, "phone-deploy-run").await?;
        let actions_first = browser
            .execute(
                "const a = document.querySelector('.run-actions'), s = document.querySelector('#steps-title');
                 return !!a && a.getBoundingClientRect().top < s.getBoundingClientRect().top",
                vec![],
            )
            .await?;
        assert_eq!(actions_first, json!(true), "run actions sit above the steps on a phone");
        for href in ["/", "/health", "/deployments", "/secrets", "/database", "/compliance/alerts", "/audit"] {
            browser.goto(&app.url(href)).await?;
            browser.wait().for_element(Locator::Css("main h1")).await?;
            screenshot(&browser, &format!("phone{}", href.replace('/', "-"))).await?;
            let overflow =
                browser.execute("return document.documentElement.scrollWidth - window.innerWidth", vec![]).await?;
            if overflow.as_i64().is_none_or(|px| px > 0) {
                let culprit = browser
                    .execute(
                        "const w = window.innerWidth;
                         const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
                           if (getComputedStyle(p).overflowX !== 'visible' && p.getBoundingClientRect().right <= w + 1) return true; } return false; };
                         return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1 && !clipped(e))
                           .slice(0, 4).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(' | ')",
                        vec![],
                    )
                    .await?;
                panic!("{href} is {overflow} px wider than the phone: {culprit}");
            }
        }
        // The dashboard's first screen on a phone shows health, not only the navigation.
        for (href, first) in [("/", "#health-title"), ("/health", "[data-card]")] {
            browser.goto(&app.url(href)).await?;
            browser.wait().for_element(Locator::Css(first)).await?;
            let top = browser
                .execute(
                    "const e = document.querySelector(arguments[0]);
                     return e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2 < window.innerHeight",
                    vec![json!(first)],
                )
                .await?;
            assert_eq!(top, json!(true), "{href}: {first} is on the phone's first screen");
        }
        browser.goto(&app.url("/deployments")).await?;
        browser.wait().for_element(Locator::Css("table.images")).await?;
        let out_of_reach = browser
            .execute(
                "return [...document.querySelectorAll('table.images a.button')]
                   .filter(a => a.getBoundingClientRect().right > window.innerWidth).length",
                vec![],
            )
            .await?;
        assert_eq!(out_of_reach, json!(0), "the image table's actions are reachable without scrolling sideways");
        browser.set_window_size(1280, 900).await?;
        for href in
            ["/secrets/rotate?secret=database_url", "/deployments/confirm?procedure=emergency_restart", "/deployments"]
        {
            browser.goto(&app.url(href)).await?;
            browser.wait().for_element(Locator::Css("main h1")).await?;
            screenshot(&browser, &href.replace(['/', '?', '=', '&'], "_")).await?;
        }
        problems
            .extend(severe_entries(&browser.issue_cmd(BrowserLog).await?).into_iter().map(|m| format!("runs: {m}")));
        browser.goto(&app.url("/audit")).await?;
        browser.find(Locator::Css("form[action='/audit/verify'] button")).await?.click().await?;
        let verdict = browser.wait().for_element(Locator::Css("#verify-result .verify-result")).await?.text().await?;
        assert!(verdict.contains("Chain intact"), "htmx verify: {verdict}");
        assert_eq!(browser.current_url().await?.path(), "/audit", "swapped in place, no page load");
        screenshot(&browser, "audit-verified").await?;
        problems
            .extend(severe_entries(&browser.issue_cmd(BrowserLog).await?).into_iter().map(|m| format!("/audit: {m}")));
        Ok::<_, fantoccini::error::CmdError>(problems)
    }
    .await;
    let _ = browser.close().await;
    let problems = result.expect("browser steps");
    assert!(problems.is_empty(), "browser console errors:\n{}", problems.join("\n"));
    assert!(app.metrics().await.contains("dropops_csp_violations_total 0"), "no CSP violation was reported");
}

//! `TestApp`: the console on a random port over a test database, and `Browser`: one cookie
//! jar with one method per thing a person does. HTML is checked with CSS selectors.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Once;

use dropops::config::Config;
use dropops::{AppState, app};
use reqwest::header::HeaderMap;
use scraper::{Html, Selector};
use sqlx::PgPool;

pub struct TestApp {
    pub address: SocketAddr,
    /// The state the console serves with: for driving the runs worker and the simulator.
    pub state: AppState,
    browser: Browser,
}

impl Deref for TestApp {
    type Target = Browser;

    fn deref(&self) -> &Browser {
        &self.browser
    }
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub html: Html,
    pub body: String,
}

impl Page {
    /// Trimmed text of every element matching `selector`.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let selector = Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector:?}: {e}"));
        self.html
            .select(&selector)
            .map(|e| e.text().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    pub fn text(&self, selector: &str) -> String {
        let all = self.texts(selector);
        assert!(!all.is_empty(), "nothing matches {selector:?} in:\n{}", self.body);
        all.join(" ")
    }

    pub fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let selector = Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector:?}: {e}"));
        self.html.select(&selector).filter_map(|e| e.value().attr(attr).map(str::to_owned)).collect()
    }

    pub fn has(&self, selector: &str) -> bool {
        let parsed = Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector:?}: {e}"));
        self.html.select(&parsed).next().is_some()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.header("location")
    }
}

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // Everything the console logs, kept so tests can search it (secret values must never
        // appear). JSON, as production writes it.
        // Statements and plans go to the query recorder only (crate::queries).
        use tracing_subscriber::prelude::*;
        let logs = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(|| CapturedLogs)
            .with_filter(tracing_subscriber::EnvFilter::new("info,dropops=debug,sqlx::postgres::notice=warn"));
        let queries = crate::queries::Recorder.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("sqlx::query", tracing::Level::DEBUG)
                .with_target("sqlx::postgres::notice", tracing::Level::INFO)
                .with_target("dropops", tracing::Level::INFO)
                .with_target("tower_http", tracing::Level::INFO),
        );
        let _ = tracing_subscriber::registry().with(logs).with(queries).try_init();
    });
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct CapturedLogs;

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line written by any console in this test binary so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

impl TestApp {
    /// The console in demo configuration over `pool`.
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, Config::demo()).await
    }

    pub async fn spawn_with(pool: PgPool, config: Config) -> Self {
        Self::spawn_state(|config| AppState::new(pool, config), config).await
    }

    /// The console with a state of the test's making (another cloud) from `config`.
    pub async fn spawn_state(state: impl FnOnce(Config) -> AppState, mut config: Config) -> Self {
        init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
        let address = listener.local_addr().expect("local address");
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://{address}"));
        }
        // Tests change the simulated world behind the console's back and look at once: nothing
        // is shared between looks, unless the test's `state` says otherwise.
        config.outside_readings = std::time::Duration::ZERO;
        let state = state(config);
        // As `serve` does: Drop's tables are measured against the contract before any request.
        // (A test of an unreachable database gets its answer on first use instead.)
        let _ = state.contract().await;
        let served = state.clone();
        tokio::spawn(async move {
            dropops::serve(listener, app(served), std::future::pending()).await.expect("serve");
        });
        Self { address, state, browser: Browser::at(&format!("http://{address}")) }
    }

    /// A second browser (its own cookies) on the same console.
    pub fn another_browser(&self) -> Browser {
        Browser::at(&format!("http://{}", self.address))
    }
}

/// One browser: its own cookie jar, no automatic redirects. A clone is another tab of the
/// same browser (the same cookies).
#[derive(Clone)]
pub struct Browser {
    base: String,
    client: reqwest::Client,
}

impl Browser {
    pub fn at(base: &str) -> Self {
        init();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("http client");
        Self { base: base.trim_end_matches('/').to_owned(), client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Open a page as a browser would (a GET; redirects are not followed).
    pub async fn visit(&self, path: &str) -> Page {
        self.request(self.client.get(self.url(path))).await
    }

    /// Fetch a path the way htmx does (`HX-Request: true`).
    pub async fn visit_htmx(&self, path: &str) -> Page {
        self.request(self.client.get(self.url(path)).header("HX-Request", "true")).await
    }

    pub async fn request(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body read");
        Page { status, headers, html: Html::parse_document(&body), body }
    }

    /// The CSRF token of this browser's session, as the page puts it in forms.
    pub async fn csrf(&self) -> String {
        let page = self.visit("/auth/sign-in").await;
        let headers = page.attrs("body", "hx-headers").into_iter().next().expect("hx-headers on the body");
        let headers: serde_json::Value = serde_json::from_str(&headers).expect("hx-headers is JSON");
        headers["X-CSRF-Token"].as_str().expect("a CSRF token for htmx").to_owned()
    }

    /// Submit a form as the page would: same origin, with this session's CSRF token.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("_csrf", &token));
        self.request(self.client.post(self.url(path)).header("origin", &self.base).form(&form)).await
    }

    /// Demo-mode dev sign-in as `name` with `roles`.
    pub async fn sign_in_as(&self, name: &str, roles: &[&str]) -> Page {
        let mut fields = vec![("name", name), ("next", "/")];
        fields.extend(roles.iter().map(|r| ("role", *r)));
        let page = self.submit("/auth/dev", &fields).await;
        assert_eq!(page.status, 303, "dev sign-in failed:\n{}", page.body);
        page
    }

    /// Sign in with roles, under a name made from them.
    pub async fn sign_in(&self, roles: &[&str]) {
        self.sign_in_as(&format!("Test {}", roles.join(" ")), roles).await;
    }

    /// The Prometheus exposition, as text.
    pub async fn metrics(&self) -> String {
        self.visit("/metrics").await.body
    }

    /// Close an AML alert with an outcome and review notes (the alert page's Decide form).
    pub async fn close_alert(&self, alert: &str, outcome: &str, notes: &str) -> Page {
        self.submit(&format!("/compliance/alerts/{alert}/close"), &[("outcome", outcome), ("notes", notes)]).await
    }

    /// Sign a customer out of Drop everywhere (the person page's emergency form).
    pub async fn revoke_sessions(&self, person: &str, reason: &str) -> Page {
        self.submit(&format!("/compliance/people/{person}/revoke-sessions"), &[("reason", reason)]).await
    }

    /// Confirm a run on its confirmation page: a deployment run, or a snapshot, restore drill
    /// or vacuum (the database page's), with the fields the page sends.
    pub async fn confirm_run(&self, fields: &[(&str, &str)]) -> Page {
        let path = match fields.iter().find(|(k, _)| *k == "procedure") {
            Some((_, "snapshot" | "restore_drill" | "vacuum")) => "/database/runs",
            _ => "/deployments/runs",
        };
        self.submit(path, fields).await
    }

    /// Confirm a secret's rotation (the secrets page's confirmation), with the fields sent.
    pub async fn confirm_rotation(&self, fields: &[(&str, &str)]) -> Page {
        self.submit("/secrets/rotations", fields).await
    }

    /// Press Cancel on a run's page.
    pub async fn cancel_run(&self, run: impl Display) -> Page {
        self.submit(&format!("/runs/{run}/cancel"), &[]).await
    }

    /// Press Resume on a stopped run's page.
    pub async fn resume_run(&self, run: impl Display) -> Page {
        self.submit(&format!("/runs/{run}/resume"), &[]).await
    }

    /// Draft an STR on the new-report form: the person, the alert it comes from, the reason in
    /// one line, the narrative and the transactions ticked.
    pub async fn draft_str(&self, person: &str, alert: &str, reason: &str, narrative: &str, txs: &[&str]) -> Page {
        let mut fields = vec![("person", person), ("alert", alert), ("reason", reason), ("narrative", narrative)];
        fields.extend(txs.iter().map(|tx| ("tx", *tx)));
        self.submit("/compliance/str", &fields).await
    }

    /// Send a draft STR to review.
    pub async fn submit_str(&self, id: impl Display) -> Page {
        self.submit(&format!("/compliance/str/{id}/submit"), &[]).await
    }

    /// Approve an STR in review (the MLRO's four eyes).
    pub async fn approve_str(&self, id: impl Display) -> Page {
        self.submit(&format!("/compliance/str/{id}/approve"), &[]).await
    }

    /// Return an STR in review to its drafter, with the reviewer's comment.
    pub async fn return_str(&self, id: impl Display, comment: &str) -> Page {
        self.submit(&format!("/compliance/str/{id}/return"), &[("comment", comment)]).await
    }

    /// Record an approved STR as filed with Økokrim: their reference and the filing date.
    pub async fn file_str(&self, id: impl Display, reference: &str, filed_on: &str) -> Page {
        self.submit(&format!("/compliance/str/{id}/file"), &[("reference", reference), ("filed_on", filed_on)]).await
    }

    /// Sign out of the console.
    pub async fn sign_out(&self) -> Page {
        self.submit("/auth/logout", &[]).await
    }

    /// Disable a staff member's console access (admin), with the reason.
    pub async fn disable_staff(&self, staff: impl Display, reason: &str) -> Page {
        self.submit(&format!("/admin/staff/{staff}/disable"), &[("reason", reason)]).await
    }

    /// Give a disabled staff member their access back (admin).
    pub async fn enable_staff(&self, staff: impl Display) -> Page {
        self.submit(&format!("/admin/staff/{staff}/enable"), &[]).await
    }

    /// End one console session of a staff member (admin).
    pub async fn end_session(&self, session: impl Display) -> Page {
        self.submit(&format!("/admin/sessions/{session}/end"), &[]).await
    }

    /// Reopen a closed AML alert, with the reason.
    pub async fn reopen_alert(&self, alert: impl Display, reason: &str) -> Page {
        self.submit(&format!("/compliance/alerts/{alert}/reopen"), &[("reason", reason)]).await
    }

    /// Take an AML alert; `takeover` also when someone else holds it.
    pub async fn assign_alert(&self, alert: impl Display, takeover: bool) -> Page {
        let fields: &[(&str, &str)] = if takeover { &[("takeover", "yes")] } else { &[] };
        self.submit(&format!("/compliance/alerts/{alert}/assign"), fields).await
    }

    /// Mark a GDPR access request answered (the export was sent).
    pub async fn fulfil_gdpr(&self, request: impl Display) -> Page {
        self.submit(&format!("/compliance/gdpr/{request}/fulfil"), &[]).await
    }

    /// Erase a person's personal data (GDPR), with the reason.
    pub async fn erase_person(&self, person: impl Display, reason: &str) -> Page {
        self.submit(&format!("/compliance/people/{person}/erase"), &[("reason", reason)]).await
    }

    /// Submit a routine checklist (`daily`, `weekly`, `monthly`) with the fields ticked.
    pub async fn submit_checklist(&self, schedule: &str, fields: &[(&str, &str)]) -> Page {
        self.submit(&format!("/health/checks/{schedule}"), fields).await
    }

    /// Press "Take the next alert" on the compliance queue.
    pub async fn take_next_alert(&self) -> Page {
        self.submit("/compliance/alerts/next", &[]).await
    }

    /// Switch one of the simulator's faults on or off (admin, demo mode).
    pub async fn set_fault(&self, fault: &str, active: bool) -> Page {
        self.submit(&format!("/admin/simulator/{fault}"), &[("active", if active { "true" } else { "false" })]).await
    }

    /// Press "Verify the chain" on the audit page.
    pub async fn verify_audit(&self) -> Page {
        self.submit("/audit/verify", &[]).await
    }

    /// A JSON endpoint as a script would read it: the status and the parsed body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }
}

/// The demo configuration with settings changed through the same environment overrides an
/// operator would use.
pub fn config_with(vars: &[(&str, &str)]) -> Config {
    Config::load(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid test configuration")
}

/// The console id of the staff member shown as `name`.
pub async fn staff_id(pool: &PgPool, name: &str) -> String {
    sqlx::query_scalar("select id::text from console.staff where display_name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("a staff member of that name")
}

/// Every audit row of an action, in chain order, as (kind, outcome): a mutating action shows
/// as `[intent, outcome succeeded]`, the intent first.
pub async fn audit_trail(pool: &PgPool, action: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("select kind, outcome from console.audit_entries where action = $1 order by seq")
        .bind(action)
        .fetch_all(pool)
        .await
        .expect("audit rows")
}

/// The oldest open AML alert that names a transaction: (alert, person, transaction).
pub async fn open_alert_with_transaction(pool: &PgPool) -> (String, String, String) {
    sqlx::query_as(
        "select id, user_id, transaction_id from aml_alerts
          where status = 'open' and transaction_id is not null order by created_at limit 1",
    )
    .fetch_one(pool)
    .await
    .expect("the demo has an open alert with a transaction")
}

/// One intent, then its successful outcome.
pub fn intent_then_success() -> Vec<(String, Option<String>)> {
    vec![("intent".into(), None), ("outcome".into(), Some("succeeded".into()))]
}

//! `TestApp`: the console on a random port over a test database, with one method per thing a
//! user does, and HTML helpers that select with CSS, not substrings.

use std::net::SocketAddr;
use std::sync::Once;

use dropops::config::Config;
use dropops::{AppState, app};
use reqwest::header::HeaderMap;
use scraper::{Html, Selector};
use sqlx::PgPool;

pub struct TestApp {
    pub address: SocketAddr,
    client: reqwest::Client,
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
        !self.texts(selector).is_empty() || !self.attrs(selector, "class").is_empty()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

impl TestApp {
    /// The console in demo configuration over `pool`.
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, Config::demo()).await
    }

    pub async fn spawn_with(pool: PgPool, config: Config) -> Self {
        init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
        let address = listener.local_addr().expect("local address");
        let state = AppState::new(pool, config);
        tokio::spawn(async move {
            axum::serve(listener, app(state)).await.expect("serve");
        });
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
        Self { address, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Open a page as a browser would.
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

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The Prometheus exposition, as text.
    pub async fn metrics(&self) -> String {
        self.visit("/metrics").await.body
    }
}

/// The demo configuration with settings changed through the same environment overrides an
/// operator would use.
pub fn config_with(vars: &[(&str, &str)]) -> Config {
    Config::load(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid test configuration")
}

//! BetterStack Uptime through its REST API v2 (`https://uptime.betterstack.com/api/v2`), with
//! the account's bearer token: `GET /monitors` (JSON:API documents, paginated by
//! `pagination.next`) and `PATCH /monitors/{id}` with `{"paused": true|false}`, which is how
//! BetterStack documents pausing a monitor for maintenance. A 429 is throttling (the next
//! refresh or the step's retry tries again); a 401/403 is a token BetterStack refuses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{CloudError, CloudResult, Monitor, MonitorStatus, Monitoring};
use crate::config::{BetterStackConfig, Secret};

/// Pages of monitors read at most (50 per page: Drop has three).
const MAX_PAGES: usize = 10;

pub struct BetterStack {
    http: reqwest::Client,
    /// The API's origin, without a trailing slash.
    origin: String,
    token: Secret,
    /// Drop's monitors; empty: all.
    only: Vec<String>,
}

/// BetterStack as configured; `None` without a token.
pub fn from_config(config: &BetterStackConfig) -> Option<Arc<dyn Monitoring>> {
    let token = config.token.clone()?;
    Some(Arc::new(BetterStack::new(&config.api_url, token, config.monitors.clone())))
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Resource>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    attributes: Attributes,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    pronounceable_name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    last_checked_at: Option<DateTime<Utc>>,
    #[serde(default)]
    paused: Option<bool>,
}

impl BetterStack {
    pub fn new(api_url: &str, token: Secret, only: Vec<String>) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { http, origin: api_url.trim_end_matches('/').to_owned(), token, only }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> CloudResult<reqwest::Response> {
        let answer = request
            .bearer_auth(self.token.expose())
            .header("accept", "application/json")
            .header("user-agent", "dropops")
            .send()
            .await
            .map_err(|e| {
                CloudError::Unreachable(if e.is_timeout() {
                    "BetterStack did not answer".into()
                } else {
                    "BetterStack could not be reached".into()
                })
            })?;
        match answer.status().as_u16() {
            200..=299 => Ok(answer),
            429 => Err(CloudError::Throttled),
            code @ (401 | 403) => Err(CloudError::Unavailable(format!(
                "BetterStack refused the token (HTTP {code}): check betterstack.token"
            ))),
            404 => Err(CloudError::Unavailable("BetterStack does not know that monitor (HTTP 404)".into())),
            code => Err(CloudError::Unavailable(format!("BetterStack answered HTTP {code}"))),
        }
    }
}

fn monitor(r: Resource) -> Monitor {
    let a = r.attributes;
    let status = a.status.as_deref().and_then(MonitorStatus::parse);
    Monitor {
        name: a.pronounceable_name.unwrap_or_else(|| a.url.clone().unwrap_or_else(|| r.id.clone())),
        url: a.url.unwrap_or_default(),
        paused: a.paused.unwrap_or(status == Some(MonitorStatus::Paused)),
        status,
        last_checked_at: a.last_checked_at,
        id: r.id,
    }
}

#[async_trait]
impl Monitoring for BetterStack {
    async fn monitors(&self) -> CloudResult<Vec<Monitor>> {
        let mut url = format!("{}/api/v2/monitors", self.origin);
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Page = self.send(self.http.get(&url)).await?.json().await.map_err(|_| {
                CloudError::Unavailable("BetterStack answered with something other than monitors".into())
            })?;
            all.extend(page.data.into_iter().map(monitor));
            // The next page is followed only on the same origin: the token goes nowhere else.
            match page.pagination.and_then(|p| p.next) {
                Some(next) if next.starts_with(&format!("{}/", self.origin)) => url = next,
                _ => break,
            }
        }
        if !self.only.is_empty() {
            all.retain(|m| self.only.contains(&m.id));
        }
        Ok(all)
    }

    async fn set_paused(&self, id: &str, paused: bool) -> CloudResult<()> {
        let url = format!(
            "{}/api/v2/monitors/{}",
            self.origin,
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        self.send(self.http.patch(url).json(&json!({ "paused": paused }))).await.map(|_| ())
    }
}

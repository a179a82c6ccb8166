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

use super::{CloudError, CloudResult, Monitor, MonitorStatus, Monitoring, RaisedAlert, ResourceStatus, StatusReport};
use crate::config::{BetterStackConfig, Secret};
use crate::notify::PublicText;

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
        self.send_allowing(request, &[]).await
    }

    /// As [`Self::send`], with more statuses that are not errors (409 for "already resolved").
    async fn send_allowing(&self, request: reqwest::RequestBuilder, also: &[u16]) -> CloudResult<reqwest::Response> {
        let answer =
            super::http::send_bearer(request, &self.token, "BetterStack").await.map_err(CloudError::Unreachable)?;
        match answer.status().as_u16() {
            200..=299 => Ok(answer),
            code if also.contains(&code) => Ok(answer),
            429 => Err(CloudError::Throttled),
            code @ (401 | 403) => Err(CloudError::Unavailable(format!(
                "BetterStack refused the token (HTTP {code}): check betterstack.token"
            ))),
            404 => Err(CloudError::Unavailable("BetterStack does not know that monitor or alert (HTTP 404)".into())),
            code => Err(CloudError::Unavailable(format!("BetterStack answered HTTP {code}"))),
        }
    }
}

/// One incident (an alert) as the API gives it.
#[derive(Deserialize)]
struct IncidentDoc {
    data: IncidentResource,
}

#[derive(Deserialize)]
struct IncidentList {
    data: Vec<IncidentResource>,
}

#[derive(Deserialize)]
struct IncidentResource {
    id: String,
    attributes: IncidentAttributes,
}

#[derive(Deserialize)]
struct IncidentAttributes {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    acknowledged_by: Option<String>,
    #[serde(default)]
    resolved_at: Option<DateTime<Utc>>,
}

fn raised(r: IncidentResource) -> RaisedAlert {
    let a = r.attributes;
    RaisedAlert {
        id: r.id,
        started_at: a.started_at,
        acknowledged_at: a.acknowledged_at,
        acknowledged_by: a.acknowledged_by,
        resolved_at: a.resolved_at,
    }
}

fn not_incidents() -> CloudError {
    CloudError::Unavailable("BetterStack answered with something other than an incident".into())
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

    async fn availability(&self, monitor: &str, from: chrono::NaiveDate, to: chrono::NaiveDate) -> CloudResult<f64> {
        let url = format!("{}/api/v2/monitors/{}/sla", self.origin, encode(monitor));
        let query = [("from", from.to_string()), ("to", to.to_string())];
        let doc: serde_json::Value = self
            .send(self.http.get(url).query(&query))
            .await?
            .json()
            .await
            .map_err(|_| CloudError::Unavailable("BetterStack answered with something other than an SLA".into()))?;
        doc["data"]["attributes"]["availability"]
            .as_f64()
            .ok_or_else(|| CloudError::Unavailable("BetterStack's SLA has no availability".into()))
    }

    async fn set_paused(&self, id: &str, paused: bool) -> CloudResult<()> {
        let url = format!("{}/api/v2/monitors/{}", self.origin, encode(id));
        self.send(self.http.patch(url).json(&json!({ "paused": paused }))).await.map(|_| ())
    }

    async fn raise_alert(&self, name: &str, summary: &str, requester_email: &str) -> CloudResult<String> {
        let body = json!({
            "requester_email": requester_email,
            "name": name,
            "summary": summary,
            "description": summary,
            "call": false,
            "sms": true,
            "email": true,
            "push": true,
        });
        let url = format!("{}/api/v2/incidents", self.origin);
        let doc: IncidentDoc =
            self.send(self.http.post(url).json(&body)).await?.json().await.map_err(|_| not_incidents())?;
        Ok(doc.data.id)
    }

    async fn find_alert(&self, name: &str) -> CloudResult<Option<String>> {
        let from = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
        let url = format!("{}/api/v2/incidents", self.origin);
        let list: IncidentList = self
            .send(self.http.get(url).query(&[("from", from.as_str()), ("per_page", "50")]))
            .await?
            .json()
            .await
            .map_err(|_| not_incidents())?;
        Ok(list.data.into_iter().find(|i| i.attributes.name.as_deref() == Some(name)).map(|i| i.id))
    }

    async fn alert(&self, id: &str) -> CloudResult<RaisedAlert> {
        let url = format!("{}/api/v2/incidents/{}", self.origin, encode(id));
        let doc: IncidentDoc = self.send(self.http.get(url)).await?.json().await.map_err(|_| not_incidents())?;
        Ok(raised(doc.data))
    }

    async fn resolve_alert(&self, id: &str, by: &str) -> CloudResult<()> {
        let url = format!("{}/api/v2/incidents/{}/resolve", self.origin, encode(id));
        // 409: resolved already (by a person, or by an earlier attempt of this step).
        self.send_allowing(self.http.post(url).json(&json!({ "resolved_by": by })), &[409]).await.map(|_| ())
    }

    async fn publish_report(&self, page: &str, resources: &[String], report: &StatusReport) -> CloudResult<String> {
        let mut body = json!({
            "title": report.title.as_str(),
            "message": report.message.as_str(),
            "report_type": if report.maintenance.is_some() { "maintenance" } else { "manual" },
            "notify_subscribers": true,
            "affected_resources": affected(resources, report.status),
        });
        if let Some((starts, ends)) = report.maintenance {
            body["starts_at"] = json!(starts.to_rfc3339());
            body["ends_at"] = json!(ends.to_rfc3339());
        }
        let url = format!("{}/api/v2/status-pages/{}/status-reports", self.origin, encode(page));
        let doc: ReportDoc = self.send(self.http.post(url).json(&body)).await?.json().await.map_err(|_| {
            CloudError::Unavailable("BetterStack answered with something other than a status report".into())
        })?;
        Ok(doc.data.id)
    }

    async fn update_report(
        &self,
        page: &str,
        report: &str,
        resources: &[String],
        message: &PublicText,
        status: ResourceStatus,
    ) -> CloudResult<()> {
        let url = format!(
            "{}/api/v2/status-pages/{}/status-reports/{}/status-updates",
            self.origin,
            encode(page),
            encode(report)
        );
        let body = json!({
            "message": message.as_str(),
            "notify_subscribers": true,
            "affected_resources": affected(resources, status),
        });
        self.send(self.http.post(url).json(&body)).await.map(|_| ())
    }
}

#[derive(Deserialize)]
struct ReportDoc {
    data: ReportResource,
}

#[derive(Deserialize)]
struct ReportResource {
    id: String,
}

/// `affected_resources` as the status page API takes it.
fn affected(resources: &[String], status: ResourceStatus) -> serde_json::Value {
    json!(resources.iter().map(|id| json!({ "status_page_resource_id": id, "status": status })).collect::<Vec<_>>())
}

fn encode(id: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
}

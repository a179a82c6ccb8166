//! The two outside services a run talks to besides AWS: CI, asked whether a commit passed
//! (runbook §3: deploy only what CI passed), and the monitoring relay, told when a maintenance
//! window opens and closes. Both are ports, so a run never builds an HTTP client of its own
//! and a test or the simulator can answer in their place.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{CloudError, CloudResult};
use crate::config::{RunsConfig, Secret};

#[async_trait]
pub trait Ci: Send + Sync {
    /// The commit status of `sha` ("success", "pending", "failure"…); `None` when CI answered
    /// without one.
    async fn commit_state(&self, sha: &str) -> CloudResult<Option<String>>;
}

#[async_trait]
pub trait MaintenanceRelay: Send + Sync {
    /// Deliver one event; `key` is the `Idempotency-Key`, so a repeat can be dropped.
    async fn tell(&self, key: &str, event: &Value) -> CloudResult<()>;
}

/// A commit status API over HTTPS (`runs.ci_status_url`, `{sha}` replaced; GitHub's combined
/// status answers `{"state": …}`), with an optional bearer token.
pub struct HttpCi {
    http: reqwest::Client,
    url: String,
    token: Option<Secret>,
}

#[async_trait]
impl Ci for HttpCi {
    async fn commit_state(&self, sha: &str) -> CloudResult<Option<String>> {
        let mut request = self
            .http
            .get(self.url.replace("{sha}", sha))
            .header("accept", "application/json")
            .header("user-agent", "dropops");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let answer = request.send().await.map_err(|_| CloudError::Unreachable("no answer".into()))?;
        if !answer.status().is_success() {
            return Err(CloudError::Unavailable(format!("HTTP {}", answer.status().as_u16())));
        }
        let body: Value = answer.json().await.map_err(|_| CloudError::Unavailable("no JSON".into()))?;
        Ok(body["state"].as_str().map(str::to_owned))
    }
}

/// A webhook that relays maintenance windows to monitoring (`runs.maintenance_webhook`).
pub struct HttpRelay {
    http: reqwest::Client,
    url: String,
}

#[async_trait]
impl MaintenanceRelay for HttpRelay {
    async fn tell(&self, key: &str, event: &Value) -> CloudResult<()> {
        let answer = self
            .http
            .post(&self.url)
            .header("Idempotency-Key", key)
            .json(event)
            .send()
            .await
            .map_err(|_| CloudError::Unreachable("no answer".into()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(CloudError::Unavailable(format!("HTTP {}", answer.status().as_u16())))
        }
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap_or_default()
}

/// CI as configured; `None` without `runs.ci_status_url` (the check is then skipped).
pub fn ci_from(runs: &RunsConfig) -> Option<Arc<dyn Ci>> {
    let url = runs.ci_status_url.clone()?;
    Some(Arc::new(HttpCi { http: client(Duration::from_secs(10)), url, token: runs.ci_token.clone() }))
}

/// The relay as configured; `None` without `runs.maintenance_webhook` (the run says so).
pub fn relay_from(runs: &RunsConfig) -> Option<Arc<dyn MaintenanceRelay>> {
    let url = runs.maintenance_webhook.clone()?;
    Some(Arc::new(HttpRelay { http: client(Duration::from_secs(5)), url }))
}

//! Drop's own data-export API (the runbook's GDPR export): `GET {data_export_url}?user_id=usr_…`
//! with a service token as a bearer token. Drop answers `200` with a JSON object — one key per
//! kind of record (an object, or a list of objects) — `404` for a person it does not know,
//! `401`/`403` for a token it refuses, and `429` with `Retry-After` (seconds) when it
//! rate-limits.
//!
//! The console answers a request with Drop's export when this is configured, and with its own
//! reading of Drop's tables otherwise; either way it says which.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::config::{ComplianceConfig, Secret};

/// Why Drop's export could not be had, in words for compliance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("Drop's data-export API does not know this person")]
    Unknown,
    #[error("Drop's data-export API is rate-limiting (retry after {} s)", .0.as_secs())]
    RateLimited(Duration),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Refused(String),
}

#[async_trait]
pub trait DataExports: Send + Sync {
    /// Everything Drop holds about `user_id`, as Drop exports it.
    async fn export(&self, user_id: &str) -> Result<Map<String, Value>, ExportError>;
}

pub struct DropExportApi {
    http: reqwest::Client,
    url: String,
    token: Secret,
}

/// Drop's export API as configured; `None` without a URL and token.
pub fn from_config(config: &ComplianceConfig) -> Option<Arc<dyn DataExports>> {
    let (url, token) = (config.data_export_url.clone()?, config.data_export_token.clone()?);
    Some(Arc::new(DropExportApi::new(&url, token)))
}

impl DropExportApi {
    pub fn new(url: &str, token: Secret) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { http, url: url.to_owned(), token }
    }
}

#[async_trait]
impl DataExports for DropExportApi {
    async fn export(&self, user_id: &str) -> Result<Map<String, Value>, ExportError> {
        let request = self.http.get(&self.url).query(&[("user_id", user_id)]);
        let answer = super::http::send_bearer(request, &self.token, "Drop's data-export API")
            .await
            .map_err(ExportError::Unavailable)?;
        match answer.status().as_u16() {
            200..=299 => {}
            404 => return Err(ExportError::Unknown),
            429 => return Err(ExportError::RateLimited(super::http::retry_after(&answer, 60))),
            code @ (401 | 403) => {
                return Err(ExportError::Refused(format!(
                    "Drop's data-export API refused the console's token (HTTP {code}; check compliance.data_export_token)"
                )));
            }
            code => return Err(ExportError::Unavailable(format!("Drop's data-export API answered HTTP {code}"))),
        }
        match answer.json::<Value>().await {
            Ok(Value::Object(records)) => Ok(records),
            _ => Err(ExportError::Unavailable(
                "Drop's data-export API answered with something other than a JSON object".into(),
            )),
        }
    }
}

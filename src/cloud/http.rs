//! Drop's public endpoints over HTTPS: the app's health JSON (production and staging).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{AppHealth, CloudError, CloudResult, Environment, Probes};

pub struct HttpProbes {
    http: reqwest::Client,
    production: Option<String>,
    staging: Option<String>,
}

impl HttpProbes {
    pub fn new(production: Option<String>, staging: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(2))
            .build()
            .unwrap_or_default();
        Self { http, production, staging }
    }
}

/// Read Drop's health JSON: `status`, `data.version`, `data.uptime` (seconds) and
/// `data.checks.db.latencyMs`.
pub fn parse_health(http_status: u16, body: &Value) -> CloudResult<AppHealth> {
    let data = &body["data"];
    if http_status == 503 {
        let why = data["checks"]["db"]["error"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("the app reports itself unavailable");
        return Err(CloudError::Unavailable(format!("the health endpoint answered 503: {why}")));
    }
    let status = body["status"].as_str().or(data["status"].as_str()).unwrap_or_default();
    let latency = data["checks"]["db"]["latencyMs"].as_f64().ok_or_else(|| {
        CloudError::Unavailable(format!("the health endpoint answered {http_status} without data.checks.db.latencyMs"))
    })?;
    Ok(AppHealth {
        ok: (200..300).contains(&http_status) && matches!(status, "ok" | "healthy" | "pass"),
        version: data["version"].as_str().unwrap_or("unknown").to_owned(),
        uptime: Duration::from_secs_f64(data["uptime"].as_f64().unwrap_or_default().max(0.0)),
        db_latency_ms: latency,
    })
}

#[async_trait]
impl Probes for HttpProbes {
    async fn app_health(&self, environment: Environment) -> CloudResult<AppHealth> {
        let url = match environment {
            Environment::Production => self.production.as_ref(),
            Environment::Staging => self.staging.as_ref(),
        }
        .ok_or(CloudError::NotConnected("The health URL"))?;
        let response = self.http.get(url).send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "it did not answer within 5 s"
            } else if e.is_connect() {
                "the connection failed"
            } else {
                "the request failed"
            };
            CloudError::Unavailable(format!("the health endpoint could not be reached: {why}"))
        })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.map_err(|_| {
            CloudError::Unavailable(format!("the health endpoint answered {status} without valid JSON"))
        })?;
        parse_health(status, &body)
    }

    async fn certificate_expiry(&self) -> CloudResult<DateTime<Utc>> {
        Err(CloudError::NotConnected("The certificate probe"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn drops_health_json_is_read_and_judged() {
        let body = json!({ "status": "ok", "data": { "version": "7f3c2a1", "uptime": 3600.5, "checks": { "db": { "latencyMs": 12.5 } } } });
        let h = parse_health(200, &body).unwrap();
        assert!(h.ok && h.version == "7f3c2a1" && h.db_latency_ms == 12.5 && h.uptime.as_secs() == 3600);
        assert!(
            !parse_health(200, &json!({ "status": "degraded", "data": { "checks": { "db": { "latencyMs": 1 } } } }))
                .unwrap()
                .ok
        );
        let down = parse_health(503, &json!({ "data": { "checks": { "db": { "error": "connect ETIMEDOUT" } } } }))
            .unwrap_err();
        assert_eq!(down.to_string(), "the health endpoint answered 503: connect ETIMEDOUT");
        assert!(
            parse_health(200, &json!({ "hello": 1 }))
                .unwrap_err()
                .to_string()
                .contains("without data.checks.db.latencyMs")
        );
    }
}

//! Drop's public endpoints over HTTPS: the app's health JSON (production and staging) and the
//! public domain's TLS certificate.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{AppHealth, CloudError, CloudResult, Environment, Probes, VendorStatus};

pub struct HttpProbes {
    http: reqwest::Client,
    production: Option<String>,
    staging: Option<String>,
    certificate: Option<CertificateProbe>,
}

/// A HEAD request to the public domain, verified as browsers verify it, keeping the
/// certificate the server presented.
struct CertificateProbe {
    url: String,
    client: reqwest::Client,
}

impl HttpProbes {
    pub fn new(production: Option<String>, staging: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(2))
            .build()
            .unwrap_or_default();
        Self { http, production, staging, certificate: None }
    }

    /// Read the certificate of `https://<domain>/` (the public domain, e.g. getdrop.no).
    pub fn with_certificate(self, domain: &str) -> Self {
        self.with_certificate_at(format!("https://{domain}/"), None)
    }

    /// Read the certificate served at `url`, trusting `extra_root` (PEM) besides the public
    /// roots: for a test server with its own certificate.
    pub fn with_certificate_at(mut self, url: String, extra_root: Option<&[u8]>) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .tls_info(true);
        if let Some(pem) = extra_root.and_then(|pem| reqwest::Certificate::from_pem(pem).ok()) {
            builder = builder.add_root_certificate(pem);
        }
        self.certificate = Some(CertificateProbe { url, client: builder.build().unwrap_or_default() });
        self
    }
}

/// The innermost cause of an error: what went wrong in a TLS handshake, in its own words.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `notAfter` of a DER X.509 certificate: Certificate → tbsCertificate → validity.
pub fn certificate_not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    /// One DER element: its tag, its content, and what follows it.
    fn element(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = buf.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (_, certificate, _) = element(der)?;
    let (_, tbs, _) = element(certificate)?;
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        // [0] version, then the serial number.
        (_, _, rest) = element(rest)?;
    }
    let (_, _, rest) = element(rest)?; // signature algorithm
    let (_, _, rest) = element(rest)?; // issuer
    let (_, validity, _) = element(rest)?;
    let (_, _, after) = element(validity)?; // notBefore
    let (tag, time, _) = element(after)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime: two-digit year, 1950–2049.
        0x17 => format!("{}{text}", if text.get(..2)? < "50" { "20" } else { "19" }),
        0x18 => text.to_owned(),
        _ => return None,
    };
    chrono::NaiveDateTime::parse_from_str(full.trim_end_matches('Z'), "%Y%m%d%H%M%S").ok().map(|t| t.and_utc())
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
        return Err(CloudError::Down(format!("the health endpoint answered 503: {why}")));
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
        let probe = self.certificate.as_ref().ok_or(CloudError::NotConnected("The certificate probe"))?;
        let response = probe.client.head(&probe.url).send().await.map_err(|e| {
            if e.is_timeout() {
                CloudError::Unreachable(format!("{} did not answer within 5 s", probe.url))
            } else {
                CloudError::Unavailable(format!("the TLS connection to {} failed: {}", probe.url, root_cause(&e)))
            }
        })?;
        let der = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .ok_or_else(|| CloudError::Unavailable(format!("{} presented no certificate", probe.url)))?;
        certificate_not_after(der)
            .ok_or_else(|| CloudError::Unavailable("the certificate's expiry date could not be read".into()))
    }

    async fn vendor_status(&self, url: &str) -> CloudResult<VendorStatus> {
        let response = self.http.get(url).header("accept", "application/json").send().await.map_err(|e| {
            if e.is_timeout() {
                CloudError::Unreachable("the vendor's status page did not answer within 5 s".into())
            } else {
                CloudError::Unreachable("the vendor's status page could not be reached".into())
            }
        })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(CloudError::Unavailable(format!("the vendor's status page answered HTTP {status}")));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| CloudError::Unavailable("the vendor's status page answered without valid JSON".into()))?;
        parse_vendor_status(&body)
    }
}

/// A Statuspage `status.json`: its indicator and description.
pub fn parse_vendor_status(body: &Value) -> CloudResult<VendorStatus> {
    let indicator = body["status"]["indicator"]
        .as_str()
        .filter(|i| ["none", "minor", "major", "critical", "maintenance"].contains(i));
    match indicator {
        Some(indicator) => Ok(VendorStatus {
            indicator: indicator.to_owned(),
            description: body["status"]["description"].as_str().unwrap_or(indicator).chars().take(200).collect(),
        }),
        None => {
            Err(CloudError::Unavailable("the vendor's status page is not a Statuspage feed (status.indicator)".into()))
        }
    }
}

/// How long a rate-limited service asks to be left alone: its `Retry-After` header in seconds
/// (`default` when absent or unreadable), at most an hour.
pub fn retry_after(answer: &reqwest::Response, default: u64) -> Duration {
    let secs = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default);
    Duration::from_secs(secs.min(3600))
}

/// Send a request to an outside API as the console always does: the token as a bearer token,
/// JSON accepted, named `dropops`. A request that got no answer comes back as the words for
/// it, naming `service`: "… did not answer" (time ran out) or "… could not be reached".
pub async fn send_bearer(
    request: reqwest::RequestBuilder,
    token: &crate::config::Secret,
    service: &str,
) -> Result<reqwest::Response, String> {
    request
        .bearer_auth(token.expose())
        .header("accept", "application/json")
        .header("user-agent", "dropops")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() { format!("{service} did not answer") } else { format!("{service} could not be reached") }
        })
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

//! Sumsub (KYC) through its REST API. Every request carries `X-App-Token`, `X-App-Access-Ts`
//! (seconds since the epoch) and `X-App-Access-Sig`: the lowercase hex HMAC-SHA256, keyed by
//! the app token's secret, of the timestamp, the upper-case method, the path with its query
//! and the body. Drop's user id is the applicant's `externalUserId`.
//!
//! - `GET /resources/applicants/-;externalUserId={id}/one`: the applicant and its `review`
//!   (`reviewStatus`: init, pending, queued, onHold, awaitingService, awaitingUser,
//!   prechecked, completed; `createDate`, `reviewDate`). 404: Sumsub has no such applicant.
//! - `POST /resources/applicants/{applicantId}/status/pending?reason=…`: request a check (the
//!   runbook's "force-process"). Sumsub answers `{"ok": 1}`, or 409 with a `description` when
//!   the applicant is already pending, queued or prechecked.
//!
//! Errors and rate limits (429 with `Retry-After`) are values, said in words.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::{Secret, SumsubConfig};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KycError {
    #[error("Sumsub is rate-limiting (retry after {} s)", .0.as_secs())]
    RateLimited(Duration),
    /// Sumsub refused this request for a reason of its own (its description).
    #[error("Sumsub refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

/// An applicant as Sumsub reviews them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applicant {
    pub id: String,
    pub review_status: String,
    /// When the review last moved: its review date, else when it was created.
    pub changed_at: Option<DateTime<Utc>>,
    pub level: Option<String>,
}

impl Applicant {
    /// Why the applicant waits, in words for compliance.
    pub fn waits_because(&self) -> &'static str {
        match self.review_status.as_str() {
            "init" => "Documents requested: the customer has not finished uploading",
            "pending" => "In Sumsub's review queue",
            "queued" => "Queued at Sumsub behind other checks",
            "onHold" => "On hold: Sumsub needs action (a compliance decision or more documents)",
            "awaitingService" => "Waiting for an outside check Sumsub runs (a database or registry)",
            "awaitingUser" => "Waiting for the customer to answer Sumsub",
            "prechecked" => "Pre-checked, waiting for Sumsub's final review",
            "completed" => "Review completed at Sumsub: Drop has not taken the result yet",
            _ => "Sumsub reports a status the console does not know",
        }
    }

    /// Whether a check may be requested now (Sumsub refuses while one is pending).
    pub fn may_recheck(&self) -> bool {
        !matches!(self.review_status.as_str(), "pending" | "queued" | "prechecked")
    }
}

#[async_trait]
pub trait Kyc: Send + Sync {
    /// The applicant for Drop's user `user_id`; `None` when Sumsub has none.
    async fn applicant(&self, user_id: &str) -> Result<Option<Applicant>, KycError>;
    /// Ask Sumsub to check the applicant again.
    async fn request_check(&self, applicant_id: &str, reason: &str) -> Result<(), KycError>;
}

pub struct Sumsub {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
    secret: Secret,
}

/// Sumsub as configured; `None` without both the app token and its secret.
pub fn from_config(config: &SumsubConfig) -> Option<Arc<dyn Kyc>> {
    let (token, secret) = (config.app_token.clone()?, config.secret_key.clone()?);
    Some(Arc::new(Sumsub::new(&config.api_url, token, secret)))
}

/// The signature Sumsub checks: hex HMAC-SHA256 of `ts + METHOD + path?query + body`.
pub fn signature(secret: &str, ts: i64, method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(ts.to_string().as_bytes());
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(path_and_query.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
struct ApplicantBody {
    id: String,
    #[serde(default, rename = "levelName")]
    level_name: Option<String>,
    #[serde(default)]
    review: Option<Review>,
}

#[derive(Deserialize)]
struct Review {
    #[serde(default, rename = "reviewStatus")]
    review_status: Option<String>,
    #[serde(default, rename = "createDate")]
    create_date: Option<String>,
    #[serde(default, rename = "reviewDate")]
    review_date: Option<String>,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    description: Option<String>,
}

/// Sumsub's dates: `2026-12-06 10:15:42+0000` (its review dates), `2026-12-06 10:15:42` with
/// or without fractions (UTC), or RFC 3339.
fn sumsub_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc()))
}

/// Path segments are ids Sumsub made or Drop's `usr_…` ids; anything else is refused rather
/// than sent.
fn safe_segment(id: &str) -> Result<&str, KycError> {
    if !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        Ok(id)
    } else {
        Err(KycError::Refused("that is not an id Sumsub can know".into()))
    }
}

impl Sumsub {
    pub fn new(api_url: &str, token: Secret, secret: Secret) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { http, api_url: api_url.trim_end_matches('/').to_owned(), token, secret }
    }

    async fn send(&self, method: reqwest::Method, path_and_query: &str) -> Result<reqwest::Response, KycError> {
        let ts = Utc::now().timestamp();
        let sig = signature(self.secret.expose(), ts, method.as_str(), path_and_query, b"");
        let answer = self
            .http
            .request(method, format!("{}{path_and_query}", self.api_url))
            .header("X-App-Token", self.token.expose())
            .header("X-App-Access-Ts", ts.to_string())
            .header("X-App-Access-Sig", sig)
            .header("accept", "application/json")
            .header("user-agent", "dropops")
            .send()
            .await
            .map_err(|e| {
                KycError::Unavailable(if e.is_timeout() {
                    "Sumsub did not answer within 10 s".into()
                } else {
                    "Sumsub could not be reached".into()
                })
            })?;
        match answer.status().as_u16() {
            200..=299 | 404 | 409 => Ok(answer),
            429 => Err(KycError::RateLimited(super::http::retry_after(&answer, 30))),
            code @ (401 | 403) => Err(KycError::Unavailable(format!(
                "Sumsub refused the console's app token (HTTP {code}): check sumsub.app_token and sumsub.secret_key"
            ))),
            code => Err(KycError::Unavailable(format!("Sumsub answered HTTP {code}"))),
        }
    }
}

#[async_trait]
impl Kyc for Sumsub {
    async fn applicant(&self, user_id: &str) -> Result<Option<Applicant>, KycError> {
        let path = format!("/resources/applicants/-;externalUserId={}/one", safe_segment(user_id)?);
        let answer = self.send(reqwest::Method::GET, &path).await?;
        if answer.status().as_u16() == 404 {
            return Ok(None);
        }
        let body: ApplicantBody = answer
            .json()
            .await
            .map_err(|_| KycError::Unavailable("Sumsub answered with something unexpected".into()))?;
        let review = body.review.unwrap_or(Review { review_status: None, create_date: None, review_date: None });
        let changed_at = review
            .review_date
            .as_deref()
            .and_then(sumsub_time)
            .or_else(|| review.create_date.as_deref().and_then(sumsub_time));
        Ok(Some(Applicant {
            id: body.id,
            review_status: review.review_status.unwrap_or_else(|| "init".into()),
            changed_at,
            level: body.level_name,
        }))
    }

    async fn request_check(&self, applicant_id: &str, reason: &str) -> Result<(), KycError> {
        let reason: String = url::form_urlencoded::byte_serialize(reason.as_bytes()).collect();
        let path = format!("/resources/applicants/{}/status/pending?reason={reason}", safe_segment(applicant_id)?);
        let answer = self.send(reqwest::Method::POST, &path).await?;
        match answer.status().as_u16() {
            404 => Err(KycError::Refused("Sumsub has no such applicant".into())),
            409 => {
                let problem: Problem = answer.json().await.unwrap_or(Problem { description: None });
                Err(KycError::Refused(
                    problem.description.unwrap_or_else(|| "the applicant cannot be checked now".into()),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_sumsubs_documented_hmac() {
        // HMAC-SHA256("secret", "1607551635" + "POST" + "/resources/applicants/abc/status/pending?reason=x")
        let sig = signature("secret", 1607551635, "post", "/resources/applicants/abc/status/pending?reason=x", b"");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1607551635POST/resources/applicants/abc/status/pending?reason=x");
        assert_eq!(sig, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(sig.len(), 64);
        assert!(sig.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn dates_and_ids_are_read_as_sumsub_writes_them() {
        assert_eq!(sumsub_time("2026-12-06 10:15:42").unwrap().to_rfc3339(), "2026-12-06T10:15:42+00:00");
        assert!(sumsub_time("2026-12-06 10:15:42.123").is_some());
        assert!(sumsub_time("2026-12-06T10:15:42Z").is_some());
        assert_eq!(sumsub_time("2020-06-24 05:11:02+0000").unwrap().to_rfc3339(), "2020-06-24T05:11:02+00:00");
        assert!(safe_segment("usr_abc123").is_ok());
        assert!(safe_segment("../admin").is_err() && safe_segment("a;b").is_err());
    }
}

//! Slack through its Web API: `POST {api_url}/chat.postMessage` with the bot token as a bearer
//! token and a JSON body `{"channel", "text", "unfurl_links": false, "unfurl_media": false}`.
//! Slack answers HTTP 200 with `{"ok": true}` or `{"ok": false, "error": "channel_not_found"}`,
//! and HTTP 429 with a `Retry-After` header (seconds) when it rate-limits.
//!
//! What is posted is plain text rendered by [`crate::notify`] from a typed notice: this
//! adapter never sees anything else.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Secret, SlackConfig};

/// Why a post did not go through, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Rate-limited: try again after this long.
    #[error("Slack is rate-limiting posts (retry after {} s)", .0.as_secs())]
    RateLimited(Duration),
    /// The network or Slack itself: trying again may work.
    #[error("{0}")]
    Passing(String),
    /// Slack refused this post for good (a channel it does not know, a token it refuses):
    /// trying again will not help until someone changes the configuration.
    #[error("{0}")]
    Refused(String),
}

#[async_trait]
pub trait Chat: Send + Sync {
    /// Post `text` to `channel` (a channel name like `#drop-ops`, or an id).
    async fn post(&self, channel: &str, text: &str) -> Result<(), ChatError>;
}

pub struct Slack {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
}

/// Slack as configured; `None` without a token.
pub fn from_config(config: &SlackConfig) -> Option<Arc<dyn Chat>> {
    let token = config.token.clone()?;
    Some(Arc::new(Slack::new(&config.api_url, token)))
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
}

impl Slack {
    pub fn new(api_url: &str, token: Secret) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { http, api_url: api_url.trim_end_matches('/').to_owned(), token }
    }
}

/// Slack's `error` codes that no retry can fix.
const FOR_GOOD: [&str; 10] = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "restricted_action",
    "msg_too_long",
];

#[async_trait]
impl Chat for Slack {
    async fn post(&self, channel: &str, text: &str) -> Result<(), ChatError> {
        let body = json!({ "channel": channel, "text": text, "unfurl_links": false, "unfurl_media": false });
        let request = self
            .http
            .post(format!("{}/chat.postMessage", self.api_url))
            .header("content-type", "application/json; charset=utf-8")
            .json(&body);
        let answer = super::http::send_bearer(request, &self.token, "Slack").await.map_err(ChatError::Passing)?;
        match answer.status().as_u16() {
            429 => return Err(ChatError::RateLimited(super::http::retry_after(&answer, 30))),
            200..=299 => {}
            code @ 500..=599 => return Err(ChatError::Passing(format!("Slack answered HTTP {code}"))),
            code => return Err(ChatError::Refused(format!("Slack refused the post (HTTP {code})"))),
        }
        let answer: Answer = answer
            .json()
            .await
            .map_err(|_| ChatError::Passing("Slack answered with something other than JSON".into()))?;
        match (answer.ok, answer.error.as_deref()) {
            (true, _) => Ok(()),
            (false, Some("ratelimited")) => Err(ChatError::RateLimited(Duration::from_secs(30))),
            (false, Some(code)) if FOR_GOOD.contains(&code) => {
                Err(ChatError::Refused(format!("Slack refused the post: {code} (check slack.token and the channel)")))
            }
            (false, code) => {
                Err(ChatError::Passing(format!("Slack refused the post: {}", code.unwrap_or("no reason given"))))
            }
        }
    }
}

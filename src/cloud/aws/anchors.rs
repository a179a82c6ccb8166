//! The audit chain heads, published to a CloudWatch Logs group whose deletion is denied.

use async_trait::async_trait;
use chrono::Utc;

use super::{AwsCloud, explain};
use crate::cloud::{AuditAnchors, CloudError, CloudResult};

/// The stream in the anchor group that holds the chain heads.
const ANCHOR_STREAM: &str = "audit-chain-heads";

#[async_trait]
impl AuditAnchors for AwsCloud {
    async fn publish(&self, line: &str) -> CloudResult<()> {
        let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(Utc::now().timestamp_millis())
            .message(line)
            .build()
            .map_err(|e| CloudError::Unreachable(format!("CloudWatch Logs: {e}")))?;
        let put = || {
            self.logs
                .put_log_events()
                .log_group_name(&self.anchor_group)
                .log_stream_name(ANCHOR_STREAM)
                .log_events(event.clone())
                .send()
        };
        match put().await {
            Ok(_) => Ok(()),
            // The first anchor: the stream does not exist yet (the group is created with the
            // infrastructure, with its deletion denied).
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                let created = self
                    .logs
                    .create_log_stream()
                    .log_group_name(&self.anchor_group)
                    .log_stream_name(ANCHOR_STREAM)
                    .send()
                    .await;
                if let Err(e) = created {
                    if !e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) {
                        return Err(explain("CloudWatch Logs", e));
                    }
                }
                put().await.map(|_| ()).map_err(|e| explain("CloudWatch Logs", e))
            }
            Err(e) => Err(explain("CloudWatch Logs", e)),
        }
    }

    async fn published(&self) -> CloudResult<Vec<String>> {
        let mut lines = Vec::new();
        let mut token: Option<String> = None;
        // A bound, should the service never repeat its token: 10,000 events a page.
        for _ in 0..1_000 {
            let page = self
                .logs
                .get_log_events()
                .log_group_name(&self.anchor_group)
                .log_stream_name(ANCHOR_STREAM)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                    return Ok(lines);
                }
                Err(e) => return Err(explain("CloudWatch Logs", e)),
            };
            lines.extend(page.events().iter().filter_map(|e| e.message().map(str::to_owned)));
            // GetLogEvents returns the token it was given when the stream's end is reached.
            let next = page.next_forward_token().map(str::to_owned);
            if next.is_none() || next == token {
                return Ok(lines);
            }
            token = next;
        }
        Err(CloudError::Unreachable("CloudWatch Logs: the anchor stream did not end".into()))
    }
}

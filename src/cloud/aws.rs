//! The AWS adapter: the official SDK crates, region and credentials from the standard
//! provider chain, an endpoint override per service (for emulators), a time limit and
//! retries with backoff on every call, and every SDK error turned into words for on-call.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};

use super::{
    AppRunner, CloudError, CloudResult, CloudWatch, DbInstance, Ecr, Image, LogEvent, LogQuery, Logs, Operation, Rds,
    SecretInfo, Secrets, ServiceStatus, Snapshot,
};
use crate::config::Config;

/// Each AWS call gets this long, retries included.
const CALL_LIMIT: Duration = Duration::from_secs(10);

pub struct AwsCloud {
    apprunner: aws_sdk_apprunner::Client,
    rds: aws_sdk_rds::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    ecr: aws_sdk_ecr::Client,
    secrets: aws_sdk_secretsmanager::Client,
    service_arn: String,
    repository: String,
    db_instance: String,
    log_group: String,
}

impl AwsCloud {
    /// The SDK configuration from the standard chain (environment, profile, the App Runner
    /// instance role), with the console's region, time limits and retries.
    pub async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
        Self::sdk_loader(config).load().await
    }

    /// The loader behind [`AwsCloud::sdk_config`], for callers that set credentials themselves.
    pub fn sdk_loader(config: &Config) -> aws_config::ConfigLoader {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(TimeoutConfig::builder().operation_timeout(CALL_LIMIT).build())
            // Standard retries back off exponentially with jitter, throttling included.
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(region) = &config.aws.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        loader
    }

    pub fn new(sdk: &aws_config::SdkConfig, config: &Config) -> Self {
        let e = &config.aws.endpoints;
        let d = &config.drop;
        macro_rules! client {
            ($krate:ident, $endpoint:expr) => {{
                let mut builder = $krate::config::Builder::from(sdk);
                if let Some(url) = $endpoint {
                    builder = builder.endpoint_url(url.clone());
                }
                $krate::Client::from_conf(builder.build())
            }};
        }
        Self {
            apprunner: client!(aws_sdk_apprunner, &e.apprunner),
            rds: client!(aws_sdk_rds, &e.rds),
            cloudwatch: client!(aws_sdk_cloudwatch, &e.cloudwatch),
            logs: client!(aws_sdk_cloudwatchlogs, &e.logs),
            ecr: client!(aws_sdk_ecr, &e.ecr),
            secrets: client!(aws_sdk_secretsmanager, &e.secretsmanager),
            repository: d.ecr_repository.clone().unwrap_or_default(),
            service_arn: d.apprunner_service_arn.clone().unwrap_or_default(),
            db_instance: d.rds_instance.clone().unwrap_or_default(),
            log_group: d.log_group.clone().unwrap_or_default(),
        }
    }
}

/// An SDK error as on-call should read it.
fn explain<E, R>(service: &'static str, err: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) => CloudError::TimedOut(CALL_LIMIT),
        SdkError::DispatchFailure(failure) => {
            let why = if failure.is_timeout() {
                "it did not answer in time"
            } else if failure.is_io() {
                "a network error"
            } else {
                "the connection failed"
            };
            CloudError::Unavailable(format!("{service} could not be reached: {why}"))
        }
        SdkError::ServiceError(e) => {
            let e = e.err();
            match e.code() {
                Some(code)
                    if code.contains("Throttl")
                        || code == "TooManyRequestsException"
                        || code == "RequestLimitExceeded" =>
                {
                    CloudError::Throttled
                }
                Some(code)
                    if code.starts_with("AccessDenied")
                        || code == "UnauthorizedOperation"
                        || code == "UnrecognizedClientException" =>
                {
                    CloudError::Unavailable(format!(
                        "the console's IAM role may not call {service} ({code}): check its policy"
                    ))
                }
                Some(code) => CloudError::Unavailable(format!(
                    "{service} refused the request: {code}{}",
                    e.message().map(|m| format!(" ({m})")).unwrap_or_default()
                )),
                None => CloudError::Unavailable(format!("{service} answered with an error")),
            }
        }
        SdkError::ResponseError(_) => {
            CloudError::Unavailable(format!("{service} sent an answer the console could not read"))
        }
        SdkError::ConstructionFailure(_) => CloudError::Unavailable(format!(
            "the request to {service} could not be built: check the console's AWS settings"
        )),
        _ => CloudError::Unavailable(format!("{service} failed: {err}")),
    }
}

fn time(t: Option<&aws_sdk_rds::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

#[async_trait]
impl AppRunner for AwsCloud {
    async fn service_status(&self) -> CloudResult<ServiceStatus> {
        let out = self
            .apprunner
            .describe_service()
            .service_arn(&self.service_arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        let service = out.service().ok_or_else(|| CloudError::Unavailable("App Runner described no service".into()))?;
        let image = service
            .source_configuration()
            .and_then(|s| s.image_repository())
            .map(|r| r.image_identifier().to_owned())
            .unwrap_or_else(|| "source is not an image".into());
        Ok(ServiceStatus {
            status: service.status().as_str().to_owned(),
            image,
            url: service.service_url().unwrap_or_default().to_owned(),
        })
    }

    async fn recent_operations(&self) -> CloudResult<Vec<Operation>> {
        let out = self
            .apprunner
            .list_operations()
            .service_arn(&self.service_arn)
            .max_results(5)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        Ok(out
            .operation_summary_list()
            .iter()
            .filter_map(|o| {
                Some(Operation {
                    kind: o.r#type()?.as_str().to_owned(),
                    status: o.status().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
                    started_at: time(o.started_at())?,
                    ended_at: time(o.ended_at()),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Rds for AwsCloud {
    async fn instance_status(&self) -> CloudResult<DbInstance> {
        let out = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(&self.db_instance)
            .send()
            .await
            .map_err(|e| explain("RDS", e))?;
        let db = out
            .db_instances()
            .first()
            .ok_or_else(|| CloudError::Unavailable(format!("RDS has no instance named {}", self.db_instance)))?;
        Ok(DbInstance {
            status: db.db_instance_status().unwrap_or("unknown").to_owned(),
            engine: format!("{} {}", db.engine().unwrap_or_default(), db.engine_version().unwrap_or_default())
                .trim()
                .to_owned(),
            allocated_gb: db.allocated_storage().unwrap_or_default(),
        })
    }

    async fn snapshots(&self) -> CloudResult<Vec<Snapshot>> {
        let out = self
            .rds
            .describe_db_snapshots()
            .db_instance_identifier(&self.db_instance)
            .send()
            .await
            .map_err(|e| explain("RDS", e))?;
        let mut snapshots: Vec<Snapshot> = out
            .db_snapshots()
            .iter()
            .filter_map(|s| {
                Some(Snapshot {
                    id: s.db_snapshot_identifier()?.to_owned(),
                    automated: s.snapshot_type() == Some("automated"),
                    status: s.status().unwrap_or("unknown").to_owned(),
                    created_at: time(s.snapshot_create_time())?,
                })
            })
            .collect();
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(snapshots)
    }
}

impl AwsCloud {
    /// The latest 5-minute statistic of one of the instance's RDS metrics in the last hour.
    async fn rds_metric(&self, metric: &str, statistic: aws_sdk_cloudwatch::types::Statistic) -> CloudResult<f64> {
        use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let now = Utc::now();
        let out = self
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(metric)
            .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(&self.db_instance).build())
            .start_time(AwsTime::from_secs((now - chrono::Duration::hours(1)).timestamp()))
            .end_time(AwsTime::from_secs(now.timestamp()))
            .period(300)
            .statistics(statistic.clone())
            .send()
            .await
            .map_err(|e| explain("CloudWatch", e))?;
        let value = |p: &aws_sdk_cloudwatch::types::Datapoint| match statistic {
            Statistic::Minimum => p.minimum(),
            Statistic::Maximum => p.maximum(),
            _ => p.average(),
        };
        out.datapoints()
            .iter()
            .filter_map(|p| Some((p.timestamp()?.secs(), value(p)?)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, v)| v)
            .ok_or_else(|| CloudError::Unavailable(format!("CloudWatch has no {metric} datapoint in the last hour")))
    }
}

#[async_trait]
impl CloudWatch for AwsCloud {
    async fn free_storage_bytes(&self) -> CloudResult<f64> {
        self.rds_metric("FreeStorageSpace", aws_sdk_cloudwatch::types::Statistic::Minimum).await
    }

    async fn cpu_percent(&self) -> CloudResult<f64> {
        self.rds_metric("CPUUtilization", aws_sdk_cloudwatch::types::Statistic::Average).await
    }
}

#[async_trait]
impl Logs for AwsCloud {
    async fn filter_events(&self, query: &LogQuery) -> CloudResult<Vec<LogEvent>> {
        // FilterLogEvents pages oldest first: read up to a bound, keep the newest.
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(&self.log_group)
            .filter_pattern(&query.pattern)
            .start_time(query.start.timestamp_millis())
            .end_time(query.end.timestamp_millis())
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| explain("CloudWatch Logs", e))?;
            for e in page.events() {
                if let (Some(ms), Some(message)) = (e.timestamp(), e.message()) {
                    events.push(LogEvent {
                        at: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
                        message: message.to_owned(),
                    });
                }
            }
            if events.len() >= 5_000 {
                break;
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        events.truncate(query.limit);
        Ok(events)
    }
}

#[async_trait]
impl Ecr for AwsCloud {
    async fn images(&self) -> CloudResult<Vec<Image>> {
        let mut pages = self.ecr.describe_images().repository_name(&self.repository).into_paginator().send();
        let mut images = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| explain("ECR", e))?;
            images.extend(page.image_details().iter().filter_map(|d| {
                Some(Image {
                    tags: d.image_tags().to_vec(),
                    digest: d.image_digest()?.to_owned(),
                    pushed_at: time(d.image_pushed_at())?,
                    size_bytes: d.image_size_in_bytes().unwrap_or_default(),
                })
            }));
        }
        images.sort_by_key(|i| std::cmp::Reverse(i.pushed_at));
        Ok(images)
    }
}

#[async_trait]
impl Secrets for AwsCloud {
    async fn secret_info(&self, id: &str) -> CloudResult<SecretInfo> {
        let out =
            self.secrets.describe_secret().secret_id(id).send().await.map_err(|e| explain("Secrets Manager", e))?;
        // A value written by hand counts as much as a scheduled rotation: take the later.
        let changed = [time(out.last_changed_date()), time(out.last_rotated_date())].into_iter().flatten().max();
        Ok(SecretInfo { id: id.to_owned(), last_changed: changed })
    }
}

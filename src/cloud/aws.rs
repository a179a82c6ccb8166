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
    AppMetrics, AppRunner, AuditAnchors, CloudError, CloudResult, CloudWatch, DbInstance, Ecr, Image, LogEvent,
    LogQuery, Logs, Operation, Rds, Scaling, SecretInfo, Secrets, ServiceStatus, Snapshot,
};
use crate::config::{Config, Secret};

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
    anchor_group: String,
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
            repository: d.repository().to_owned(),
            service_arn: d.apprunner_service_arn.clone().unwrap_or_default(),
            db_instance: d.instance().to_owned(),
            log_group: d.log_group.clone().unwrap_or_default(),
            anchor_group: config.audit.anchor_log_group.clone().unwrap_or_default(),
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
            CloudError::Unreachable(format!("{service} could not be reached: {why}"))
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

/// The AWS error code of a refusal (`DBSnapshotAlreadyExists`…), for the answers that mean
/// "already done" to an idempotent step.
fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

fn snapshot_of(s: &aws_sdk_rds::types::DbSnapshot) -> Option<Snapshot> {
    Some(Snapshot {
        id: s.db_snapshot_identifier()?.to_owned(),
        automated: s.snapshot_type() == Some("automated"),
        status: s.status().unwrap_or("unknown").to_owned(),
        created_at: time(s.snapshot_create_time())?,
    })
}

fn instance_of(db: &aws_sdk_rds::types::DbInstance) -> DbInstance {
    DbInstance {
        status: db.db_instance_status().unwrap_or("unknown").to_owned(),
        engine: format!("{} {}", db.engine().unwrap_or_default(), db.engine_version().unwrap_or_default())
            .trim()
            .to_owned(),
        allocated_gb: db.allocated_storage().unwrap_or_default(),
    }
}

/// An idempotent request's answer: the refusal AWS gives when it was done before counts as done.
fn done_or<O, E, R>(asked: Result<O, SdkError<E, R>>, already: &str, service: &'static str) -> CloudResult<()>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match asked {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(already) => Ok(()),
        Err(e) => Err(explain(service, e)),
    }
}

/// A description that may not exist: `missing` (the code for "no such thing") is `None`.
fn found<O, E, R>(asked: Result<O, SdkError<E, R>>, missing: &str, service: &'static str) -> CloudResult<Option<O>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match asked {
        Ok(out) => Ok(Some(out)),
        Err(e) if code(&e) == Some(missing) => Ok(None),
        Err(e) => Err(explain(service, e)),
    }
}

fn time(t: Option<&aws_sdk_rds::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

#[async_trait]
impl AppRunner for AwsCloud {
    async fn service_status(&self) -> CloudResult<ServiceStatus> {
        let service = self.describe_service().await?;
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
                    id: o.id()?.to_owned(),
                })
            })
            .collect())
    }

    async fn operation(&self, id: &str) -> CloudResult<Option<Operation>> {
        let mut pages =
            self.apprunner.list_operations().service_arn(&self.service_arn).max_results(20).into_paginator().send();
        // Operations come newest first; the one a run waits for is among the latest pages.
        for _ in 0..5 {
            let Some(page) = pages.next().await else { break };
            let page = page.map_err(|e| explain("App Runner", e))?;
            if let Some(o) = page.operation_summary_list().iter().find(|o| o.id() == Some(id)) {
                return Ok(Some(Operation {
                    id: id.to_owned(),
                    kind: o.r#type().map_or("UNKNOWN", |t| t.as_str()).to_owned(),
                    status: o.status().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
                    started_at: time(o.started_at()).unwrap_or_default(),
                    ended_at: time(o.ended_at()),
                }));
            }
        }
        Ok(None)
    }

    async fn start_deployment(&self) -> CloudResult<String> {
        let out = self
            .apprunner
            .start_deployment()
            .service_arn(&self.service_arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        Ok(out.operation_id().to_owned())
    }

    async fn deploy_image(&self, image: &str) -> CloudResult<String> {
        use aws_sdk_apprunner::types::{ImageRepository, SourceConfiguration};
        // UpdateService replaces the source configuration: keep everything but the image.
        let described = self.describe_service().await?;
        let source = described
            .source_configuration()
            .ok_or_else(|| CloudError::Unavailable("App Runner described no source configuration".into()))?;
        let repository = source
            .image_repository()
            .ok_or_else(|| CloudError::Unavailable("the service is not deployed from an image repository".into()))?;
        let unreadable = |e: aws_sdk_apprunner::error::BuildError| {
            CloudError::Unavailable(format!("the App Runner request could not be built: {e}"))
        };
        let repository = ImageRepository::builder()
            .image_identifier(image)
            .image_repository_type(repository.image_repository_type().clone())
            .set_image_configuration(repository.image_configuration().cloned())
            .build()
            .map_err(unreadable)?;
        let source = SourceConfiguration::builder()
            .image_repository(repository)
            .set_auto_deployments_enabled(source.auto_deployments_enabled())
            .set_authentication_configuration(source.authentication_configuration().cloned())
            .build();
        let out = self
            .apprunner
            .update_service()
            .service_arn(&self.service_arn)
            .source_configuration(source)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        Ok(out.operation_id().to_owned())
    }

    async fn pause(&self) -> CloudResult<String> {
        let out = self
            .apprunner
            .pause_service()
            .service_arn(&self.service_arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        Ok(out.operation_id().unwrap_or_default().to_owned())
    }

    async fn resume(&self) -> CloudResult<String> {
        let out = self
            .apprunner
            .resume_service()
            .service_arn(&self.service_arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        Ok(out.operation_id().unwrap_or_default().to_owned())
    }

    async fn scaling(&self) -> CloudResult<Scaling> {
        let described = self.describe_service().await?;
        let arn = described
            .auto_scaling_configuration_summary()
            .and_then(|a| a.auto_scaling_configuration_arn())
            .ok_or_else(|| CloudError::Unavailable("the service has no auto-scaling configuration".into()))?;
        let out = self
            .apprunner
            .describe_auto_scaling_configuration()
            .auto_scaling_configuration_arn(arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        let config = out
            .auto_scaling_configuration()
            .ok_or_else(|| CloudError::Unavailable("App Runner described no auto-scaling configuration".into()))?;
        Ok(Scaling { min: config.min_size().unwrap_or(1), max: config.max_size().unwrap_or(25) })
    }

    async fn set_scaling(&self, scaling: Scaling) -> CloudResult<String> {
        // A configuration per bound pair, named after the service; asking again adds a revision.
        let service = self.service_arn.split('/').nth(1).unwrap_or("service");
        let name: String = format!("{service}-{}-{}", scaling.min, scaling.max).chars().take(32).collect();
        let created = self
            .apprunner
            .create_auto_scaling_configuration()
            .auto_scaling_configuration_name(name)
            .min_size(scaling.min)
            .max_size(scaling.max)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        let arn = created
            .auto_scaling_configuration()
            .and_then(|c| c.auto_scaling_configuration_arn())
            .ok_or_else(|| CloudError::Unavailable("App Runner created no auto-scaling configuration".into()))?;
        let out = self
            .apprunner
            .update_service()
            .service_arn(&self.service_arn)
            .auto_scaling_configuration_arn(arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        Ok(out.operation_id().to_owned())
    }
}

#[async_trait]
impl Rds for AwsCloud {
    async fn instance_status(&self) -> CloudResult<DbInstance> {
        self.instance_named(&self.db_instance)
            .await?
            .ok_or_else(|| CloudError::Unavailable(format!("RDS has no instance named {}", self.db_instance)))
    }

    async fn snapshots(&self) -> CloudResult<Vec<Snapshot>> {
        let out = self
            .rds
            .describe_db_snapshots()
            .db_instance_identifier(&self.db_instance)
            .send()
            .await
            .map_err(|e| explain("RDS", e))?;
        let mut snapshots: Vec<Snapshot> = out.db_snapshots().iter().filter_map(snapshot_of).collect();
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(snapshots)
    }

    async fn create_snapshot(&self, id: &str) -> CloudResult<()> {
        let asked = self
            .rds
            .create_db_snapshot()
            .db_instance_identifier(&self.db_instance)
            .db_snapshot_identifier(id)
            .send()
            .await;
        done_or(asked, "DBSnapshotAlreadyExists", "RDS")
    }

    async fn snapshot(&self, id: &str) -> CloudResult<Option<Snapshot>> {
        let out = found(
            self.rds.describe_db_snapshots().db_snapshot_identifier(id).send().await,
            "DBSnapshotNotFound",
            "RDS",
        )?;
        Ok(out.as_ref().and_then(|o| o.db_snapshots().first()).and_then(snapshot_of))
    }

    async fn set_master_password(&self, password: &Secret) -> CloudResult<()> {
        self.rds
            .modify_db_instance()
            .db_instance_identifier(&self.db_instance)
            .master_user_password(password.expose())
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| explain("RDS", e))?;
        Ok(())
    }

    async fn restore_to_instance(&self, snapshot: &str, instance: &str) -> CloudResult<()> {
        let asked = self
            .rds
            .restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(snapshot)
            .db_instance_identifier(instance)
            .send()
            .await;
        done_or(asked, "DBInstanceAlreadyExists", "RDS")
    }

    async fn instance_named(&self, instance: &str) -> CloudResult<Option<DbInstance>> {
        let out = found(
            self.rds.describe_db_instances().db_instance_identifier(instance).send().await,
            "DBInstanceNotFound",
            "RDS",
        )?;
        Ok(out.as_ref().and_then(|o| o.db_instances().first()).map(instance_of))
    }

    async fn delete_instance(&self, instance: &str) -> CloudResult<()> {
        if instance == self.db_instance {
            return Err(CloudError::Unavailable("the console does not delete Drop's database".into()));
        }
        let asked =
            self.rds.delete_db_instance().db_instance_identifier(instance).skip_final_snapshot(true).send().await;
        done_or(asked, "DBInstanceNotFound", "RDS")
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

    async fn app_metrics(&self) -> CloudResult<Option<AppMetrics>> {
        let (requests, errors, latency) = tokio::join!(
            self.app_runner_metric("Requests"),
            self.app_runner_metric("5xxStatusResponses"),
            self.app_runner_metric("RequestLatency"),
        );
        let (requests, errors, latency) = (requests?, errors?, latency?);
        if requests.is_empty() {
            return Ok(None);
        }
        let sum = |points: &[aws_sdk_cloudwatch::types::Datapoint]| points.iter().filter_map(|p| p.sum()).sum::<f64>();
        let (latency_ms, latency_is_p99) = worst_latency(&latency);
        Ok(Some(AppMetrics { requests: sum(&requests), errors_5xx: sum(&errors), latency_ms, latency_is_p99 }))
    }
}

/// The worst 5-minute p99 latency, or the worst average where no percentile came back.
pub fn worst_latency(points: &[aws_sdk_cloudwatch::types::Datapoint]) -> (f64, bool) {
    let max = |values: Vec<f64>| values.into_iter().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let p99 = max(points.iter().filter_map(|p| p.extended_statistics()?.get("p99").copied()).collect());
    match p99 {
        Some(v) => (v, true),
        None => (max(points.iter().filter_map(|p| p.average()).collect()).unwrap_or_default(), false),
    }
}

impl AwsCloud {
    /// The App Runner service as DescribeService tells it.
    async fn describe_service(&self) -> CloudResult<aws_sdk_apprunner::types::Service> {
        let out = self
            .apprunner
            .describe_service()
            .service_arn(&self.service_arn)
            .send()
            .await
            .map_err(|e| explain("App Runner", e))?;
        out.service.ok_or_else(|| CloudError::Unavailable("App Runner described no service".into()))
    }

    /// 5-minute datapoints of one of the service's App Runner metrics over the window.
    async fn app_runner_metric(&self, metric: &str) -> CloudResult<Vec<aws_sdk_cloudwatch::types::Datapoint>> {
        use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let mut parts = self.service_arn.rsplit('/');
        let (id, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let now = Utc::now();
        let start = now - chrono::Duration::minutes(super::APP_METRICS_WINDOW_MINUTES);
        let mut request = self
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/AppRunner")
            .metric_name(metric)
            .dimensions(Dimension::builder().name("ServiceName").value(name).build())
            .dimensions(Dimension::builder().name("ServiceID").value(id).build())
            .start_time(AwsTime::from_secs(start.timestamp()))
            .end_time(AwsTime::from_secs(now.timestamp()))
            .period(300);
        request = if metric == "RequestLatency" {
            request.statistics(Statistic::Average).extended_statistics("p99")
        } else {
            request.statistics(Statistic::Sum)
        };
        let out = request.send().await.map_err(|e| explain("CloudWatch", e))?;
        Ok(out.datapoints().to_vec())
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

    async fn stage_value(&self, id: &str, version: &str, value: &Secret) -> CloudResult<()> {
        self.secrets
            .put_secret_value()
            .secret_id(id)
            .client_request_token(version)
            .secret_string(value.expose())
            .version_stages("AWSPENDING")
            .send()
            .await
            .map_err(|e| explain("Secrets Manager", e))?;
        Ok(())
    }

    async fn value(&self, id: &str, version: Option<&str>) -> CloudResult<Option<Secret>> {
        // Without a version, ask for AWSCURRENT by name: what the app reads.
        let request = match version {
            Some(v) => self.secrets.get_secret_value().secret_id(id).version_id(v),
            None => self.secrets.get_secret_value().secret_id(id).version_stage("AWSCURRENT"),
        };
        let out = found(request.send().await, "ResourceNotFoundException", "Secrets Manager")?;
        Ok(out.and_then(|o| o.secret_string().map(Secret::new)))
    }

    async fn promote(&self, id: &str, version: &str) -> CloudResult<()> {
        let out =
            self.secrets.describe_secret().secret_id(id).send().await.map_err(|e| explain("Secrets Manager", e))?;
        let stages = out.version_ids_to_stages().cloned().unwrap_or_default();
        let current = stages.iter().find(|(_, s)| s.iter().any(|s| s == "AWSCURRENT")).map(|(v, _)| v.clone());
        if current.as_deref() == Some(version) {
            return Ok(());
        }
        self.secrets
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .move_to_version_id(version)
            .set_remove_from_version_id(current)
            .send()
            .await
            .map_err(|e| explain("Secrets Manager", e))?;
        Ok(())
    }
}

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

//! The AWS adapter: the official SDK crates, region and credentials from the standard
//! provider chain, an endpoint override per service (for emulators), a time limit and
//! retries with backoff on every call, and every SDK error turned into words for on-call.
//!
//! One file per port it adapts, as the simulator plays them: `apprunner`, `rds`, `observe`
//! (CloudWatch metrics and Logs), `registry` (ECR, Secrets Manager), `anchors` (the audit
//! chain heads in CloudWatch Logs); the client, the time limits and the error words are here.

mod anchors;
mod apprunner;
mod observe;
mod rds;
mod registry;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};

use super::{CloudError, CloudResult};
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

pub use observe::worst_latency;

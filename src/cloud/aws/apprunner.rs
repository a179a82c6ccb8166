//! App Runner: the service, its deployments, pause and resume, and auto-scaling.

use async_trait::async_trait;

use super::{AwsCloud, explain, time};
use crate::cloud::{AppRunner, CloudError, CloudResult, Operation, Scaling, ServiceStatus};

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

    async fn environment_names(&self) -> CloudResult<Vec<String>> {
        let service = self.describe_service().await?;
        let Some(image) = service.source_configuration().and_then(|s| s.image_repository()) else {
            return Ok(vec![]);
        };
        let Some(config) = image.image_configuration() else { return Ok(vec![]) };
        let mut names: Vec<String> = config
            .runtime_environment_variables()
            .into_iter()
            .flat_map(|vars| vars.keys())
            .chain(config.runtime_environment_secrets().into_iter().flat_map(|secrets| secrets.keys()))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
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
}

//! App Runner, simulated: operations take their time and are refused as App Runner refuses
//! them while another runs.

use async_trait::async_trait;
use chrono::Duration as Span;

use super::{DEPLOY_SECS, PAUSE_SECS, RESUME_SECS, SCALING_SECS, Simulator, db, refused};
use crate::cloud::{AppRunner, CloudResult, Operation, Scaling, ServiceStatus};

#[async_trait]
impl AppRunner for Simulator {
    async fn service_status(&self) -> CloudResult<ServiceStatus> {
        self.aws_call().await?;
        let service = self.service().await?;
        let status = if service.paused || self.has("service_down").await? {
            "PAUSED"
        } else if service.busy {
            "OPERATION_IN_PROGRESS"
        } else {
            "RUNNING"
        };
        Ok(ServiceStatus {
            status: status.into(),
            image: service.image,
            url: format!("https://{}.sim.awsapprunner.com", self.service_name),
        })
    }

    async fn recent_operations(&self) -> CloudResult<Vec<Operation>> {
        self.aws_call().await?;
        self.service().await?;
        let mut operations = db::operations(&self.pool, &self.service_name).await?;
        // The deployment that put the first image in place, before the simulator kept records.
        operations.push(Operation {
            id: "initial".into(),
            kind: "START_DEPLOYMENT".into(),
            status: "SUCCEEDED".into(),
            started_at: self.booted - Span::minutes(4),
            ended_at: Some(self.booted),
        });
        Ok(operations)
    }

    async fn start_deployment(&self) -> CloudResult<String> {
        self.start_operation("START_DEPLOYMENT", None, None, DEPLOY_SECS).await
    }

    async fn deploy_image(&self, image: &str) -> CloudResult<String> {
        if !image.starts_with(&self.repository_uri()) || self.tag_of(image).is_none() {
            return Err(refused(
                "App Runner",
                "InvalidRequestException",
                &format!("{image} is not an image in the repository"),
            ));
        }
        self.start_operation("UPDATE_SERVICE", Some(image), None, DEPLOY_SECS).await
    }

    async fn pause(&self) -> CloudResult<String> {
        self.start_operation("PAUSE_SERVICE", None, None, PAUSE_SECS).await
    }

    async fn resume(&self) -> CloudResult<String> {
        self.start_operation("RESUME_SERVICE", None, None, RESUME_SECS).await
    }

    /// The names Drop's service defines (runbook §7 asks to verify BankID's are there); the
    /// `bankid_degraded` fault drops one, as a broken deploy of the configuration would.
    async fn environment_names(&self) -> CloudResult<Vec<String>> {
        self.aws_call().await?;
        let mut names: Vec<String> =
            ["BANKID_CLIENT_ID", "BANKID_CLIENT_SECRET", "BANKID_ISSUER", "DATABASE_URL", "JWT_SECRET", "NODE_ENV"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        if self.has("bankid_degraded").await? {
            names.retain(|n| n != "BANKID_CLIENT_SECRET");
        }
        Ok(names)
    }

    async fn scaling(&self) -> CloudResult<Scaling> {
        self.aws_call().await?;
        Ok(self.service().await?.scaling)
    }

    async fn set_scaling(&self, scaling: Scaling) -> CloudResult<String> {
        self.start_operation("UPDATE_SERVICE", None, Some(scaling), SCALING_SECS).await
    }
}

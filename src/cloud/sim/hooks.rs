//! CI and the monitoring relay, simulated, so a demo deploy checks CI and announces its
//! maintenance window as a real one does: CI passes every commit unless `ci_failing` is on;
//! the relay takes every event unless `monitoring_unreachable` is on.

use async_trait::async_trait;
use serde_json::Value;

use super::Simulator;
use crate::cloud::hooks::{Ci, MaintenanceRelay};
use crate::cloud::{CloudError, CloudResult};

#[async_trait]
impl Ci for Simulator {
    async fn commit_state(&self, _sha: &str) -> CloudResult<Option<String>> {
        let state = if self.has("ci_failing").await? { "failure" } else { "success" };
        Ok(Some(state.into()))
    }
}

#[async_trait]
impl MaintenanceRelay for Simulator {
    async fn tell(&self, _key: &str, _event: &Value) -> CloudResult<()> {
        if self.has("monitoring_unreachable").await? {
            return Err(CloudError::Unreachable("the monitoring relay did not answer".into()));
        }
        Ok(())
    }
}

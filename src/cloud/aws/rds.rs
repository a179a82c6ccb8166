//! RDS: the instance, its snapshots, its master password and the restore drill.

use async_trait::async_trait;

use super::{AwsCloud, done_or, explain, found, time};
use crate::cloud::{CloudError, CloudResult, DbInstance, Rds, Snapshot};
use crate::config::Secret;

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

    async fn instance_endpoint(&self, instance: &str) -> CloudResult<Option<crate::cloud::Endpoint>> {
        let out = found(
            self.rds.describe_db_instances().db_instance_identifier(instance).send().await,
            "DBInstanceNotFound",
            "RDS",
        )?;
        Ok(out.as_ref().and_then(|o| o.db_instances().first()).and_then(|db| {
            let endpoint = db.endpoint()?;
            Some(crate::cloud::Endpoint::At {
                host: endpoint.address()?.to_owned(),
                port: u16::try_from(endpoint.port()?).ok()?,
            })
        }))
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

//! RDS, simulated: nightly automated snapshots at 03:00 UTC, manual snapshots and restored
//! instances that take their time, and the master password the rotation changes.

use async_trait::async_trait;
use chrono::{Duration as Span, Utc};

use super::{RESTORE_SECS, SNAPSHOT_SECS, Simulator, db, refused};
use crate::cloud::{CloudResult, DbInstance, Rds, Snapshot};
use crate::config::Secret;

#[async_trait]
impl Rds for Simulator {
    async fn instance_status(&self) -> CloudResult<DbInstance> {
        self.aws_call().await?;
        Ok(DbInstance { status: "available".into(), engine: "postgres 16.4".into(), allocated_gb: 50 })
    }

    async fn snapshots(&self) -> CloudResult<Vec<Snapshot>> {
        self.aws_call().await?;
        let now = Utc::now();
        let newest = if self.has("snapshot_missing").await? { now - Span::hours(30) } else { Self::last_nightly(now) };
        let mut snapshots: Vec<Snapshot> = (0..7)
            .map(|day| {
                let at = newest - Span::days(day);
                Snapshot {
                    id: format!("rds:{}-{}", self.instance, at.format("%Y-%m-%d-%H-%M")),
                    automated: true,
                    status: "available".into(),
                    created_at: at,
                }
            })
            .collect();
        snapshots.extend(db::manual_snapshots(&self.pool, &self.instance).await?.into_iter().map(|s| Snapshot {
            id: s.id,
            automated: false,
            status: if s.available { "available" } else { "creating" }.into(),
            created_at: s.created_at,
        }));
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(snapshots)
    }

    async fn create_snapshot(&self, id: &str) -> CloudResult<()> {
        self.aws_call().await?;
        db::create_snapshot(&self.pool, id, &self.instance, self.takes(SNAPSHOT_SECS).num_milliseconds()).await
    }

    async fn snapshot(&self, id: &str) -> CloudResult<Option<Snapshot>> {
        Ok(self.snapshots().await?.into_iter().find(|s| s.id == id))
    }

    async fn set_master_password(&self, password: &Secret) -> CloudResult<()> {
        self.aws_call().await?;
        self.service().await?;
        db::set_master_password(&self.pool, &self.service_name, password.expose()).await
    }

    async fn restore_to_instance(&self, snapshot: &str, instance: &str) -> CloudResult<()> {
        if self.snapshot(snapshot).await?.is_none() {
            return Err(refused("RDS", "DBSnapshotNotFound", &format!("DBSnapshot {snapshot} not found")));
        }
        db::restore_instance(&self.pool, instance, snapshot, self.takes(RESTORE_SECS).num_milliseconds()).await
    }

    async fn instance_named(&self, instance: &str) -> CloudResult<Option<DbInstance>> {
        self.aws_call().await?;
        if instance == self.instance {
            return self.instance_status().await.map(Some);
        }
        Ok(db::restored_available(&self.pool, instance).await?.map(|available| DbInstance {
            status: if available { "available" } else { "creating" }.into(),
            engine: "postgres 16.4".into(),
            allocated_gb: 50,
        }))
    }

    /// The simulator restores nothing: the copy a drill checks is the demo's own database.
    async fn instance_endpoint(&self, instance: &str) -> CloudResult<Option<crate::cloud::Endpoint>> {
        Ok(self.instance_named(instance).await?.map(|_| crate::cloud::Endpoint::Simulated))
    }

    async fn delete_instance(&self, instance: &str) -> CloudResult<()> {
        self.aws_call().await?;
        if instance == self.instance {
            return Err(refused("RDS", "InvalidParameterValue", "the console does not delete Drop's database"));
        }
        db::delete_instance(&self.pool, instance).await
    }
}

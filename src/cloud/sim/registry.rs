//! ECR and Secrets Manager, simulated: a repository of tagged images, and secrets with
//! versions staged and promoted as Secrets Manager does it.

use async_trait::async_trait;

use super::{Simulator, db, refused};
use crate::cloud::{CloudResult, Ecr, Image, SecretInfo, Secrets};
use crate::config::Secret;

#[async_trait]
impl Ecr for Simulator {
    async fn images(&self) -> CloudResult<Vec<Image>> {
        self.aws_call().await?;
        Ok(self.image_list())
    }
}

#[async_trait]
impl Secrets for Simulator {
    async fn secret_info(&self, id: &str) -> CloudResult<SecretInfo> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        let changed = db::secret_changed(&self.pool, id).await?;
        Ok(SecretInfo { id: id.to_owned(), last_changed: changed })
    }

    async fn stage_value(&self, id: &str, version: &str, value: &Secret) -> CloudResult<()> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        let stored = db::stage_secret(&self.pool, id, version, value.expose()).await?;
        if stored != value.expose() {
            return Err(refused(
                "Secrets Manager",
                "ResourceExistsException",
                "a version with this token already exists with another value",
            ));
        }
        Ok(())
    }

    async fn value(&self, id: &str, version: Option<&str>) -> CloudResult<Option<Secret>> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        Ok(db::secret_value(&self.pool, id, version).await?.map(Secret::new))
    }

    async fn promote(&self, id: &str, version: &str) -> CloudResult<()> {
        self.aws_call().await?;
        self.seed_secret(id).await?;
        match db::promote_secret(&self.pool, id, version).await? {
            db::Promoted::NoSuchVersion => {
                Err(refused("Secrets Manager", "ResourceNotFoundException", "no such version"))
            }
            db::Promoted::AlreadyCurrent | db::Promoted::Now => Ok(()),
        }
    }
}

//! ECR (the images that can be deployed) and Secrets Manager (the rotated secrets).

use async_trait::async_trait;

use super::{AwsCloud, explain, found, time};
use crate::cloud::{CloudResult, Ecr, Image, SecretInfo, Secrets};
use crate::config::Secret;

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

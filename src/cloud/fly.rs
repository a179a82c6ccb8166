//! Fly.io staging through the Machines API (`https://api.machines.dev/v1`, the token as a
//! bearer token): `GET /apps/{app}/machines` lists the app's machines with their state, the
//! image they run (`image_ref` and `config.image`) and their health checks.
//!
//! What the console reads of staging: which image runs there, in which state, and whether its
//! checks pass — the deployments page's "Staging (Fly.io)" card.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{CloudError, CloudResult};
use crate::config::{FlyConfig, Secret};

/// One Fly machine of the staging app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub id: String,
    pub region: String,
    /// started, stopped, suspended, replacing, destroyed…
    pub state: String,
    /// The image as configured: `registry/repository:tag` or `…@sha256:…`.
    pub image: String,
    /// The tag the image reference names, where it names one.
    pub tag: Option<String>,
    /// Checks passing / total; `None` when the machine defines none.
    pub checks: Option<(usize, usize)>,
}

impl Machine {
    pub fn healthy(&self) -> bool {
        self.state == "started" && self.checks.is_none_or(|(passing, total)| passing == total)
    }
}

#[async_trait]
pub trait Staging: Send + Sync {
    /// The staging app's machines.
    async fn machines(&self) -> CloudResult<Vec<Machine>>;
}

pub struct FlyMachines {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
    app: String,
}

/// Fly.io as configured; `None` without a token.
pub fn from_config(config: &FlyConfig, app: &str) -> Option<Arc<dyn Staging>> {
    let token = config.token.clone()?;
    Some(Arc::new(FlyMachines::new(&config.api_url, token, app)))
}

#[derive(Deserialize)]
struct MachineBody {
    id: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    config: Option<ConfigBody>,
    #[serde(default)]
    image_ref: Option<ImageRef>,
    #[serde(default)]
    checks: Vec<Check>,
}

#[derive(Deserialize)]
struct ConfigBody {
    #[serde(default)]
    image: Option<String>,
}

#[derive(Deserialize)]
struct ImageRef {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize)]
struct Check {
    #[serde(default)]
    status: String,
}

fn machine(m: MachineBody) -> Machine {
    let tag = m.image_ref.as_ref().and_then(|r| r.tag.clone()).filter(|t| !t.is_empty());
    let image = m.config.and_then(|c| c.image).unwrap_or_else(|| match &m.image_ref {
        Some(r) => format!(
            "{}/{}:{}",
            r.registry.as_deref().unwrap_or(""),
            r.repository.as_deref().unwrap_or(""),
            r.tag.as_deref().unwrap_or("")
        ),
        None => "unknown".into(),
    });
    let checks =
        (!m.checks.is_empty()).then(|| (m.checks.iter().filter(|c| c.status == "passing").count(), m.checks.len()));
    Machine { id: m.id, region: m.region, state: m.state, image, tag, checks }
}

impl FlyMachines {
    pub fn new(api_url: &str, token: Secret, app: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { http, api_url: api_url.trim_end_matches('/').to_owned(), token, app: app.to_owned() }
    }
}

#[async_trait]
impl Staging for FlyMachines {
    async fn machines(&self) -> CloudResult<Vec<Machine>> {
        let app: String = url::form_urlencoded::byte_serialize(self.app.as_bytes()).collect();
        let request = self.http.get(format!("{}/v1/apps/{app}/machines", self.api_url));
        let answer = super::http::send_bearer(request, &self.token, "Fly.io").await.map_err(CloudError::Unreachable)?;
        match answer.status().as_u16() {
            200..=299 => {}
            429 => return Err(CloudError::Throttled),
            code @ (401 | 403) => {
                return Err(CloudError::Unavailable(format!(
                    "Fly.io refused the token (HTTP {code}): check fly.token"
                )));
            }
            404 => return Err(CloudError::Unavailable(format!("Fly.io has no app {}", self.app))),
            code => return Err(CloudError::Unavailable(format!("Fly.io answered HTTP {code}"))),
        }
        let list: Vec<MachineBody> = answer
            .json()
            .await
            .map_err(|_| CloudError::Unavailable("Fly.io answered with something other than machines".into()))?;
        Ok(list.into_iter().filter(|m| m.state != "destroyed").map(machine).collect())
    }
}

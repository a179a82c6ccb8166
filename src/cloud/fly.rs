//! Fly.io staging through the Machines API (`https://api.machines.dev/v1`, the token as a
//! bearer token) and Fly's GraphQL API for the app's releases:
//!
//! - `GET /v1/apps/{app}/machines`: the machines with their state, the image they run
//!   (`image_ref` and `config.image`), their `instance_id` and their health checks;
//! - `GET /v1/apps/{app}/machines/{id}` then `POST` the same path with
//!   `{"config": …, "current_version": instance_id}`: a machine's whole configuration with only
//!   the image changed (Fly replaces the configuration; `current_version` makes Fly refuse with
//!   412 when someone else changed the machine in between);
//! - `POST https://api.fly.io/graphql` `app(name){ releasesUnprocessed(first:) }`: the releases
//!   `fly releases` lists (version, status, image, who, when).
//!
//! What the console does with staging: shows which image runs there and whether its checks
//! pass (the deployments page), and updates the machines to an image one at a time — the
//! staging deploy and rollback runs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

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

    /// "started, 1 of 1 checks passing".
    pub fn describe(&self) -> String {
        match self.checks {
            Some((passing, total)) => format!("{}, {passing} of {total} checks passing", self.state),
            None => self.state.clone(),
        }
    }
}

/// Whether staging runs an image with one of `tags` on every machine, each healthy.
pub fn runs_healthily(machines: &[Machine], tags: &[String]) -> bool {
    !machines.is_empty() && machines.iter().all(|m| m.healthy() && m.tag.as_ref().is_some_and(|t| tags.contains(t)))
}

/// "b2e9f14 on 2 machines, all healthy": what staging runs, in a few words.
pub fn summary(machines: &[Machine]) -> String {
    let mut tags: Vec<&str> = machines.iter().map(|m| m.tag.as_deref().unwrap_or(m.image.as_str())).collect();
    tags.sort_unstable();
    tags.dedup();
    let healthy = machines.iter().filter(|m| m.healthy()).count();
    let health = if healthy == machines.len() { "all healthy".to_owned() } else { format!("{healthy} healthy") };
    match machines.len() {
        0 => "no machines".to_owned(),
        n => format!("{} on {n} machine(s), {health}", tags.join(" and ")),
    }
}

/// One release of the staging app, as `fly releases` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: i64,
    /// complete, failed, running, cancelled…
    pub status: String,
    pub description: String,
    /// The image reference the release ran.
    pub image: Option<String>,
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

impl Release {
    /// The tag of the release's image, where its reference names one.
    pub fn tag(&self) -> Option<String> {
        self.image.as_deref().and_then(tag_in)
    }

    /// The tag, or the whole reference when it names none.
    pub fn label(&self) -> String {
        self.tag().or_else(|| self.image.clone()).unwrap_or_else(|| "unknown".into())
    }
}

/// The tag an image reference names: `registry.fly.io/drop-staging:b2e9f14` → `b2e9f14`
/// (none for a reference pinned only by digest).
pub fn tag_in(reference: &str) -> Option<String> {
    let name = reference.split('@').next()?;
    let last = name.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag.to_owned()).filter(|t| !t.is_empty())
}

#[async_trait]
pub trait Staging: Send + Sync {
    /// The staging app's machines.
    async fn machines(&self) -> CloudResult<Vec<Machine>>;
    /// Point one machine at `image`, keeping the rest of its configuration. Nothing is sent
    /// when the machine already runs it, so asking again after a crash changes nothing.
    async fn set_image(&self, machine: &str, image: &str) -> CloudResult<()>;
    /// The newest releases, newest first.
    async fn releases(&self, limit: usize) -> CloudResult<Vec<Release>>;
}

pub struct FlyMachines {
    http: reqwest::Client,
    api_url: String,
    graphql_url: String,
    token: Secret,
    app: String,
}

/// Fly.io as configured; `None` without a token.
pub fn from_config(config: &FlyConfig, app: &str) -> Option<Arc<dyn Staging>> {
    let token = config.token.clone()?;
    Some(Arc::new(FlyMachines::new(&config.api_url, &config.graphql_url, token, app)))
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
    let tag = tag.or_else(|| tag_in(&image));
    let checks =
        (!m.checks.is_empty()).then(|| (m.checks.iter().filter(|c| c.status == "passing").count(), m.checks.len()));
    Machine { id: m.id, region: m.region, state: m.state, image, tag, checks }
}

/// A path segment: the app's name or a machine id as sent.
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl FlyMachines {
    pub fn new(api_url: &str, graphql_url: &str, token: Secret, app: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            graphql_url: graphql_url.to_owned(),
            token,
            app: app.to_owned(),
        }
    }

    fn machines_url(&self) -> String {
        format!("{}/v1/apps/{}/machines", self.api_url, segment(&self.app))
    }

    /// Send, and turn Fly's refusals into words for the person on call.
    async fn send(&self, request: reqwest::RequestBuilder) -> CloudResult<reqwest::Response> {
        let answer = super::http::send_bearer(request, &self.token, "Fly.io").await.map_err(CloudError::Unreachable)?;
        match answer.status().as_u16() {
            200..=299 => Ok(answer),
            429 => Err(CloudError::Throttled),
            code @ (401 | 403) => {
                Err(CloudError::Unavailable(format!("Fly.io refused the token (HTTP {code}): check fly.token")))
            }
            404 => Err(CloudError::Unavailable(format!("Fly.io has no app {} or no such machine", self.app))),
            // The machine changed between reading and updating it: read it again.
            412 => Err(CloudError::Unreachable("the machine changed at Fly.io while it was being updated".into())),
            code @ 500..=599 => Err(CloudError::Unreachable(format!("Fly.io answered HTTP {code}"))),
            code => Err(CloudError::Unavailable(format!("Fly.io answered HTTP {code}"))),
        }
    }
}

fn unreadable(what: &str) -> CloudError {
    CloudError::Unavailable(format!("Fly.io answered with something other than {what}"))
}

const RELEASES_QUERY: &str = "query($appName: String!, $limit: Int!) { app(name: $appName) { releases: releasesUnprocessed(first: $limit) { nodes { id version description reason status imageRef stable user { id email name } createdAt } } } }";

#[derive(Deserialize)]
struct ReleaseNode {
    version: i64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "imageRef")]
    image_ref: Option<String>,
    #[serde(default)]
    user: Option<ReleaseUser>,
    #[serde(rename = "createdAt")]
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ReleaseUser {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[async_trait]
impl Staging for FlyMachines {
    async fn machines(&self) -> CloudResult<Vec<Machine>> {
        let answer = self.send(self.http.get(self.machines_url())).await?;
        let list: Vec<MachineBody> = answer.json().await.map_err(|_| unreadable("machines"))?;
        Ok(list.into_iter().filter(|m| m.state != "destroyed").map(machine).collect())
    }

    async fn set_image(&self, machine: &str, image: &str) -> CloudResult<()> {
        let url = format!("{}/{}", self.machines_url(), segment(machine));
        let mut current: Value =
            self.send(self.http.get(&url)).await?.json().await.map_err(|_| unreadable("the machine"))?;
        if current["config"]["image"].as_str() == Some(image) {
            return Ok(());
        }
        let Some(config) = current.get_mut("config").and_then(Value::as_object_mut) else {
            return Err(unreadable("the machine's configuration"));
        };
        config.insert("image".into(), Value::String(image.to_owned()));
        let mut body = json!({ "config": config });
        if let Some(version) = current["instance_id"].as_str() {
            body["current_version"] = Value::String(version.to_owned());
        }
        self.send(self.http.post(&url).json(&body)).await.map(|_| ())
    }

    async fn releases(&self, limit: usize) -> CloudResult<Vec<Release>> {
        let body = json!({ "query": RELEASES_QUERY, "variables": { "appName": self.app, "limit": limit } });
        let answer: Value = self
            .send(self.http.post(&self.graphql_url).json(&body))
            .await?
            .json()
            .await
            .map_err(|_| unreadable("releases"))?;
        if let Some(error) = answer["errors"][0]["message"].as_str() {
            return Err(CloudError::Unavailable(format!("Fly.io refused the releases query: {error}")));
        }
        let nodes: Vec<ReleaseNode> = serde_json::from_value(answer["data"]["app"]["releases"]["nodes"].clone())
            .map_err(|_| unreadable("releases"))?;
        Ok(nodes
            .into_iter()
            .map(|n| Release {
                version: n.version,
                status: n.status.unwrap_or_default(),
                description: n.description.unwrap_or_default(),
                image: n.image_ref.filter(|i| !i.is_empty()),
                by: n.user.and_then(|u| u.name.filter(|n| !n.is_empty()).or(u.email)),
                at: n.created_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_of_an_image_reference_is_read_where_it_names_one() {
        assert_eq!(tag_in("registry.fly.io/drop-staging:b2e9f14").as_deref(), Some("b2e9f14"));
        assert_eq!(tag_in("localhost:5000/drop:7f3c2a1").as_deref(), Some("7f3c2a1"));
        assert_eq!(tag_in("localhost:5000/drop"), None, "a registry's port is not a tag");
        assert_eq!(tag_in("registry.fly.io/drop-staging@sha256:ab"), None);
        assert_eq!(tag_in("registry.fly.io/drop-staging:c0ffee4@sha256:ab").as_deref(), Some("c0ffee4"));
    }
}

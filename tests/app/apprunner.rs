//! A recorded App Runner for the AWS adapter (moto has none): the JSON 1.0 protocol
//! (`POST /` with `X-Amz-Target: AppRunner.<Operation>`) with responses shaped as App Runner
//! sends them, a service whose operations take a moment (OPERATION_IN_PROGRESS, then RUNNING),
//! and the app's `/api/health` reporting the version of the image that runs. Every call is
//! counted, so tests can prove a side effect happened once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub const SERVICE_ARN: &str =
    "arn:aws:apprunner:eu-west-1:324480209768:service/drop-web/8e45b0d335304487a1880f4e32d6aeec";

struct Op {
    id: String,
    kind: &'static str,
    started: f64,
    ends: Instant,
    ended: Option<f64>,
    /// What the service looks like once the operation is done.
    image: Option<String>,
    paused: Option<bool>,
    scaling: Option<String>,
}

struct Service {
    image: String,
    paused: bool,
    scaling_arn: String,
    ops: Vec<Op>,
    configs: HashMap<String, (i64, i64)>,
    calls: HashMap<String, usize>,
    /// image reference (by digest) -> tag, as ECR knows it.
    tags: HashMap<String, String>,
    took: Duration,
}

#[derive(Clone)]
pub struct MockAppRunner {
    inner: Arc<Mutex<Service>>,
    pub url: String,
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

impl Service {
    fn settle(&mut self) {
        let mut changes = Vec::new();
        for op in self.ops.iter_mut().filter(|o| o.ended.is_none() && o.ends <= Instant::now()) {
            op.ended = Some(now());
            changes.push((op.image.clone(), op.paused, op.scaling.clone()));
        }
        for (image, paused, scaling) in changes {
            if let Some(image) = image {
                self.image = image;
            }
            if let Some(paused) = paused {
                self.paused = paused;
            }
            if let Some(arn) = scaling {
                self.scaling_arn = arn;
            }
        }
    }

    fn busy(&self) -> bool {
        self.ops.iter().any(|o| o.ended.is_none())
    }

    fn status(&self) -> &'static str {
        if self.busy() {
            "OPERATION_IN_PROGRESS"
        } else if self.paused {
            "PAUSED"
        } else {
            "RUNNING"
        }
    }

    fn describe(&self) -> Value {
        json!({
            "ServiceName": "drop-web", "ServiceId": "8e45b0d335304487a1880f4e32d6aeec", "ServiceArn": SERVICE_ARN,
            "ServiceUrl": "abc123.eu-west-1.awsapprunner.com", "CreatedAt": 1.7e9, "UpdatedAt": now(), "Status": self.status(),
            "SourceConfiguration": {
                "ImageRepository": { "ImageIdentifier": self.image, "ImageRepositoryType": "ECR",
                                     "ImageConfiguration": { "Port": "8080" } },
                "AutoDeploymentsEnabled": false,
                "AuthenticationConfiguration": { "AccessRoleArn": "arn:aws:iam::324480209768:role/drop-apprunner-ecr" }
            },
            "InstanceConfiguration": { "Cpu": "1024", "Memory": "2048" },
            "AutoScalingConfigurationSummary": { "AutoScalingConfigurationArn": self.scaling_arn,
                "AutoScalingConfigurationName": "drop-web", "AutoScalingConfigurationRevision": 1 },
            "NetworkConfiguration": { "EgressConfiguration": { "EgressType": "DEFAULT" } }
        })
    }

    fn start(
        &mut self,
        kind: &'static str,
        image: Option<String>,
        paused: Option<bool>,
        scaling: Option<String>,
    ) -> Result<String, Value> {
        if self.busy() {
            return Err(
                json!({ "__type": "InvalidStateException", "message": "Service is in OPERATION_IN_PROGRESS state" }),
            );
        }
        let id = format!("op-{}", self.ops.len() + 1);
        self.ops.push(Op {
            id: id.clone(),
            kind,
            started: now(),
            ends: Instant::now() + self.took,
            ended: None,
            image,
            paused,
            scaling,
        });
        Ok(id)
    }

    fn scaling_config(&self, arn: &str) -> Value {
        let (min, max) = self.configs.get(arn).copied().unwrap_or((1, 25));
        json!({ "AutoScalingConfigurationArn": arn, "AutoScalingConfigurationName": "drop-web", "AutoScalingConfigurationRevision": 1,
                "Latest": true, "Status": "ACTIVE", "MinSize": min, "MaxSize": max, "MaxConcurrency": 100, "CreatedAt": 1.7e9 })
    }
}

async fn handle(
    State(mock): State<MockAppRunner>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("AppRunner.")
        .to_owned();
    let input: Value = serde_json::from_str(&body).unwrap_or_default();
    let mut s = mock.inner.lock().unwrap();
    *s.calls.entry(target.clone()).or_default() += 1;
    s.settle();
    let answer = match target.as_str() {
        "DescribeService" => Ok(json!({ "Service": s.describe() })),
        "ListOperations" => {
            let list: Vec<Value> = s.ops.iter().rev().map(|o| json!({
                "Id": o.id, "Type": o.kind, "Status": if o.ended.is_some() { "SUCCEEDED" } else { "IN_PROGRESS" },
                "TargetArn": SERVICE_ARN, "StartedAt": o.started, "EndedAt": o.ended, "UpdatedAt": now()
            })).collect();
            Ok(json!({ "OperationSummaryList": list }))
        }
        "StartDeployment" => s.start("START_DEPLOYMENT", None, None, None).map(|id| json!({ "OperationId": id })),
        "UpdateService" => {
            let image = input["SourceConfiguration"]["ImageRepository"]["ImageIdentifier"].as_str().map(str::to_owned);
            let kept = input["SourceConfiguration"]["AuthenticationConfiguration"]["AccessRoleArn"].as_str();
            if image.is_some() && kept.is_none() {
                Err(
                    json!({ "__type": "InvalidRequestException", "message": "AccessRoleArn is required for a private ECR image" }),
                )
            } else {
                let scaling = input["AutoScalingConfigurationArn"].as_str().map(str::to_owned);
                s.start("UPDATE_SERVICE", image, None, scaling)
                    .map(|id| json!({ "Service": s.describe(), "OperationId": id }))
            }
        }
        "PauseService" => s
            .start("PAUSE_SERVICE", None, Some(true), None)
            .map(|id| json!({ "Service": s.describe(), "OperationId": id })),
        "ResumeService" => s
            .start("RESUME_SERVICE", None, Some(false), None)
            .map(|id| json!({ "Service": s.describe(), "OperationId": id })),
        "CreateAutoScalingConfiguration" => {
            let arn = format!(
                "arn:aws:apprunner:eu-west-1:324480209768:autoscalingconfiguration/{}/1/{}",
                input["AutoScalingConfigurationName"].as_str().unwrap_or("x"),
                s.configs.len()
            );
            let sizes = (input["MinSize"].as_i64().unwrap_or(1), input["MaxSize"].as_i64().unwrap_or(25));
            s.configs.insert(arn.clone(), sizes);
            Ok(json!({ "AutoScalingConfiguration": s.scaling_config(&arn) }))
        }
        "DescribeAutoScalingConfiguration" => {
            let arn = input["AutoScalingConfigurationArn"].as_str().unwrap_or_default().to_owned();
            Ok(json!({ "AutoScalingConfiguration": s.scaling_config(&arn) }))
        }
        other => Err(json!({ "__type": "InvalidRequestException", "message": format!("not recorded: {other}") })),
    };
    let content = [("content-type", "application/x-amz-json-1.0")];
    match answer {
        Ok(v) => (StatusCode::OK, content, v.to_string()),
        Err(e) => (StatusCode::BAD_REQUEST, content, e.to_string()),
    }
}

async fn health(State(mock): State<MockAppRunner>) -> (StatusCode, axum::Json<Value>) {
    let mut s = mock.inner.lock().unwrap();
    s.settle();
    if s.paused {
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "error": "paused" })));
    }
    let version =
        s.tags.get(&s.image).cloned().unwrap_or_else(|| s.image.rsplit(':').next().unwrap_or_default().to_owned());
    (
        StatusCode::OK,
        axum::Json(
            json!({ "status": "ok", "data": { "version": version, "uptime": 60, "checks": { "db": { "latencyMs": 12.0 } } } }),
        ),
    )
}

impl MockAppRunner {
    /// A service running `image`; operations take `took`. `tags` maps image references to
    /// the version the app reports when it runs them.
    pub async fn start(image: &str, tags: HashMap<String, String>, took: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut configs = HashMap::new();
        let default_arn =
            "arn:aws:apprunner:eu-west-1:324480209768:autoscalingconfiguration/DefaultConfiguration/1/x".to_owned();
        configs.insert(default_arn.clone(), (1, 25));
        let mock = MockAppRunner {
            inner: Arc::new(Mutex::new(Service {
                image: image.into(),
                paused: false,
                scaling_arn: default_arn,
                ops: vec![],
                configs,
                calls: HashMap::new(),
                tags,
                took,
            })),
            url,
        };
        let app = axum::Router::new()
            .route("/", axum::routing::post(handle))
            .route("/api/health", axum::routing::get(health))
            .with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        mock
    }

    pub fn calls(&self, operation: &str) -> usize {
        self.inner.lock().unwrap().calls.get(operation).copied().unwrap_or_default()
    }

    pub fn image(&self) -> String {
        let mut s = self.inner.lock().unwrap();
        s.settle();
        s.image.clone()
    }

    pub fn health_url(&self) -> String {
        format!("{}/api/health", self.url)
    }
}

/// The console over the AWS adapter, with App Runner recorded by `mock` and the app's health
/// served by it; signed in as on-call. The other services are wherever `config` points.
pub async fn console_on_aws(
    pool: sqlx::PgPool,
    mut config: dropops::config::Config,
    sdk: &aws_config::SdkConfig,
    mock: &MockAppRunner,
) -> crate::harness::TestApp {
    use dropops::cloud::{Cloud, aws::AwsCloud, http::HttpProbes};
    config.aws.endpoints.apprunner = Some(mock.url.clone());
    config.drop.apprunner_service_arn = Some(SERVICE_ARN.into());
    let aws = AwsCloud::new(sdk, &config);
    let health = mock.health_url();
    let app = crate::harness::TestApp::spawn_state(
        move |config| dropops::AppState::with_cloud(pool, config, Cloud::aws(aws, HttpProbes::new(Some(health), None))),
        config,
    )
    .await;
    app.sign_in_as("Ola Oncall", &["oncall"]).await;
    app
}

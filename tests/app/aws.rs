//! The AWS adapter over real HTTP: RDS, CloudWatch and CloudWatch Logs against moto (PyPI
//! `moto[server]`, started once per test run), App Runner against recorded responses served by
//! a local server (moto has no App Runner). Each test uses its own resource names.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_rds::config::Credentials;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use dropops::cloud::aws::AwsCloud;
use dropops::cloud::{AppRunner, AuditAnchors, CloudError, CloudWatch, LogQuery, Logs, Rds, Scaling, Secrets};
use dropops::config::Config;
use dropops::config::Secret;
use serde_json::json;

pub struct Moto {
    pub url: String,
    _server: Child,
}

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto server starts: ./scripts/test installs moto[server] from PyPI");
        for _ in 0..150 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { url: format!("http://127.0.0.1:{port}"), _server: server }
    })
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The SDK configured as production configures it, with test credentials.
pub async fn sdk() -> aws_config::SdkConfig {
    crate::harness::init();
    AwsCloud::sdk_loader(&Config::demo())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// The console configured for Drop, with every AWS service at `endpoint`.
pub fn config(endpoint: &str, db: &str, log_group: &str) -> Config {
    let mut c = Config::demo();
    c.aws.endpoints.rds = Some(endpoint.into());
    c.aws.endpoints.cloudwatch = Some(endpoint.into());
    c.aws.endpoints.logs = Some(endpoint.into());
    c.aws.endpoints.apprunner = Some(endpoint.into());
    c.drop.rds_instance = Some(db.into());
    c.drop.log_group = Some(log_group.into());
    c
}

pub async fn create_instance(sdk: &aws_config::SdkConfig, id: &str) {
    let rds = aws_sdk_rds::Client::from_conf(aws_sdk_rds::config::Builder::from(sdk).endpoint_url(&moto().url).build());
    rds.create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(50)
        .master_username("drop")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .expect("moto creates the instance");
    rds.create_db_snapshot()
        .db_instance_identifier(id)
        .db_snapshot_identifier(format!("{id}-manual-1"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn rds_status_and_snapshots_are_read_from_the_api() {
    let sdk = sdk().await;
    let db = unique("drop-db");
    create_instance(&sdk, &db).await;
    let aws = AwsCloud::new(&sdk, &config(&moto().url, &db, "/none"));
    let instance = aws.instance_status().await.unwrap();
    assert_eq!(instance.status, "available");
    assert!(instance.engine.starts_with("postgres"), "{}", instance.engine);
    assert_eq!(instance.allocated_gb, 50);
    let snapshots = aws.snapshots().await.unwrap();
    let manual = snapshots.iter().find(|s| s.id == format!("{db}-manual-1")).expect("the manual snapshot is listed");
    assert!(!manual.automated);
    // Where a drill would connect: the instance's endpoint.
    match aws.instance_endpoint(&db).await.unwrap() {
        Some(dropops::cloud::Endpoint::At { host, port }) => assert!(!host.is_empty() && port > 0, "{host}:{port}"),
        other => panic!("an endpoint, not {other:?}"),
    }
    assert_eq!(aws.instance_endpoint("no-such-instance").await.unwrap(), None);
}

#[tokio::test]
async fn a_missing_instance_is_explained() {
    let sdk = sdk().await;
    let aws = AwsCloud::new(&sdk, &config(&moto().url, "no-such-db", "/none"));
    let err = aws.instance_status().await.unwrap_err();
    assert_eq!(err, CloudError::Unavailable("RDS has no instance named no-such-db".into()));
}

#[tokio::test]
async fn free_storage_comes_from_cloudwatch() {
    let sdk = sdk().await;
    let db = unique("drop-db");
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    cw.put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("FreeStorageSpace")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder().name("DBInstanceIdentifier").value(&db).build(),
                )
                .value(1.5e9)
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(chrono::Utc::now().timestamp() - 60))
                .build(),
        )
        .send()
        .await
        .expect("moto takes the datapoint");
    let aws = AwsCloud::new(&sdk, &config(&moto().url, &db, "/none"));
    assert_eq!(aws.free_storage_bytes().await.unwrap(), 1.5e9);
    cw.put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("CPUUtilization")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder().name("DBInstanceIdentifier").value(&db).build(),
                )
                .value(87.5)
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(chrono::Utc::now().timestamp() - 60))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(aws.cpu_percent().await.unwrap(), 87.5);
    let other = AwsCloud::new(&sdk, &config(&moto().url, "silent-db", "/none"));
    assert!(other.free_storage_bytes().await.unwrap_err().to_string().contains("no FreeStorageSpace datapoint"));
}

#[tokio::test]
async fn log_events_are_filtered_newest_first() {
    let sdk = sdk().await;
    let group = unique("/aws/apprunner/drop-web/test");
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    logs.create_log_group().log_group_name(&group).send().await.unwrap();
    logs.create_log_stream().log_group_name(&group).log_stream_name("instance-1").send().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let event = |ms: i64, msg: &str| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(ms).message(msg).build().unwrap()
    };
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("instance-1")
        .log_events(event(now - 3000, "error payout failed"))
        .log_events(event(now - 2000, "info request completed"))
        .log_events(event(now - 1000, "error BankID timeout"))
        .send()
        .await
        .unwrap();
    let aws = AwsCloud::new(&sdk, &config(&moto().url, "db", &group));
    let query = LogQuery {
        pattern: "error".into(),
        start: chrono::Utc::now() - chrono::Duration::minutes(5),
        end: chrono::Utc::now(),
        limit: 10,
    };
    let found = aws.filter_events(&query).await.unwrap();
    let messages: Vec<&str> = found.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["error BankID timeout", "error payout failed"]);
}

/// App Runner's JSON 1.0 protocol: `POST /` with `X-Amz-Target: AppRunner.<Operation>`.
#[derive(Clone, Default)]
struct Recording {
    throttle: bool,
    calls: Arc<AtomicUsize>,
}

async fn app_runner_recording(
    State(rec): State<Recording>,
    headers: HeaderMap,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    rec.calls.fetch_add(1, Ordering::SeqCst);
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let target = if rec.throttle { "throttled" } else { target };
    let content = [("content-type", "application/x-amz-json-1.0")];
    match target {
        "AppRunner.DescribeService" => (StatusCode::OK, content, json!({ "Service": {
            "ServiceName": "drop-web", "ServiceId": "8e45b0d335304487a1880f4e32d6aeec",
            "ServiceArn": "arn:aws:apprunner:eu-west-1:324480209768:service/drop-web/8e45b0d335304487a1880f4e32d6aeec",
            "ServiceUrl": "abc123.eu-west-1.awsapprunner.com", "CreatedAt": 1.7e9, "UpdatedAt": 1.7e9, "Status": "RUNNING",
            "SourceConfiguration": { "ImageRepository": { "ImageIdentifier": "324480209768.dkr.ecr.eu-west-1.amazonaws.com/drop-web:7f3c2a1", "ImageRepositoryType": "ECR",
                "ImageConfiguration": { "Port": "8080",
                    "RuntimeEnvironmentVariables": { "NODE_ENV": "production", "BANKID_ISSUER": "https://auth.bankid.no" },
                    "RuntimeEnvironmentSecrets": { "BANKID_CLIENT_SECRET": "arn:aws:secretsmanager:eu-west-1:324480209768:secret:bankid-AbCdEf", "DATABASE_URL": "arn:aws:secretsmanager:eu-west-1:324480209768:secret:db-XyZ" } } } },
            "InstanceConfiguration": { "Cpu": "1024", "Memory": "2048" },
            "AutoScalingConfigurationSummary": { "AutoScalingConfigurationArn": "arn:aws:apprunner:eu-west-1:324480209768:autoscalingconfiguration/default/1/x", "AutoScalingConfigurationName": "default", "AutoScalingConfigurationRevision": 1 },
            "NetworkConfiguration": { "EgressConfiguration": { "EgressType": "DEFAULT" } }
        }, "OperationId": "x" }).to_string()),
        "AppRunner.ListOperations" => (StatusCode::OK, content, json!({ "OperationSummaryList": [
            { "Id": "op-2", "Type": "START_DEPLOYMENT", "Status": "SUCCEEDED", "TargetArn": "arn", "StartedAt": 1.7e9, "EndedAt": 1.7e9 + 240.0 }
        ] }).to_string()),
        _ => (StatusCode::BAD_REQUEST, content, json!({ "__type": "ThrottlingException", "message": "Rate exceeded" }).to_string()),
    }
}

async fn recorded_app_runner(rec: Recording) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", axum::routing::post(app_runner_recording)).with_state(rec);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn app_runner_status_and_operations_are_read() {
    let sdk = sdk().await;
    let url = recorded_app_runner(Recording::default()).await;
    let mut c = config(&url, "db", "/none");
    c.drop.apprunner_service_arn =
        Some("arn:aws:apprunner:eu-west-1:324480209768:service/drop-web/8e45b0d335304487a1880f4e32d6aeec".into());
    let aws = AwsCloud::new(&sdk, &c);
    let status = aws.service_status().await.unwrap();
    assert_eq!(status.status, "RUNNING");
    assert!(status.image.ends_with("drop-web:7f3c2a1"));
    let ops = aws.recent_operations().await.unwrap();
    assert_eq!((ops[0].kind.as_str(), ops[0].status.as_str()), ("START_DEPLOYMENT", "SUCCEEDED"));
    assert_eq!((ops[0].ended_at.unwrap() - ops[0].started_at).num_seconds(), 240);
    // Names only, from the runtime configuration's variables and secrets: never a value.
    let names = aws.environment_names().await.unwrap();
    assert_eq!(names, ["BANKID_CLIENT_SECRET", "BANKID_ISSUER", "DATABASE_URL", "NODE_ENV"]);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_then_explained() {
    let sdk = sdk().await;
    let rec = Recording { throttle: true, ..Default::default() };
    let url = recorded_app_runner(rec.clone()).await;
    let aws = AwsCloud::new(&sdk, &config(&url, "db", "/none"));
    let err = aws.service_status().await.unwrap_err();
    assert_eq!(err, CloudError::Throttled);
    assert_eq!(err.to_string(), "AWS is throttling requests; the next refresh will try again");
    assert_eq!(rec.calls.load(Ordering::SeqCst), 3, "three attempts, then give up");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_explained() {
    let sdk = sdk().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = AwsCloud::new(&sdk, &config(&format!("http://127.0.0.1:{port}"), "db", "/none"));
    let err = dead.instance_status().await.unwrap_err();
    assert!(err.to_string().starts_with("RDS could not be reached"), "{err}");
}

async fn health_endpoint(status: StatusCode, body: serde_json::Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/health", listener.local_addr().unwrap());
    let app =
        axum::Router::new().route("/api/health", axum::routing::get(move || async move { (status, axum::Json(body)) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[sqlx::test(migrator = "dropops::db::DEMO_MIGRATOR")]
async fn the_dashboard_reads_production_through_the_aws_adapter(pool: sqlx::PgPool) {
    let sdk = sdk().await;
    let db = unique("drop-db");
    create_instance(&sdk, &db).await;
    let healthy = json!({ "status": "ok", "data": { "version": "7f3c2a1", "uptime": 7200, "checks": { "db": { "latencyMs": 140.0 } } } });
    let prod = health_endpoint(StatusCode::OK, healthy).await;
    let staging = health_endpoint(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "database unreachable" })).await;
    let mut c = config(&moto().url, &db, "/none");
    c.mode = dropops::config::Mode::Production;
    c.drop.apprunner_service_arn = Some("arn:aws:apprunner:eu-west-1:324480209768:service/drop-web/x".into());
    let cloud = dropops::cloud::Cloud::aws(
        AwsCloud::new(&sdk, &c),
        dropops::cloud::http::HttpProbes::new(Some(prod), Some(staging)),
    );
    let state = dropops::AppState::with_cloud(pool, c, cloud);
    let cards = dropops::health::read_all(&state).await;
    let card = |key: &str| cards.production.iter().chain(&cards.staging).find(|c| c.key == key).unwrap().clone();
    use dropops::health::Tone;
    assert_eq!(card("app").tone, Tone::Red, "140 ms is over the 100 ms threshold");
    assert!(card("app").detail.contains("7f3c2a1"));
    assert_eq!(card("rds").tone, Tone::Green, "{}", card("rds").detail);
    assert_eq!(card("staging-app").tone, Tone::Red, "a 503 from health is a definite red");
    assert!(card("staging-app").detail.contains("503: database unreachable"));
    assert_eq!(card("storage").tone, Tone::Unknown, "no datapoint yet: {}", card("storage").detail);
    assert_eq!(card("apprunner").tone, Tone::Unknown, "moto has no App Runner: {}", card("apprunner").detail);
}

#[tokio::test]
async fn ecr_images_and_secret_dates_are_read() {
    let sdk = sdk().await;
    let repo = unique("drop-web");
    let ecr =
        aws_sdk_ecr::Client::from_conf(aws_sdk_ecr::config::Builder::from(&sdk).endpoint_url(&moto().url).build());
    ecr.create_repository().repository_name(&repo).send().await.unwrap();
    let manifest = json!({ "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7" },
        "layers": [] });
    ecr.put_image()
        .repository_name(&repo)
        .image_manifest(manifest.to_string())
        .image_tag("7f3c2a1")
        .send()
        .await
        .unwrap();
    let secret = unique("drop/production/jwt-secret");
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    sm.create_secret().name(&secret).secret_string("not-a-real-secret").send().await.unwrap();

    let mut c = config(&moto().url, "db", "/none");
    c.aws.endpoints.ecr = Some(moto().url.clone());
    c.aws.endpoints.secretsmanager = Some(moto().url.clone());
    c.drop.ecr_repository = Some(repo);
    let aws = AwsCloud::new(&sdk, &c);
    let images = dropops::cloud::Ecr::images(&aws).await.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].tags, ["7f3c2a1"]);
    assert!(images[0].digest.starts_with("sha256:"));
    let info = dropops::cloud::Secrets::secret_info(&aws, &secret).await.unwrap();
    assert!(info.last_changed.is_some_and(|t| chrono::Utc::now() - t < chrono::Duration::minutes(5)));
    let missing = dropops::cloud::Secrets::secret_info(&aws, "no/such/secret").await.unwrap_err();
    assert!(missing.to_string().contains("ResourceNotFoundException"), "{missing}");
}

#[tokio::test]
async fn app_runner_changes_are_operations_that_end_running() {
    let sdk = sdk().await;
    let repo = "324480209768.dkr.ecr.eu-west-1.amazonaws.com/drop-web";
    let mock = crate::apprunner::MockAppRunner::start(
        &format!("{repo}:7f3c2a1"),
        Default::default(),
        Duration::from_millis(1000),
    )
    .await;
    let mut c = config(&mock.url, "db", "/none");
    c.drop.apprunner_service_arn = Some(crate::apprunner::SERVICE_ARN.into());
    let aws = AwsCloud::new(&sdk, &c);
    let wait = || tokio::time::sleep(Duration::from_millis(1100));

    let op = aws
        .deploy_image(&format!("{repo}:b2e9f14"))
        .await
        .expect("the image change is accepted (the access role is kept)");
    assert_eq!(aws.service_status().await.unwrap().status, "OPERATION_IN_PROGRESS");
    assert!(aws.operation(&op).await.unwrap().expect("listed").in_progress());
    let busy = aws.start_deployment().await.unwrap_err();
    assert!(busy.to_string().contains("InvalidStateException"), "{busy}");
    wait().await;
    let status = aws.service_status().await.unwrap();
    assert_eq!(status.status, "RUNNING");
    assert!(status.image.ends_with(":b2e9f14"));
    assert!(aws.operation(&op).await.unwrap().unwrap().succeeded());

    let restart = aws.start_deployment().await.unwrap();
    wait().await;
    assert_eq!(aws.operation(&restart).await.unwrap().unwrap().kind, "START_DEPLOYMENT");

    aws.pause().await.unwrap();
    wait().await;
    assert_eq!(aws.service_status().await.unwrap().status, "PAUSED");
    aws.resume().await.unwrap();
    wait().await;
    assert_eq!(aws.service_status().await.unwrap().status, "RUNNING");

    assert_eq!(aws.scaling().await.unwrap(), Scaling { min: 1, max: 25 });
    aws.set_scaling(Scaling { min: 2, max: 6 }).await.unwrap();
    wait().await;
    assert_eq!(aws.scaling().await.unwrap(), Scaling { min: 2, max: 6 });
    assert_eq!(mock.calls("UpdateService"), 2);
    assert_eq!(mock.calls("PauseService"), 1);
}

#[tokio::test]
async fn rds_snapshots_passwords_and_restore_drills() {
    let sdk = sdk().await;
    let db = unique("drop-db");
    create_instance(&sdk, &db).await;
    let aws = AwsCloud::new(&sdk, &config(&moto().url, &db, "/none"));
    let id = format!("{db}-pre-deploy-20261129-0130");
    aws.create_snapshot(&id).await.unwrap();
    aws.create_snapshot(&id).await.expect("asking again for the same snapshot is not an error");
    let snap = aws.snapshot(&id).await.unwrap().expect("the snapshot is there");
    assert!(!snap.automated);
    assert_eq!(aws.snapshots().await.unwrap().iter().filter(|s| s.id == id).count(), 1, "one snapshot, not two");
    assert!(aws.snapshot("no-such-snapshot").await.unwrap().is_none());

    aws.set_master_password(&Secret::new("bmV3LXBhc3N3b3JkLWZvci10ZXN0cw")).await.unwrap();

    let drill = unique("drop-db-restore-drill");
    aws.restore_to_instance(&id, &drill).await.unwrap();
    aws.restore_to_instance(&id, &drill).await.expect("asking again is not an error");
    assert!(aws.instance_named(&drill).await.unwrap().is_some());
    aws.delete_instance(&drill).await.unwrap();
    aws.delete_instance(&drill).await.expect("deleting what is gone is not an error");
    assert!(aws.instance_named(&drill).await.unwrap().is_none());
    let refused = aws.delete_instance(&db).await.unwrap_err();
    assert!(refused.to_string().contains("does not delete Drop's database"));
    assert!(aws.instance_named(&db).await.unwrap().is_some());
}

#[tokio::test]
async fn secret_versions_are_staged_then_promoted() {
    let sdk = sdk().await;
    let secret = unique("drop/production/jwt-secret");
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    sm.create_secret().name(&secret).secret_string("old-value").send().await.unwrap();
    let mut c = config(&moto().url, "db", "/none");
    c.aws.endpoints.secretsmanager = Some(moto().url.clone());
    let aws = AwsCloud::new(&sdk, &c);
    let version = uuid::Uuid::new_v4().to_string();
    let new = Secret::new("new-value");
    aws.stage_value(&secret, &version, &new).await.unwrap();
    aws.stage_value(&secret, &version, &new).await.expect("staging the same version again is not an error");
    assert_eq!(
        aws.value(&secret, None).await.unwrap().unwrap().expose(),
        "old-value",
        "the app still reads the old value"
    );
    assert_eq!(aws.value(&secret, Some(&version)).await.unwrap().unwrap().expose(), "new-value");
    assert!(aws.value(&secret, Some(&uuid::Uuid::new_v4().to_string())).await.unwrap().is_none());
    aws.promote(&secret, &version).await.unwrap();
    aws.promote(&secret, &version).await.expect("promoting the current version again changes nothing");
    assert_eq!(aws.value(&secret, None).await.unwrap().unwrap().expose(), "new-value");
}

/// A TLS server with the fixture certificate (valid until the date asserted below).
async fn tls_server() -> String {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(include_bytes!("../fixtures/tls/cert.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/tls/key.pem")).unwrap();
    let config =
        tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    format!("https://localhost:{port}/")
}

#[tokio::test]
async fn the_certificate_probe_reads_the_expiry_of_the_served_certificate() {
    use dropops::cloud::Probes;
    use dropops::cloud::http::HttpProbes;
    crate::harness::init();
    let url = tls_server().await;
    let trusted =
        HttpProbes::new(None, None).with_certificate_at(url.clone(), Some(include_bytes!("../fixtures/tls/cert.pem")));
    let expiry = trusted.certificate_expiry().await.unwrap();
    assert_eq!(expiry.to_rfc3339(), "2036-11-26T01:15:52+00:00");
    // Not signed by a public authority: said in words, not a guess.
    let untrusted = HttpProbes::new(None, None).with_certificate_at(url, None);
    let err = untrusted.certificate_expiry().await.unwrap_err();
    assert!(err.to_string().contains("TLS connection") && err.to_string().to_lowercase().contains("unknown"), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = HttpProbes::new(None, None).with_certificate_at(format!("https://localhost:{port}/"), None);
    assert!(closed.certificate_expiry().await.is_err());
}

#[tokio::test]
async fn application_metrics_come_from_app_runner_in_cloudwatch() {
    let sdk = sdk().await;
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    let service = unique("drop-web");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let datum = |metric: &str, value: f64| {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        MetricDatum::builder()
            .metric_name(metric)
            .dimensions(Dimension::builder().name("ServiceName").value(&service).build())
            .dimensions(Dimension::builder().name("ServiceID").value(&id).build())
            .value(value)
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(chrono::Utc::now().timestamp() - 120))
            .build()
    };
    cw.put_metric_data()
        .namespace("AWS/AppRunner")
        .metric_data(datum("Requests", 1000.0))
        .metric_data(datum("Requests", 500.0))
        .metric_data(datum("5xxStatusResponses", 30.0))
        .metric_data(datum("RequestLatency", 200.0))
        .metric_data(datum("RequestLatency", 400.0))
        .send()
        .await
        .unwrap();
    let mut c = config(&moto().url, "db", "/none");
    c.drop.apprunner_service_arn = Some(format!("arn:aws:apprunner:eu-west-1:324480209768:service/{service}/{id}"));
    let aws = AwsCloud::new(&sdk, &c);
    let m = aws.app_metrics().await.unwrap().expect("metrics are published");
    assert_eq!((m.requests, m.errors_5xx), (1500.0, 30.0));
    assert_eq!(m.error_percent(), 2.0);
    assert_eq!((m.latency_ms, m.latency_is_p99), (300.0, false), "moto computes no percentiles: the average stands in");
    // The service's capacity: its instances, their CPU and memory.
    cw.put_metric_data()
        .namespace("AWS/AppRunner")
        .metric_data(datum("ActiveInstances", 3.0))
        .metric_data(datum("CPUUtilization", 71.5))
        .metric_data(datum("MemoryUtilization", 40.0))
        .send()
        .await
        .unwrap();
    let capacity = aws.capacity().await.unwrap().expect("instance metrics are published");
    assert_eq!(
        (capacity.active_instances, capacity.cpu_percent, capacity.memory_percent),
        (3.0, Some(71.5), Some(40.0))
    );
    // Per UTC day, for the SLA report: yesterday and today (the datapoints are two minutes old).
    let yesterday =
        (chrono::Utc::now() - chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let days = aws.daily_app_metrics(yesterday, 2).await.unwrap();
    assert_eq!(days.iter().map(|d| d.requests).sum::<f64>(), 1500.0, "{days:?}");
    assert_eq!(days.iter().map(|d| d.errors_5xx).sum::<f64>(), 30.0);
    c.drop.apprunner_service_arn = Some(format!("arn:aws:apprunner:eu-west-1:324480209768:service/quiet/{id}"));
    assert!(AwsCloud::new(&sdk, &c).app_metrics().await.unwrap().is_none(), "nothing published: no data, not zero");

    use aws_sdk_cloudwatch::types::Datapoint;
    let p99 = [
        Datapoint::builder().average(100.0).extended_statistics("p99", 850.0).build(),
        Datapoint::builder().average(120.0).extended_statistics("p99", 1250.0).build(),
    ];
    assert_eq!(dropops::cloud::aws::worst_latency(&p99), (1250.0, true), "the worst p99 of the window");
}

#[tokio::test]
async fn audit_anchors_are_appended_to_and_read_back_from_cloudwatch_logs() {
    let sdk = sdk().await;
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(&sdk).endpoint_url(&moto().url).build(),
    );
    let group = unique("/dropops/audit-anchors");
    logs.create_log_group().log_group_name(&group).send().await.unwrap();
    let mut c = config(&moto().url, "db", "/none");
    c.audit.anchor_log_group = Some(group.clone());
    let aws = AwsCloud::new(&sdk, &c);
    assert_eq!(aws.published().await.unwrap(), Vec::<String>::new(), "no stream yet: nothing published");
    // The first publication creates the stream; later ones append to it.
    aws.publish(r#"{"seq":1}"#).await.unwrap();
    aws.publish(r#"{"seq":2}"#).await.unwrap();
    assert_eq!(aws.published().await.unwrap(), [r#"{"seq":1}"#, r#"{"seq":2}"#]);
    let streams = logs.describe_log_streams().log_group_name(&group).send().await.unwrap();
    let names: Vec<&str> = streams.log_streams().iter().filter_map(|s| s.log_stream_name()).collect();
    assert_eq!(names, ["audit-chain-heads"]);

    // A group that does not exist (deleted, or never created) is an error, not silence.
    let mut gone = c.clone();
    gone.audit.anchor_log_group = Some(unique("/dropops/missing"));
    let err = AwsCloud::new(&sdk, &gone).publish("x").await.unwrap_err();
    assert!(err.to_string().contains("CloudWatch Logs"), "{err}");
}

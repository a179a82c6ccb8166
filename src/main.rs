//! `dropops`: Drop's operations console. See `dropops --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use dropops::cloud::Cloud;
use dropops::cloud::aws::AwsCloud;
use dropops::cloud::http::HttpProbes;
use dropops::config::{Config, LogFormat, Mode};
use dropops::db::{self, Database};
use dropops::demo::{self, SeedOutcome};
use dropops::{AppState, app};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Drop's operations console: health, deployments, compliance review, secret rotation and the
/// audit trail, with every runbook procedure behind an audited button.
///
/// With nothing configured it runs in demo mode: an embedded PostgreSQL under ./.dropops/,
/// simulated AWS, demo data, on http://127.0.0.1:8080.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// TOML configuration file (see config/drop.example.toml). Every setting can also be set
    /// with DROPOPS_<SECTION>__<KEY> environment variables; DATABASE_URL is honoured.
    #[arg(long, global = true, env = "DROPOPS_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console (the default): apply migrations, seed demo data in demo mode, listen.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Fill an empty database with the deterministic demo dataset (refuses real data).
    SeedDemo {
        /// Seed of the generator: the same seed gives the same people and numbers.
        #[arg(long, default_value_t = demo::DEFAULT_SEED)]
        seed: u64,
    },
    /// Print the effective configuration with secrets redacted; exit non-zero listing every
    /// missing or invalid setting.
    CheckConfig,
    /// Check Drop's database against the console's schema contract as the configured role:
    /// every required column missing or of the wrong type, the console's own additions absent,
    /// every optional column absent (and what degrades), every grant and server role the role
    /// lacks, and the recommended indexes that are absent. Exit 2 when the console cannot serve.
    CheckDb,
    /// Grant a login role exactly what the serving console needs (run as the tables' owner,
    /// after `migrate`): it owns nothing, appends to the audit log and cannot change it.
    GrantServingRole {
        /// The role the console serves as, e.g. dropops_app.
        role: String,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit log's hash chain, streaming, and report entries a second; exit 1
    /// naming the first broken entry. Recorded in the audit log.
    Verify {
        /// Only the entries written since the last verification that passed (its checkpoint),
        /// instead of the whole chain from the first entry.
        #[arg(long)]
        since_checkpoint: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        print!("{}", config.redacted_toml());
        eprintln!("configuration ok ({:?} mode)", config.mode);
        return ExitCode::SUCCESS;
    }
    init_tracing(&config);
    // Two rustls back-ends are linked in; name the process-wide one before any client starts.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::CheckDb) = cli.command {
        return runtime.block_on(check_db(config));
    }
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = describe(&e), "dropops stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,wasmer=warn,pglite_oxide=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let result = match command {
        Command::Migrate => migrate(&database, config.mode).await.map(|()| {
            tracing::info!("migrations applied");
        }),
        Command::SeedDemo { seed } => seed_demo(&database, seed).await,
        Command::Serve => serve(&database, config).await,
        Command::CheckConfig | Command::CheckDb => Ok(()),
        Command::GrantServingRole { role } => grant_serving_role(&database, &role).await,
        Command::Audit { command: AuditCommand::Verify { since_checkpoint } } => {
            verify_audit(&database, &config, since_checkpoint).await
        }
    };
    database.close().await;
    result
}

/// `check-db`: one line per finding, worst first; exit 2 when the console cannot serve, 1
/// when the database cannot be reached or inspected.
async fn check_db(config: Config) -> ExitCode {
    let database = match Database::open(&config).await {
        Ok(database) => database,
        Err(e) => {
            eprintln!("{}", describe(&e));
            return ExitCode::FAILURE;
        }
    };
    let inspected = dropops::contract::inspect(&database.pool).await;
    database.close().await;
    let report = match inspected {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cannot inspect the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let lines = report.lines();
    for line in &lines {
        println!("{:<9}{}", line.severity.label(), line.text);
    }
    let fatal = lines.iter().filter(|l| l.severity.fatal()).count();
    let checked = dropops::contract::COLUMNS.len();
    if fatal > 0 {
        let problems = if fatal == 1 { "1 problem stops".to_owned() } else { format!("{fatal} problems stop") };
        eprintln!("{problems} the console from serving ({checked} columns checked)");
        ExitCode::from(2)
    } else {
        eprintln!(
            "Drop's database serves the console: {checked} columns checked, {} findings that only narrow or slow it",
            lines.len()
        );
        ExitCode::SUCCESS
    }
}

/// `grant-serving-role`: a change to who may do what, so audited like any other (intent
/// first; if it cannot be written, nothing is granted).
async fn grant_serving_role(database: &Database, role: &str) -> anyhow::Result<()> {
    use dropops::audit::{self, Actor, AuditContext, Intent, Outcome};
    let ctx = AuditContext { actor: Actor::command_line(), meta: Default::default() };
    let intent = Intent {
        action: "serving_role_granted",
        resource_type: dropops::audit::Resource::DatabaseRole,
        resource_id: role.to_owned(),
        reason: None,
        details: serde_json::json!({}),
    };
    let token = audit::intent_committed(&database.pool, &ctx, intent).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let granted = db::grant_serving_role(&database.pool, role).await;
    let outcome = match &granted {
        Ok(()) => Outcome::Succeeded,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    let mut conn = database.pool.acquire().await?;
    audit::outcome(&mut conn, &ctx, token, outcome).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    granted?;
    println!("{role} may serve the console: it owns nothing and can only append to the audit log");
    Ok(())
}

/// Where this configuration publishes audit anchors: CloudWatch Logs in production, the
/// anchor file in demo.
async fn anchors(config: &Config) -> std::sync::Arc<dyn dropops::cloud::AuditAnchors> {
    match config.mode {
        Mode::Production => std::sync::Arc::new(AwsCloud::new(&AwsCloud::sdk_config(config).await, config)),
        Mode::Demo => dropops::cloud::file_anchors(config),
    }
}

async fn verify_audit(database: &Database, config: &Config, since_checkpoint: bool) -> anyhow::Result<()> {
    use dropops::audit::Chain;
    use dropops::audit::verify::{self, Scope};
    let scope = if since_checkpoint { Scope::SinceCheckpoint } else { Scope::Full };
    let ctx = dropops::audit::AuditContext { actor: dropops::audit::Actor::command_line(), meta: Default::default() };
    let mut broken = Vec::new();
    // Both chains: whoever runs this has the database, and so every row, in hand.
    for chain in Chain::ALL {
        let report = verify::run(&database.pool, &ctx, chain, scope).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let v = &report.verification;
        let (name, rate) = (chain.as_str(), format!("{:.0} entries/s", report.rows_per_second()));
        match (&v.problem, v.broken_id) {
            (None, _) => println!(
                "{name} chain intact: {} entries checked (numbers {} to {}), {rate}",
                v.rows,
                v.from_seq + 1,
                v.checked_seq
            ),
            (Some(problem), Some(id)) => {
                println!("{name} chain BROKEN at entry {id}: {problem} ({} entries checked, {rate})", v.rows);
                broken.push(format!("the {name} chain has been tampered with at entry {id}"));
            }
            (Some(problem), None) => {
                println!("{name} chain BROKEN: {problem} ({} entries checked, {rate})", v.rows);
                broken.push(format!("the {name} chain has been tampered with: {problem}"));
            }
        }
    }
    // A chain rewritten and recomputed by its owner verifies again; the published anchors
    // do not move with it.
    let anchors = anchors(config).await;
    let check = dropops::audit::anchor::check(&database.pool, anchors.as_ref(), config).await?;
    if check.problems.is_empty() {
        println!("anchors: {} published heads checked, each still matches the chain", check.checked);
    } else {
        for problem in &check.problems {
            println!("anchor MISMATCH: {problem}");
        }
        broken.push(format!("{} published anchors do not match the chains", check.problems.len()));
    }
    if !broken.is_empty() {
        anyhow::bail!("{}", broken.join("; "));
    }
    Ok(())
}

/// The console's migrations; in demo mode Drop's tables are first created from the fixture.
async fn migrate(database: &Database, mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::Demo => db::migrate_demo(&database.pool).await,
        Mode::Production => db::migrate(&database.pool).await,
    }
}

async fn seed_demo(database: &Database, seed: u64) -> anyhow::Result<()> {
    db::migrate_demo(&database.pool).await?;
    match demo::seed_if_empty(&database.pool, seed).await? {
        SeedOutcome::Seeded { users, transactions } => {
            tracing::info!(users, transactions, seed, "demo data seeded")
        }
        SeedOutcome::AlreadySeeded => tracing::info!("demo data already present; nothing to do"),
        SeedOutcome::RefusedRealData => {
            anyhow::bail!("the users table holds data the demo generator did not write; refusing to add fake people")
        }
    }
    Ok(())
}

async fn serve(database: &Database, config: Config) -> anyhow::Result<()> {
    // Bind first: a port in use is found before anything is written to the database.
    let listener =
        TcpListener::bind(config.bind).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    if config.migrate_on_start {
        migrate(database, config.mode).await?;
    } else if let Err(reason) = db::readiness(&database.pool).await {
        // Serve anyway: /health/ready reports it, and the owner can migrate without a restart.
        tracing::warn!(%reason, "database not migrated; run `dropops migrate` as the schema owner");
    }
    if config.mode == Mode::Demo {
        seed_demo(database, demo::DEFAULT_SEED).await?;
    }
    let mode = config.mode;
    let embedded = database.is_embedded();
    dropops::audit::spawn_reconciler(database.pool.clone(), config.audit.outcome_timeout);
    let state = match mode {
        Mode::Demo => AppState::new(database.pool.clone(), config),
        Mode::Production => {
            let sdk = AwsCloud::sdk_config(&config).await;
            let mut probes = HttpProbes::new(config.drop.health_url.clone(), config.drop.staging_health_url.clone());
            if let Some(domain) = &config.drop.public_domain {
                probes = probes.with_certificate(domain);
            }
            let cloud = Cloud::aws(AwsCloud::new(&sdk, &config), probes);
            AppState::with_cloud(database.pool.clone(), config, cloud)
        }
    };
    let state = match &database.probe {
        Some(probe) => state.with_probe_pool(probe.clone()),
        None => state,
    };
    // The embedded database serves one client, so it has no backends to fight: demo mode
    // shows a simulated busy server on the database page instead.
    let state = if mode == Mode::Demo && embedded {
        state.with_activity(Arc::new(dropops::database::activity::Simulated::new(chrono::Utc::now())))
    } else {
        state
    };
    // Drop's tables against the schema contract, once: pages degrade by it, readiness refuses
    // while a required column is missing. Said in the log too, for whoever starts the console.
    match state.contract().await {
        Ok(report) => {
            for problem in report.blocking() {
                tracing::error!(%problem, "schema contract: the console cannot serve (see `dropops check-db`)");
            }
            for degraded in report.degraded() {
                tracing::warn!(%degraded, "schema contract: optional column absent");
            }
        }
        Err(e) => tracing::warn!(error = %e, "schema contract not checked yet; readiness retries"),
    }
    dropops::audit::anchor::spawn_publisher(state.pool.clone(), state.cloud.anchors.clone(), state.config.clone());
    // Deploys, restarts and rotations: this replica's share of the runs (see runs::worker).
    let worker = dropops::runs::worker::Worker::new(state.clone()).spawn();
    // Slack: what runs, incidents and hand-offs queued is posted, with bounded retries.
    dropops::notify::spawn_courier(state.clone());
    dropops::health::spawn_overdue_announcer(state.clone());
    // Health changes for incident timelines: production's cards, once a minute.
    dropops::health::spawn_sampler(state.clone());
    tracing::info!(address = %format!("http://{}", listener.local_addr()?), ?mode, embedded, "dropops is listening");
    let (signalled, signal) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signalled.send(true);
    });
    // On SIGTERM the worker stops between steps and releases its leases at once, so another
    // replica continues the runs without waiting for them to lapse.
    let mut told = signal.clone();
    let handover = tokio::spawn(async move {
        let _ = told.wait_for(|stop| *stop).await;
        worker.stop(dropops::web::layers::SHUTDOWN_GRACE).await;
    });
    let mut told = signal;
    dropops::serve(listener, app(state), async move {
        let _ = told.wait_for(|stop| *stop).await;
    })
    .await?;
    tracing::info!("stopped accepting requests; shutting down");
    let _ = handover.await;
    Ok(())
}

/// An error and its causes in one line, each said once: sqlx and the migrator repeat their
/// source's message in their own ("…: permission denied: permission denied").
fn describe(e: &anyhow::Error) -> String {
    let mut said: Vec<String> = vec![];
    for cause in e.chain() {
        let text = cause.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
    }
    said.join(": ")
}

/// Ctrl-C or SIGTERM (what App Runner sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

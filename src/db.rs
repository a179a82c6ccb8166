//! The database: a pool on `DATABASE_URL`, or — with the `embedded-db` feature and no URL —
//! an in-process PostgreSQL (PGlite) under the data directory. Migrations are embedded.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::config::Config;

/// The `application_name` of the console's connections: the database page never signals them.
pub const APPLICATION_NAME: &str = "dropops";

/// The console's migrations (`migrations/`): its own schema and its triggers on Drop's
/// audit_log, nothing else of Drop's. What `dropops migrate` applies in production.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Drop's tables as the demo has them (`fixtures/dropapp/`: the runbook's shape, then the
/// optional columns and indexes), for demo mode and the tests only.
static DROPAPP_FIXTURE: Migrator = sqlx::migrate!("fixtures/dropapp");

/// Demo mode's migrator: the fixture's Drop tables and the console's migrations, in version
/// order (the fixture's first steps come before the console's, its name-search index after).
pub static DEMO_MIGRATOR: std::sync::LazyLock<Migrator> = std::sync::LazyLock::new(|| {
    let mut migrations: Vec<_> = DROPAPP_FIXTURE.iter().chain(MIGRATOR.iter()).cloned().collect();
    migrations.sort_by_key(|m| m.version);
    Migrator { migrations: migrations.into(), ..Migrator::DEFAULT }
});

/// The versions of the migrations that created and widened Drop's tables (2026-11-28 to
/// 2026-12-06), replaced by the console's one migration: a database that has one of them was
/// set up by an older dropops.
const OLD_HISTORY: std::ops::RangeInclusive<i64> = 20261128000001..=20261206000019;

/// An open database and, in embedded mode, the server that must outlive the pool.
pub struct Database {
    pub pool: PgPool,
    /// A small pool for readiness checks (none for the embedded server, which serves one
    /// client).
    pub probe: Option<PgPool>,
    #[cfg(feature = "embedded-db")]
    embedded: Option<pglite_oxide::PgliteServer>,
}

impl Database {
    /// Connect as configured. Embedded mode is single-connection: PGlite serves one client.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &config.database.url {
            let options = url
                .expose()
                .parse::<sqlx::postgres::PgConnectOptions>()
                .map_err(|e| anyhow::anyhow!("{}", unreachable_message(url, &e)))?
                .application_name(APPLICATION_NAME)
                // The console's statements are short and indexed; JIT-compiling one whose plan
                // the planner overprices (a limit over a large index) cost 470 ms at Drop's size.
                // Its list queries take optional filters (`$1 is null or ...`): planned for the
                // values given they read one index range (1 ms for the alert queue at Drop's
                // size), while the generic plan PostgreSQL may switch a prepared statement to
                // after five runs must serve every filter and reads the whole queue (290 ms).
                .options([("jit", "off"), ("plan_cache_mode", "force_custom_plan")]);
            let pool = PgPoolOptions::new()
                .max_connections(config.database.max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{}", unreachable_message(url, &e)))?;
            // Readiness gets connections of its own: a pool emptied by requests waiting on a
            // slow transaction must not make the console look dead to App Runner.
            let probe = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(2))
                .connect_lazy_with(options);
            return Ok(Self {
                pool,
                probe: Some(probe),
                #[cfg(feature = "embedded-db")]
                embedded: None,
            });
        }
        Self::open_embedded(config).await
    }

    #[cfg(feature = "embedded-db")]
    async fn open_embedded(config: &Config) -> anyhow::Result<Self> {
        let dir = config.database.data_dir.join("pg");
        std::fs::create_dir_all(&dir)?;
        tracing::info!(dir = %dir.display(), "starting the embedded PostgreSQL (first start takes a few seconds)");
        let server =
            tokio::task::spawn_blocking(move || pglite_oxide::PgliteServer::builder().path(dir).start()).await??;
        let pool = PgPoolOptions::new()
            // PGlite serves exactly one client: a bigger pool only queues and times out.
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // Keep the one connection for the life of the process: reconnecting costs seconds.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&server.database_url())
            .await?;
        Ok(Self { pool, probe: None, embedded: Some(server) })
    }

    #[cfg(not(feature = "embedded-db"))]
    async fn open_embedded(_config: &Config) -> anyhow::Result<Self> {
        anyhow::bail!("no DATABASE_URL is set and this build has no embedded database (feature `embedded-db`)")
    }

    pub fn is_embedded(&self) -> bool {
        #[cfg(feature = "embedded-db")]
        return self.embedded.is_some();
        #[cfg(not(feature = "embedded-db"))]
        false
    }

    /// Close the pool and stop the embedded server, each bounded in time: PGlite's shutdown
    /// can hang while a client is still attached, and Ctrl-C must never hang.
    pub async fn close(self) {
        if tokio::time::timeout(Duration::from_secs(3), self.pool.close()).await.is_err() {
            tracing::warn!("database pool did not close within 3 s; leaving it");
        }
        #[cfg(feature = "embedded-db")]
        if let Some(server) = self.embedded {
            // A plain thread, not spawn_blocking: the runtime waits for blocking tasks on exit.
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = done_tx.send(server.shutdown());
            });
            match done_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => tracing::info!("embedded PostgreSQL stopped"),
                Ok(Err(e)) => tracing::warn!(error = %e, "embedded PostgreSQL stopped with an error"),
                Err(_) => tracing::warn!("embedded PostgreSQL did not stop within 5 s; exiting anyway"),
            }
        }
    }
}

/// What PostgreSQL said when it refused a statement, in its own words (the whole error when
/// it is not PostgreSQL's: the connection, the pool).
pub fn postgres_words(e: &sqlx::Error) -> String {
    e.as_database_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

/// "cannot connect to the database at drop-db.…:5432/dropapp as dropops_app: connection
/// refused": where, as whom and why — never the password.
fn unreachable_message(url: &crate::config::Secret, e: &sqlx::Error) -> String {
    let place = reqwest::Url::parse(url.expose())
        .ok()
        .map(|u| {
            let who = if u.username().is_empty() { String::new() } else { format!(" as {}", u.username()) };
            format!(" at {}:{}{}{who}", u.host_str().unwrap_or("?"), u.port().unwrap_or(5432), u.path())
        })
        .unwrap_or_default();
    let cause = match e {
        sqlx::Error::PoolTimedOut => {
            "no connection within 5 s (is the host reachable and PostgreSQL listening?)".to_owned()
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    format!("cannot connect to the database{place}: {cause}")
}

/// What the console knows about the database being down. After a request found it
/// unreachable, the next ones check with one short connection attempt
/// ([`DatabaseGate::QUICK_CHECK`]) and answer 503 at once if it fails, instead of each waiting
/// the pool's full timeout; the first success opens the gate again.
#[derive(Default)]
pub struct DatabaseGate {
    down: std::sync::atomic::AtomicBool,
}

impl DatabaseGate {
    pub const QUICK_CHECK: Duration = Duration::from_millis(300);

    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_down(&self, down: bool) {
        if self.down.swap(down, std::sync::atomic::Ordering::Relaxed) != down {
            if down {
                tracing::error!("database unreachable: answering 503 at once until it is back");
            } else {
                tracing::info!("database reachable again");
            }
        }
    }

    /// One short attempt to get a connection.
    pub async fn reachable(&self, pool: &PgPool) -> bool {
        let up = matches!(tokio::time::timeout(Self::QUICK_CHECK, pool.acquire()).await, Ok(Ok(_)));
        self.set_down(!up);
        up
    }
}

/// Apply the console's pending migrations (production: Drop's tables exist already).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    refuse_old_history(pool).await?;
    // A demo database also records the fixture's versions, which this migrator does not have.
    static CONSOLE_ONLY: std::sync::LazyLock<Migrator> = std::sync::LazyLock::new(|| Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ignore_missing: true,
        ..Migrator::DEFAULT
    });
    CONSOLE_ONLY.run(pool).await?;
    Ok(())
}

/// Demo mode: create Drop's tables from the fixture where they are missing, then the console's.
pub async fn migrate_demo(pool: &PgPool) -> anyhow::Result<()> {
    refuse_old_history(pool).await?;
    DEMO_MIGRATOR.run(pool).await?;
    Ok(())
}

/// A database migrated by dropops before 2026-12-06 carries the migrations that created and
/// widened Drop's tables; the console's one migration now replaces them and cannot follow on.
async fn refuse_old_history(pool: &PgPool) -> anyhow::Result<()> {
    let recorded: bool =
        sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null").fetch_one(pool).await?;
    let old = recorded
        && sqlx::query_scalar::<_, bool>(
            "select exists (select 1 from _sqlx_migrations where version between $1 and $2)",
        )
        .bind(OLD_HISTORY.start())
        .bind(OLD_HISTORY.end())
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        !old,
        "this database was set up by an older dropops, whose migrations created Drop's tables; \
         the console now attaches to Drop's tables instead. A demo database: delete its data \
         directory (./.dropops/pg) and start again. Drop's database was never set up that way."
    );
    Ok(())
}

/// Give `role` what the serving console needs, and no more: run by the owner of the tables
/// (who ran the migrations). The serving role owns no table, trigger or function, so it
/// cannot disable the audit log's triggers, change a row or move the chain's head; it appends
/// to the audit ledger through the chain trigger, which runs with the owner's rights and also
/// writes Drop's audit_log: the serving role needs no right on Drop's audit_log at all.
pub async fn grant_serving_role(pool: &PgPool, role: &str) -> anyhow::Result<()> {
    let valid = !role.is_empty()
        && role.len() <= 63
        && role.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    anyhow::ensure!(valid, "a role name is lower-case letters, digits and _ (got {role:?})");
    let owner: String = sqlx::query_scalar(
        "select tableowner::text from pg_tables where schemaname = 'console' and tablename = 'audit_entries'",
    )
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(owner != role, "{role} owns the audit log: serve as a role that does not own the tables");
    let mut statements = vec![
        format!("grant usage on schema public, console to {role}"),
        format!("grant select, insert, update, delete on all tables in schema console to {role}"),
    ];
    // Drop's tables: what the schema contract says each feature needs, no more.
    for grant in crate::contract::GRANTS {
        statements.push(format!("revoke all on {} from {role}", grant.table));
        statements.push(format!("grant {} on {} to {role}", grant.privileges.join(", "), grant.table));
    }
    statements.extend([
        format!("grant select on _sqlx_migrations to {role}"),
        format!("grant usage on all sequences in schema public, console to {role}"),
        // The audit ledger: read and append, never change; Drop's audit_log is the trigger's to
        // write. The chain's head and id sequences are the trigger's alone to change.
        format!("revoke all on audit_log from {role}"),
        format!("revoke all on console.audit_entries from {role}"),
        format!("grant select, insert on console.audit_entries to {role}"),
        format!("revoke all on console.audit_chain_head from {role}"),
        format!("grant select on console.audit_chain_head to {role}"),
        format!("revoke all on sequence console.audit_operation_ids, console.audit_casework_ids from {role}"),
        format!("grant execute on function console.audit_chain() to {role}"),
    ]);
    let mut tx = pool.begin().await?;
    for statement in &statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Why the database is not ready, if it is not: unreachable, or migrations missing.
pub async fn readiness(pool: &PgPool) -> Result<(), String> {
    let applied = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i64>("select version from _sqlx_migrations where success order by version")
            .fetch_all(pool),
    )
    .await
    .map_err(|_| "database did not answer within 2 s".to_owned())?
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => "no migrations applied".to_owned(),
        // The serving role lacks a grant: say which, and how to give it.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => format!(
            "the console's database role may not read _sqlx_migrations ({}): run `dropops grant-serving-role ROLE` as the tables' owner",
            db.message()
        ),
        sqlx::Error::PoolClosed | sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => "database unreachable".to_owned(),
        other => format!(
            "database error: {}",
            other.as_database_error().map(|d| d.message().to_owned()).unwrap_or_else(|| "unavailable".into())
        ),
    })?;
    let missing: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("migrations not applied: {missing:?}")) }
}

/// A closed set of values a table keeps as text (a status): the enum, its spelling in the
/// database, and sqlx encoding through `text`, so a text or varchar column reads straight
/// into it, an unknown value is a decode error instead of a string nobody compares, and every
/// `match` on it is checked by the compiler.
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as the table spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                Self::parse(text).ok_or_else(|| format!("{text:?} is not a {}", stringify!($name)).into())
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}
pub(crate) use text_enum;

/// The range of text that begins with a search term, for a prefix search that uses a
/// `text_pattern_ops` index: `column ~>=~ from and column ~<~ to`. Bound parameters, so
/// the plan holds for any term (a `like $1 || '%'` would not use the index under a generic
/// plan). The term is lowercased here; the column side is `lower(…)` in the index.
pub struct PrefixRange {
    pub from: String,
    pub to: String,
}

impl PrefixRange {
    pub fn of(term: &str) -> Self {
        let from = term.to_lowercase();
        // The highest code point sorts after every continuation of the prefix.
        let to = format!("{from}{}", char::MAX);
        Self { from, to }
    }
}

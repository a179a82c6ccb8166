//! Who is connected to the database, and signalling them: the port the database page reads
//! backends through. [`Catalog`] is PostgreSQL's own (`pg_stat_activity`, `pg_cancel_backend`,
//! `pg_terminate_backend`). [`Simulated`] is a busy server for demo mode on the embedded
//! database, which serves exactly one client and so has nothing to fight: the drop-web pool
//! (some of it idle for far too long), a reporting query that has run for minutes, a forgotten
//! `psql` transaction holding a row lock with two backends queued behind it, and the server's
//! own processes. Signals behave as PostgreSQL's do: a cancel ends a running query and leaves
//! an idle transaction as it is; a terminate ends the backend and lets its waiters through.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use super::db::{self, Backend, Powers};
use crate::audit::AuditToken;

#[async_trait]
pub trait Activity: Send + Sync {
    /// Every backend of the database and the server's own processes, oldest first.
    async fn backends(&self) -> Result<Vec<Backend>, sqlx::Error>;
    /// What the console's role may see and do.
    async fn powers(&self) -> Result<Powers, sqlx::Error>;
    /// Signal the backend `pid` started at `started`: `None` when no such backend runs any
    /// more (it ended, or its pid was reused), else whether the signal was delivered.
    async fn signal(
        &self,
        audited: &AuditToken,
        pid: i32,
        started: DateTime<Utc>,
        terminate: bool,
    ) -> Result<Option<bool>, sqlx::Error>;
}

/// The real server, through the console's pool.
pub struct Catalog(pub PgPool);

#[async_trait]
impl Activity for Catalog {
    async fn backends(&self) -> Result<Vec<Backend>, sqlx::Error> {
        db::backends(&self.0).await
    }

    async fn powers(&self) -> Result<Powers, sqlx::Error> {
        db::powers(&self.0).await
    }

    async fn signal(
        &self,
        audited: &AuditToken,
        pid: i32,
        started: DateTime<Utc>,
        terminate: bool,
    ) -> Result<Option<bool>, sqlx::Error> {
        db::signal(&self.0, audited, pid, started, terminate).await
    }
}

/// A believable busy server for demo mode (see the module's text). Backends ended from the
/// page stay ended until the console restarts.
pub struct Simulated {
    backends: Mutex<Vec<Backend>>,
}

/// A client backend of the simulated server.
struct Client {
    pid: i32,
    user: &'static str,
    application: &'static str,
    client: &'static str,
    state: &'static str,
    query: &'static str,
    /// How long ago the backend connected, its transaction began and its state last changed.
    connected: Duration,
    in_state: Duration,
    transaction: Option<Duration>,
}

impl Client {
    fn backend(self, now: DateTime<Utc>) -> Backend {
        let changed = now - self.in_state;
        Backend {
            pid: self.pid,
            backend_start: Some(now - self.connected),
            user_name: Some(self.user.into()),
            application: self.application.into(),
            client: Some(self.client.into()),
            state: Some(self.state.into()),
            query: Some(self.query.into()),
            query_start: Some(changed),
            state_change: Some(changed),
            xact_start: self.transaction.map(|t| now - t),
            wait: None,
            backend_type: "client backend".into(),
            blocked_by: vec![],
            waiting_for: None,
            superuser: self.user == "rdsadmin",
            own: false,
            own_role: false,
        }
    }
}

/// One of PostgreSQL's own processes.
fn process(pid: i32, kind: &str, query: &str, now: DateTime<Utc>, up: Duration) -> Backend {
    Backend {
        pid,
        backend_start: Some(now - up),
        user_name: None,
        application: String::new(),
        client: None,
        state: (!query.is_empty()).then(|| "active".into()),
        query: (!query.is_empty()).then(|| query.into()),
        query_start: (!query.is_empty()).then(|| now - Duration::seconds(40)),
        state_change: None,
        xact_start: None,
        wait: None,
        backend_type: kind.into(),
        blocked_by: vec![],
        waiting_for: None,
        superuser: false,
        own: false,
        own_role: false,
    }
}

/// A backend waiting for a lock another holds.
fn waiting(mut backend: Backend, on: i32, wait: &str, lock: &str) -> Backend {
    backend.state = Some("active".into());
    backend.wait = Some(wait.into());
    backend.blocked_by = vec![on];
    backend.waiting_for = Some(lock.into());
    backend
}

/// A backend reading from disk.
fn reading(mut backend: Backend) -> Backend {
    backend.wait = Some("IO: DataFileRead".into());
    backend
}

const REPORT: &str = "select date_trunc('day', created_at) as day, send_currency, count(*), sum(send_amount)
  from transactions
 where created_at > now() - interval '365 days'
 group by 1, 2
 order by 1 desc";
const POOL: &str = "10.0.12.41";
const FORGOTTEN_UPDATE: &str = "update users set kyc_status = 'approved' where id = 'usr_8kq2mw4ztd';";

impl Simulated {
    /// The server as it stands at `now` (the demo's start).
    pub fn new(now: DateTime<Utc>) -> Self {
        // PostgreSQL keeps microseconds: a backend's start must survive a link's round trip.
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let min = Duration::minutes;
        let secs = Duration::seconds;
        let client = |pid, state, query, connected, in_state| Client {
            pid,
            user: "drop",
            application: "drop-web",
            client: POOL,
            state,
            query,
            connected,
            in_state,
            transaction: None,
        };
        let backends = vec![
            process(3012, "checkpointer", "", now, Duration::days(9)),
            process(3013, "background writer", "", now, Duration::days(9)),
            process(3015, "walwriter", "", now, Duration::days(9)),
            process(3016, "autovacuum launcher", "", now, Duration::days(9)),
            process(3051, "autovacuum worker", "autovacuum: VACUUM ANALYZE public.audit_log", now, min(1)),
            Client {
                user: "rdsadmin",
                application: "",
                client: "127.0.0.1",
                ..client(3102, "idle", "select 1", Duration::days(9), min(34))
            }
            .backend(now),
            client(4101, "idle", "commit", min(52), secs(4)).backend(now),
            client(4102, "idle", "select id, status, send_amount, send_currency from transactions where user_id = $1 order by created_at desc limit 50", min(52), min(23)).backend(now),
            client(4103, "idle", "select * from sessions where user_id = $1 and revoked = 0", min(51), min(41)).backend(now),
            Client {
                application: "drop-cron",
                ..client(4104, "idle", "update aml_alerts set status = 'open' where id = $1", min(48), min(9))
            }
            .backend(now),
            reading(
                Client {
                    user: "reporting",
                    application: "Metabase",
                    client: "10.0.40.7",
                    ..client(4110, "active", REPORT, min(30), min(4))
                }
                .backend(now),
            ),
            Client {
                application: "psql",
                client: "10.0.8.15",
                transaction: Some(min(7)),
                ..client(4120, "idle in transaction", FORGOTTEN_UPDATE, min(9), min(6))
            }
            .backend(now),
            waiting(
                Client {
                    transaction: Some(min(5)),
                    ..client(4121, "active", "update users set kyc_status = $1 where id = $2", min(52), min(5))
                }
                .backend(now),
                4120,
                "Lock: transactionid",
                "ShareLock",
            ),
            waiting(
                Client {
                    transaction: Some(min(3)),
                    ..client(4122, "active", "select * from users where id = $1 for update", min(50), min(3))
                }
                .backend(now),
                4121,
                "Lock: tuple",
                "ExclusiveLock on users",
            ),
        ];
        Self { backends: Mutex::new(backends) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<Backend>) -> T) -> T {
        f(&mut self.backends.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The backend `pid` is done with what it held: whoever waited only for it gets the lock and
/// finishes its statement, and so on down the queue.
fn release(backends: &mut [Backend], pid: i32, now: DateTime<Utc>) {
    let mut freed = vec![pid];
    while let Some(pid) = freed.pop() {
        for w in backends.iter_mut().filter(|w| w.blocked_by.contains(&pid)) {
            w.blocked_by.retain(|p| *p != pid);
            if w.blocked_by.is_empty() {
                w.state = Some("idle".into());
                w.state_change = Some(now);
                w.xact_start = None;
                w.wait = None;
                w.waiting_for = None;
                freed.push(w.pid);
            }
        }
    }
}

#[async_trait]
impl Activity for Simulated {
    async fn backends(&self) -> Result<Vec<Backend>, sqlx::Error> {
        let now = Utc::now();
        let mut all = self.with(|b| b.clone());
        // The console's own connection, reading this.
        all.push(Backend {
            pid: 4200,
            backend_start: Some(now - Duration::minutes(1)),
            user_name: Some("dropops".into()),
            application: crate::db::APPLICATION_NAME.into(),
            client: Some("10.0.12.77".into()),
            state: Some("active".into()),
            query: Some("select a.pid, a.backend_start, a.usename from pg_stat_activity a …".into()),
            query_start: Some(now),
            state_change: Some(now),
            xact_start: Some(now),
            wait: None,
            backend_type: "client backend".into(),
            blocked_by: vec![],
            waiting_for: None,
            superuser: false,
            own: true,
            own_role: true,
        });
        Ok(all)
    }

    async fn powers(&self) -> Result<Powers, sqlx::Error> {
        Ok(Powers { read_all_stats: true, signal_backend: true, monitor: true })
    }

    async fn signal(
        &self,
        _audited: &AuditToken,
        pid: i32,
        started: DateTime<Utc>,
        terminate: bool,
    ) -> Result<Option<bool>, sqlx::Error> {
        let now = Utc::now();
        Ok(self.with(|backends| {
            let at = backends.iter().position(|b| b.pid == pid && b.backend_start == Some(started))?;
            if terminate {
                backends.remove(at);
                release(backends, pid, now);
            } else if backends[at].state.as_deref() == Some("active") && backends[at].is_client() {
                // The query is cancelled; an idle transaction has no query to cancel.
                let b = &mut backends[at];
                b.state = Some(if b.xact_start.is_some() { "idle in transaction (aborted)" } else { "idle" }.into());
                b.state_change = Some(now);
                b.wait = None;
                b.blocked_by.clear();
                b.waiting_for = None;
                release(backends, pid, now);
            }
            Some(true)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AuditToken {
        AuditToken::for_tests()
    }

    async fn state_of(sim: &Simulated, pid: i32) -> Option<Backend> {
        sim.backends().await.unwrap().into_iter().find(|b| b.pid == pid)
    }

    #[tokio::test]
    async fn the_demo_server_has_idle_sessions_a_slow_query_and_a_blocking_chain() {
        let sim = Simulated::new(Utc::now());
        let all = sim.backends().await.unwrap();
        let idle_long = all
            .iter()
            .filter(|b| b.state.as_deref() == Some("idle") && b.state_change < Some(Utc::now() - Duration::minutes(5)));
        assert!(idle_long.count() >= 3, "idle for more than five minutes, as the runbook means");
        assert!(
            all.iter().any(|b| b.state.as_deref() == Some("active") && b.wait.as_deref() == Some("IO: DataFileRead"))
        );
        assert_eq!(state_of(&sim, 4122).await.unwrap().blocked_by, vec![4121]);
        assert_eq!(all.iter().filter(|b| b.own).count(), 1, "the console's own connection is there to be refused");
    }

    #[tokio::test]
    async fn cancel_leaves_an_idle_transaction_and_terminate_lets_the_queue_through() {
        let sim = Simulated::new(Utc::now());
        let blocker = state_of(&sim, 4120).await.unwrap();
        let started = blocker.backend_start.unwrap();
        // pg_cancel_backend of an idle transaction is delivered and changes nothing.
        assert_eq!(sim.signal(&token(), 4120, started, false).await.unwrap(), Some(true));
        assert_eq!(state_of(&sim, 4121).await.unwrap().blocked_by, vec![4120]);
        // A pid with another start is another backend: nothing happens to it.
        assert_eq!(sim.signal(&token(), 4120, started - Duration::seconds(1), true).await.unwrap(), None);
        assert_eq!(sim.signal(&token(), 4120, started, true).await.unwrap(), Some(true));
        assert!(state_of(&sim, 4120).await.is_none());
        for pid in [4121, 4122] {
            let b = state_of(&sim, pid).await.unwrap();
            assert_eq!(b.state.as_deref(), Some("idle"), "backend {pid} got its lock and finished");
            assert!(b.blocked_by.is_empty() && b.waiting_for.is_none());
        }
        // The slow query, cancelled, is an idle connection.
        let slow = state_of(&sim, 4110).await.unwrap();
        sim.signal(&token(), 4110, slow.backend_start.unwrap(), false).await.unwrap();
        assert_eq!(state_of(&sim, 4110).await.unwrap().state.as_deref(), Some("idle"));
    }
}

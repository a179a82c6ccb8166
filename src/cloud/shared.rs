//! Readings of the outside world shared by everyone who looks within a few seconds.
//!
//! The dashboard and the deployments page each ask AWS, Fly.io, BetterStack and Drop's own
//! endpoints a dozen questions, the KYC page asks Sumsub about forty applicants. Asked again for every viewer and every refresh, that costs
//! AWS's per-call price and rate limits (App Runner's describe calls allow a handful a second)
//! and tens of milliseconds a page. A reading is instead kept for `outside_readings_secs` and
//! shared: viewers within that time get the same answers, the first one after it reads again
//! (one read at a time: the others wait for it rather than asking too). A change made through
//! the console — any request that is not a GET — makes every kept reading stale at once, so
//! whoever acted sees the world after their action.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// What the console has done since start: every change bumps it.
#[derive(Debug, Default)]
pub struct Changes(AtomicU64);

impl Changes {
    pub fn changed(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One kept reading of type `T`.
pub struct Shared<T> {
    keep: Duration,
    slot: tokio::sync::Mutex<Option<Reading<T>>>,
}

/// A reading and when it was taken.
pub struct Reading<T> {
    pub value: Arc<T>,
    pub taken_at: DateTime<Utc>,
    at: Instant,
    changes: u64,
}

impl<T> Clone for Reading<T> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), taken_at: self.taken_at, at: self.at, changes: self.changes }
    }
}

impl<T> Shared<T> {
    /// Readings kept for `keep` (zero: every look reads again).
    pub fn new(keep: Duration) -> Self {
        Self { keep, slot: tokio::sync::Mutex::new(None) }
    }

    /// The kept reading when it is younger than `keep` and no change came since; otherwise
    /// `read`'s, kept for the next viewer.
    pub async fn get(&self, changes: &Changes, read: impl Future<Output = T>) -> Reading<T> {
        self.get_if(changes, |_| true, read).await
    }

    /// As [`Shared::get`], reading again also when the kept reading does not answer the
    /// question asked now (`answers`: the KYC page's applicants, say, when the queue changed).
    pub async fn get_if(
        &self,
        changes: &Changes,
        answers: impl FnOnce(&T) -> bool,
        read: impl Future<Output = T>,
    ) -> Reading<T> {
        let mut slot = self.slot.lock().await;
        let now = changes.current();
        if let Some(kept) =
            slot.as_ref().filter(|r| r.changes == now && r.at.elapsed() < self.keep && answers(&r.value))
        {
            return kept.clone();
        }
        let reading = Reading { value: Arc::new(read.await), taken_at: Utc::now(), at: Instant::now(), changes: now };
        *slot = Some(reading.clone());
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_reading_is_shared_until_it_ages_or_something_changes() {
        let reads = AtomicUsize::new(0);
        let read = || async { reads.fetch_add(1, Ordering::SeqCst) };
        let changes = Changes::default();
        let shared = Shared::new(Duration::from_secs(60));
        assert_eq!(*shared.get(&changes, read()).await.value, 0);
        assert_eq!(*shared.get(&changes, read()).await.value, 0, "kept within its time");
        changes.changed();
        assert_eq!(*shared.get(&changes, read()).await.value, 1, "a change reads again");
        assert_eq!(reads.load(Ordering::SeqCst), 2);

        let every_time = Shared::new(Duration::ZERO);
        assert_eq!(*every_time.get(&changes, read()).await.value, 2);
        assert_eq!(*every_time.get(&changes, read()).await.value, 3, "zero keeps nothing");
    }
}

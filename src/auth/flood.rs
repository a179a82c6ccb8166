//! A bound on what anonymous requests can make the console write. Failed sign-ins come from
//! anyone on the internet; each is worth an audit row until one address sends a stream of
//! them, then they are counted and the count is written with the next row of its window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rows one client address may cause per window.
pub const ROWS_PER_WINDOW: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(600);
/// Addresses remembered at most; beyond, finished windows are forgotten first.
const ADDRESSES: usize = 10_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write the row; `suppressed` rows of this address were not written before it.
    Write { suppressed: u32 },
    /// Over the budget: count it, write nothing.
    Suppress,
}

#[derive(Default)]
pub struct FloodGuard {
    windows: Mutex<HashMap<String, Window>>,
}

struct Window {
    started: Instant,
    written: u32,
    suppressed: u32,
}

impl FloodGuard {
    pub fn decide(&self, address: &str) -> Decision {
        self.decide_at(address, Instant::now())
    }

    fn decide_at(&self, address: &str, now: Instant) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= ADDRESSES && !windows.contains_key(address) {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
            if windows.len() >= ADDRESSES {
                return Decision::Suppress;
            }
        }
        let window = windows.entry(address.to_owned()).or_insert(Window { started: now, written: 0, suppressed: 0 });
        if now.duration_since(window.started) >= WINDOW {
            let carried = window.suppressed;
            *window = Window { started: now, written: 1, suppressed: 0 };
            return Decision::Write { suppressed: carried };
        }
        if window.written < ROWS_PER_WINDOW {
            window.written += 1;
            Decision::Write { suppressed: std::mem::take(&mut window.suppressed) }
        } else {
            window.suppressed += 1;
            Decision::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_budget_then_a_count_with_its_next_window() {
        let guard = FloodGuard::default();
        let t0 = Instant::now();
        for _ in 0..ROWS_PER_WINDOW {
            assert_eq!(guard.decide_at("6.6.6.6", t0), Decision::Write { suppressed: 0 });
        }
        for _ in 0..500 {
            assert_eq!(guard.decide_at("6.6.6.6", t0), Decision::Suppress);
        }
        assert_eq!(guard.decide_at("192.0.2.1", t0), Decision::Write { suppressed: 0 }, "others are not held back");
        assert_eq!(guard.decide_at("6.6.6.6", t0 + WINDOW), Decision::Write { suppressed: 500 }, "the count is kept");
        assert_eq!(guard.decide_at("6.6.6.6", t0 + WINDOW), Decision::Write { suppressed: 0 });
    }
}

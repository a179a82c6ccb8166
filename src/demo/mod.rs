//! Demo data: a deterministic (fixed-seed) population of plausible, obviously fake Drop
//! customers with their transactions, AML alerts, KYC states, STRs and data-access requests.
//!
//! Times are offsets from the moment of seeding, so "the last 24 hours" always has rows. The
//! generator only ever runs on a database whose `users` table is empty.

mod db;
mod names;

pub use db::{SeedInfo, seed_if_empty, seeded};

use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::json;

/// The seed `cargo run` uses: the same people and numbers on every machine.
pub const DEFAULT_SEED: u64 = 20_260_131;

const USERS: usize = 240;
const TRANSACTIONS: usize = 3_000;
const ALERTS: usize = 45;
/// The open AML alerts of the demo queue (what tests count on).
pub const OPEN_ALERTS: usize = 12;

/// Everything the generator produces, column-wise for bulk inserts.
#[derive(Debug, Default, PartialEq)]
pub struct Dataset {
    pub users: Vec<User>,
    pub sessions: Vec<Session>,
    pub transactions: Vec<Transaction>,
    pub alerts: Vec<Alert>,
    pub str_reports: Vec<StrReport>,
    pub access_requests: Vec<AccessRequest>,
}

#[derive(Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub full_name: String,
    pub kyc_status: &'static str,
    pub kyc_updated_at: DateTime<Utc>,
    pub auth_provider: &'static str,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub revoked: i16,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub struct Transaction {
    pub id: String,
    pub user_id: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub send_amount: Decimal,
    pub send_currency: &'static str,
    pub receive_amount: Decimal,
    pub receive_currency: &'static str,
    pub recipient_country: &'static str,
    pub failure_reason: Option<&'static str>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub user_id: String,
    pub transaction_id: Option<String>,
    pub rule: &'static str,
    pub created_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewer_notes: Option<&'static str>,
    pub outcome: Option<&'static str>,
}

#[derive(Debug, PartialEq)]
pub struct StrReport {
    pub id: String,
    pub user_id: String,
    pub transaction_id: String,
    pub alert_id: String,
    pub status: &'static str,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub filed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq)]
pub struct AccessRequest {
    pub id: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub fulfilled_at: Option<DateTime<Utc>>,
}

/// What a seeding did.
#[derive(Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    Seeded {
        users: usize,
        transactions: usize,
    },
    AlreadySeeded,
    /// `users` has rows the generator did not write: never mix fake and real people.
    RefusedRealData,
}

fn id(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let tail: String = (0..14).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}_{tail}")
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (value, weight) in weighted {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    weighted[weighted.len() - 1].0
}

fn ago(now: DateTime<Utc>, rng: &mut ChaCha8Rng, max_minutes: i64) -> DateTime<Utc> {
    now - Duration::minutes(rng.gen_range(1..max_minutes))
}

/// NOK per unit, rounded: enough to make amounts plausible, not a rate source.
fn nok_per(currency: &str) -> Decimal {
    match currency {
        "EUR" => Decimal::new(1160, 2),
        "USD" => Decimal::new(1070, 2),
        "PLN" => Decimal::new(270, 2),
        _ => Decimal::ONE,
    }
}

/// Generate the dataset for `seed`, with every time relative to `now`.
pub fn generate(seed: u64, now: DateTime<Utc>) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = Dataset::default();

    for n in 0..USERS {
        let first = *names::FIRST.choose(&mut rng).unwrap_or(&"Kari");
        let last = *names::LAST.choose(&mut rng).unwrap_or(&"Nordmann");
        let kyc_status = pick(&mut rng, &[("approved", 80), ("pending", 9), ("rejected", 4), ("not_started", 7)]);
        let created_at = ago(now, &mut rng, 900 * 24 * 60);
        let kyc_updated_at = if kyc_status == "pending" {
            // Spread pending applicants over 0–72 h so both the ">2 h" and ">24 h" lists fill.
            now - Duration::minutes(rng.gen_range(10..72 * 60))
        } else {
            created_at + Duration::hours(rng.gen_range(0..48))
        }
        .min(now);
        data.users.push(User {
            id: id(&mut rng, "usr"),
            email: format!("{}.{}.{n:03}@example.invalid", names::ascii(first), names::ascii(last)),
            full_name: format!("{first} {last}"),
            kyc_status,
            kyc_updated_at,
            auth_provider: pick(&mut rng, &[("bankid", 60), ("vipps", 25), ("email", 9), ("apple", 6)]),
            created_at,
            deleted_at: (n % 97 == 13).then(|| ago(now, &mut rng, 60 * 24 * 60)),
        });
    }

    let active: Vec<usize> =
        (0..USERS).filter(|&i| data.users[i].kyc_status == "approved" && data.users[i].deleted_at.is_none()).collect();
    for &i in &active {
        for _ in 0..rng.gen_range(1..=2) {
            data.sessions.push(Session {
                id: id(&mut rng, "ses"),
                user_id: data.users[i].id.clone(),
                revoked: i16::from(rng.gen_bool(0.2)),
                created_at: ago(now, &mut rng, 30 * 24 * 60),
            });
        }
    }

    for _ in 0..TRANSACTIONS {
        let user = &data.users[*active.choose(&mut rng).unwrap_or(&0)];
        let send_currency = pick(&mut rng, &[("NOK", 70), ("EUR", 15), ("USD", 8), ("PLN", 7)]);
        let large = rng.gen_bool(0.015);
        let nok_value: f64 =
            if large { rng.gen_range(50_001.0..250_000.0) } else { (rng.gen_range(3.9_f64..10.3)).exp() };
        let send_amount =
            (Decimal::from_f64_retain(nok_value).unwrap_or(Decimal::ONE_HUNDRED) / nok_per(send_currency)).round_dp(2);
        let (receive_currency, recipient_country) = pick(
            &mut rng,
            &[
                (("PLN", "PL"), 30),
                (("EUR", "LT"), 15),
                (("EUR", "DE"), 10),
                (("NOK", "NO"), 25),
                (("USD", "US"), 8),
                (("EUR", "ES"), 12),
            ],
        );
        let receive_amount =
            (send_amount * nok_per(send_currency) / nok_per(receive_currency)).round_dp(2).max(Decimal::new(1, 2));
        let created_at = ago(now, &mut rng, 90 * 24 * 60).max(user.created_at);
        let status = if now - created_at < Duration::minutes(30) && rng.gen_bool(0.5) {
            "pending"
        } else {
            pick(&mut rng, &[("completed", 90), ("failed", 7), ("reversed", 3)])
        };
        let failure_reason = (status == "failed").then(|| {
            pick(
                &mut rng,
                &[
                    ("insufficient_funds", 4),
                    ("recipient_bank_rejected", 3),
                    ("card_declined", 3),
                    ("limit_exceeded", 2),
                    ("sanctions_screening_timeout", 1),
                ],
            )
        });
        data.transactions.push(Transaction {
            id: id(&mut rng, "tx"),
            user_id: user.id.clone(),
            kind: pick(&mut rng, &[("transfer", 82), ("top_up", 11), ("withdrawal", 5), ("refund", 2)]),
            status,
            send_amount,
            send_currency,
            receive_amount,
            receive_currency,
            recipient_country,
            failure_reason,
            created_at,
        });
    }

    // Alerts mostly follow the largest transfers, as a threshold rule would.
    let mut by_size: Vec<usize> = (0..TRANSACTIONS).collect();
    by_size.sort_by_key(|&i| {
        std::cmp::Reverse(data.transactions[i].send_amount * nok_per(data.transactions[i].send_currency))
    });
    for (n, &ti) in by_size.iter().take(ALERTS).enumerate() {
        let tx = &data.transactions[ti];
        let rule = pick(
            &mut rng,
            &[
                ("large_transaction", 6),
                ("rapid_succession", 2),
                ("high_risk_corridor", 1),
                ("structuring", 1),
                ("new_account_high_volume", 1),
            ],
        );
        let created_at = (tx.created_at + Duration::minutes(rng.gen_range(1..30))).min(now);
        let open = n % 3 == 0 && n / 3 < OPEN_ALERTS;
        let reviewed_at = (!open).then(|| (created_at + Duration::hours(rng.gen_range(2..96))).min(now));
        // The alerts on the 2nd and 4th largest transfers went to the MLRO (see the STRs below).
        let escalated = n == 1 || n == 3;
        let outcome = (!open).then(|| {
            if escalated { "escalated_to_str" } else { pick(&mut rng, &[("false_positive", 3), ("legitimate", 2)]) }
        });
        let reviewer_notes = outcome.map(|o| match o {
            "escalated_to_str" => {
                "Source of funds not documented after two requests; escalated to the MLRO for an STR."
            }
            "legitimate" => *[
                "Customer sends to family monthly; amount matches documented house purchase.",
                "Source of funds confirmed by bank statement.",
            ]
            .choose(&mut rng)
            .unwrap_or(&"Legitimate."),
            _ => *[
                "Salary and savings transfer to own account abroad; payslips on file.",
                "Pattern consistent with earlier reviewed activity.",
            ]
            .choose(&mut rng)
            .unwrap_or(&"False positive."),
        });
        data.alerts.push(Alert {
            id: id(&mut rng, "alert"),
            user_id: tx.user_id.clone(),
            transaction_id: Some(tx.id.clone()),
            rule,
            created_at,
            reviewed_at,
            reviewer_notes,
            outcome,
        });
    }

    for (status, n) in [("pending_review", 1), ("filed", 3)] {
        let tx = &data.transactions[by_size[n]];
        let alert_id = data.alerts[n].id.clone();
        let created_at = (tx.created_at + Duration::days(2)).min(now);
        data.str_reports.push(StrReport {
            id: id(&mut rng, "str"),
            user_id: tx.user_id.clone(),
            transaction_id: tx.id.clone(),
            alert_id,
            status,
            details: json!({
                "reason": "Large transfer to a new recipient; source of funds not documented",
                "narrative": "The customer sent a large amount to a recipient abroad they had not paid before, shortly after a series of top-ups. Two requests for documentation of the source of funds went unanswered.",
            }),
            created_at,
            filed_at: (status == "filed").then(|| (created_at + Duration::days(1)).min(now)),
        });
    }

    for n in 0..6 {
        let user = &data.users[active[(n * 37) % active.len()]];
        let created_at = ago(now, &mut rng, 40 * 24 * 60);
        data.access_requests.push(AccessRequest {
            id: id(&mut rng, "dar"),
            user_id: user.id.clone(),
            created_at,
            fulfilled_at: (n % 2 == 1).then(|| (created_at + Duration::days(3)).min(now)),
        });
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_people_and_money() {
        let now = Utc::now();
        assert_eq!(generate(DEFAULT_SEED, now), generate(DEFAULT_SEED, now));
        assert_ne!(generate(DEFAULT_SEED, now).users, generate(DEFAULT_SEED + 1, now).users);
    }

    #[test]
    fn the_dataset_covers_what_the_runbook_asks_about() {
        let now = Utc::now();
        let d = generate(DEFAULT_SEED, now);
        assert!(d.users.iter().all(|u| u.email.ends_with("@example.invalid")));
        assert!(d.users.iter().any(|u| u.kyc_status == "pending" && now - u.kyc_updated_at > Duration::hours(24)));
        assert!(d.users.iter().any(|u| u.kyc_status == "pending" && now - u.kyc_updated_at < Duration::hours(24)));
        for currency in ["NOK", "EUR", "USD", "PLN"] {
            assert!(d.transactions.iter().any(|t| t.send_currency == currency), "{currency}");
        }
        assert!(d.transactions.iter().any(|t| now - t.created_at < Duration::hours(24)));
        assert!(d.transactions.iter().any(|t| t.status == "failed" && t.failure_reason.is_some()));
        assert!(d.transactions.iter().any(|t| t.send_currency == "NOK" && t.send_amount > Decimal::from(50_000)));
        assert_eq!(d.alerts.iter().filter(|a| a.reviewed_at.is_none()).count(), OPEN_ALERTS);
        assert!(d.str_reports.iter().any(|r| r.status == "pending_review"));
        assert!(d.access_requests.iter().any(|r| r.fulfilled_at.is_none()));
    }
}

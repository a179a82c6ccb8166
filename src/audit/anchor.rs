//! Anchors: the audit chains' heads, published outside the database. Whoever owns the
//! database could rewrite a row and recompute every hash after it, and the chain would verify
//! again. They cannot rewrite what was published before (CloudWatch Logs events cannot be
//! edited; a file in demo), nor sign a new anchor: the signature's key is derived from
//! `audit.fingerprint_key`, which the database does not hold. `dropops audit verify` checks
//! the chains against every published anchor.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgPool;

use super::{Chain, db};
use crate::cloud::AuditAnchors;
use crate::config::Config;

/// One published head: "in database `database`, row `seq` of `chain` had `hash`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub database: String,
    pub chain: Chain,
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub signature: String,
}

fn signature(config: &Config, a: &Anchor) -> String {
    let mut key = Hmac::<Sha256>::new_from_slice(super::audit_key(config).as_bytes()).expect("any key length");
    key.update(b"dropops audit anchor v1");
    let derived = key.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&derived).expect("any key length");
    mac.update(format!("{}|{}|{}|{}|{}", a.database, a.chain.as_str(), a.seq, a.hash, a.at.to_rfc3339()).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Publish the head of each chain that has rows; returns what was published.
pub async fn publish(pool: &PgPool, anchors: &dyn AuditAnchors, config: &Config) -> anyhow::Result<Vec<Anchor>> {
    let database = db::database_name(pool).await?;
    let mut published = Vec::new();
    for chain in Chain::ALL {
        let (seq, hash) = db::chain_head(pool, chain).await?;
        let Some(hash) = hash.filter(|_| seq > 0) else { continue };
        let mut anchor = Anchor {
            database: database.clone(),
            chain,
            seq,
            hash: hex::encode(hash),
            at: Utc::now(),
            signature: String::new(),
        };
        anchor.signature = signature(config, &anchor);
        anchors.publish(&serde_json::to_string(&anchor)?).await?;
        published.push(anchor);
    }
    Ok(published)
}

/// What the published anchors say about this database's chains.
#[derive(Debug, Default)]
pub struct Check {
    /// Anchors of this database that were checked.
    pub checked: usize,
    /// Everything that does not match, in words.
    pub problems: Vec<String>,
}

/// Check the chains against every anchor published for this database: each must be signed
/// with the audit key, and the row it names must still have the hash it had.
pub async fn check(pool: &PgPool, anchors: &dyn AuditAnchors, config: &Config) -> anyhow::Result<Check> {
    let database = db::database_name(pool).await?;
    let mut result = Check::default();
    for line in anchors.published().await? {
        let Ok(anchor) = serde_json::from_str::<Anchor>(&line) else {
            result.problems.push("an anchor line is not an anchor (changed or forged)".into());
            continue;
        };
        if anchor.database != database {
            continue;
        }
        result.checked += 1;
        let seen =
            format!("the {} chain's entry number {} as anchored at {}", anchor.chain.as_str(), anchor.seq, anchor.at);
        if signature(config, &anchor) != anchor.signature {
            result.problems.push(format!("{seen}: the signature does not match (a forged anchor)"));
            continue;
        }
        match db::row_hash(pool, anchor.chain, anchor.seq).await? {
            Some(hash) if hex::encode(&hash) == anchor.hash => {}
            Some(_) => result.problems.push(format!("{seen}: the chain was rewritten after it was anchored")),
            None => result.problems.push(format!("{seen}: the entry is gone (rows were removed after anchoring)")),
        }
    }
    Ok(result)
}

/// Every `audit.anchor_interval`, publish the heads that moved since the last publication.
pub fn spawn_publisher(pool: PgPool, anchors: Arc<dyn AuditAnchors>, config: Arc<Config>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(config.audit.anchor_interval);
        let mut last: Vec<(Chain, i64)> = Vec::new();
        loop {
            every.tick().await;
            let heads = match heads(&pool).await {
                Ok(heads) => heads,
                Err(e) => {
                    tracing::warn!(error = %e, "audit anchor: chain heads unreadable; will retry");
                    continue;
                }
            };
            if heads == last {
                continue;
            }
            match publish(&pool, anchors.as_ref(), &config).await {
                Ok(_) => last = heads,
                Err(e) => tracing::error!(error = %e, "audit anchor not published; will retry"),
            }
        }
    });
}

async fn heads(pool: &PgPool) -> Result<Vec<(Chain, i64)>, sqlx::Error> {
    let mut heads = Vec::new();
    for chain in Chain::ALL {
        heads.push((chain, db::chain_head(pool, chain).await?.0));
    }
    Ok(heads)
}

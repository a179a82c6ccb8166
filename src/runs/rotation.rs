//! Secret rotation steps (runbook §4). The new value is generated once and stored in Secrets
//! Manager as the *pending* version of the secret, under a version id fixed when the run was
//! created, before anything else changes. Every later step reads it back from there: a run
//! stopped after RDS took the new password resumes with that same password (never a fresh
//! one), and the value is never kept by the console, its pages, logs or audit rows — the
//! audit log gets an HMAC fingerprint.

use serde_json::json;

use super::facts::{Fact, learned};
use super::steps::{Progress, StepContext, trouble};
use crate::audit;
use crate::config::Secret;

/// What a rotation rotates, as stored in the run's params.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotated {
    /// `JWT_SECRET`: 48 random bytes, base64.
    JwtSecret,
    /// The RDS master password (32 random bytes, URL-safe base64: RDS refuses `/`), kept in
    /// the app's `DATABASE_URL` secret.
    DatabaseUrl,
}

impl Rotated {
    pub fn as_str(self) -> &'static str {
        match self {
            Rotated::JwtSecret => "jwt_secret",
            Rotated::DatabaseUrl => "database_url",
        }
    }

    /// The name the runbook and the audit log use.
    pub fn env_name(self) -> &'static str {
        match self {
            Rotated::JwtSecret => "JWT_SECRET",
            Rotated::DatabaseUrl => "DATABASE_URL",
        }
    }
}

fn target(cx: &StepContext<'_>) -> Result<(Rotated, String, String), Progress> {
    let p = cx.run.params.rotation().ok_or_else(|| Progress::Failed("the run names no secret to rotate".into()))?;
    Ok((p.rotated, p.secret_id.clone(), p.version.clone()))
}

/// The password inside a `postgres://user:password@host/db` URL.
pub fn password_of(url: &Secret) -> Option<Secret> {
    let parsed = reqwest::Url::parse(url.expose()).ok()?;
    let encoded = parsed.password().filter(|p| !p.is_empty())?;
    // The URL keeps the password percent-encoded; RDS gets it as the app will decode it.
    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8().ok()?;
    Some(Secret::new(decoded.into_owned()))
}

/// The same URL with another password.
fn with_password(url: &Secret, password: &Secret) -> Option<Secret> {
    let mut parsed = reqwest::Url::parse(url.expose()).ok()?;
    parsed.set_password(Some(password.expose())).ok()?;
    Some(Secret::new(parsed.to_string()))
}

/// Generate the new value and store it as the pending version, unless that version exists.
pub async fn stage(cx: &StepContext<'_>) -> Progress {
    let (rotated, id, version) = match target(cx) {
        Ok(t) => t,
        Err(p) => return p,
    };
    let secrets = &cx.state.cloud.secrets;
    let fingerprint = |value: &Secret| audit::fingerprint(&cx.state.config, value.expose());
    let limit = cx.state.config.runs.retry_limit;
    match secrets.value(&id, Some(&version)).await {
        Ok(Some(existing)) => {
            return Progress::Done(learned([
                (Fact::Staged, version.into()),
                (Fact::Fingerprint, fingerprint(&existing).into()),
            ]));
        }
        Ok(None) => {}
        Err(e) => return trouble(cx, limit, e),
    }
    let value = match rotated {
        Rotated::JwtSecret => Secret::random_base64(48, false),
        Rotated::DatabaseUrl => {
            let current = match secrets.value(&id, None).await {
                Ok(Some(v)) => v,
                Ok(None) => return Progress::Failed(format!("Secrets Manager has no current value of {id}")),
                Err(e) => return trouble(cx, limit, e),
            };
            match with_password(&current, &Secret::random_base64(32, true)) {
                Some(url) => url,
                None => {
                    return Progress::Failed(format!(
                        "the current value of {id} is not a postgres:// URL with a password; nothing was changed"
                    ));
                }
            }
        }
    };
    match secrets.stage_value(&id, &version, &value).await {
        Ok(()) => {
            Progress::Done(learned([(Fact::Staged, version.into()), (Fact::Fingerprint, fingerprint(&value).into())]))
        }
        Err(e) => trouble(cx, limit, e),
    }
}

/// The pending value, read back from Secrets Manager.
async fn staged(cx: &StepContext<'_>) -> Result<(String, String, Secret), Progress> {
    let (_, id, version) = target(cx)?;
    match cx.state.cloud.secrets.value(&id, Some(&version)).await {
        Ok(Some(value)) => Ok((id, version, value)),
        Ok(None) => Err(Progress::Failed(format!(
            "the pending version {version} of {id} is missing from Secrets Manager; the rotation cannot continue safely"
        ))),
        Err(e) => Err(trouble(cx, cx.state.config.runs.retry_limit, e)),
    }
}

/// Set the RDS master password to the one in the pending URL. Setting the same password again
/// (a resumed step) changes nothing.
pub async fn set_db_password(cx: &StepContext<'_>) -> Progress {
    let (id, _, url) = match staged(cx).await {
        Ok(s) => s,
        Err(p) => return p,
    };
    let Some(password) = password_of(&url) else {
        return Progress::Failed(format!("the pending value of {id} holds no password"));
    };
    match cx.state.cloud.rds.set_master_password(&password).await {
        Ok(()) => Progress::Done(json!({ "password_set": true })),
        Err(e) => trouble(cx, cx.state.config.runs.retry_limit, e),
    }
}

pub async fn wait_db_available(cx: &StepContext<'_>) -> Progress {
    match cx.state.cloud.rds.instance_status().await {
        Ok(db) if db.status == "available" => Progress::Done(json!({})),
        _ if cx.overdue(cx.state.config.runs.deploy_timeout) => {
            Progress::Failed("the instance did not become available in time; check it in the RDS console".into())
        }
        Ok(db) => Progress::Waiting(format!("the instance is {}", db.status)),
        Err(e) => trouble(cx, cx.state.config.runs.deploy_timeout, e),
    }
}

/// Make the pending version current. Promoting it again changes nothing.
pub async fn promote(cx: &StepContext<'_>) -> Progress {
    let (id, version, _) = match staged(cx).await {
        Ok(s) => s,
        Err(p) => return p,
    };
    match cx.state.cloud.secrets.promote(&id, &version).await {
        Ok(()) => Progress::Done(json!({ "current": version })),
        Err(e) => trouble(cx, cx.state.config.runs.retry_limit, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_round_trips_through_the_url() {
        let url = Secret::new("postgres://drop:old@drop-db.example.eu-west-1.rds.amazonaws.com:5432/dropapp");
        for password in ["plain", "with=padding+and%", "Zm9v_YmFy-"] {
            let new = with_password(&url, &Secret::new(password)).unwrap();
            assert_eq!(password_of(&new).unwrap().expose(), password, "{}", new.expose());
            assert!(new.expose().ends_with("@drop-db.example.eu-west-1.rds.amazonaws.com:5432/dropapp"));
        }
        let generated = Secret::random_base64(32, true);
        assert_eq!(generated.expose().len(), 43);
        assert!(generated.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(password_of(&Secret::new("postgres://drop@host/db")).is_none());
    }
}

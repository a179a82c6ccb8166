//! Identity: OIDC sign-in (and a dev sign-in in demo mode), server-side sessions, the access
//! table, CSRF, and step-up for sensitive actions. [`guard`] runs on every request.

mod db;
pub mod flood;
pub mod guard;
pub mod oidc;
mod pages;
pub mod policy;
pub mod store;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use uuid::Uuid;

use crate::config::Role;
use crate::error::AppError;

pub use db::{SessionRow, Staff};
pub(crate) use db::{disable_staff, enable_staff, end_session, find_staff, list_staff, live_sessions};
pub use pages::routes;

/// Session keys. The cookie holds only tower-sessions' id; these live server-side.
pub(crate) const LOGIN_KEY: &str = "login";
pub(crate) const CSRF_KEY: &str = "csrf";
pub(crate) const PENDING_KEY: &str = "oidc_pending";
pub(crate) const STASH_KEY: &str = "stashed_form";
/// Why the last sign-in in this browser ended, for the sign-in page to say once.
pub(crate) const ENDED_KEY: &str = "sign_in_ended";

/// The signed-in member of staff, put in the request by the guard.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub staff_id: Uuid,
    /// The `console.staff_sessions` row of this sign-in.
    pub session_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub issuer: String,
    pub subject: String,
    pub roles: Vec<Role>,
    pub auth_time: DateTime<Utc>,
    pub csrf: String,
}

impl CurrentUser {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The guard has run for every route that is not public; reaching here without a user
        // means a public route asked for one, which is a programming error, so deny.
        parts.extensions.get::<CurrentUser>().cloned().ok_or(AppError::Forbidden)
    }
}

/// The sign-in stored in the session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LoginRecord {
    pub session_id: Uuid,
}

/// Form fields kept across a step-up sign-in, for the page at `path`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StashedForm {
    pub path: String,
    pub fields: Vec<(String, String)>,
}

impl StashedForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Put what was typed back into `field`, when the stash has it.
    pub fn restore(&self, name: &str, field: &mut String) {
        if let Some(value) = self.get(name) {
            value.clone_into(field);
        }
    }
}

/// The fields a step-up sign-in interrupted on the page at `path`, once.
pub async fn take_stashed_form(session: &Session, path: &str) -> StashedForm {
    match session.get::<StashedForm>(STASH_KEY).await {
        Ok(Some(stash)) if stash.path == path => {
            let _ = session.remove::<StashedForm>(STASH_KEY).await;
            stash
        }
        _ => StashedForm::default(),
    }
}

/// The CSRF token of this session, created when first needed (also before sign-in).
pub async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await.map_err(session_error)? {
        return Ok(token);
    }
    let token = random_token();
    session.insert(CSRF_KEY, &token).await.map_err(session_error)?;
    Ok(token)
}

pub(crate) fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn session_error(e: tower_sessions::session::Error) -> AppError {
    tracing::error!(error = %e, "session store error");
    // The session store is the database: say so plainly.
    AppError::Unavailable(crate::error::DATABASE_UNAVAILABLE.into())
}

/// Only a path on this site: `/x`, never `//host`, `/\host` or a full URL.
pub fn safe_next(next: Option<&str>) -> String {
    // Browsers drop TAB, CR and LF inside URLs and read a backslash as a slash, so
    // "/\t/evil.example" would become "//evil.example": refuse every control character, then
    // resolve the path as a browser would and keep it only if it stays on this origin.
    const ORIGIN: &str = "https://console.invalid/";
    let Some(next) = next.filter(|n| n.starts_with('/') && !n.chars().any(|c| c.is_control() || c == '\\')) else {
        return "/".to_owned();
    };
    let Ok(base) = url::Url::parse(ORIGIN) else { return "/".to_owned() };
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => url[url::Position::BeforePath..].to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_accepts_only_paths_on_this_site() {
        assert_eq!(safe_next(Some("/audit?before=3")), "/audit?before=3");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "evil",
            "/x\r\nSet-Cookie: a=b",
            // Decoded from next=/%09/evil.example: a browser drops the TAB and goes off-site.
            "/\t/evil.example",
            "/\n/evil.example",
            "/\u{b}/evil.example",
            "/\0",
            "/\\/evil.example",
            "/\u{85}x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("/compliance/alerts?status=open#top")), "/compliance/alerts?status=open#top");
        assert_eq!(safe_next(Some("/a/../audit")), "/audit", "resolved as a browser would");
    }
}

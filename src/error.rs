//! The one error type of the console. Handlers return `Result<_, AppError>`; the user sees a
//! plain message and the request id, never the underlying error text, which is logged.
//!
//! `AppError` only tags the response; [`crate::web::errors`] renders it once for every route,
//! as a toast for htmx requests and as a full page otherwise.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// Signed in, but without a role the route needs: the message names the roles that may.
    #[error("forbidden: {0}")]
    NeedsRole(String),
    /// A form whose CSRF token no longer matches (a stale tab, a new sign-in) or that came
    /// from another site: not a matter of permission.
    #[error("form expired")]
    FormExpired,
    /// Four eyes: the person who drafted something may not approve it.
    #[error("four eyes")]
    Forbidden4Eyes,
    /// Bad input; the message is shown to the user, so it must not echo secrets.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Conflict(String),
    /// A conflict with something the person can open: the message, and where it is (a run in
    /// the way). Shown with a link, not an address as text.
    #[error("{0}")]
    ConflictWith(String, String),
    /// A dependency (database, AWS, the audit log) cannot be used right now.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What the error renderer needs: status and the message safe to show.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    pub title: &'static str,
    pub message: String,
    /// Where to go about it, if somewhere: the page in the way.
    pub link: Option<String>,
}

impl AppError {
    /// Whether this is the database refusing a change for violating `constraint` (a unique
    /// index, a check): the one place that knows how to look, so callers can answer with a
    /// Conflict that says what is in the way.
    pub fn violates(&self, constraint: &str) -> bool {
        let AppError::Internal(e) = self else { return false };
        e.downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .is_some_and(|d| d.constraint() == Some(constraint))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::Forbidden4Eyes | AppError::FormExpired | AppError::NeedsRole(_) => {
                StatusCode::FORBIDDEN
            }
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) | AppError::ConflictWith(..) => StatusCode::CONFLICT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn report(&self) -> ErrorReport {
        let status = self.status();
        let link = match self {
            AppError::ConflictWith(_, href) => Some(href.clone()),
            _ => None,
        };
        let message = match self {
            AppError::Validation(m)
            | AppError::Conflict(m)
            | AppError::ConflictWith(m, _)
            | AppError::Unavailable(m)
            | AppError::NeedsRole(m) => m.clone(),
            AppError::FormExpired => {
                "This form has expired (it was opened before your last sign-in, or came from another site). Reload the page and try again; nothing was done.".into()
            }
            AppError::Forbidden4Eyes => {
                "You drafted, edited or submitted this report, so another MLRO must review it (four eyes).".into()
            }
            _ => default_message(status).to_owned(),
        };
        ErrorReport { title: title(status), message, link }
    }
}

/// What people see when PostgreSQL (and with it the session store) cannot be used.
pub const DATABASE_UNAVAILABLE: &str = "The database cannot be reached right now. Try again in a moment.";

/// What people see when the audit log's chain (or a row the change needs) is held by another
/// transaction for longer than the lock timeout.
pub const BUSY: &str = "The audit log is busy recording another change that is taking unusually long, so nothing was done. Try again in a moment.";

/// PostgreSQL's `lock_not_available`: a lock wait ran out (`lock_timeout`).
const LOCK_NOT_AVAILABLE: &str = "55P03";

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::error!(error = %e, "database unavailable");
                AppError::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                tracing::warn!(error = %db, "lock wait timed out");
                AppError::Unavailable(BUSY.into())
            }
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(e) = &self {
            // The request id is on the span (see web::layers); the user only gets that id.
            tracing::error!(error = ?e, "internal error");
        }
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self.report());
        response
    }
}

/// For a change made only if the row is in the expected state (`update … where status = …`):
/// `Ok` when it happened, otherwise a `Conflict` saying why, which rolls back its audit intent.
pub fn changed(done: bool, why: &str) -> Result<(), AppError> {
    if done { Ok(()) } else { Err(AppError::Conflict(why.to_owned())) }
}

/// A short heading for any error status, including ones produced by middleware.
pub fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Bad request",
        403 => "Not allowed",
        404 => "Not found",
        405 => "Not allowed here",
        408 => "Took too long",
        409 => "Conflict",
        413 => "Too large",
        422 => "Please check your input",
        429 => "Too many requests",
        503 => "Unavailable",
        _ if status.is_server_error() => "Something went wrong",
        _ => "Request refused",
    }
}

pub fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request could not be understood.",
        403 => "You do not have permission to do this.",
        404 => "There is nothing at this address.",
        405 => "This address does not accept that kind of request.",
        408 => "The request took too long and was stopped. Nothing further will happen for it.",
        413 => "The request is larger than the console accepts.",
        503 => "A service the console depends on is unavailable. Try again in a moment.",
        _ if status.is_server_error() => "The console hit an unexpected error. It has been logged.",
        _ => "The request was refused.",
    }
}

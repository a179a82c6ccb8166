//! One submission per rendered form. Append-only forms (a checklist, a new STR draft) carry a
//! token made when the form was rendered (`_once`); the first submission records it in the
//! same transaction as what it adds, and a repeat — a double click, Back and resubmit — is
//! sent where the first one went, adding nothing. A corrected 422 re-render keeps the token.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::AppError;

/// The field a form carries its token in.
pub const FIELD: &str = "_once";

/// The primary key that catches two submissions racing each other.
const USED: &str = "form_submissions_pkey";

/// A form's submission token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Once(Uuid);

impl Once {
    /// A token for a form about to be rendered.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The token a form came back with, if it carries one (forms posted by scripts may not).
    pub fn of(text: &str) -> Option<Self> {
        text.trim().parse().ok().map(Self)
    }
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an earlier submission of this form by this person went, if there was one.
pub async fn already(pool: &PgPool, once: Option<Once>, staff: Uuid) -> Result<Option<String>, sqlx::Error> {
    let Some(Once(token)) = once else { return Ok(None) };
    super::db::submission_went_to(pool, token, staff).await
}

/// Record the submission, in the transaction of what it adds.
pub async fn record(tx: &mut PgConnection, once: Option<Once>, staff: Uuid, went_to: &str) -> Result<(), sqlx::Error> {
    let Some(Once(token)) = once else { return Ok(()) };
    super::db::record_submission(tx, token, staff, went_to).await
}

/// A submission that lost the race against its own twin: it was submitted already.
pub fn was_repeat(e: &AppError) -> bool {
    e.violates(USED)
}

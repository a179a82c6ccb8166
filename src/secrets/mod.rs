//! Secrets Drop rotates (runbook.md §4): which ones the console manages and what rotating each
//! one does. Values are never read into a page.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::auth::policy::{Access, OPS, Route};
use crate::cloud::bounded;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Area, Shell, render};

pub fn routes() -> Vec<Route> {
    vec![Route::get("/secrets", Access::Roles(OPS), show_secrets)]
}

pub struct ManagedSecret {
    pub name: &'static str,
    pub location: String,
    pub generated: &'static str,
    pub impact: &'static str,
    /// When Secrets Manager last saw it change, or why that cannot be read.
    pub last_changed: Result<Option<chrono::DateTime<chrono::Utc>>, String>,
}

impl ManagedSecret {
    pub fn age(&self) -> Option<String> {
        let at = (*self.last_changed.as_ref().ok()?)?;
        Some(format!("{} days ago", (chrono::Utc::now() - at).num_days()))
    }
}

#[derive(Template)]
#[template(path = "secrets/index.html")]
pub struct SecretsPage {
    pub shell: Shell,
    pub secrets: Vec<ManagedSecret>,
}

pub async fn show_secrets(State(state): State<AppState>, user: CurrentUser) -> Result<Html<String>, AppError> {
    let d = &state.config.drop;
    let changed = |id: Option<String>| {
        let secrets = state.cloud.secrets.clone();
        async move {
            match id {
                None => Err("not configured".to_owned()),
                Some(id) => bounded(std::time::Duration::from_secs(3), secrets.secret_info(&id))
                    .await
                    .map(|i| i.last_changed)
                    .map_err(|e| e.to_string()),
            }
        }
    };
    let (jwt_changed, db_changed) =
        tokio::join!(changed(d.jwt_secret_id.clone()), changed(d.database_url_secret_id.clone()));
    let secrets = vec![
        ManagedSecret {
            name: "JWT_SECRET",
            location: d.jwt_secret_id.clone().unwrap_or_else(|| "not configured".into()),
            generated: "48 random bytes, base64",
            impact: "Every Drop user session is invalidated: all customers are signed out.",
            last_changed: jwt_changed,
        },
        ManagedSecret {
            name: "Database master password",
            location: match &d.database_url_secret_id {
                Some(id) => format!(
                    "RDS instance {} and the DATABASE_URL secret {id}",
                    d.rds_instance.as_deref().unwrap_or("not configured")
                ),
                None => format!("RDS instance {}", d.rds_instance.as_deref().unwrap_or("not configured")),
            },
            generated: "32 random bytes, base64",
            impact: "Production is down if the password changes but DATABASE_URL is not updated; the rotation must run to completion.",
            last_changed: db_changed,
        },
    ];
    render(&SecretsPage { shell: Shell::new(&state, &user, Area::Secrets, "Secrets"), secrets })
}

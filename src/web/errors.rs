//! Renders every error response once, whoever produced it (a handler's `AppError`, the 404
//! fallback, the timeout or body-limit layers, a panic): a toast fragment for htmx requests,
//! a full page otherwise, always with the request id and never with raw error text.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::error::{self, ErrorReport};
use crate::state::AppState;
use crate::web::{Shell, is_htmx};

#[derive(Template)]
#[template(path = "errors/page.html")]
pub struct ErrorPage {
    pub shell: Shell,
    pub status: u16,
    pub title: &'static str,
    pub message: String,
    pub link: Option<String>,
    pub request_id: String,
}

#[derive(Template)]
#[template(path = "partials/_toast.html")]
pub struct ToastFragment {
    pub title: &'static str,
    pub message: String,
    pub link: Option<String>,
    pub request_id: String,
}

pub async fn render_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let htmx = is_htmx(request.headers());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let report = response.extensions().get::<ErrorReport>().cloned();
    let user = response.extensions().get::<crate::auth::CurrentUser>().cloned();
    // Responses that already carry a typed body (JSON from /health/ready, say) stay as they are.
    let has_body_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| !v.to_str().unwrap_or("").starts_with("text/plain"));
    if report.is_none() && has_body_type {
        return response;
    }
    let ErrorReport { title, message, link } = report.unwrap_or_else(|| ErrorReport {
        title: error::title(status),
        message: error::default_message(status).to_owned(),
        link: None,
    });
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let html = if htmx {
        parts.headers.insert("hx-retarget", HeaderValue::from_static("#toasts"));
        parts.headers.insert("hx-reswap", HeaderValue::from_static("beforeend"));
        ToastFragment { title, message, link, request_id }.render()
    } else {
        // Signed in: the navigation stays, so the way on is one click.
        let shell = match &user {
            Some(user) => Shell::new(&state, user, crate::web::Area::Overview, title),
            None => Shell::public(&state, title),
        };
        ErrorPage { shell, status: status.as_u16(), title, message, link, request_id }.render()
    };
    match html {
        Ok(html) => (parts, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the error page");
            (parts, "Something went wrong.").into_response()
        }
    }
}

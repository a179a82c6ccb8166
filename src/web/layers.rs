//! The middleware stack every response passes through, outermost first: request id, tracing,
//! metrics, security headers, gzip, error rendering, panic catching, timeout, body limit.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::state::AppState;
use crate::web::errors::render_errors;

/// No inline script or style anywhere; violations are reported to `/csp-report`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; report-uri /csp-report";

pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let timeout = state.config.request_timeout;
    let max_body = state.config.max_body_bytes;
    // Router::layer wraps what came before: the last layer added is the outermost.
    router
        .layer(middleware::from_fn(refuse_control_characters))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), database_gate))
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(middleware::from_fn_with_state(state.clone(), forget_rejected_posts))
        .layer(middleware::from_fn_with_state(state.clone(), read_again_after_changes))
        .layer(CompressionLayer::new().gzip(true))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_foreign_host))
        .layer(middleware::from_fn_with_state(state.clone(), crate::metrics::record))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(middleware::from_fn_with_state(state.clone(), identify_request))
}

/// Largest page a rejected form's re-render is rewritten in (larger ones pass unchanged).
const REWRITE_LIMIT: usize = 4 * 1024 * 1024;

/// A form sent back with its errors (422 to a POST) is a history entry the browser would post
/// again on Back or reload ("Confirm Form Resubmission"). The page names the form's own page
/// (the `Referer` it was posted from) in a `<meta name="dropops-get-url">`, and `app.js`
/// replaces the POST entry with that page's address: Back after the corrected submission, or
/// a reload, loads the form afresh instead of asking to resend it.
async fn forget_rejected_posts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let page = (request.method() == axum::http::Method::POST)
        .then(|| crate::auth::guard::form_page(&state, request.headers()))
        .flatten();
    let response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let Some(page) = page.filter(|_| response.status() == StatusCode::UNPROCESSABLE_ENTITY && is_html) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, REWRITE_LIMIT).await else {
        return AppError::Internal(anyhow::anyhow!("a rejected form's page could not be read")).into_response();
    };
    let html = String::from_utf8_lossy(&bytes);
    let page = askama::filters::escape(&page, askama::filters::Html).map_or_else(|e| match e {}, |e| e.to_string());
    let meta = format!(r#"<meta name="dropops-get-url" content="{page}">"#);
    let html = match html.find("<head>") {
        Some(at) => format!("{}{meta}{}", &html[..at + 6], &html[at + 6..]),
        None => html.into_owned(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(html))
}

/// Whoever changes something sees the world after it: a request that may change anything
/// (not a GET or HEAD) makes every shared reading of the outside world stale once it is done.
async fn read_again_after_changes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let may_change = !matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    let response = next.run(request).await;
    if may_change {
        state.outside.changes.changed();
    }
    response
}

/// During a database outage every page would wait the pool's full timeout before its 503,
/// and a failing session store answered 500. Once a request found the database unreachable,
/// the next ones answer 503 after one short check; a 500 from the layers (the session store)
/// while the database is unreachable is the same 503. The probes and static files pass.
async fn database_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if matches!(path, "/health/live" | "/health/ready" | "/metrics") || path.starts_with("/static/") {
        return next.run(request).await;
    }
    let unavailable = || AppError::Unavailable(crate::error::DATABASE_UNAVAILABLE.into()).into_response();
    if state.db_gate.is_down() && !state.db_gate.reachable(&state.pool).await {
        return unavailable();
    }
    let response = next.run(request).await;
    let report = response.extensions().get::<crate::error::ErrorReport>();
    let database_unavailable = report.is_some_and(|r| r.message == crate::error::DATABASE_UNAVAILABLE);
    let from_a_layer = response.status() == StatusCode::INTERNAL_SERVER_ERROR && report.is_none();
    if (database_unavailable || from_a_layer) && !state.db_gate.reachable(&state.pool).await {
        return unavailable();
    }
    response
}

/// Only the configured public host (loopback names in demo mode) is served: a page on another
/// site whose DNS name is rebound to the console's address gets nothing. The liveness and
/// readiness probes and the metrics scrape come from inside the network by address and are
/// let through (the scrape carries its own token).
async fn refuse_foreign_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if matches!(path, "/health/live" | "/health/ready" | "/metrics") {
        return next.run(request).await;
    }
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if state.config.accepted_hosts().iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return next.run(request).await;
    }
    tracing::warn!(host, "request for a host this console does not serve; refused");
    let message = format!("This console answers only at {}.", state.config.base_url());
    (StatusCode::MISDIRECTED_REQUEST, message).into_response()
}

/// Control characters (NUL, VT, FF, ESC, DEL, C1 …) belong in no field a person types; they
/// break headers, log lines and database text. Refuse a query string or form carrying one with
/// a 422 before any handler runs or anything is written. TAB, CR and LF stay allowed in form
/// fields (a textarea sends CRLF).
async fn refuse_control_characters(request: Request, next: Next) -> Result<Response, AppError> {
    const REFUSED: &str =
        "The form contains an invisible control character (such as NUL or a vertical tab). Remove it and try again.";
    let has_control = |encoded: &[u8], allow_whitespace: bool| {
        form_urlencoded::parse(encoded).any(|(k, v)| {
            k.chars().chain(v.chars()).any(|c| c.is_control() && !(allow_whitespace && matches!(c, '\t' | '\r' | '\n')))
        })
    };
    if request.uri().query().is_some_and(|q| has_control(q.as_bytes(), false)) {
        return Err(AppError::Validation(REFUSED.into()));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(next.run(request).await);
    }
    let (parts, body) = request.into_parts();
    // The body limit layer inside this one bounds what is read here.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| AppError::Validation("The form is larger than the console accepts.".into()))?;
    if has_control(&bytes, true) {
        return Err(AppError::Validation(REFUSED.into()));
    }
    Ok(next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await)
}

/// The request's id is always the console's own (a client's `X-Request-Id` is kept apart as
/// `x-client-request-id`, for correlating, never for the audit log), and the client address
/// is the one the configured proxies vouch for: the audit log and the sign-ins page record
/// only what the console itself saw.
async fn identify_request(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    if let Some(claimed) = headers.remove("x-request-id") {
        let claimed: String =
            String::from_utf8_lossy(claimed.as_bytes()).chars().filter(char::is_ascii_graphic).take(100).collect();
        if let Ok(value) = HeaderValue::from_str(&claimed) {
            headers.insert(HeaderName::from_static("x-client-request-id"), value);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }
    let peer = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let client = crate::audit::ClientAddress::of(request.headers(), peer, state.config.trusted_proxy_hops);
    let extensions = request.extensions_mut();
    extensions.insert(crate::web::RequestId(id));
    if let Some(client) = client {
        extensions.insert(client);
    }
    next.run(request).await
}

fn request_span(request: &Request) -> tracing::Span {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let (request_id, client_request_id) = (header("x-request-id"), header("x-client-request-id"));
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id, client_request_id)
}

/// Security headers on every response, errors included. Pages are never cached (they show
/// live state and, later, personal data); hashed static files set their own long cache.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let forwarded_https =
        request.headers().get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "same-origin");
    set(HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=(), payment=()");
    set(header::CACHE_CONTROL, "no-store");
    if state.config.is_https() || forwarded_https {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains");
    }
    response
}

/// How long an in-flight request may keep the server alive after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

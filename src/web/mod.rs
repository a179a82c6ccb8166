//! What every page shares: the layout shell, the page-or-fragment helper, htmx detection,
//! error rendering, security headers and static assets.

pub mod assets;
pub mod chart;
mod db;
pub mod errors;
pub mod forms;
pub mod layers;
pub mod once;
pub mod paging;
pub mod tabs;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Html;

use crate::auth::CurrentUser;
use crate::config::{Mode, Role};
use crate::error::AppError;
use crate::state::AppState;

/// The console's areas, in navigation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Overview,
    Health,
    Deployments,
    Incidents,
    Compliance,
    Secrets,
    Database,
    Audit,
    Admin,
}

impl Area {
    /// The area's page: the navigation's link, or the overview.
    pub fn href(self) -> &'static str {
        NAV.iter().find(|item| item.area == self).map_or("/", |item| item.href)
    }
}

pub struct NavItem {
    pub area: Area,
    pub label: &'static str,
    pub href: &'static str,
}

pub const NAV: [NavItem; 7] = [
    NavItem { area: Area::Health, label: "Health", href: "/health" },
    NavItem { area: Area::Deployments, label: "Deployments", href: "/deployments" },
    NavItem { area: Area::Incidents, label: "Incidents", href: "/incidents" },
    NavItem { area: Area::Compliance, label: "Compliance", href: "/compliance" },
    NavItem { area: Area::Secrets, label: "Secrets", href: "/secrets" },
    NavItem { area: Area::Database, label: "Database", href: "/database" },
    NavItem { area: Area::Audit, label: "Audit", href: "/audit" },
];

/// Everything the layout needs besides the page's own content.
pub struct Shell {
    pub title: String,
    pub active: Area,
    pub demo: bool,
    pub css_url: String,
    pub htmx_url: String,
    pub app_js_url: String,
    pub htmx_license_url: String,
    pub favicon_url: String,
    /// The areas this person may open; empty before sign-in.
    pub nav: Vec<&'static NavItem>,
    pub user: Option<UserBadge>,
    /// The session's CSRF token: sent by htmx as a header, and put in every form.
    pub csrf: String,
    /// The tab of the area this page is in, if the area has tabs.
    pub tab: Option<tabs::Tab>,
    roles: Vec<Role>,
    policy: std::sync::Arc<crate::auth::policy::Policy>,
}

/// Where a page sits in the navigation: an area without tabs, or one tab of an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Area(Area),
    Tab(tabs::Tab),
}

impl From<Area> for Place {
    fn from(area: Area) -> Self {
        Place::Area(area)
    }
}

impl From<tabs::Tab> for Place {
    fn from(tab: tabs::Tab) -> Self {
        Place::Tab(tab)
    }
}

pub struct UserBadge {
    pub name: String,
    pub roles: String,
    pub is_admin: bool,
}

impl Shell {
    /// The shell of a page for a signed-in person: navigation filtered by the access table.
    /// `place` is the page's area, or its tab where the area has tabs (the tab names its area).
    pub fn new(state: &AppState, user: &CurrentUser, place: impl Into<Place>, title: impl Into<String>) -> Self {
        let nav = NAV.iter().filter(|item| state.policy.allows_page(item.href, &user.roles)).collect();
        Self {
            nav,
            user: Some(UserBadge {
                name: user.name.clone(),
                roles: user.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", "),
                is_admin: user.has(Role::Admin),
            }),
            csrf: user.csrf.clone(),
            roles: user.roles.clone(),
            ..Self::public(state, title).at(place.into())
        }
    }

    /// The shell of a page anyone may see (sign-in, errors): no navigation.
    pub fn public(state: &AppState, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            active: Area::Overview,
            demo: state.config.mode == Mode::Demo,
            css_url: state.assets.url("app.css").to_owned(),
            htmx_url: state.assets.url("vendor/htmx/htmx.min.js").to_owned(),
            app_js_url: state.assets.url("app.js").to_owned(),
            htmx_license_url: state.assets.url("vendor/htmx/LICENSE").to_owned(),
            favicon_url: state.assets.url("favicon.svg").to_owned(),
            nav: Vec::new(),
            user: None,
            csrf: String::new(),
            tab: None,
            roles: Vec::new(),
            policy: state.policy.clone(),
        }
    }

    /// A public page that still posts a form (sign-in): give htmx and forms the token.
    pub fn with_csrf(mut self, csrf: String) -> Self {
        self.csrf = csrf;
        self
    }

    fn at(mut self, place: Place) -> Self {
        match place {
            Place::Area(area) => self.active = area,
            Place::Tab(tab) => {
                self.active = tab.area();
                self.tab = Some(tab);
            }
        }
        self
    }

    /// The tabs of this page's area that this person may open, this page's current.
    pub fn tabs(&self) -> Vec<tabs::TabLink> {
        let Some(current) = self.tab else { return vec![] };
        tabs::Tab::ALL
            .iter()
            .filter(|t| t.area() == current.area() && self.may(t.href()))
            .map(|t| tabs::TabLink { href: t.href(), label: t.label(), current: *t == current })
            .collect()
    }

    /// How the tabs are named for a screen reader: the area's name.
    pub fn tabs_label(&self) -> &'static str {
        match self.active {
            Area::Admin => "Administration",
            area => NAV.iter().find(|item| item.area == area).map_or("Sections", |item| item.label),
        }
    }

    /// Whether this person may post to the route `path` (its template, as declared): forms
    /// show only to those the action would not refuse (oversight reads casework, acts on none).
    pub fn may_post(&self, path: &str) -> bool {
        self.policy.allows_post(path, &self.roles)
    }

    /// Whether this person may open the page at `path`: for links to show or hide.
    pub fn may(&self, path: &str) -> bool {
        self.policy.allows_page(path, &self.roles)
    }

    pub fn in_admin(&self) -> bool {
        self.active == Area::Admin
    }

    pub fn is_active(&self, item: &NavItem) -> bool {
        item.area == self.active
    }

    /// `hx-headers` for the body: htmx sends the CSRF token with every request.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string()
    }
}

/// True for requests made by htmx that want a fragment (a boosted link wants the whole page).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    let flag = |name: &str| headers.get(name).is_some_and(|v| v == "true");
    flag("hx-request") && !flag("hx-boosted")
}

/// Extractor: whether this request came from htmx and wants a fragment.
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Htmx(is_htmx(&parts.headers)))
    }
}

/// Extractor: the path's `{id}` as a typed id; one that does not parse is a 404, before any
/// query runs (see [`crate::ids`]).
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: std::str::FromStr + Send> FromRequestParts<S> for PathId<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state).await.map_err(|_| AppError::NotFound)?;
        text.parse().map(PathId).map_err(|_| AppError::NotFound)
    }
}

/// Render a template into an HTML response.
pub fn render(template: &impl Template) -> Result<Html<String>, AppError> {
    Ok(Html(template.render()?))
}

/// Only the fragment for an htmx swap, the page around it otherwise: the page is built from
/// the fragment, so both always show the same data.
/// The console's id of the request being served (web::layers sets it on every request).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn page_or_fragment<F: Template, P: Template>(
    htmx: Htmx,
    fragment: F,
    page: impl FnOnce(F) -> P,
) -> Result<Html<String>, AppError> {
    if htmx.0 { render(&fragment) } else { render(&page(fragment)) }
}

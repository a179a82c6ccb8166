//! Who may use which route: one declarative table, built from the same [`Route`] values the
//! router is built from, so a route cannot exist without an access rule. Anything the table
//! does not name is denied.

use std::collections::HashMap;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};

use crate::config::Role;
use crate::state::AppState;

/// Every role: pages any signed-in member of staff may read.
pub const ANY_ROLE: &[Role] = &Role::ALL;
/// Operations pages (deployments, secrets, database): engineers and read-only viewers.
pub const OPS: &[Role] = &[Role::Viewer, Role::Oncall, Role::Admin];
/// Operations actions: deploy, restart, rotate.
pub const ONCALL: &[Role] = &[Role::Oncall, Role::Admin];
/// Compliance summaries without personal data.
pub const COMPLIANCE_SUMMARY: &[Role] = &[Role::Viewer, Role::Compliance, Role::Mlro, Role::Admin, Role::Oversight];
/// Casework with personal data and STRs: compliance staff and the MLRO only (tipping-off rule).
pub const CASEWORK: &[Role] = &[Role::Compliance, Role::Mlro];
/// Reading casework (queues, alerts, people, STRs and filings): the casework roles and
/// oversight, who acts on nothing. Every view is audited as anyone's is.
pub const CASEWORK_READ: &[Role] = &[Role::Compliance, Role::Mlro, Role::Oversight];
/// Approving and filing STRs.
pub const MLRO: &[Role] = &[Role::Mlro];
/// The CEO's risk page and the inspection evidence pack: the MLRO, oversight and admins.
pub const RISK: &[Role] = &[Role::Mlro, Role::Admin, Role::Oversight];
/// The inspection evidence pack: the MLRO and admins.
pub const EVIDENCE: &[Role] = &[Role::Mlro, Role::Admin];
/// Console administration: staff and their sessions.
pub const ADMIN: &[Role] = &[Role::Admin];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No sign-in (health probes, static files, sign-in itself). POSTs still need CSRF.
    Public,
    /// No sign-in and no CSRF token: only for browser-generated reports with no effect.
    PublicReport,
    /// Signed in with at least one of these roles.
    Roles(&'static [Role]),
}

/// A rule: method, path template, who may use it, and whether it needs a recent sign-in.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub access: Access,
    pub step_up: bool,
}

/// A route and its rule, declared together.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
    pub handler: MethodRouter<AppState>,
}

impl Route {
    pub fn get<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self { method: Method::GET, path, rule: Rule { access, step_up: false }, handler: routing::get(handler) }
    }

    pub fn post<H, T>(path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self { method: Method::POST, path, rule: Rule { access, step_up: false }, handler: routing::post(handler) }
    }

    /// This action needs a sign-in newer than `auth.step_up_max_age`.
    pub fn step_up(mut self) -> Self {
        self.rule.step_up = true;
        self
    }
}

/// The access table, looked up by method and matched path template.
#[derive(Default)]
pub struct Policy {
    rules: HashMap<&'static str, Vec<(Method, Rule)>>,
}

impl Policy {
    /// The access table of these routes.
    pub fn of(routes: &[Route]) -> Self {
        let mut policy = Self::default();
        for route in routes {
            policy.insert(route.method.clone(), route.path, route.rule);
        }
        policy
    }

    pub fn insert(&mut self, method: Method, path: &'static str, rule: Rule) {
        let rules = self.rules.entry(path).or_default();
        assert!(!rules.iter().any(|(m, _)| *m == method), "route {method} {path} is declared twice");
        rules.push((method, rule));
    }

    pub fn rule(&self, method: &Method, path: &str) -> Option<Rule> {
        // HEAD is answered by GET handlers and follows their rule.
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.rules.get(path)?.iter().find(|(m, _)| m == method).map(|(_, rule)| *rule)
    }

    /// Casework: every method of the path is for compliance staff or the MLRO alone. Such
    /// routes must not be told apart from outside (metrics).
    pub fn is_casework(&self, path: &str) -> bool {
        self.rules.get(path).is_some_and(|rules| rules.iter().all(|(_, rule)| rule.access.is_casework()))
    }

    /// The methods declared for a path template, if it is declared at all.
    pub fn methods(&self, path: &str) -> Option<Vec<Method>> {
        Some(self.rules.get(path)?.iter().map(|(m, _)| m.clone()).collect())
    }

    /// Whether someone with `roles` may POST to the route `path` (a template, as declared):
    /// for showing a form only to those it would not refuse.
    pub fn allows_post(&self, path: &str, roles: &[Role]) -> bool {
        matches!(self.rule(&Method::POST, path), Some(Rule { access, .. }) if access.allows(roles))
    }

    /// Whether someone with `roles` may open `path` with GET: for showing navigation links.
    pub fn allows_page(&self, path: &str, roles: &[Role]) -> bool {
        matches!(self.rule(&Method::GET, path), Some(Rule { access: Access::Roles(allowed), .. }) if roles.iter().any(|r| allowed.contains(r)))
            || matches!(self.rule(&Method::GET, path), Some(Rule { access: Access::Public, .. }))
    }
}

impl Access {
    pub fn allows(self, roles: &[Role]) -> bool {
        match self {
            Access::Public | Access::PublicReport => true,
            Access::Roles(allowed) => roles.iter().any(|r| allowed.contains(r)),
        }
    }

    /// Only compliance staff or the MLRO may use it: casework, kept from everyone else.
    pub fn is_casework(self) -> bool {
        matches!(self, Access::Roles(roles) if roles.iter().all(|r| matches!(r, Role::Compliance | Role::Mlro | Role::Oversight)))
    }
}

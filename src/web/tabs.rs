//! The tabs inside an area (health, compliance, administration): a page names its tab, and
//! the shell lists the area's tabs with that one current, so no template matches page titles.

use super::Area;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Dashboard,
    Checks,
    Sla,
    Logs,
    Playbook,
    Summary,
    Alerts,
    Transactions,
    People,
    Strs,
    Gdpr,
    Kyc,
    Staff,
    SignIns,
    Simulator,
    Incidents,
    Handoffs,
    Maintenance,
    Contacts,
    Messages,
    BreakGlass,
    BreakGlassReview,
    Retention,
    Evidence,
    Risk,
}

impl Tab {
    /// In the order they are shown.
    pub const ALL: [Tab; 25] = [
        Tab::Dashboard,
        Tab::Checks,
        Tab::Sla,
        Tab::Logs,
        Tab::Playbook,
        Tab::Risk,
        Tab::Summary,
        Tab::Alerts,
        Tab::Transactions,
        Tab::People,
        Tab::Strs,
        Tab::Gdpr,
        Tab::Kyc,
        Tab::BreakGlassReview,
        Tab::Retention,
        Tab::Evidence,
        Tab::Staff,
        Tab::SignIns,
        Tab::Simulator,
        Tab::Incidents,
        Tab::Handoffs,
        Tab::Maintenance,
        Tab::Contacts,
        Tab::Messages,
        Tab::BreakGlass,
    ];

    pub fn area(self) -> Area {
        match self {
            Tab::Dashboard | Tab::Checks | Tab::Sla | Tab::Logs | Tab::Playbook => Area::Health,
            Tab::Risk
            | Tab::Summary
            | Tab::Alerts
            | Tab::Transactions
            | Tab::People
            | Tab::Strs
            | Tab::Gdpr
            | Tab::Kyc
            | Tab::BreakGlassReview
            | Tab::Retention
            | Tab::Evidence => Area::Compliance,
            Tab::Staff | Tab::SignIns | Tab::Simulator => Area::Admin,
            Tab::Incidents | Tab::Handoffs | Tab::Maintenance | Tab::Contacts | Tab::Messages | Tab::BreakGlass => {
                Area::Incidents
            }
        }
    }

    pub fn href(self) -> &'static str {
        match self {
            Tab::Dashboard => "/health",
            Tab::Checks => "/health/checks",
            Tab::Sla => "/health/sla",
            Tab::Logs => "/health/logs",
            Tab::Playbook => "/health/playbook",
            Tab::Summary => "/compliance",
            Tab::Alerts => "/compliance/alerts",
            Tab::Transactions => "/compliance/transactions",
            Tab::People => "/compliance/people",
            Tab::Strs => "/compliance/str",
            Tab::Gdpr => "/compliance/gdpr",
            Tab::Kyc => "/compliance/kyc",
            Tab::Staff => "/admin/staff",
            Tab::SignIns => "/admin/sessions",
            Tab::Simulator => "/admin/simulator",
            Tab::Incidents => "/incidents",
            Tab::Handoffs => "/incidents/handoffs",
            Tab::Maintenance => "/incidents/maintenance",
            Tab::Contacts => "/incidents/contacts",
            Tab::Messages => "/incidents/messages",
            Tab::BreakGlass => "/incidents/break-glass",
            Tab::BreakGlassReview => "/compliance/break-glass",
            Tab::Retention => "/compliance/retention",
            Tab::Evidence => "/compliance/evidence",
            Tab::Risk => "/risk",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tab::Dashboard => "Dashboard",
            Tab::Checks => "Routine checks",
            Tab::Sla => "SLA report",
            Tab::Logs => "Logs",
            Tab::Playbook => "Playbook",
            Tab::Summary => "Summary",
            Tab::Alerts => "AML alerts",
            Tab::Transactions => "Transactions",
            Tab::People => "People",
            Tab::Strs => "STRs",
            Tab::Gdpr => "GDPR",
            Tab::Kyc => "KYC",
            Tab::Staff => "Staff",
            Tab::SignIns => "Sign-ins",
            Tab::Simulator => "Simulator",
            Tab::Incidents => "Incidents",
            Tab::Handoffs => "Hand-offs",
            Tab::Maintenance => "Maintenance",
            Tab::Contacts => "Escalation",
            Tab::Messages => "Slack",
            Tab::BreakGlass => "Emergency access",
            Tab::BreakGlassReview => "Break-glass",
            Tab::Retention => "Retention",
            Tab::Evidence => "Inspection pack",
            Tab::Risk => "Risk",
        }
    }
}

/// A tab as the page shows it.
pub struct TabLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

//! The escalation matrix (runbook §7): who is called, by severity and by how long an incident
//! has gone unresolved, with the payment system's own path. The people behind each role are
//! in the configuration (`[oncall] contacts`).

use chrono::{DateTime, Utc};

use super::kinds::{IncidentStatus, Severity};
use crate::config::{Contact, ContactRole};

/// One rung of a ladder: from `after` minutes on, these roles are called too.
pub struct Rung {
    pub after_minutes: i64,
    pub roles: &'static [ContactRole],
}

use ContactRole as R;

/// Engineering → CTO → CEO, faster the worse it is.
const SEV1: [Rung; 3] = [
    Rung { after_minutes: 0, roles: &[R::OncallPrimary, R::TechLead] },
    Rung { after_minutes: 15, roles: &[R::EngineeringManager, R::Cto] },
    Rung { after_minutes: 30, roles: &[R::Ceo] },
];
const SEV2: [Rung; 3] = [
    Rung { after_minutes: 0, roles: &[R::OncallPrimary] },
    Rung { after_minutes: 30, roles: &[R::OncallBackup, R::TechLead] },
    Rung { after_minutes: 120, roles: &[R::Cto] },
];
const SEV3: [Rung; 2] =
    [Rung { after_minutes: 0, roles: &[R::OncallPrimary] }, Rung { after_minutes: 24 * 60, roles: &[R::TechLead] }];
/// Payment system down: on-call + payment owner → provider support → engineering manager.
const PAYMENTS: [Rung; 3] = [
    Rung { after_minutes: 0, roles: &[R::OncallPrimary, R::PaymentOwner] },
    Rung { after_minutes: 15, roles: &[R::PaymentProvider] },
    Rung { after_minutes: 30, roles: &[R::EngineeringManager] },
];

/// The ladder an incident climbs.
pub fn ladder(severity: Severity, payments_down: bool) -> &'static [Rung] {
    match (payments_down, severity) {
        (true, _) => &PAYMENTS,
        (false, Severity::Sev1) => &SEV1,
        (false, Severity::Sev2) => &SEV2,
        (false, Severity::Sev3) => &SEV3,
    }
}

/// Someone to call: the role, and the configured person if there is one.
pub struct Callee {
    pub role: ContactRole,
    pub contact: Option<Contact>,
}

/// The answer to "who do I call now".
pub struct CallNow {
    /// Everyone due by now, the newest rung first.
    pub now: Vec<Callee>,
    /// The next rung, and in how many minutes it is due.
    pub next: Option<(i64, Vec<Callee>)>,
    pub resolved: bool,
}

fn callees(roles: &[ContactRole], contacts: &[Contact]) -> Vec<Callee> {
    roles
        .iter()
        .map(|role| Callee { role: *role, contact: contacts.iter().find(|c| c.role == *role).cloned() })
        .collect()
}

/// Who is due for an incident of this severity, declared at `declared_at`, at `now`.
pub fn call_now(
    severity: Severity,
    payments_down: bool,
    status: IncidentStatus,
    declared_at: DateTime<Utc>,
    now: DateTime<Utc>,
    contacts: &[Contact],
) -> CallNow {
    if status == IncidentStatus::Resolved {
        return CallNow { now: vec![], next: None, resolved: true };
    }
    let age = (now - declared_at).num_minutes().max(0);
    let rungs = ladder(severity, payments_down);
    let due: Vec<&Rung> = rungs.iter().filter(|r| r.after_minutes <= age).collect();
    let now_list = due.iter().rev().flat_map(|r| callees(r.roles, contacts)).collect();
    let next =
        rungs.iter().find(|r| r.after_minutes > age).map(|r| (r.after_minutes - age, callees(r.roles, contacts)));
    CallNow { now: now_list, next, resolved: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[Callee]) -> Vec<ContactRole> {
        list.iter().map(|c| c.role).collect()
    }

    #[test]
    fn a_sev1_climbs_to_the_ceo_in_half_an_hour() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |minutes| start + chrono::Duration::minutes(minutes);
        let fresh = call_now(Severity::Sev1, false, IncidentStatus::Investigating, start, at(5), &[]);
        assert_eq!(roles(&fresh.now), [R::OncallPrimary, R::TechLead]);
        let (in_minutes, next) = fresh.next.unwrap();
        assert_eq!((in_minutes, roles(&next)), (10, vec![R::EngineeringManager, R::Cto]));
        let late = call_now(Severity::Sev1, false, IncidentStatus::Monitoring, start, at(31), &[]);
        assert_eq!(late.now.first().map(|c| c.role), Some(R::Ceo), "the newest rung first");
        assert!(late.next.is_none());
        let done = call_now(Severity::Sev1, false, IncidentStatus::Resolved, start, at(31), &[]);
        assert!(done.resolved && done.now.is_empty());
    }

    #[test]
    fn payments_down_calls_the_payment_owner_then_the_provider() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let contacts = vec![Contact {
            role: R::PaymentOwner,
            name: "Per Betaling".into(),
            phone: Some("+47 400 00 007".into()),
            email: None,
            note: None,
        }];
        let call = call_now(Severity::Sev2, true, IncidentStatus::Investigating, start, start, &contacts);
        assert_eq!(roles(&call.now), [R::OncallPrimary, R::PaymentOwner]);
        assert_eq!(call.now[1].contact.as_ref().map(|c| c.name.as_str()), Some("Per Betaling"));
        assert!(call.now[0].contact.is_none(), "an unconfigured role is named, with nobody behind it");
        assert_eq!(call.next.map(|(m, c)| (m, roles(&c))), Some((15, vec![R::PaymentProvider])));
    }
}

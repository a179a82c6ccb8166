//! Drop's AML rules as compliance reads them: a label instead of the code the alerting job
//! writes to `aml_alerts.rule`, and what the rule looks for. A code the console does not know
//! (a rule added to Drop later) is shown readably, never hidden.

/// The rules Drop's alerting job raises: (code, label, what it looks for).
const KNOWN: &[(&str, &str, &str)] = &[
    ("large_transaction", "Large transaction", "A single transfer above the reporting threshold."),
    (
        "rapid_succession",
        "Rapid succession",
        "Several transfers by one customer in a short time, more than their usual pattern.",
    ),
    ("high_risk_corridor", "High-risk corridor", "A transfer to a country on the high-risk list."),
    (
        "structuring",
        "Possible structuring",
        "Transfers just below the threshold, as if one amount were split to stay under it.",
    ),
    (
        "new_account_high_volume",
        "High volume on a new account",
        "Large or many transfers soon after the account was opened.",
    ),
];

/// The label of a rule code: "Large transaction" for `large_transaction`; an unknown code
/// with its underscores read as spaces.
pub fn label(code: &str) -> String {
    match KNOWN.iter().find(|(c, _, _)| *c == code) {
        Some((_, label, _)) => (*label).to_owned(),
        None => {
            let words = code.replace(['_', '-'], " ");
            let mut chars = words.trim().chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => "Unnamed rule".to_owned(),
            }
        }
    }
}

/// What the rule looks for, when the console knows it.
pub fn looks_for(code: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(c, _, _)| *c == code).map(|(_, _, what)| *what)
}

/// Whether the rule is about how new the account was when it fired.
pub fn about_account_age(code: Option<&str>) -> bool {
    code == Some("new_account_high_volume")
}

/// The label of an alert's rule, or what to show where Drop does not record which rule fired
/// (`aml_alerts.rule` is optional in the schema contract).
pub fn label_of(code: Option<&str>) -> String {
    code.map_or_else(|| "Rule not recorded".to_owned(), label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_rules_have_labels_and_unknown_ones_stay_readable() {
        assert_eq!(label("large_transaction"), "Large transaction");
        assert!(looks_for("structuring").unwrap().contains("below the threshold"));
        assert_eq!(label("velocity_check_v2"), "Velocity check v2");
        assert_eq!(looks_for("velocity_check_v2"), None);
        assert_eq!(label("__"), "Unnamed rule");
    }
}

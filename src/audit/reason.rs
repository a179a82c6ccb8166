//! Why something was done, as the audit log keeps it. Every reason field of the console (disable
//! a staff member, deploy, rotate, reopen an alert, close it with review notes, revoke a
//! customer's sessions, erase data, return an STR) is a [`Reason`], so one rule bounds them all
//! and an unbounded text cannot reach the log: [`super::Intent`] takes nothing else.

use std::fmt;

/// A reason: trimmed, 1 to [`Reason::MAX`] characters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    /// The longest reason (in characters, not bytes); forms say so with `maxlength`.
    pub const MAX: usize = 2000;

    /// What a person typed into a required reason field; the error is the message shown next
    /// to the field, naming `what` was asked for ("a reason for reopening").
    pub fn parse(typed: &str, what: &str) -> Result<Self, String> {
        let text = typed.trim();
        match text.chars().count() {
            0 => Err(format!("Enter {what}.")),
            n if n > Self::MAX => Err(format!("Keep {what} under {} characters (now {n}).", Self::MAX)),
            _ => Ok(Self(text.to_owned())),
        }
    }

    /// A reason field that may be left blank (`None`), but not be unbounded.
    pub fn optional(typed: &str, what: &str) -> Result<Option<Self>, String> {
        if typed.trim().is_empty() { Ok(None) } else { Self::parse(typed, what).map(Some) }
    }

    /// A reason the console words itself from outside text (why a sign-in was refused): cut to
    /// the rule rather than refused, since there is nobody to ask again.
    pub fn cut(text: &str) -> Self {
        let text: String = text.trim().chars().take(Self::MAX).collect();
        Self(if text.is_empty() { "no reason given".to_owned() } else { text })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_trims_requires_and_bounds() {
        assert_eq!(Reason::parse("  ok ", "a reason").unwrap().as_str(), "ok");
        assert_eq!(Reason::parse(" \n ", "a reason"), Err("Enter a reason.".to_owned()));
        let long = "é".repeat(Reason::MAX + 1);
        assert_eq!(
            Reason::parse(&long, "notes"),
            Err(format!("Keep notes under 2000 characters (now {}).", Reason::MAX + 1))
        );
        assert!(Reason::parse(&long[..Reason::MAX * 2], "notes").is_ok(), "counted in characters, not bytes");
        assert_eq!(Reason::optional("  ", "the reason"), Ok(None));
        assert!(Reason::optional(&long, "the reason").is_err());
        assert_eq!(Reason::cut(&long).as_str().chars().count(), Reason::MAX);
        assert_eq!(Reason::cut(" ").as_str(), "no reason given");
    }
}

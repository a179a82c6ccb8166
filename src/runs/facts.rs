//! What a run learns as it goes and later steps rely on: kept as JSONB (`console.runs.facts`,
//! merged from each step's state), named here once so a step that writes a fact and one that
//! reads it cannot disagree on its spelling.

use serde_json::{Map, Value};

/// A fact a later step, the worker or the run page reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The image reference (pinned by digest) that ran before a deploy: its rollback target.
    PreviousImage,
    /// The tag of that image, or "unknown".
    PreviousTag,
    /// What ran before when ECR could not identify it (never rolled back to).
    PreviousReference,
    /// Why a clean-up resume was not needed.
    Resume,
    /// The App Runner operation a step started, by slot.
    Operation(Slot),
    /// The version id a rotation staged its new value under.
    Staged,
    /// The HMAC fingerprint of a staged secret (never its value).
    Fingerprint,
    /// What a step did, in words for the run log ("vacuumed public.users: …").
    Did,
    /// The id of the test alert an escalation test raised at BetterStack.
    TestAlert,
}

/// The App Runner operations a run may start, one fact each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The change itself: deploy, redeploy or scaling.
    Change,
    Rollback,
    Pause,
    Resume,
}

impl Slot {
    pub const ALL: [Slot; 4] = [Slot::Change, Slot::Rollback, Slot::Pause, Slot::Resume];
}

impl Fact {
    pub fn key(self) -> &'static str {
        match self {
            Fact::PreviousImage => "previous_image",
            Fact::PreviousTag => "previous_tag",
            Fact::PreviousReference => "previous_reference",
            Fact::Resume => "resume",
            Fact::Operation(Slot::Change) => "operation_id",
            Fact::Operation(Slot::Rollback) => "rollback_operation_id",
            Fact::Operation(Slot::Pause) => "pause_operation_id",
            Fact::Operation(Slot::Resume) => "resume_operation_id",
            Fact::Staged => "staged",
            Fact::Fingerprint => "fingerprint",
            Fact::Did => "did",
            Fact::TestAlert => "test_alert",
        }
    }

    /// This fact's text in a facts object, if it is there.
    pub fn of(self, facts: &Value) -> Option<&str> {
        facts[self.key()].as_str()
    }
}

/// Facts a step learned, to merge into the run's: `learned([(Fact::PreviousTag, tag)])`.
pub fn learned<const N: usize>(facts: [(Fact, Value); N]) -> Value {
    Value::Object(facts.into_iter().map(|(fact, value)| (fact.key().to_owned(), value)).collect::<Map<_, _>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_slot_has_its_own_key() {
        let keys: std::collections::BTreeSet<_> = Slot::ALL.iter().map(|s| Fact::Operation(*s).key()).collect();
        assert_eq!(keys.len(), Slot::ALL.len());
        let facts = learned([(Fact::PreviousTag, "7f3c2a1".into())]);
        assert_eq!(Fact::PreviousTag.of(&facts), Some("7f3c2a1"));
        assert_eq!(Fact::PreviousImage.of(&facts), None);
    }
}

//! Where a case is. The values are Drop's (`aml_alerts.status`, `str_reports.status`); the
//! ways an STR may move between them are [`StrTransition`]s, so a writer names the edge it
//! takes and cannot move a report along one that does not exist.

crate::db::text_enum! {
    /// An AML alert is open until someone closes it with an outcome.
    pub enum AlertStatus {
        Open = "open",
        Closed = "closed",
    }
}

crate::db::text_enum! {
    /// A suspicious transaction report, from draft to filed with Økokrim.
    pub enum StrStatus {
        Draft = "draft",
        PendingReview = "pending_review",
        Approved = "approved",
        Filed = "filed",
    }
}

impl StrStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::PendingReview => "Waiting for MLRO review",
            Self::Approved => "Approved, to be filed",
            Self::Filed => "Filed",
        }
    }

    /// The MLRO has approved it: its document may be exported, printed and filed.
    pub fn approved(self) -> bool {
        matches!(self, Self::Approved | Self::Filed)
    }
}

/// The four moves of an STR's life. Nothing else changes its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrTransition {
    /// The drafter sends it for review.
    Submit,
    /// The MLRO approves what was submitted (four eyes).
    Approve,
    /// The MLRO sends it back to the drafter with a comment.
    Return,
    /// Filed in Altinn; frozen from then on.
    File,
}

impl StrTransition {
    /// The status a report must be in for this move.
    pub fn from(self) -> StrStatus {
        match self {
            Self::Submit => StrStatus::Draft,
            Self::Approve | Self::Return => StrStatus::PendingReview,
            Self::File => StrStatus::Approved,
        }
    }

    /// The status it is in after.
    pub fn to(self) -> StrStatus {
        match self {
            Self::Submit => StrStatus::PendingReview,
            Self::Approve => StrStatus::Approved,
            Self::Return => StrStatus::Draft,
            Self::File => StrStatus::Filed,
        }
    }

    /// For the audit intent: `{"from": "draft", "to": "pending_review"}`.
    pub fn details(self) -> serde_json::Value {
        serde_json::json!({ "from": self.from(), "to": self.to() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_but_draft_is_reached_by_one_move_and_filed_is_final() {
        let moves = [StrTransition::Submit, StrTransition::Approve, StrTransition::Return, StrTransition::File];
        for status in StrStatus::ALL {
            let into = moves.iter().filter(|m| m.to() == *status).count();
            assert_eq!(into, 1, "{status} is reached one way");
        }
        assert!(moves.iter().all(|m| m.from() != StrStatus::Filed), "nothing leaves filed");
        assert_eq!(StrStatus::parse("pending_review"), Some(StrStatus::PendingReview));
        assert_eq!(StrStatus::parse("submitted"), None);
    }
}

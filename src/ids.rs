//! Ids as types. Drop's ids are prefixed text (`usr_…`, `alert_…`, `str_…`); the console's
//! own are UUIDs. A handler takes [`PathId<T>`](crate::web::PathId): an id that is not one
//! is a 404 before any query runs, and a function that wants an alert cannot be handed a
//! person.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Text that is not an id of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId(pub &'static str);

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not {}", self.0)
    }
}

impl std::error::Error for BadId {}

/// Longest id after its prefix (Drop's check constraints allow 40).
const MAX_BODY: usize = 64;

macro_rules! drop_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = BadId;

            fn from_str(text: &str) -> Result<Self, BadId> {
                let body = text.strip_prefix($prefix).ok_or(BadId($what))?;
                let fits = (1..=MAX_BODY).contains(&body.len())
                    && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if fits { Ok(Self(text.to_owned())) } else { Err(BadId($what)) }
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

drop_id!(
    /// A customer of Drop (`users.id`).
    PersonId, "usr_", "a customer id"
);
drop_id!(
    /// An AML alert (`aml_alerts.id`).
    AlertId, "alert_", "an alert id"
);
drop_id!(
    /// A suspicious transaction report (`str_reports.id`).
    StrId, "str_", "a report id"
);

drop_id!(
    /// A GDPR access or erasure request (`data_access_requests.id`).
    DataRequestId, "dar_", "a data request id"
);

macro_rules! console_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub Uuid);

        impl FromStr for $name {
            type Err = BadId;

            fn from_str(text: &str) -> Result<Self, BadId> {
                text.parse().map(Self).map_err(|_| BadId($what))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

console_id!(
    /// A member of the console's staff (`console.staff.id`).
    StaffId, "a staff id"
);
console_id!(
    /// A staff member's sign-in (`console.staff_sessions.id`).
    StaffSessionId, "a sign-in id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_prefix_and_a_bounded_plain_body() {
        assert_eq!("alert_sef8k6ibwthtfu".parse::<AlertId>().unwrap().as_str(), "alert_sef8k6ibwthtfu");
        for bad in
            ["usr_sef8k6", "alert_", "alert_a/b", "alert_<script>", "../alert_x", &format!("alert_{}", "x".repeat(65))]
        {
            assert_eq!(bad.parse::<AlertId>(), Err(BadId("an alert id")), "{bad}");
        }
        assert!("str_bulk000001".parse::<StrId>().is_ok());
        assert!("not-a-uuid".parse::<StaffId>().is_err());
    }
}

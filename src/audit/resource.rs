//! What an audit row is about. Each kind of resource names the chain its rows go to in one
//! exhaustive match: a new kind of casework cannot land in the operations chain (which every
//! role reads) because someone forgot to add it to a list: it does not compile until its
//! chain is chosen. That is the tipping-off rule, kept by the compiler.

use super::Chain;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    // Casework: compliance and the MLRO only.
    /// A suspicious transaction report.
    StrReport,
    /// An AML alert.
    AmlAlert,
    /// The AML alert queue (taking the next alert, listing it).
    AmlAlertQueue,
    /// A customer: their data, a look-up, an export, an erasure.
    Person,
    /// Lists of customers' transactions.
    Transactions,
    /// The KYC queue.
    KycQueue,
    /// Searches, exports and verifications of the casework chain by compliance staff: what
    /// they look for is casework too.
    CaseworkLog,
    /// A refused request for a casework page.
    CaseworkRoute,

    // Operations: every signed-in role may read these rows.
    /// Searches, exports and verifications of the operations chain.
    AuditLog,
    /// A refused request for any other page.
    Route,
    /// A durable run (deploy, rollback, rotation, snapshot…).
    Run,
    /// A secret (runbook §4: `secret_rotated` on `secret`).
    Secret,
    /// A staff member of the console.
    Staff,
    /// A staff member's sign-in.
    StaffSession,
    /// A routine checklist.
    Checklist,
    /// The database role the console serves as.
    DatabaseRole,
    /// A backend (connection) of the database, cancelled or terminated.
    DatabaseBackend,
    /// The database's statement statistics (pg_stat_statements), reset.
    DatabaseStatistics,
    /// The simulator's fault switches (demo mode).
    Simulator,
    /// An incident and its timeline.
    Incident,
    /// An on-call hand-off.
    Handoff,
    /// A planned maintenance record.
    Maintenance,
}

impl Resource {
    /// The `resource_type` written to the row.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::StrReport => "str_report",
            Resource::AmlAlert => "aml_alert",
            Resource::AmlAlertQueue => "aml_alert_queue",
            Resource::Person => "person",
            Resource::Transactions => "transactions",
            Resource::KycQueue => "kyc_queue",
            Resource::CaseworkLog => "casework_log",
            Resource::CaseworkRoute => "casework_route",
            Resource::AuditLog => "audit_log",
            Resource::Route => "route",
            Resource::Run => "run",
            Resource::Secret => "secret",
            Resource::Staff => "staff",
            Resource::StaffSession => "staff_session",
            Resource::Checklist => "checklist",
            Resource::DatabaseRole => "database_role",
            Resource::DatabaseBackend => "database_backend",
            Resource::DatabaseStatistics => "database_statistics",
            Resource::Simulator => "simulator",
            Resource::Incident => "incident",
            Resource::Handoff => "handoff",
            Resource::Maintenance => "maintenance",
        }
    }

    /// The chain its rows go to.
    pub fn chain(self) -> Chain {
        match self {
            Resource::StrReport
            | Resource::AmlAlert
            | Resource::AmlAlertQueue
            | Resource::Person
            | Resource::Transactions
            | Resource::KycQueue
            | Resource::CaseworkLog
            | Resource::CaseworkRoute => Chain::Casework,
            Resource::AuditLog
            | Resource::Route
            | Resource::Run
            | Resource::Secret
            | Resource::Staff
            | Resource::StaffSession
            | Resource::Checklist
            | Resource::DatabaseRole
            | Resource::DatabaseBackend
            | Resource::DatabaseStatistics
            | Resource::Simulator
            | Resource::Incident
            | Resource::Handoff
            | Resource::Maintenance => Chain::Operations,
        }
    }

    /// Where searching, exporting or verifying `chain` is recorded: in that chain.
    pub fn log_of(chain: Chain) -> Self {
        match chain {
            Chain::Operations => Resource::AuditLog,
            Chain::Casework => Resource::CaseworkLog,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_of_a_chain_is_recorded_in_that_chain() {
        for chain in Chain::ALL {
            assert_eq!(Resource::log_of(chain).chain(), chain);
        }
    }
}

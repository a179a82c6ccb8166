//! The words of incident response: the runbook's alerts with their first look and playbook,
//! what goes on an incident's timeline, and the steps of planned maintenance.

pub use crate::notify::{IncidentStatus, Severity};

crate::db::text_enum! {
    /// The alerts of runbook §7's triage table.
    pub enum AlertKind {
        HighErrorRate = "high_error_rate",
        SlowP99 = "slow_p99",
        ServiceDown = "service_down",
        HighCpu = "high_cpu",
        DiskAlmostFull = "disk_almost_full",
        DbReplicationLag = "db_replication_lag",
        CertificateExpiring = "certificate_expiring",
    }
}

impl AlertKind {
    /// As the alerting rules name it.
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::HighErrorRate => "HighErrorRate",
            AlertKind::SlowP99 => "SlowP99",
            AlertKind::ServiceDown => "ServiceDown",
            AlertKind::HighCpu => "HighCPU",
            AlertKind::DiskAlmostFull => "DiskAlmostFull",
            AlertKind::DbReplicationLag => "DBReplicationLag",
            AlertKind::CertificateExpiring => "CertificateExpiring",
        }
    }

    /// The runbook's first look.
    pub fn first_look(self) -> &'static str {
        match self {
            AlertKind::HighErrorRate => "Logs, a recent deploy, the providers' status pages",
            AlertKind::SlowP99 => "Slow queries, a recent deploy",
            AlertKind::ServiceDown => "Restart the service, read the logs",
            AlertKind::HighCpu => "Scale up, then find the source",
            AlertKind::DiskAlmostFull => "Free storage on RDS; grow it before it fills",
            AlertKind::DbReplicationLag => "Replica lag and what writes heavily",
            AlertKind::CertificateExpiring => "Renew the public domain's certificate",
        }
    }

    /// The severity the triage table suggests; the person declaring decides.
    pub fn suggested(self) -> Severity {
        match self {
            AlertKind::ServiceDown | AlertKind::HighErrorRate => Severity::Sev1,
            AlertKind::SlowP99 | AlertKind::HighCpu | AlertKind::DiskAlmostFull => Severity::Sev2,
            AlertKind::DbReplicationLag | AlertKind::CertificateExpiring => Severity::Sev3,
        }
    }

    /// Its section of the playbook page.
    pub fn playbook(self) -> &'static str {
        match self {
            AlertKind::HighErrorRate => "/health/playbook#high-error-rate",
            AlertKind::SlowP99 => "/health/playbook#slow-database",
            AlertKind::ServiceDown => "/health/playbook#service-down",
            AlertKind::HighCpu => "/health/playbook#high-cpu",
            AlertKind::DiskAlmostFull => "/health/playbook#disk-almost-full",
            AlertKind::DbReplicationLag => "/health/playbook#replication-lag",
            AlertKind::CertificateExpiring => "/health/playbook#certificate-expiring",
        }
    }
}

impl Severity {
    /// What the severity means, for the person choosing it.
    pub fn meaning(self) -> &'static str {
        match self {
            Severity::Sev1 => "Drop is down, or money cannot move for many customers. Everyone needed, now.",
            Severity::Sev2 => "Degraded: slow, failing for some, or about to fail. On-call leads, others on call.",
            Severity::Sev3 => "No customer impact yet: fix within working hours.",
        }
    }

    pub fn tone(self) -> &'static str {
        match self {
            Severity::Sev1 => "red",
            Severity::Sev2 => "amber",
            Severity::Sev3 => "blue",
        }
    }
}

impl IncidentStatus {
    pub fn label(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "Investigating",
            IncidentStatus::Identified => "Identified",
            IncidentStatus::Monitoring => "Monitoring",
            IncidentStatus::Resolved => "Resolved",
        }
    }

    pub fn tone(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "red",
            IncidentStatus::Identified => "amber",
            IncidentStatus::Monitoring => "blue",
            IncidentStatus::Resolved => "green",
        }
    }
}

crate::db::text_enum! {
    /// What a person added to an incident (`console.incident_entries.kind`).
    pub enum EntryKind {
        Declared = "declared",
        Status = "status",
        Severity = "severity",
        Note = "note",
        Joined = "joined",
        Report = "report",
        /// Published to the public status page.
        StatusPage = "status_page",
    }
}

crate::db::text_enum! {
    /// The steps of planned maintenance (runbook §7), in order.
    pub enum MaintenanceStep {
        Announced = "announced",
        StatusPage = "status_page",
        RollbackReady = "rollback_ready",
        SmokeTested = "smoke_tested",
        Monitored = "monitored",
        Reported = "reported",
    }
}

impl MaintenanceStep {
    pub fn label(self) -> &'static str {
        match self {
            MaintenanceStep::Announced => "Announced to the team and to support",
            MaintenanceStep::StatusPage => "Status page updated (scheduled maintenance)",
            MaintenanceStep::RollbackReady => "Rollback confirmed: the previous image and a fresh snapshot are at hand",
            MaintenanceStep::SmokeTested => "Smoke-tested after each step",
            MaintenanceStep::Monitored => "Watched for 30 minutes after the last step",
            MaintenanceStep::Reported => "Report written",
        }
    }

    /// The note's prompt.
    pub fn hint(self) -> &'static str {
        match self {
            MaintenanceStep::Announced => "Where and when it was announced",
            MaintenanceStep::StatusPage => "The status page entry",
            MaintenanceStep::RollbackReady => "The image and snapshot to go back to",
            MaintenanceStep::SmokeTested => "What was tested, and how it went",
            MaintenanceStep::Monitored => "What the dashboards showed",
            MaintenanceStep::Reported => "The report: what was done, what happened, what follows",
        }
    }
}

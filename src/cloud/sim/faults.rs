//! The faults a trainer can switch on, and what each does to the simulated world.

/// A fault that can be injected, and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub name: &'static str,
    pub label: &'static str,
    pub effect: &'static str,
}

pub const FAULTS: [Fault; 17] = [
    Fault {
        name: "health_red",
        label: "App health turns red",
        effect: "The health endpoint answers with status error.",
    },
    Fault {
        name: "db_unreachable",
        label: "Database unreachable",
        effect: "Health answers 503: the app cannot reach RDS.",
    },
    Fault { name: "storage_low", label: "Storage almost full", effect: "FreeStorageSpace drops to 1.4 GB." },
    Fault {
        name: "snapshot_missing",
        label: "Nightly snapshot missing",
        effect: "The newest automated snapshot is 30 hours old.",
    },
    Fault { name: "service_down", label: "Service paused", effect: "App Runner reports PAUSED." },
    Fault { name: "throttling", label: "AWS throttling", effect: "Every AWS call is throttled." },
    Fault {
        name: "slow_responses",
        label: "Slow responses",
        effect: "AWS calls take 5 s (past the console's limit); DB latency 350 ms.",
    },
    Fault {
        name: "certificate_expiring",
        label: "Certificate expiring",
        effect: "The TLS certificate expires in 12 days.",
    },
    Fault {
        name: "deploy_fails",
        label: "Deployments fail",
        effect: "Every App Runner deployment started from now ends FAILED; the old image keeps running.",
    },
    Fault {
        name: "release_unhealthy",
        label: "Newest image is broken",
        effect: "The newest image in ECR deploys, but its health check answers status error; on staging its machines fail their checks.",
    },
    Fault {
        name: "ci_failing",
        label: "CI is red",
        effect: "CI reports every commit as failed: deploys stop before anything changes.",
    },
    Fault {
        name: "monitoring_unreachable",
        label: "Monitoring unreachable",
        effect: "BetterStack and the monitoring relay do not answer: maintenance windows pause no monitor; runs carry on and say so.",
    },
    Fault {
        name: "slack_unreachable",
        label: "Slack unreachable",
        effect: "Posts to Slack fail: the console retries a few times, then shows them as failed; nothing waits for Slack.",
    },
    Fault {
        name: "pager_silent",
        label: "Pager silent",
        effect: "Alerts raised at BetterStack are never acknowledged: the monthly escalation test fails.",
    },
    Fault {
        name: "export_api_down",
        label: "Drop's export API down",
        effect: "Drop's data-export API answers 503: GDPR exports come from the console's own reading of Drop's tables, and say so.",
    },
    Fault {
        name: "bankid_degraded",
        label: "BankID degraded",
        effect: "BankID's status page reports a partial outage and the service's BANKID_CLIENT_SECRET is missing: the BankID card turns red.",
    },
    Fault {
        name: "instances_stuck",
        label: "Instances stuck",
        effect: "App Runner starts no new instances: CloudWatch shows one active instance whatever the bounds, so a scaling run's instance check fails.",
    },
];

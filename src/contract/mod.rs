//! Drop's schema as the console relies on it, written down once: every table and column of
//! Drop's database (`dropapp`) the console reads or writes, the type it expects, and whether
//! it is **required** (the runbook's own queries use it), **optional** (the console looks for
//! it at start and the page that shows it degrades when it is absent); the few objects
//! `dropops migrate` attaches to Drop's tables (the audit log's triggers); what the console's
//! role must be granted on each table; the server roles the database pages need; and the
//! indexes the runbook's queries want.
//!
//! `dropops check-db` prints the findings, `/health/ready` refuses while a required item is
//! missing, and the dashboard's "This console" card says what degrades. Pages ask
//! [`Report::has`] before they show an optional column; their queries read an optional column
//! through `to_jsonb(row) ->> 'column'`, which is null, not an error, when Drop's table has no
//! such column.

mod db;

use std::collections::{HashMap, HashSet};

pub use db::inspect;

/// The type families the console accepts for a column: Drop may use `varchar` where the
/// console's demo uses `text`, `integer` where it uses `smallint`, `json` for `jsonb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Timestamp,
    Numeric,
    Integer,
    Json,
    Uuid,
    /// Any type (a column only carried along, never compared).
    Any,
}

impl Kind {
    /// Whether a column of PostgreSQL type `udt` (its `pg_type.typname`) reads as this kind.
    pub fn accepts(self, udt: &str) -> bool {
        match self {
            Kind::Text => matches!(udt, "text" | "varchar" | "bpchar" | "citext"),
            Kind::Timestamp => udt == "timestamptz",
            Kind::Numeric => matches!(udt, "numeric" | "int4" | "int8"),
            Kind::Integer => matches!(udt, "int2" | "int4" | "int8"),
            Kind::Json => matches!(udt, "json" | "jsonb"),
            Kind::Uuid => udt == "uuid",
            Kind::Any => true,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Timestamp => "timestamptz",
            Kind::Numeric => "numeric",
            Kind::Integer => "an integer",
            Kind::Json => "json or jsonb",
            Kind::Uuid => "uuid",
            Kind::Any => "any type",
        }
    }
}

/// How much the console depends on a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The runbook's procedures use it: without it the console does not serve.
    Required,
    /// Shown where present; the words say what degrades without it.
    Optional(&'static str),
}

/// One column of Drop's the console reads or writes.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub table: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub need: Need,
}

const fn required(table: &'static str, name: &'static str, kind: Kind) -> Column {
    Column { table, name, kind, need: Need::Required }
}

const fn optional(table: &'static str, name: &'static str, kind: Kind, degrades: &'static str) -> Column {
    Column { table, name, kind, need: Need::Optional(degrades) }
}

use Kind::{Integer, Json, Numeric, Text, Timestamp};

/// Drop's tables as the runbook (§6) shows them, and what the console reads beyond that.
pub const COLUMNS: &[Column] = &[
    required("users", "id", Text),
    required("users", "email", Text),
    required("users", "kyc_status", Text),
    required("users", "auth_provider", Text),
    required("users", "created_at", Timestamp),
    required("users", "deleted_at", Timestamp),
    optional("users", "full_name", Text, "people are shown and searched by email only"),
    optional("users", "country", Text, "a person's country shows as —"),
    optional("users", "kyc_updated_at", Timestamp, "KYC waiting times count from sign-up instead"),
    required("sessions", "user_id", Text),
    required("sessions", "revoked", Integer),
    optional("sessions", "user_agent", Text, "erasure has no device names to clear"),
    required("transactions", "id", Text),
    required("transactions", "user_id", Text),
    required("transactions", "type", Text),
    required("transactions", "status", Text),
    required("transactions", "send_amount", Numeric),
    required("transactions", "send_currency", Text),
    required("transactions", "created_at", Timestamp),
    optional("transactions", "receive_amount", Numeric, "the amount received shows as —"),
    optional("transactions", "receive_currency", Text, "the amount received shows as —"),
    optional("transactions", "recipient_country", Text, "the recipient's country shows as —"),
    optional("transactions", "failure_reason", Text, "failed transactions show no reason"),
    required("aml_alerts", "id", Text),
    required("aml_alerts", "user_id", Text),
    required("aml_alerts", "transaction_id", Text),
    required("aml_alerts", "status", Text),
    required("aml_alerts", "created_at", Timestamp),
    required("aml_alerts", "reviewed_at", Timestamp),
    required("aml_alerts", "reviewer_notes", Text),
    optional("aml_alerts", "rule", Text, "alerts do not say which rule fired, and the queue has no rule filter"),
    required("str_reports", "id", Text),
    required("str_reports", "user_id", Text),
    required("str_reports", "transaction_id", Text),
    required("str_reports", "report_type", Text),
    required("str_reports", "details", Json),
    required("str_reports", "filed_at", Timestamp),
    required("str_reports", "status", Text),
    required("data_access_requests", "user_id", Text),
    required("data_access_requests", "created_at", Timestamp),
    // The runbook shows (user_id, created_at, …): the GDPR queue names, tracks and answers a
    // request by these three, so they are required until it can work without them.
    required("data_access_requests", "id", Text),
    required("data_access_requests", "status", Text),
    required("data_access_requests", "fulfilled_at", Timestamp),
    optional("data_access_requests", "kind", Text, "every request is taken for an access request"),
    required("audit_log", "id", Kind::Uuid),
    required("audit_log", "action", Text),
    required("audit_log", "resource_type", Text),
    required("audit_log", "resource_id", Text),
    required("audit_log", "details", Json),
    required("audit_log", "created_at", Timestamp),
];

/// What `dropops migrate` attaches to Drop's tables: (table, trigger, what it keeps). Nothing
/// else of Drop's is created or changed by the console.
pub const TRIGGERS: &[(&str, &str, &str)] = &[
    ("audit_log", "audit_log_adopt", "rows written into audit_log by hand are chained and verified"),
    ("audit_log", "audit_log_no_change", "audit_log refuses updates and deletes"),
    ("audit_log", "audit_log_no_truncate", "audit_log refuses truncation"),
];

/// What a retention purge overwrites in Drop's tables once an erased person's retention has
/// ended — and nothing else of Drop's: (table, column, what it becomes). Transactions are
/// Drop's to delete (the console may only read them), and optional columns are cleared only
/// where Drop has them.
pub const PURGED: &[(&str, &str, &str)] = &[
    ("users", "email", "a placeholder address, <id>@purged.invalid (unique, like the original)"),
    ("users", "full_name", "\"Purged customer\", where Drop keeps names"),
    ("sessions", "user_agent", "empty, where Drop keeps device names"),
    ("aml_alerts", "reviewer_notes", "empty (the reviewer's notes name the person's affairs)"),
];

/// The tables of Drop's the console touches, in the order the report lists them.
pub const TABLES: [&str; 7] =
    ["users", "sessions", "transactions", "aml_alerts", "str_reports", "data_access_requests", "audit_log"];

/// What the serving role must be granted on one of Drop's tables, and why.
pub struct Grant {
    pub table: &'static str,
    pub privileges: &'static [&'static str],
    pub why: &'static str,
}

/// Least privilege on Drop's tables (`dropops grant-serving-role` grants exactly these).
pub const GRANTS: &[Grant] = &[
    Grant {
        table: "users",
        privileges: &["SELECT", "UPDATE"],
        why: "look-ups, KYC lists; erasure sets deleted_at; a retention purge clears the personal fields",
    },
    Grant { table: "sessions", privileges: &["SELECT", "UPDATE"], why: "revoking a person's sessions" },
    Grant { table: "transactions", privileges: &["SELECT"], why: "transaction lists and STR evidence" },
    Grant {
        table: "aml_alerts",
        privileges: &["SELECT", "UPDATE"],
        why: "the alert queue; closing and reopening; a retention purge clears reviewer notes",
    },
    Grant { table: "str_reports", privileges: &["SELECT", "INSERT"], why: "recording a filed STR" },
    Grant {
        table: "data_access_requests",
        privileges: &["SELECT", "UPDATE"],
        why: "the GDPR queue; marking a request answered",
    },
];

/// Built-in roles the database pages need membership of, and what is unknown without them.
pub const SERVER_ROLES: &[(&str, &str)] = &[
    ("pg_read_all_stats", "other sessions' queries and statement statistics are hidden"),
    ("pg_signal_backend", "other sessions cannot be cancelled or terminated"),
    ("pg_monitor", "the size of the WAL directory is unknown"),
];

/// An index the runbook's queries want on one of Drop's tables. The console never builds it
/// (Drop's tables are Drop's, and a build locks them): `check-db` recommends it, with the
/// statement that builds it without blocking writes.
#[derive(Debug)]
pub struct Index {
    pub table: &'static str,
    /// The key as `pg_get_indexdef` prints it, from `USING btree (` on, up to the first key
    /// that matters: an index whose definition starts with it serves.
    pub keys: &'static str,
    pub statement: &'static str,
    pub serves: &'static str,
}

impl Index {
    /// Whether an existing index (as `pg_get_indexdef` prints it) serves this one: the same
    /// leading keys, and no predicate unless this one has one (a partial index on failed
    /// transactions does not serve the list of all of them).
    pub fn served_by(&self, definition: &str) -> bool {
        definition.contains(&format!("USING btree {}", self.keys))
            && (self.statement.contains(" where ") || !definition.contains(" WHERE "))
    }
}

pub const INDEXES: &[Index] = &[
    Index {
        table: "users",
        keys: "(lower(email)",
        statement: "create index concurrently users_email_idx on users (lower(email))",
        serves: "look-up by email",
    },
    Index {
        table: "sessions",
        keys: "(user_id",
        statement: "create index concurrently sessions_user_live_idx on sessions (user_id) where revoked = 0",
        serves: "revoking a person's sessions",
    },
    Index {
        table: "transactions",
        keys: "(created_at DESC, id DESC)",
        statement: "create index concurrently transactions_created_idx on transactions (created_at desc, id desc)",
        serves: "transactions of the last 24 h, large transactions",
    },
    Index {
        table: "transactions",
        keys: "(user_id, created_at DESC",
        statement: "create index concurrently transactions_user_created_idx on transactions (user_id, created_at desc, id desc)",
        serves: "a person's transactions",
    },
    Index {
        table: "aml_alerts",
        keys: "(created_at, id)",
        statement: "create index concurrently aml_alerts_open_idx on aml_alerts (created_at, id) where status = 'open'",
        serves: "the open alert queue",
    },
    Index {
        table: "aml_alerts",
        keys: "(user_id",
        statement: "create index concurrently aml_alerts_user_idx on aml_alerts (user_id, created_at desc)",
        serves: "a person's alerts",
    },
    Index {
        table: "data_access_requests",
        keys: "(user_id",
        statement: "create index concurrently data_access_requests_user_idx on data_access_requests (user_id)",
        serves: "a person's GDPR requests",
    },
];

/// An optional column a page asks about before showing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Optional {
    FullName,
    Country,
    KycUpdatedAt,
    AlertRule,
    FailureReason,
    RecipientCountry,
    SessionDevice,
}

impl Optional {
    pub fn column(self) -> (&'static str, &'static str) {
        match self {
            Optional::FullName => ("users", "full_name"),
            Optional::Country => ("users", "country"),
            Optional::KycUpdatedAt => ("users", "kyc_updated_at"),
            Optional::AlertRule => ("aml_alerts", "rule"),
            Optional::FailureReason => ("transactions", "failure_reason"),
            Optional::RecipientCountry => ("transactions", "recipient_country"),
            Optional::SessionDevice => ("sessions", "user_agent"),
        }
    }
}

/// What was found about one contract item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Present,
    Missing,
    /// Present, but of a type the console cannot read as it expects.
    WrongType(String),
}

/// Drop's database measured against the contract.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Each contract column's finding, in contract order.
    pub columns: Vec<(Column, Finding)>,
    /// Privileges (table, privilege) the role lacks.
    pub missing_privileges: Vec<(&'static str, &'static str)>,
    /// Built-in roles the role is not a member of.
    pub missing_roles: Vec<&'static str>,
    /// Recommended indexes not found.
    pub missing_indexes: Vec<&'static Index>,
    /// The console's triggers on Drop's tables not attached (`dropops migrate` has not run).
    pub missing_triggers: Vec<(&'static str, &'static str, &'static str)>,
    present: HashSet<(&'static str, &'static str)>,
}

impl Report {
    /// A report from what the catalog says: (table, column) → type name, the privileges the
    /// role holds, its role memberships, the index definitions per table and the triggers
    /// (table, name) on Drop's tables.
    pub fn from_catalog(
        types: &HashMap<(String, String), String>,
        privileges: &HashSet<(String, String)>,
        roles: &HashSet<String>,
        index_definitions: &[(String, String)],
        triggers: &HashSet<(String, String)>,
    ) -> Self {
        let mut report = Report::default();
        for column in COLUMNS {
            let finding = match types.get(&(column.table.to_owned(), column.name.to_owned())) {
                None => Finding::Missing,
                Some(udt) if column.kind.accepts(udt) => {
                    report.present.insert((column.table, column.name));
                    Finding::Present
                }
                Some(udt) => Finding::WrongType(udt.clone()),
            };
            report.columns.push((*column, finding));
        }
        let table_exists = |t: &str| types.keys().any(|(table, _)| table == t);
        for grant in GRANTS.iter().filter(|g| table_exists(g.table)) {
            for privilege in grant.privileges {
                if !privileges.contains(&(grant.table.to_owned(), privilege.to_string())) {
                    report.missing_privileges.push((grant.table, privilege));
                }
            }
        }
        report.missing_roles = SERVER_ROLES.iter().map(|(r, _)| *r).filter(|r| !roles.contains(*r)).collect();
        report.missing_indexes = INDEXES
            .iter()
            .filter(|i| table_exists(i.table))
            .filter(|i| !index_definitions.iter().any(|(table, def)| table == i.table && i.served_by(def)))
            .collect();
        report.missing_triggers = TRIGGERS
            .iter()
            .filter(|(table, name, _)| !triggers.contains(&(table.to_string(), name.to_string())))
            .copied()
            .collect();
        report
    }

    /// A report that finds everything present: for a state built before the database was
    /// inspected (tests that build one by hand).
    pub fn assume_complete() -> Self {
        let mut report = Report::default();
        for column in COLUMNS {
            report.present.insert((column.table, column.name));
            report.columns.push((*column, Finding::Present));
        }
        report
    }

    /// Whether Drop's database has this optional column (of a type the console reads).
    pub fn has(&self, optional: Optional) -> bool {
        self.present.contains(&optional.column())
    }

    /// Required columns missing or of the wrong type: the console cannot serve without them.
    pub fn required_problems(&self) -> Vec<String> {
        self.columns.iter().filter(|(c, _)| c.need == Need::Required).filter_map(|(c, f)| describe(c, f)).collect()
    }

    /// Everything that stops the console from serving: required columns missing or
    /// unreadable, and its triggers on Drop's tables absent (`dropops migrate` has not run).
    pub fn blocking(&self) -> Vec<String> {
        let mut blocking = self.required_problems();
        blocking.extend(self.missing_triggers.iter().map(|(table, name, _)| unattached(table, name)));
        blocking
    }

    /// The optional columns absent, each with what degrades.
    pub fn degraded(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter_map(|(c, f)| match (c.need, f) {
                (Need::Optional(degrades), Finding::Missing | Finding::WrongType(_)) => {
                    Some(format!("{}.{}: {degrades}", c.table, c.name))
                }
                _ => None,
            })
            .collect()
    }

    /// Every finding as a line for `check-db`, worst first, and whether any is fatal.
    pub fn lines(&self) -> Vec<Line> {
        let mut lines = Vec::new();
        for (column, finding) in &self.columns {
            let Some(text) = describe(column, finding) else { continue };
            let line = match column.need {
                Need::Required => Line { severity: Severity::Missing, text },
                Need::Optional(degrades) => Line { severity: Severity::Degrades, text: format!("{text}: {degrades}") },
            };
            lines.push(line);
        }
        for (table, name, keeps) in &self.missing_triggers {
            lines.push(Line {
                severity: Severity::Migrate,
                text: format!("{} ({keeps}): run `dropops migrate`", unattached(table, name)),
            });
        }
        for (table, privilege) in &self.missing_privileges {
            let why = GRANTS.iter().find(|g| g.table == *table).map_or("", |g| g.why);
            lines.push(Line {
                severity: Severity::Privilege,
                text: format!("the role may not {privilege} on {table} ({why}): grant {privilege} on {table}"),
            });
        }
        for role in &self.missing_roles {
            let unknown = SERVER_ROLES.iter().find(|(r, _)| r == role).map_or("", |(_, u)| *u);
            lines.push(Line {
                severity: Severity::Privilege,
                text: format!("the role is not a member of {role}: {unknown} (grant {role} to the role)"),
            });
        }
        for index in &self.missing_indexes {
            lines.push(Line {
                severity: Severity::Recommended,
                text: format!("no index serves {} on {}: {};", index.serves, index.table, index.statement),
            });
        }
        lines.sort_by_key(|l| l.severity);
        lines
    }
}

fn unattached(table: &str, trigger: &str) -> String {
    format!("{table} has no trigger {trigger}")
}

fn describe(column: &Column, finding: &Finding) -> Option<String> {
    let what = match column.need {
        Need::Required => "required",
        Need::Optional(_) => "optional",
    };
    match finding {
        Finding::Present => None,
        Finding::Missing => Some(format!("{}.{} ({what}) is missing", column.table, column.name)),
        Finding::WrongType(found) => {
            Some(format!("{}.{} ({what}) is {found}, expected {}", column.table, column.name, column.kind.label()))
        }
    }
}

/// How bad a finding is, in the order `check-db` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A required column is missing or unreadable: the console does not serve.
    Missing,
    /// The console's triggers on Drop's tables are absent: run `dropops migrate`.
    Migrate,
    /// The role lacks a grant: a feature fails or shows "unknown".
    Privilege,
    /// An optional column is absent: a page shows less.
    Degrades,
    /// A recommended index is absent: a page is slower.
    Recommended,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Missing => "MISSING",
            Severity::Migrate => "MIGRATE",
            Severity::Privilege => "GRANT",
            Severity::Degrades => "DEGRADES",
            Severity::Recommended => "INDEX",
        }
    }

    /// Whether the console cannot serve while this is so.
    pub fn fatal(self) -> bool {
        matches!(self, Severity::Missing | Severity::Migrate)
    }
}

pub struct Line {
    pub severity: Severity,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_touches_only_listed_columns_of_tables_the_console_may_update() {
        for (table, column, _) in PURGED {
            assert!(
                COLUMNS.iter().any(|c| c.table == *table && c.name == *column),
                "{table}.{column} is in the contract"
            );
            let grant = GRANTS.iter().find(|g| g.table == *table).expect("a grant");
            assert!(grant.privileges.contains(&"UPDATE"), "{table} is granted UPDATE");
        }
    }

    fn catalog(skip: &[(&str, &str)], retype: &[(&str, &str, &str)]) -> HashMap<(String, String), String> {
        COLUMNS
            .iter()
            .filter(|c| !skip.contains(&(c.table, c.name)))
            .map(|c| {
                let udt = retype.iter().find(|(t, n, _)| *t == c.table && *n == c.name).map(|(_, _, u)| *u).unwrap_or(
                    match c.kind {
                        Text => "text",
                        Timestamp => "timestamptz",
                        Numeric => "numeric",
                        Integer => "int2",
                        Json => "jsonb",
                        Kind::Uuid => "uuid",
                        Kind::Any => "uuid",
                    },
                );
                ((c.table.to_owned(), c.name.to_owned()), udt.to_owned())
            })
            .collect()
    }

    fn all_triggers() -> HashSet<(String, String)> {
        TRIGGERS.iter().map(|(t, n, _)| (t.to_string(), n.to_string())).collect()
    }

    fn all_privileges() -> HashSet<(String, String)> {
        GRANTS.iter().flat_map(|g| g.privileges.iter().map(|p| (g.table.to_owned(), p.to_string()))).collect()
    }

    #[test]
    fn the_readme_lists_the_grants_the_contract_makes() {
        let readme = include_str!("../../README.md");
        for grant in GRANTS {
            let row = format!("| `{}` | {} | {} |", grant.table, grant.privileges.join(", "), grant.why);
            assert!(readme.contains(&row), "README.md lacks the grant row {row}");
        }
    }

    #[test]
    fn a_missing_required_column_is_fatal_and_an_optional_one_degrades() {
        let types = catalog(&[("sessions", "revoked"), ("users", "full_name")], &[]);
        let report = Report::from_catalog(&types, &all_privileges(), &HashSet::new(), &[], &all_triggers());
        assert_eq!(report.required_problems(), ["sessions.revoked (required) is missing"]);
        assert!(!report.has(Optional::FullName));
        assert!(report.has(Optional::Country));
        assert_eq!(report.degraded(), ["users.full_name: people are shown and searched by email only"]);
        let lines = report.lines();
        assert!(lines[0].severity.fatal() && lines[0].text.contains("sessions.revoked"), "worst first");
    }

    #[test]
    fn a_column_of_another_family_is_named_with_both_types() {
        let types = catalog(&[], &[("str_reports", "details", "text"), ("sessions", "revoked", "int4")]);
        let report = Report::from_catalog(&types, &all_privileges(), &HashSet::new(), &[], &all_triggers());
        assert_eq!(report.required_problems(), ["str_reports.details (required) is text, expected json or jsonb"]);
    }

    #[test]
    fn grants_roles_and_indexes_are_reported_against_what_the_tables_hold() {
        let types = catalog(&[], &[]);
        let mut privileges = all_privileges();
        privileges.remove(&("sessions".to_owned(), "UPDATE".to_owned()));
        let roles = HashSet::from(["pg_read_all_stats".to_owned()]);
        let indexes = vec![(
            "transactions".to_owned(),
            "CREATE INDEX t ON public.transactions USING btree (created_at DESC, id DESC)".to_owned(),
        )];
        let report = Report::from_catalog(&types, &privileges, &roles, &indexes, &HashSet::new());
        assert_eq!(report.missing_privileges, [("sessions", "UPDATE")]);
        assert_eq!(report.missing_roles, ["pg_signal_backend", "pg_monitor"]);
        assert!(!report.missing_indexes.iter().any(|i| i.keys == "(created_at DESC, id DESC)"), "found by its keys");
        assert!(report.missing_indexes.iter().any(|i| i.table == "users"));
        let partial = "CREATE INDEX f ON public.transactions USING btree (created_at DESC, id DESC) WHERE (status = 'failed'::text)";
        let all_transactions = INDEXES.iter().find(|i| i.keys == "(created_at DESC, id DESC)").unwrap();
        assert!(!all_transactions.served_by(partial), "the failed-only index does not serve every transaction");
        let open_alerts = INDEXES.iter().find(|i| i.table == "aml_alerts" && i.keys == "(created_at, id)").unwrap();
        assert!(open_alerts.served_by("CREATE INDEX a ON public.aml_alerts USING btree (created_at, id)"));
        assert!(report.required_problems().is_empty());
        assert_eq!(
            report.blocking(),
            [
                "audit_log has no trigger audit_log_adopt",
                "audit_log has no trigger audit_log_no_change",
                "audit_log has no trigger audit_log_no_truncate"
            ],
            "not migrated"
        );
    }
}

#[cfg(test)]
mod migrations {
    use super::{TABLES, TRIGGERS};

    /// By design, not by luck: `dropops migrate` runs no DDL on Drop's tables but the triggers
    /// it attaches to audit_log, so it never locks a big table of Drop's for a rewrite or an
    /// index build.
    #[test]
    fn the_console_migrations_change_none_of_drops_tables() {
        let mut attached = 0;
        for migration in crate::db::MIGRATOR.iter() {
            let sql = migration.sql.to_lowercase();
            for table in TABLES {
                for ddl in [
                    format!("alter table public.{table} "),
                    format!("alter table only public.{table} "),
                    format!("alter table {table} "),
                    format!("on public.{table} using"),
                    format!("on {table} using"),
                    format!("on {table} ("),
                    format!("references public.{table}"),
                    format!("references {table} "),
                    format!("create table public.{table} "),
                    format!("create table {table} "),
                ] {
                    assert!(!sql.contains(&ddl), "{}: `{ddl}` changes Drop's table", migration.description);
                }
            }
            attached += sql.matches(" on public.audit_log ").count();
        }
        assert_eq!(attached, TRIGGERS.len(), "only the contract's triggers are attached to audit_log");
    }
}

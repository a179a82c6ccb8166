-- Indexes the console's lists need at Drop's size (additive objects on Drop's tables, listed
-- in docs/performance.md):
-- the alert queue by status in either order, and across statuses ("All"), without sorting
-- every alert; the rule filter's choices by a skip scan instead of reading every alert.
create index aml_alerts_status_created_idx on aml_alerts (status, created_at, id);
create index aml_alerts_created_idx on aml_alerts (created_at, id);
create index aml_alerts_rule_idx on aml_alerts (rule);
-- STRs in one status, last changed first; answered GDPR requests, latest first.
create index str_reports_status_updated_idx on str_reports (status, updated_at desc, id);
create index data_access_requests_answered_idx on data_access_requests (fulfilled_at desc nulls last, id)
    where status <> 'open';

-- The outcome reconciler's low-water mark: every intent older than it has an outcome, so a
-- pass reads only the intents since (with an hour's margin for transactions that started
-- before the mark and committed after), not every intent ever written.
create table console.audit_reconciler (
    singleton         boolean primary key default true check (singleton),
    reconciled_before timestamptz
);
insert into console.audit_reconciler (reconciled_before) values (null);

-- The STR workflow is the console's: a case goes from first draft through four-eyes review to
-- filing in console.str_cases, keyed by the report's id. Drop's str_reports keeps what the
-- runbook gives it, the filed report (id, user_id, transaction_id, report_type, details,
-- filed_at, status 'filed'), written once when the MLRO records the filing.

create table console.str_cases (
    id               text primary key check (id ~ '^str_[A-Za-z0-9]{6,40}$'),
    user_id          text not null,
    transaction_id   text,
    alert_id         text,
    status           text not null check (status in ('draft', 'pending_review', 'approved', 'filed')),
    details          jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    drafted_by       uuid references console.staff (id),
    drafted_by_name  text,
    review_comment   text check (length(review_comment) <= 5000),
    approved_by      uuid references console.staff (id),
    approved_by_name text,
    approved_at      timestamptz,
    filing_reference text check (length(filing_reference) <= 100),
    filed_at         timestamptz,
    filed_by_name    text,
    filed_snapshot   jsonb,
    filed_hash       text,
    check ((status = 'filed') = (filed_at is not null)),
    check (status <> 'filed' or (filed_snapshot is not null and filed_hash is not null)),
    -- Four eyes: whoever approves did not draft.
    check (approved_by is null or drafted_by is null or approved_by <> drafted_by)
);
insert into console.str_cases (id, user_id, transaction_id, alert_id, status, details, created_at, updated_at,
                               drafted_by, drafted_by_name, review_comment, approved_by, approved_by_name,
                               approved_at, filing_reference, filed_at, filed_by_name, filed_snapshot, filed_hash)
select id, user_id, transaction_id, alert_id, status, details::jsonb, created_at, updated_at, drafted_by, drafted_by_name,
       review_comment, approved_by, approved_by_name, approved_at, filing_reference, filed_at, filed_by_name,
       filed_snapshot, filed_hash
  from str_reports;
-- The lists by status, newest change first; a person's cases (erasure waits for them).
create index str_cases_status_updated_idx on console.str_cases (status, updated_at desc, id);
create index str_cases_user_idx on console.str_cases (user_id);
create index str_cases_alert_idx on console.str_cases (alert_id);

-- The console's tables point at its own cases, and at Drop's rows by id only: no foreign key
-- into Drop's tables (the console needs no REFERENCES right on them, and Drop deletes freely).
alter table console.str_transactions drop constraint str_transactions_str_id_fkey,
    drop constraint str_transactions_transaction_id_fkey,
    add foreign key (str_id) references console.str_cases (id);
alter table console.str_contributions drop constraint str_contributions_str_id_fkey,
    add foreign key (str_id) references console.str_cases (id);
alter table console.alert_events drop constraint alert_events_alert_id_fkey;

-- The freeze and the four eyes guard the console's cases now.
drop trigger str_reports_frozen on str_reports;
drop trigger str_reports_four_eyes on str_reports;
create trigger str_cases_frozen before update or delete on console.str_cases
    for each row execute function console.str_filed_is_frozen();
create or replace function console.str_content_sha256(report text) returns text
language sql stable as $$
    select encode(sha256(convert_to(
        coalesce((select details::text from console.str_cases where id = report), '') || '|' ||
        coalesce((select string_agg(transaction_id, ',' order by transaction_id)
                    from console.str_transactions where str_id = report), ''),
        'UTF8')), 'hex')
$$;
create trigger str_cases_four_eyes before update on console.str_cases
    for each row execute function console.str_four_eyes();

-- Drop's table keeps the filed reports, in its own shape.
delete from str_reports where status <> 'filed';
update str_reports set details = filed_snapshot where filed_snapshot is not null and details is distinct from filed_snapshot;
alter table str_reports drop constraint if exists str_reports_four_eyes,
    drop constraint if exists str_reports_filed_is_frozen;
drop index if exists str_reports_alert_idx;
alter table str_reports drop column alert_id, drop column drafted_by, drop column drafted_by_name,
    drop column review_comment, drop column approved_by, drop column approved_by_name, drop column approved_at,
    drop column filing_reference, drop column filed_by_name, drop column filed_snapshot, drop column filed_hash,
    drop column updated_at;

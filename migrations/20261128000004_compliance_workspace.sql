-- The compliance workspace: alert assignment, outcomes and their history; the STR workflow
-- with four-eyes review and a frozen filed version; GDPR erasure bookkeeping.

alter table aml_alerts
    add column assignee_id uuid references console.staff (id),
    add column outcome text check (outcome in ('false_positive', 'legitimate', 'escalated_to_str'));
-- A closed alert has an outcome (older closed rows from before this migration excepted).
alter table aml_alerts add constraint aml_alerts_open_has_no_outcome check (status = 'closed' or outcome is null);
update aml_alerts set outcome = case when reviewer_notes ilike '%legitimate%' then 'legitimate' else 'false_positive' end
 where status = 'closed';
create index aml_alerts_assignee_idx on aml_alerts (assignee_id, created_at) where status = 'open';
create index aml_alerts_transaction_idx on aml_alerts (transaction_id);

-- Everything that happened to an alert, for its notes history.
create table console.alert_events (
    id         bigint generated always as identity primary key,
    alert_id   text not null references aml_alerts (id),
    at         timestamptz not null default now(),
    staff_id   uuid references console.staff (id),
    staff_name text not null,
    kind       text not null check (kind in ('assigned', 'closed', 'reopened')),
    outcome    text check (outcome in ('false_positive', 'legitimate', 'escalated_to_str')),
    notes      text check (length(notes) <= 10000)
);
create index alert_events_alert_idx on console.alert_events (alert_id, id);

alter table str_reports drop constraint str_reports_status_check;
alter table str_reports add constraint str_reports_status_check
    check (status in ('draft', 'pending_review', 'approved', 'filed'));
alter table str_reports
    add column alert_id         text references aml_alerts (id),
    add column drafted_by       uuid references console.staff (id),
    add column drafted_by_name  text,
    add column review_comment   text check (length(review_comment) <= 5000),
    add column approved_by      uuid references console.staff (id),
    add column approved_by_name text,
    add column approved_at      timestamptz,
    add column filing_reference text check (length(filing_reference) <= 100),
    add column filed_by_name    text,
    add column filed_snapshot   jsonb,
    add column filed_hash       text,
    add column updated_at       timestamptz not null default now(),
    -- Four eyes: whoever approves did not draft.
    add constraint str_reports_four_eyes check (approved_by is null or drafted_by is null or approved_by <> drafted_by);
create index str_reports_alert_idx on str_reports (alert_id);
update str_reports set filed_snapshot = details, filed_hash = encode(sha256(convert_to(details::text, 'UTF8')), 'hex')
 where status = 'filed' and filed_snapshot is null;
alter table str_reports add constraint str_reports_filed_is_frozen
    check (status <> 'filed' or (filed_snapshot is not null and filed_hash is not null));

-- The transactions a report covers, with the amounts reported.
create table console.str_transactions (
    str_id         text not null references str_reports (id),
    transaction_id text not null references transactions (id),
    primary key (str_id, transaction_id)
);
create index str_transactions_tx_idx on console.str_transactions (transaction_id);
insert into console.str_transactions (str_id, transaction_id)
select id, transaction_id from str_reports where transaction_id is not null;

-- A filed report is what was sent to Økokrim: the database refuses to change it.
create function console.str_filed_is_frozen() returns trigger
language plpgsql as $$
begin
    if old.status = 'filed' then
        raise exception 'STR % is filed and cannot change', old.id using errcode = 'check_violation';
    end if;
    return new;
end
$$;
create trigger str_reports_frozen before update or delete on str_reports
    for each row execute function console.str_filed_is_frozen();

-- GDPR erasure: what was pseudonymised, and when AML retention ends for the rest.
alter table users
    add column erased_at            timestamptz,
    add column retention_ends_at    timestamptz;
create index users_deleted_idx on users (deleted_at) where deleted_at is not null;

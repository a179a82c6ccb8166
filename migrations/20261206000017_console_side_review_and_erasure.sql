-- Drop's tables are Drop's: what the console added to them moves into its own schema, keyed
-- by Drop's ids. An alert's assignee and outcome (aml_alerts had neither in the runbook) and
-- an erasure's date and AML retention end (users had neither) live here now; Drop's columns
-- (status, reviewed_at, reviewer_notes, deleted_at) are still written where the runbook's
-- procedures write them.

create table console.alert_reviews (
    alert_id    text primary key,
    assignee_id uuid references console.staff (id),
    outcome     text check (outcome in ('false_positive', 'legitimate', 'escalated_to_str'))
);
-- "Unassigned" and "mine" in the queue; the oldest unassigned alert for "take the next".
create index alert_reviews_assignee_idx on console.alert_reviews (assignee_id) where assignee_id is not null;
insert into console.alert_reviews (alert_id, assignee_id, outcome)
select id, assignee_id, outcome from aml_alerts where assignee_id is not null or outcome is not null;
drop index if exists aml_alerts_assignee_idx;
alter table aml_alerts drop constraint if exists aml_alerts_open_has_no_outcome;
alter table aml_alerts drop column assignee_id, drop column outcome;

create table console.erasures (
    user_id           text primary key,
    erased_at         timestamptz not null default now(),
    retention_ends_at timestamptz not null
);
insert into console.erasures (user_id, erased_at, retention_ends_at)
select id, erased_at, coalesce(retention_ends_at, erased_at + interval '5 years') from users where erased_at is not null;
alter table users drop column erased_at, drop column retention_ends_at;

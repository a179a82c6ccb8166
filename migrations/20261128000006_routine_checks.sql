-- Routine checks (runbook §2): each submission keeps who, when and every value as evidence.
create table console.checklist_runs (
    id                bigint generated always as identity primary key,
    checklist         text not null check (checklist in ('daily', 'weekly', 'monthly')),
    submitted_by      uuid not null references console.staff (id),
    submitted_by_name text not null,
    submitted_at      timestamptz not null default now(),
    all_ok            boolean not null,
    items             jsonb not null check (jsonb_typeof(items) = 'array')
);
create index checklist_runs_latest_idx on console.checklist_runs (checklist, submitted_at desc, id desc);

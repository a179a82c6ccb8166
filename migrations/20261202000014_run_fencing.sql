-- Fencing for run leases: every claim of a run increments its epoch, and every write a worker
-- makes about the run (step status, facts, log lines, audit intents) checks, in the same
-- transaction and under the run's row lock, that it still holds the lease with the epoch it
-- claimed. A worker that stalled past its lease writes nothing once another one took over.
alter table console.runs add column lease_epoch bigint not null default 0;

-- Half-finished rotations and the like are looked up by procedure and status on the dashboard.
create index runs_ended_badly_idx on console.runs (procedure, created_at desc) where status in ('failed', 'cancelled');

-- One slow audited transaction must not stall the console: a writer waits at most 2 s for the
-- chain's head (held by the transaction appending before it), then gives up with
-- lock_not_available, which the console answers with a 503 saying the audit log is busy and
-- that nothing was done. The function-level setting applies inside the trigger only.
alter function console.audit_chain() set lock_timeout = '2s';

-- One submission per rendered form: append-only forms (checklists, new STR drafts) carry a
-- token made when the form was rendered; the first submission records it in the same
-- transaction as what it adds, a repeat (double click, Back and resubmit) finds it and goes
-- where the first one went, recording nothing. Tokens older than a day are pruned.
create table console.form_submissions (
    token        uuid primary key,
    staff_id     uuid not null references console.staff (id),
    went_to      text not null check (length(went_to) between 1 and 500),
    submitted_at timestamptz not null default now()
);
create index form_submissions_age_idx on console.form_submissions (submitted_at);

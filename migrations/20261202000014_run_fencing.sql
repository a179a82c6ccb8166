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

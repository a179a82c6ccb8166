-- Runs: the runbook's procedures (deploy, rollback, restart, scale, secret rotation, manual
-- snapshots and restore drills) as
-- durable, resumable lists of steps. The in-process worker of any replica claims a run with
-- FOR UPDATE SKIP LOCKED and holds a lease it renews; a crashed replica's run is taken over
-- when its lease lapses.
create table console.runs (
    id                uuid primary key,
    procedure         text not null check (procedure in ('deploy', 'rollback', 'restart', 'emergency_restart', 'scale',
                                                         'rotate_jwt_secret', 'rotate_db_password', 'snapshot',
                                                         'restore_drill')),
    -- What the run changes, e.g. 'apprunner:drop-web'. At most one active run per target.
    target            text not null,
    environment       text not null,
    params            jsonb not null default '{}',
    -- What the steps learned so far (operation ids, the image that ran before): never a secret.
    facts             jsonb not null default '{}',
    status            text not null default 'queued'
                      check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    reason            text,
    started_by        uuid not null references console.staff (id),
    started_by_name   text not null,
    created_at        timestamptz not null default now(),
    finished_at       timestamptz,
    -- Why it ended (failed or cancelled), for the operator.
    outcome           text,
    cancel_requested_by text,
    lease_owner       uuid,
    lease_until       timestamptz
);
create unique index runs_one_active_per_target_idx on console.runs (target) where status in ('queued', 'running');
create index runs_history_idx on console.runs (created_at desc, id desc);
create index runs_procedure_history_idx on console.runs (procedure, created_at desc, id desc);
create index runs_claimable_idx on console.runs (created_at) where status in ('queued', 'running');

create table console.run_steps (
    run_id      uuid not null references console.runs (id),
    position    integer not null,
    name        text not null,
    title       text not null,
    status      text not null default 'pending'
                check (status in ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped')),
    -- Runs even after an earlier step failed (closing the maintenance window).
    always      boolean not null default false,
    -- What the step learned (an operation id, a snapshot id): never a secret value.
    state       jsonb not null default '{}',
    -- The audit intent written when the step started; its outcome follows when it ends.
    intent_id   bigint,
    started_at  timestamptz,
    finished_at timestamptz,
    primary key (run_id, position)
);

create table console.run_log (
    id       bigint generated always as identity primary key,
    run_id   uuid not null references console.runs (id),
    position integer,
    at       timestamptz not null default now(),
    line     text not null
);
create index run_log_run_idx on console.run_log (run_id, id);

-- Monitoring maintenance windows the console opens around a deploy (runbook §3 step 4).
create table console.maintenance_windows (
    run_id    uuid primary key references console.runs (id),
    opened_at timestamptz not null default now(),
    ends_at   timestamptz not null,
    closed_at timestamptz
);
create index maintenance_windows_open_idx on console.maintenance_windows (ends_at) where closed_at is null;

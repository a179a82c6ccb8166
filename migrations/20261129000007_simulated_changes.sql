-- The simulated environment learns to change: the App Runner service, its operations, RDS
-- snapshots and temporary instances, and secret versions. Demo mode and training only; the
-- simulator seeds these rows on first use. Real AWS state never lives here.
alter table console.sim_faults drop constraint sim_faults_name_check;
alter table console.sim_faults add constraint sim_faults_name_check
    check (name in ('health_red', 'db_unreachable', 'storage_low', 'snapshot_missing', 'service_down', 'throttling',
                    'slow_responses', 'certificate_expiring', 'deploy_fails', 'release_unhealthy'));

create table console.sim_service (
    name         text primary key,
    image        text not null,
    paused       boolean not null default false,
    min_size     integer not null default 1,
    max_size     integer not null default 4,
    -- Bumped on every master password change: the kill tests compare it with the secret.
    db_password  text not null,
    updated_at   timestamptz not null default now()
);

create table console.sim_operations (
    id          text primary key,
    service     text not null references console.sim_service (name),
    kind        text not null check (kind in ('START_DEPLOYMENT', 'UPDATE_SERVICE', 'PAUSE_SERVICE', 'RESUME_SERVICE')),
    image       text,
    min_size    integer,
    max_size    integer,
    started_at  timestamptz not null default now(),
    ends_at     timestamptz not null,
    fails       boolean not null default false,
    -- Null while in progress; SUCCEEDED or FAILED once settled.
    status      text check (status in ('SUCCEEDED', 'FAILED')),
    ended_at    timestamptz
);
create index sim_operations_recent_idx on console.sim_operations (service, started_at desc);

create table console.sim_snapshots (
    id           text primary key,
    instance     text not null,
    created_at   timestamptz not null default now(),
    available_at timestamptz not null
);

create table console.sim_instances (
    id           text primary key,
    from_snapshot text not null,
    created_at   timestamptz not null default now(),
    available_at timestamptz not null,
    deleted_at   timestamptz
);

create table console.sim_secret_versions (
    secret_id  text not null,
    version_id text not null,
    value      text not null,
    current    boolean not null default false,
    created_at timestamptz not null default now(),
    primary key (secret_id, version_id)
);
create unique index sim_secret_current_idx on console.sim_secret_versions (secret_id) where current;

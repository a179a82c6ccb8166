-- The simulated Drop environment used by demo mode and on-call training: faults someone
-- switched on, kept across restarts. Everything else the simulator shows is derived from
-- the clock and these faults.
create table console.sim_faults (
    name       text primary key check (name in ('health_red', 'db_unreachable', 'storage_low', 'snapshot_missing',
                                                'service_down', 'throttling', 'slow_responses', 'certificate_expiring')),
    active     boolean not null default false,
    changed_by text not null,
    changed_at timestamptz not null default now()
);

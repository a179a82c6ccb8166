-- The console's own state lives in its own schema so it can share Drop's database without
-- clashing with Drop's tables.
create schema if not exists console;

-- One row per demo seeding: the generator runs once per database, never over real data.
create table console.demo_seed (
    seed       bigint primary key,
    seeded_at  timestamptz not null default now(),
    users      integer not null,
    transactions integer not null
);

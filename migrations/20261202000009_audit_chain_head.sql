-- The audit chain's head in a one-row table: appending finds the previous row's seq and hash
-- by primary key instead of sorting audit_log (which, with `nulls last`, matched no index
-- and scanned the whole log on every insert). The head row's lock replaces the advisory
-- lock: concurrent writers still append one after another, each in O(1).
create table console.audit_chain_head (
    singleton boolean primary key default true check (singleton),
    seq       bigint not null check (seq >= 0),
    hash      bytea
);
insert into console.audit_chain_head (seq, hash)
select coalesce((select seq from audit_log order by seq desc limit 1), 0),
       (select hash from audit_log order by seq desc limit 1);

create or replace function console.audit_chain() returns trigger
language plpgsql as $$
declare
    head console.audit_chain_head%rowtype;
begin
    -- Row lock held to commit: the next writer waits here, never on a scan.
    select * into strict head from console.audit_chain_head where singleton for update;
    new.created_at := now();
    new.seq := head.seq + 1;
    new.prev_hash := head.hash;
    new.hash := console.audit_row_hash(head.hash, new);
    update console.audit_chain_head set seq = new.seq, hash = new.hash where singleton;
    return new;
end
$$;

-- Verifications of the chain, running and finished. The newest finished one that found the
-- chain intact is the checkpoint: the audit page verifies onward from its `(checked_seq,
-- checked_hash)` instead of recomputing millions of rows on every press. A full
-- verification starts from the first row; a break, once found, stays shown until one passes.
create table console.audit_verifications (
    id           bigint generated always as identity primary key,
    started_at   timestamptz not null default now(),
    -- Renewed after every stretch: a running row that stops moving was interrupted.
    updated_at   timestamptz not null default now(),
    finished_at  timestamptz,
    started_by   text not null check (length(started_by) between 1 and 200),
    full_chain   boolean not null,
    from_seq     bigint not null check (from_seq >= 0),
    target_seq   bigint not null check (target_seq >= from_seq),
    checked_seq  bigint not null check (checked_seq between from_seq and target_seq),
    checked_hash bytea,
    rows         bigint not null default 0 check (rows >= 0),
    broken_id    bigint,
    problem      text check (length(problem) <= 500),
    check (broken_id is null or problem is not null),
    check (problem is null or finished_at is not null)
);
create index audit_verifications_checkpoint_idx on console.audit_verifications (id desc)
    where finished_at is not null and problem is null;
create index audit_verifications_broken_idx on console.audit_verifications (id desc) where problem is not null;

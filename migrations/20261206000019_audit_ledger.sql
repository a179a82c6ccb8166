-- Drop's audit_log is Drop's: the runbook inserts into it with `id = gen_random_uuid()` and
-- five columns. The console's audit record — actor identity, intent and outcome, reason,
-- request, the two hash chains — is its own ledger, console.audit_entries, and every entry
-- is also a row of Drop's audit_log in Drop's shape, written in the same transaction by the
-- chain trigger. A row someone inserts into audit_log by hand (the runbook's way) is taken
-- into the ledger by a trigger, so it is chained and verified like the console's own; both
-- tables refuse updates, deletes and truncation.

-- The ledger is the table the console wrote until now, ids, chains and hashes unchanged.
alter table audit_log set schema console;
alter table console.audit_log rename to audit_entries;
alter index console.audit_log_pkey rename to audit_entries_pkey;
-- The Drop row that is this entry (written with it, or taken in from Drop's table).
alter table console.audit_entries add column drop_id uuid;
create unique index audit_entries_drop_id_idx on console.audit_entries (drop_id) where drop_id is not null;

-- Drop's audit_log as the runbook shows it. (Drop's own database has it already; the console
-- creates it only where it is missing: its demo and its tests.)
create table if not exists public.audit_log (
    id            uuid primary key,
    action        text not null,
    resource_type text not null,
    resource_id   text not null,
    details       jsonb not null default '{}'::jsonb,
    created_at    timestamptz not null default now()
);
create index if not exists audit_log_created_idx on public.audit_log (created_at desc, id);

-- Which chain a row about `resource_type` belongs to: the operations chain for what operations
-- staff may read, casework for everything else — alerts, STRs, people, and whatever Drop's own
-- app logs about its customers (tipping-off and GDPR: unknown is casework).
create function console.audit_chain_of(resource_type text) returns text
language sql immutable as $$
    select case when resource_type in ('audit_log', 'route', 'run', 'secret', 'staff', 'staff_session',
                                       'checklist', 'database_role', 'simulator', 'database')
                then 'operations' else 'casework' end
$$;

-- The chain trigger now also writes the Drop row of a console entry, before hashing, so the
-- hash covers which Drop row it is.
-- (As before: it runs with the owner's rights, and waits at most 2 s for the chain's head, so a
-- stuck writer makes the next one fail fast with "the audit log is busy" instead of hanging.)
create or replace function console.audit_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp set lock_timeout = '2s' as $$
declare
    head console.audit_chain_head%rowtype;
begin
    -- Row lock of this chain's head, held to commit: the next writer of the chain waits here.
    select * into strict head from console.audit_chain_head where chain = new.chain for update;
    -- The writer never chooses the id.
    new.id := case when new.chain = 'casework' then nextval('console.audit_casework_ids')
                   else nextval('console.audit_operation_ids') end;
    new.created_at := now();
    new.seq := head.seq + 1;
    if new.drop_id is null then
        new.drop_id := gen_random_uuid();
        perform set_config('dropops.mirroring', 'on', true);
        insert into public.audit_log (id, action, resource_type, resource_id, details, created_at)
        values (new.drop_id, new.action, new.resource_type, new.resource_id,
                new.details || jsonb_strip_nulls(jsonb_build_object(
                    'console_entry', new.id, 'kind', new.kind, 'actor', new.actor,
                    'intent', new.intent_id, 'outcome', new.outcome)),
                new.created_at);
        perform set_config('dropops.mirroring', '', true);
    end if;
    new.prev_hash := head.hash;
    new.hash := console.audit_row_hash(head.hash, new);
    update console.audit_chain_head set seq = new.seq, hash = new.hash where chain = new.chain;
    return new;
end
$$;
revoke all on function console.audit_chain() from public;

-- The canonical text of an entry covers its Drop row where it has one (entries written
-- before the ledger keep the text, and the hashes, they were written with).
create or replace function console.audit_canonical(r console.audit_entries) returns text
language sql stable as $$
    select (jsonb_build_object(
        'seq', r.seq, 'id', r.id,
        'created_at', to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'kind', r.kind, 'intent_id', r.intent_id,
        'actor', r.actor, 'actor_issuer', r.actor_issuer, 'actor_subject', r.actor_subject,
        'actor_email', r.actor_email, 'actor_roles', to_jsonb(r.actor_roles),
        'action', r.action, 'resource_type', r.resource_type, 'resource_id', r.resource_id,
        'reason', r.reason, 'request_id', r.request_id, 'client_ip', r.client_ip,
        'user_agent', r.user_agent, 'session_fingerprint', r.session_fingerprint,
        'outcome', r.outcome, 'error', r.error, 'details', r.details
    ) || case when r.chain = 'casework' then '{"chain": "casework"}'::jsonb else '{}'::jsonb end
      || case when r.drop_id is not null then jsonb_build_object('drop_id', r.drop_id) else '{}'::jsonb end)::text
$$;

-- A row inserted into Drop's audit_log by anyone but the chain trigger: taken into the ledger
-- as an event by whoever connected, in the chain its resource belongs to.
create function console.audit_adopt() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $$
begin
    if coalesce(current_setting('dropops.mirroring', true), '') = 'on' then
        return null;
    end if;
    insert into console.audit_entries (drop_id, kind, actor, action, resource_type, resource_id, details, chain)
    values (new.id, 'event', 'database: ' || session_user,
            coalesce(nullif(left(new.action, 100), ''), 'unnamed'),
            coalesce(nullif(left(new.resource_type, 100), ''), 'unnamed'), new.resource_id,
            case when jsonb_typeof(new.details::jsonb) = 'object' then new.details::jsonb
                 else jsonb_build_object('value', new.details::jsonb) end,
            console.audit_chain_of(new.resource_type));
    return null;
end
$$;
revoke all on function console.audit_adopt() from public;
create trigger audit_log_adopt after insert on public.audit_log
    for each row execute function console.audit_adopt();

-- Drop's audit_log is append-only too.
create trigger audit_log_no_change before update or delete on public.audit_log
    for each row execute function console.audit_append_only();
create trigger audit_log_no_truncate before truncate on public.audit_log
    for each statement execute function console.audit_append_only();

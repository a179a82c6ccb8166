-- Two audit chains: operations and casework. Rows about compliance casework (alerts, STRs,
-- people, and everything compliance staff and the MLRO search in the log) are chained apart,
-- with their own gap-free `seq` and their own range of ids. A role that may not see casework
-- reads the operations chain whole: no gap in its numbers or ids, and no verification result
-- that names a row it cannot open, tells it when casework happened (tipping-off rule).
alter table audit_log
    add column chain text not null default 'operations' check (chain in ('operations', 'casework'));

-- Ids come from the chain's own sequence, assigned under the chain's head lock (so within a
-- chain, id order is seq order). Casework ids start at 10^15, far above any operations id:
-- every list of one chain is an index range of the primary key.
create sequence console.audit_operation_ids as bigint maxvalue 999999999999999;
select setval('console.audit_operation_ids', greatest(v, 1), v >= 1)
  from (select greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('audit_log', 'id')::regclass), 0),
                        coalesce((select max(id) from audit_log), 0)) as v) s;
create sequence console.audit_casework_ids as bigint minvalue 1000000000000000 start 1000000000000000;
alter table audit_log alter column id drop identity;
alter table audit_log add constraint audit_log_chain_ids
    check ((chain = 'casework') = (id >= 1000000000000000));

drop index audit_log_seq_idx;
create unique index audit_log_chain_seq_idx on audit_log (chain, seq);

alter table console.audit_chain_head drop constraint audit_chain_head_pkey;
alter table console.audit_chain_head
    add column chain text not null default 'operations' check (chain in ('operations', 'casework'));
alter table console.audit_chain_head drop column singleton;
alter table console.audit_chain_head add primary key (chain);
insert into console.audit_chain_head (chain, seq, hash) values ('casework', 0, null);

-- The canonical text covers the chain of a casework row; operations rows keep the text (and
-- the hashes) they were written with.
create or replace function console.audit_canonical(r audit_log) returns text
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
    ) || case when r.chain = 'casework' then '{"chain": "casework"}'::jsonb else '{}'::jsonb end)::text
$$;

create or replace function console.audit_chain() returns trigger
language plpgsql as $$
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
    new.prev_hash := head.hash;
    new.hash := console.audit_row_hash(head.hash, new);
    update console.audit_chain_head set seq = new.seq, hash = new.hash where chain = new.chain;
    return new;
end
$$;

alter table console.audit_verifications
    add column chain text not null default 'operations' check (chain in ('operations', 'casework'));
drop index console.audit_verifications_checkpoint_idx;
drop index console.audit_verifications_broken_idx;
create index audit_verifications_checkpoint_idx on console.audit_verifications (chain, id desc)
    where finished_at is not null and problem is null;
create index audit_verifications_broken_idx on console.audit_verifications (chain, id desc) where problem is not null;

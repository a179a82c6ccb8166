-- Staff identity, console web sessions, and the audit core: intent/outcome rows, an
-- append-only trigger and a hash chain maintained by the database itself.

create table console.staff (
    id               uuid primary key default gen_random_uuid(),
    issuer           text not null,
    subject          text not null,
    email            text,
    display_name     text not null check (length(display_name) between 1 and 200),
    roles            text[] not null default '{}',
    disabled         boolean not null default false,
    disabled_at      timestamptz,
    disabled_reason  text,
    first_sign_in_at timestamptz not null default now(),
    last_sign_in_at  timestamptz not null default now(),
    -- Staff identity is issuer + subject; an email can be reassigned, a subject cannot.
    unique (issuer, subject),
    check (disabled = (disabled_at is not null))
);
create index staff_name_idx on console.staff (lower(display_name), id);

-- One row per sign-in. The console's session cookie carries only tower-sessions' id; the
-- session data holds this row's id, so ending a row ends the sign-in on its next request.
create table console.staff_sessions (
    id           uuid primary key,
    staff_id     uuid not null references console.staff (id),
    roles        text[] not null,
    auth_time    timestamptz not null,
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    ended_at     timestamptz,
    end_reason   text check (end_reason in ('signed_out', 'idle', 'expired', 'ended_by_admin', 'disabled')),
    client_ip    text,
    user_agent   text,
    check ((ended_at is null) = (end_reason is null))
);
create index staff_sessions_live_idx on console.staff_sessions (last_seen_at desc, id) where ended_at is null;
create index staff_sessions_staff_idx on console.staff_sessions (staff_id) where ended_at is null;

-- tower-sessions' records (see src/auth/store.rs).
create table console.web_sessions (
    id          text primary key not null,
    data        jsonb not null,
    expiry_date timestamptz not null
);
create index web_sessions_expiry_idx on console.web_sessions (expiry_date);

alter table audit_log
    add column seq                 bigint,
    add column kind                text not null default 'event' check (kind in ('intent', 'outcome', 'event')),
    add column intent_id           bigint references audit_log (id),
    add column actor_issuer        text,
    add column actor_subject       text,
    add column actor_email         text,
    add column actor_roles         text[] not null default '{}',
    add column reason              text check (length(reason) <= 2000),
    add column request_id          text,
    add column client_ip           text,
    add column user_agent          text,
    add column session_fingerprint text,
    add column outcome             text check (outcome in ('succeeded', 'failed', 'unknown')),
    add column error               text check (length(error) <= 2000),
    add column prev_hash           bytea,
    add column hash                bytea;
alter table audit_log add constraint audit_log_outcome_shape
    check ((kind = 'outcome') = (intent_id is not null and outcome is not null));
create unique index audit_log_seq_idx on audit_log (seq);
-- An intent may get a late real outcome after the reconciler marked it unknown: both are kept.
create index audit_log_outcome_of_idx on audit_log (intent_id) where kind = 'outcome';
create index audit_log_open_intent_idx on audit_log (created_at, id) where kind = 'intent';
create index audit_log_actor_idx on audit_log (lower(actor), id desc);
create index audit_log_outcome_idx on audit_log (outcome, id desc) where outcome is not null;

-- The canonical text of a row: what its hash covers. jsonb renders keys in a fixed order.
create function console.audit_canonical(r audit_log) returns text
language sql stable as $$
    select jsonb_build_object(
        'seq', r.seq, 'id', r.id,
        'created_at', to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'kind', r.kind, 'intent_id', r.intent_id,
        'actor', r.actor, 'actor_issuer', r.actor_issuer, 'actor_subject', r.actor_subject,
        'actor_email', r.actor_email, 'actor_roles', to_jsonb(r.actor_roles),
        'action', r.action, 'resource_type', r.resource_type, 'resource_id', r.resource_id,
        'reason', r.reason, 'request_id', r.request_id, 'client_ip', r.client_ip,
        'user_agent', r.user_agent, 'session_fingerprint', r.session_fingerprint,
        'outcome', r.outcome, 'error', r.error, 'details', r.details
    )::text
$$;

create function console.audit_row_hash(prev bytea, r audit_log) returns bytea
language sql stable as $$
    select sha256(coalesce(prev, '\x'::bytea) || convert_to(console.audit_canonical(r), 'UTF8'))
$$;

-- Every insert takes the chain lock (held to commit), so concurrent writers append one after
-- another and the chain never forks. The database clock stamps the row.
create function console.audit_chain() returns trigger
language plpgsql as $$
declare
    last audit_log%rowtype;
begin
    perform pg_advisory_xact_lock(724510401);
    select * into last from audit_log order by seq desc nulls last limit 1;
    new.created_at := now();
    new.seq := coalesce(last.seq, 0) + 1;
    new.prev_hash := last.hash;
    new.hash := console.audit_row_hash(last.hash, new);
    return new;
end
$$;

-- Chain the rows written before this migration, oldest first.
do $$
declare
    r audit_log%rowtype;
    prev bytea := null;
    n bigint := 0;
begin
    for r in select * from audit_log order by id loop
        n := n + 1;
        r.seq := n;
        r.prev_hash := prev;
        r.hash := console.audit_row_hash(prev, r);
        update audit_log set seq = r.seq, prev_hash = r.prev_hash, hash = r.hash where id = r.id;
        prev := r.hash;
    end loop;
end
$$;
alter table audit_log alter column seq set not null, alter column hash set not null;

create trigger audit_log_chain before insert on audit_log
    for each row execute function console.audit_chain();

create function console.audit_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger audit_log_no_change before update or delete on audit_log
    for each row execute function console.audit_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function console.audit_append_only();

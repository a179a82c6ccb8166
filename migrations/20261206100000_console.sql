-- The console's own schema, and the three triggers it attaches to Drop's audit_log: everything
-- `dropops migrate` creates. It creates and changes nothing else of Drop's — Drop's tables are
-- Drop's (their shape is the schema contract in src/contract; demo mode and the tests create
-- them from fixtures/dropapp/ first).
--
-- This one file replaces the console's first nineteen migrations (2026-11-28 to 2026-12-06),
-- which created Drop's tables and widened them; its objects are theirs, as they ended:
--   - identity: console.staff, staff_sessions, web_sessions (tower-sessions' store);
--   - the audit ledger console.audit_entries with its two hash chains (operations, casework),
--     their head rows, id ranges (casework from 10^15), canonical text and verification
--     checkpoints; its chain trigger also writes each entry to Drop's audit_log in Drop's
--     shape, and a row inserted into audit_log by hand is adopted into the ledger
--     (audit_log_adopt); both are append-only;
--   - compliance: alert_reviews (assignee, outcome), alert_events, erasures, str_cases (the
--     STR workflow, frozen once filed, four eyes enforced by trigger), str_transactions,
--     str_contributions;
--   - runs: runs, run_steps, run_log (fenced by lease and epoch), maintenance_windows;
--   - routine checks, one-shot form tokens, the demo seed marker and the simulator's state.
-- A database set up by the old migrations is refused at start with what to do (src/db.rs).

-- Functions are defined before the tables their bodies name.
set local check_function_bodies = false;

CREATE SCHEMA console;

CREATE FUNCTION console.audit_adopt() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

CREATE FUNCTION console.audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;




CREATE TABLE console.audit_entries (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    actor text DEFAULT 'system'::text NOT NULL,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    seq bigint NOT NULL,
    kind text DEFAULT 'event'::text NOT NULL,
    intent_id bigint,
    actor_issuer text,
    actor_subject text,
    actor_email text,
    actor_roles text[] DEFAULT '{}'::text[] NOT NULL,
    reason text,
    request_id text,
    client_ip text,
    user_agent text,
    session_fingerprint text,
    outcome text,
    error text,
    prev_hash bytea,
    hash bytea NOT NULL,
    chain text DEFAULT 'operations'::text NOT NULL,
    drop_id uuid,
    CONSTRAINT audit_log_action_check CHECK (((length(action) >= 1) AND (length(action) <= 100))),
    CONSTRAINT audit_log_chain_check CHECK ((chain = ANY (ARRAY['operations'::text, 'casework'::text]))),
    CONSTRAINT audit_log_chain_ids CHECK (((chain = 'casework'::text) = (id >= '1000000000000000'::bigint))),
    CONSTRAINT audit_log_details_check CHECK ((jsonb_typeof(details) = 'object'::text)),
    CONSTRAINT audit_log_error_check CHECK ((length(error) <= 2000)),
    CONSTRAINT audit_log_kind_check CHECK ((kind = ANY (ARRAY['intent'::text, 'outcome'::text, 'event'::text]))),
    CONSTRAINT audit_log_outcome_check CHECK ((outcome = ANY (ARRAY['succeeded'::text, 'failed'::text, 'unknown'::text]))),
    CONSTRAINT audit_log_outcome_shape CHECK (((kind = 'outcome'::text) = ((intent_id IS NOT NULL) AND (outcome IS NOT NULL)))),
    CONSTRAINT audit_log_reason_check CHECK ((length(reason) <= 2000)),
    CONSTRAINT audit_log_resource_type_check CHECK (((length(resource_type) >= 1) AND (length(resource_type) <= 100)))
);

CREATE FUNCTION console.audit_canonical(r console.audit_entries) RETURNS text
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION console.audit_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET lock_timeout TO '2s'
    AS $$
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

CREATE FUNCTION console.audit_chain_of(resource_type text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    select case when resource_type in ('audit_log', 'route', 'run', 'secret', 'staff', 'staff_session',
                                       'checklist', 'database_role', 'database_backend', 'database_statistics', 'simulator',
                                       'database')
                then 'operations' else 'casework' end
$$;

CREATE FUNCTION console.audit_row_hash(prev bytea, r console.audit_entries) RETURNS bytea
    LANGUAGE sql STABLE
    AS $$
    select sha256(coalesce(prev, '\x'::bytea) || convert_to(console.audit_canonical(r), 'UTF8'))
$$;

CREATE FUNCTION console.last_word(name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lower("substring"(name, '([^[:space:]]+)[[:space:]]*$'::text));

CREATE FUNCTION console.str_content_sha256(report text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    select encode(sha256(convert_to(
        coalesce((select details::text from console.str_cases where id = report), '') || '|' ||
        coalesce((select string_agg(transaction_id, ',' order by transaction_id)
                    from console.str_transactions where str_id = report), ''),
        'UTF8')), 'hex')
$$;

CREATE FUNCTION console.str_filed_is_frozen() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    if old.status = 'filed' then
        raise exception 'STR % is filed and cannot change', old.id using errcode = 'check_violation';
    end if;
    return new;
end
$$;

CREATE FUNCTION console.str_four_eyes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
    if new.status = 'approved' and old.status is distinct from 'approved' then
        if exists (select 1 from console.str_contributions c where c.str_id = new.id and c.staff_id = new.approved_by) then
            raise exception 'STR %: a contributor cannot approve it (four eyes)', new.id using errcode = 'check_violation';
        end if;
        if console.str_content_sha256(new.id) is distinct from
           (select c.content_sha256 from console.str_contributions c
             where c.str_id = new.id and c.kind = 'submitted' order by c.id desc limit 1) then
            raise exception 'STR %: the content is not what was submitted', new.id using errcode = 'check_violation';
        end if;
    end if;
    return new;
end
$$;

CREATE TABLE console.alert_events (
    id bigint NOT NULL,
    alert_id text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    staff_id uuid,
    staff_name text NOT NULL,
    kind text NOT NULL,
    outcome text,
    notes text,
    CONSTRAINT alert_events_kind_check CHECK ((kind = ANY (ARRAY['assigned'::text, 'closed'::text, 'reopened'::text]))),
    CONSTRAINT alert_events_notes_check CHECK ((length(notes) <= 10000)),
    CONSTRAINT alert_events_outcome_check CHECK ((outcome = ANY (ARRAY['false_positive'::text, 'legitimate'::text, 'escalated_to_str'::text])))
);

ALTER TABLE console.alert_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME console.alert_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE console.alert_reviews (
    alert_id text NOT NULL,
    assignee_id uuid,
    outcome text,
    CONSTRAINT alert_reviews_outcome_check CHECK ((outcome = ANY (ARRAY['false_positive'::text, 'legitimate'::text, 'escalated_to_str'::text])))
);

CREATE SEQUENCE console.audit_casework_ids
    START WITH 1000000000000000
    INCREMENT BY 1
    MINVALUE 1000000000000000
    NO MAXVALUE
    CACHE 1;

CREATE TABLE console.audit_chain_head (
    seq bigint NOT NULL,
    hash bytea,
    chain text DEFAULT 'operations'::text NOT NULL,
    CONSTRAINT audit_chain_head_chain_check CHECK ((chain = ANY (ARRAY['operations'::text, 'casework'::text]))),
    CONSTRAINT audit_chain_head_seq_check CHECK ((seq >= 0))
);

CREATE SEQUENCE console.audit_operation_ids
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    MAXVALUE 999999999999999
    CACHE 1;

CREATE TABLE console.audit_reconciler (
    singleton boolean DEFAULT true NOT NULL,
    reconciled_before timestamp with time zone,
    CONSTRAINT audit_reconciler_singleton_check CHECK (singleton)
);

CREATE TABLE console.audit_verifications (
    id bigint NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    started_by text NOT NULL,
    full_chain boolean NOT NULL,
    from_seq bigint NOT NULL,
    target_seq bigint NOT NULL,
    checked_seq bigint NOT NULL,
    checked_hash bytea,
    rows bigint DEFAULT 0 NOT NULL,
    broken_id bigint,
    problem text,
    chain text DEFAULT 'operations'::text NOT NULL,
    CONSTRAINT audit_verifications_chain_check CHECK ((chain = ANY (ARRAY['operations'::text, 'casework'::text]))),
    CONSTRAINT audit_verifications_check CHECK ((target_seq >= from_seq)),
    CONSTRAINT audit_verifications_check1 CHECK (((checked_seq >= from_seq) AND (checked_seq <= target_seq))),
    CONSTRAINT audit_verifications_check2 CHECK (((broken_id IS NULL) OR (problem IS NOT NULL))),
    CONSTRAINT audit_verifications_check3 CHECK (((problem IS NULL) OR (finished_at IS NOT NULL))),
    CONSTRAINT audit_verifications_from_seq_check CHECK ((from_seq >= 0)),
    CONSTRAINT audit_verifications_problem_check CHECK ((length(problem) <= 500)),
    CONSTRAINT audit_verifications_rows_check CHECK ((rows >= 0)),
    CONSTRAINT audit_verifications_started_by_check CHECK (((length(started_by) >= 1) AND (length(started_by) <= 200)))
);

ALTER TABLE console.audit_verifications ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME console.audit_verifications_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE console.checklist_runs (
    id bigint NOT NULL,
    checklist text NOT NULL,
    submitted_by uuid NOT NULL,
    submitted_by_name text NOT NULL,
    submitted_at timestamp with time zone DEFAULT now() NOT NULL,
    all_ok boolean NOT NULL,
    items jsonb NOT NULL,
    CONSTRAINT checklist_runs_checklist_check CHECK ((checklist = ANY (ARRAY['daily'::text, 'weekly'::text, 'monthly'::text]))),
    CONSTRAINT checklist_runs_items_check CHECK ((jsonb_typeof(items) = 'array'::text))
);

ALTER TABLE console.checklist_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME console.checklist_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE console.demo_seed (
    seed bigint NOT NULL,
    seeded_at timestamp with time zone DEFAULT now() NOT NULL,
    users integer NOT NULL,
    transactions integer NOT NULL
);

CREATE TABLE console.erasures (
    user_id text NOT NULL,
    erased_at timestamp with time zone DEFAULT now() NOT NULL,
    retention_ends_at timestamp with time zone NOT NULL
);

CREATE TABLE console.form_submissions (
    token uuid NOT NULL,
    staff_id uuid NOT NULL,
    went_to text NOT NULL,
    submitted_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT form_submissions_went_to_check CHECK (((length(went_to) >= 1) AND (length(went_to) <= 500)))
);

CREATE TABLE console.maintenance_windows (
    run_id uuid NOT NULL,
    opened_at timestamp with time zone DEFAULT now() NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    closed_at timestamp with time zone
);

CREATE TABLE console.run_log (
    id bigint NOT NULL,
    run_id uuid NOT NULL,
    "position" integer,
    at timestamp with time zone DEFAULT now() NOT NULL,
    line text NOT NULL
);

ALTER TABLE console.run_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME console.run_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE console.run_steps (
    run_id uuid NOT NULL,
    "position" integer NOT NULL,
    name text NOT NULL,
    title text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    always boolean DEFAULT false NOT NULL,
    state jsonb DEFAULT '{}'::jsonb NOT NULL,
    intent_id bigint,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    CONSTRAINT run_steps_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text, 'skipped'::text])))
);

CREATE TABLE console.runs (
    id uuid NOT NULL,
    procedure text NOT NULL,
    target text NOT NULL,
    environment text NOT NULL,
    params jsonb DEFAULT '{}'::jsonb NOT NULL,
    facts jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    reason text,
    started_by uuid NOT NULL,
    started_by_name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    outcome text,
    cancel_requested_by text,
    lease_owner uuid,
    lease_until timestamp with time zone,
    lease_epoch bigint DEFAULT 0 NOT NULL,
    CONSTRAINT runs_procedure_check CHECK ((procedure = ANY (ARRAY['deploy'::text, 'rollback'::text, 'restart'::text, 'emergency_restart'::text, 'scale'::text, 'rotate_jwt_secret'::text, 'rotate_db_password'::text, 'snapshot'::text, 'restore_drill'::text]))),
    CONSTRAINT runs_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text])))
);

CREATE TABLE console.sim_faults (
    name text NOT NULL,
    active boolean DEFAULT false NOT NULL,
    changed_by text NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sim_faults_name_check CHECK ((name = ANY (ARRAY['health_red'::text, 'db_unreachable'::text, 'storage_low'::text, 'snapshot_missing'::text, 'service_down'::text, 'throttling'::text, 'slow_responses'::text, 'certificate_expiring'::text, 'deploy_fails'::text, 'release_unhealthy'::text, 'ci_failing'::text, 'monitoring_unreachable'::text])))
);

CREATE TABLE console.sim_instances (
    id text NOT NULL,
    from_snapshot text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    available_at timestamp with time zone NOT NULL,
    deleted_at timestamp with time zone
);

CREATE TABLE console.sim_operations (
    id text NOT NULL,
    service text NOT NULL,
    kind text NOT NULL,
    image text,
    min_size integer,
    max_size integer,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    fails boolean DEFAULT false NOT NULL,
    status text,
    ended_at timestamp with time zone,
    CONSTRAINT sim_operations_kind_check CHECK ((kind = ANY (ARRAY['START_DEPLOYMENT'::text, 'UPDATE_SERVICE'::text, 'PAUSE_SERVICE'::text, 'RESUME_SERVICE'::text]))),
    CONSTRAINT sim_operations_status_check CHECK ((status = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text])))
);

CREATE TABLE console.sim_secret_versions (
    secret_id text NOT NULL,
    version_id text NOT NULL,
    value text NOT NULL,
    current boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE console.sim_service (
    name text NOT NULL,
    image text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    min_size integer DEFAULT 1 NOT NULL,
    max_size integer DEFAULT 4 NOT NULL,
    db_password text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE console.sim_snapshots (
    id text NOT NULL,
    instance text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    available_at timestamp with time zone NOT NULL
);

CREATE TABLE console.staff (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    issuer text NOT NULL,
    subject text NOT NULL,
    email text,
    display_name text NOT NULL,
    roles text[] DEFAULT '{}'::text[] NOT NULL,
    disabled boolean DEFAULT false NOT NULL,
    disabled_at timestamp with time zone,
    disabled_reason text,
    first_sign_in_at timestamp with time zone DEFAULT now() NOT NULL,
    last_sign_in_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT staff_check CHECK ((disabled = (disabled_at IS NOT NULL))),
    CONSTRAINT staff_display_name_check CHECK (((length(display_name) >= 1) AND (length(display_name) <= 200)))
);

CREATE TABLE console.staff_sessions (
    id uuid NOT NULL,
    staff_id uuid NOT NULL,
    roles text[] NOT NULL,
    auth_time timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    end_reason text,
    client_ip text,
    user_agent text,
    CONSTRAINT staff_sessions_check CHECK (((ended_at IS NULL) = (end_reason IS NULL))),
    CONSTRAINT staff_sessions_end_reason_check CHECK ((end_reason = ANY (ARRAY['signed_out'::text, 'idle'::text, 'expired'::text, 'ended_by_admin'::text, 'disabled'::text])))
);

CREATE TABLE console.str_cases (
    id text NOT NULL,
    user_id text NOT NULL,
    transaction_id text,
    alert_id text,
    status text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    drafted_by uuid,
    drafted_by_name text,
    review_comment text,
    approved_by uuid,
    approved_by_name text,
    approved_at timestamp with time zone,
    filing_reference text,
    filed_at timestamp with time zone,
    filed_by_name text,
    filed_snapshot jsonb,
    filed_hash text,
    CONSTRAINT str_cases_check CHECK (((status = 'filed'::text) = (filed_at IS NOT NULL))),
    CONSTRAINT str_cases_check1 CHECK (((status <> 'filed'::text) OR ((filed_snapshot IS NOT NULL) AND (filed_hash IS NOT NULL)))),
    CONSTRAINT str_cases_check2 CHECK (((approved_by IS NULL) OR (drafted_by IS NULL) OR (approved_by <> drafted_by))),
    CONSTRAINT str_cases_details_check CHECK ((jsonb_typeof(details) = 'object'::text)),
    CONSTRAINT str_cases_filing_reference_check CHECK ((length(filing_reference) <= 100)),
    CONSTRAINT str_cases_id_check CHECK ((id ~ '^str_[A-Za-z0-9]{6,40}$'::text)),
    CONSTRAINT str_cases_review_comment_check CHECK ((length(review_comment) <= 5000)),
    CONSTRAINT str_cases_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'pending_review'::text, 'approved'::text, 'filed'::text])))
);

CREATE TABLE console.str_contributions (
    id bigint NOT NULL,
    str_id text NOT NULL,
    staff_id uuid,
    staff_name text NOT NULL,
    kind text NOT NULL,
    content_sha256 text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT str_contributions_content_sha256_check CHECK ((content_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT str_contributions_kind_check CHECK ((kind = ANY (ARRAY['drafted'::text, 'edited'::text, 'submitted'::text])))
);

ALTER TABLE console.str_contributions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME console.str_contributions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE console.str_transactions (
    str_id text NOT NULL,
    transaction_id text NOT NULL
);

CREATE TABLE console.web_sessions (
    id text NOT NULL,
    data jsonb NOT NULL,
    expiry_date timestamp with time zone NOT NULL
);

ALTER TABLE ONLY console.alert_events
    ADD CONSTRAINT alert_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.alert_reviews
    ADD CONSTRAINT alert_reviews_pkey PRIMARY KEY (alert_id);

ALTER TABLE ONLY console.audit_chain_head
    ADD CONSTRAINT audit_chain_head_pkey PRIMARY KEY (chain);

ALTER TABLE ONLY console.audit_entries
    ADD CONSTRAINT audit_entries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.audit_reconciler
    ADD CONSTRAINT audit_reconciler_pkey PRIMARY KEY (singleton);

ALTER TABLE ONLY console.audit_verifications
    ADD CONSTRAINT audit_verifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.checklist_runs
    ADD CONSTRAINT checklist_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.demo_seed
    ADD CONSTRAINT demo_seed_pkey PRIMARY KEY (seed);

ALTER TABLE ONLY console.erasures
    ADD CONSTRAINT erasures_pkey PRIMARY KEY (user_id);

ALTER TABLE ONLY console.form_submissions
    ADD CONSTRAINT form_submissions_pkey PRIMARY KEY (token);

ALTER TABLE ONLY console.maintenance_windows
    ADD CONSTRAINT maintenance_windows_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY console.run_log
    ADD CONSTRAINT run_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.run_steps
    ADD CONSTRAINT run_steps_pkey PRIMARY KEY (run_id, "position");

ALTER TABLE ONLY console.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.sim_faults
    ADD CONSTRAINT sim_faults_pkey PRIMARY KEY (name);

ALTER TABLE ONLY console.sim_instances
    ADD CONSTRAINT sim_instances_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.sim_operations
    ADD CONSTRAINT sim_operations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.sim_secret_versions
    ADD CONSTRAINT sim_secret_versions_pkey PRIMARY KEY (secret_id, version_id);

ALTER TABLE ONLY console.sim_service
    ADD CONSTRAINT sim_service_pkey PRIMARY KEY (name);

ALTER TABLE ONLY console.sim_snapshots
    ADD CONSTRAINT sim_snapshots_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.staff
    ADD CONSTRAINT staff_issuer_subject_key UNIQUE (issuer, subject);

ALTER TABLE ONLY console.staff
    ADD CONSTRAINT staff_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.staff_sessions
    ADD CONSTRAINT staff_sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.str_cases
    ADD CONSTRAINT str_cases_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.str_contributions
    ADD CONSTRAINT str_contributions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY console.str_transactions
    ADD CONSTRAINT str_transactions_pkey PRIMARY KEY (str_id, transaction_id);

ALTER TABLE ONLY console.web_sessions
    ADD CONSTRAINT web_sessions_pkey PRIMARY KEY (id);

CREATE INDEX alert_events_alert_idx ON console.alert_events USING btree (alert_id, id);

CREATE INDEX alert_reviews_assignee_idx ON console.alert_reviews USING btree (assignee_id) WHERE (assignee_id IS NOT NULL);

CREATE UNIQUE INDEX audit_entries_drop_id_idx ON console.audit_entries USING btree (drop_id) WHERE (drop_id IS NOT NULL);

CREATE INDEX audit_log_action_idx ON console.audit_entries USING btree (action, id DESC);

CREATE INDEX audit_log_actor_idx ON console.audit_entries USING btree (lower(actor), id DESC);

CREATE UNIQUE INDEX audit_log_chain_seq_idx ON console.audit_entries USING btree (chain, seq);

CREATE INDEX audit_log_created_idx ON console.audit_entries USING btree (created_at DESC, id DESC);

CREATE INDEX audit_log_open_intent_idx ON console.audit_entries USING btree (created_at, id) WHERE (kind = 'intent'::text);

CREATE INDEX audit_log_outcome_idx ON console.audit_entries USING btree (outcome, id DESC) WHERE (outcome IS NOT NULL);

CREATE INDEX audit_log_outcome_of_idx ON console.audit_entries USING btree (intent_id) WHERE (kind = 'outcome'::text);

CREATE INDEX audit_log_resource_idx ON console.audit_entries USING btree (resource_type, resource_id, id DESC);

CREATE INDEX audit_verifications_broken_idx ON console.audit_verifications USING btree (chain, id DESC) WHERE (problem IS NOT NULL);

CREATE INDEX audit_verifications_checkpoint_idx ON console.audit_verifications USING btree (chain, id DESC) WHERE ((finished_at IS NOT NULL) AND (problem IS NULL));

CREATE INDEX checklist_runs_latest_idx ON console.checklist_runs USING btree (checklist, submitted_at DESC, id DESC);

CREATE INDEX form_submissions_age_idx ON console.form_submissions USING btree (submitted_at);

CREATE INDEX maintenance_windows_open_idx ON console.maintenance_windows USING btree (ends_at) WHERE (closed_at IS NULL);

CREATE INDEX run_log_run_idx ON console.run_log USING btree (run_id, id);

CREATE INDEX runs_claimable_idx ON console.runs USING btree (created_at) WHERE (status = ANY (ARRAY['queued'::text, 'running'::text]));

CREATE INDEX runs_ended_badly_idx ON console.runs USING btree (procedure, created_at DESC) WHERE (status = ANY (ARRAY['failed'::text, 'cancelled'::text]));

CREATE INDEX runs_history_idx ON console.runs USING btree (created_at DESC, id DESC);

CREATE UNIQUE INDEX runs_one_active_per_target_idx ON console.runs USING btree (target) WHERE (status = ANY (ARRAY['queued'::text, 'running'::text]));

CREATE INDEX runs_procedure_history_idx ON console.runs USING btree (procedure, created_at DESC, id DESC);

CREATE INDEX sim_operations_recent_idx ON console.sim_operations USING btree (service, started_at DESC);

CREATE UNIQUE INDEX sim_secret_current_idx ON console.sim_secret_versions USING btree (secret_id) WHERE current;

CREATE INDEX staff_email_prefix_idx ON console.staff USING btree (lower(email) text_pattern_ops);

CREATE INDEX staff_last_name_prefix_idx ON console.staff USING btree (console.last_word(display_name) text_pattern_ops);

CREATE INDEX staff_name_idx ON console.staff USING btree (lower(display_name), id);

CREATE INDEX staff_name_prefix_idx ON console.staff USING btree (lower(display_name) text_pattern_ops);

CREATE INDEX staff_sessions_live_idx ON console.staff_sessions USING btree (last_seen_at DESC, id) WHERE (ended_at IS NULL);

CREATE INDEX staff_sessions_staff_idx ON console.staff_sessions USING btree (staff_id) WHERE (ended_at IS NULL);

CREATE INDEX str_cases_alert_idx ON console.str_cases USING btree (alert_id);

CREATE INDEX str_cases_status_updated_idx ON console.str_cases USING btree (status, updated_at DESC, id);

CREATE INDEX str_cases_user_idx ON console.str_cases USING btree (user_id);

CREATE INDEX str_contributions_str_idx ON console.str_contributions USING btree (str_id, staff_id);

CREATE INDEX str_transactions_tx_idx ON console.str_transactions USING btree (transaction_id);

CREATE INDEX web_sessions_expiry_idx ON console.web_sessions USING btree (expiry_date);

CREATE TRIGGER audit_log_chain BEFORE INSERT ON console.audit_entries FOR EACH ROW EXECUTE FUNCTION console.audit_chain();

CREATE TRIGGER audit_log_no_change BEFORE DELETE OR UPDATE ON console.audit_entries FOR EACH ROW EXECUTE FUNCTION console.audit_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON console.audit_entries FOR EACH STATEMENT EXECUTE FUNCTION console.audit_append_only();

CREATE TRIGGER str_cases_four_eyes BEFORE UPDATE ON console.str_cases FOR EACH ROW EXECUTE FUNCTION console.str_four_eyes();

CREATE TRIGGER str_cases_frozen BEFORE DELETE OR UPDATE ON console.str_cases FOR EACH ROW EXECUTE FUNCTION console.str_filed_is_frozen();

CREATE TRIGGER audit_log_adopt AFTER INSERT ON public.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_adopt();

CREATE TRIGGER audit_log_no_change BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION console.audit_append_only();

ALTER TABLE ONLY console.alert_events
    ADD CONSTRAINT alert_events_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES console.staff(id);

ALTER TABLE ONLY console.alert_reviews
    ADD CONSTRAINT alert_reviews_assignee_id_fkey FOREIGN KEY (assignee_id) REFERENCES console.staff(id);

ALTER TABLE ONLY console.audit_entries
    ADD CONSTRAINT audit_log_intent_id_fkey FOREIGN KEY (intent_id) REFERENCES console.audit_entries(id);

ALTER TABLE ONLY console.checklist_runs
    ADD CONSTRAINT checklist_runs_submitted_by_fkey FOREIGN KEY (submitted_by) REFERENCES console.staff(id);

ALTER TABLE ONLY console.form_submissions
    ADD CONSTRAINT form_submissions_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES console.staff(id);

ALTER TABLE ONLY console.maintenance_windows
    ADD CONSTRAINT maintenance_windows_run_id_fkey FOREIGN KEY (run_id) REFERENCES console.runs(id);

ALTER TABLE ONLY console.run_log
    ADD CONSTRAINT run_log_run_id_fkey FOREIGN KEY (run_id) REFERENCES console.runs(id);

ALTER TABLE ONLY console.run_steps
    ADD CONSTRAINT run_steps_run_id_fkey FOREIGN KEY (run_id) REFERENCES console.runs(id);

ALTER TABLE ONLY console.runs
    ADD CONSTRAINT runs_started_by_fkey FOREIGN KEY (started_by) REFERENCES console.staff(id);

ALTER TABLE ONLY console.sim_operations
    ADD CONSTRAINT sim_operations_service_fkey FOREIGN KEY (service) REFERENCES console.sim_service(name);

ALTER TABLE ONLY console.staff_sessions
    ADD CONSTRAINT staff_sessions_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES console.staff(id);

ALTER TABLE ONLY console.str_cases
    ADD CONSTRAINT str_cases_approved_by_fkey FOREIGN KEY (approved_by) REFERENCES console.staff(id);

ALTER TABLE ONLY console.str_cases
    ADD CONSTRAINT str_cases_drafted_by_fkey FOREIGN KEY (drafted_by) REFERENCES console.staff(id);

ALTER TABLE ONLY console.str_contributions
    ADD CONSTRAINT str_contributions_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES console.staff(id);

ALTER TABLE ONLY console.str_contributions
    ADD CONSTRAINT str_contributions_str_id_fkey FOREIGN KEY (str_id) REFERENCES console.str_cases(id);

ALTER TABLE ONLY console.str_transactions
    ADD CONSTRAINT str_transactions_str_id_fkey FOREIGN KEY (str_id) REFERENCES console.str_cases(id);

-- The chains start empty; the reconciler has not run.
insert into console.audit_chain_head (chain, seq, hash) values ('operations', 0, null), ('casework', 0, null);
insert into console.audit_reconciler (reconciled_before) values (null);

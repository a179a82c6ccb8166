-- Production-sized volume for scripts/bench, set-based. Run with psql variables:
--   :stage  users | transactions | alerts | runs | audit
--   :lo :hi the 1-based range of generated rows this call adds (chunked by the caller)
--   :users  how many bench users exist (for spreading transactions over them)
-- Triggers and foreign-key checks are off while seeding (session_replication_role), so the
-- audit stage computes the hash chain itself, exactly as console.audit_chain() would:
-- a running sha256 over console.audit_canonical(row), continuing from the chain head.
\set ON_ERROR_STOP on
set session_replication_role = replica;
set synchronous_commit = off;
set work_mem = '256MB';
-- Row estimates of generate_series are far off; compiling the plan costs more than it saves.
set jit = off;

select :'stage' = 'users' as do_users, :'stage' = 'transactions' as do_transactions,
       :'stage' = 'alerts' as do_alerts, :'stage' = 'runs' as do_runs, :'stage' = 'audit' as do_audit \gset

\if :do_users
-- 1 % of people wait for KYC, a few were rejected, the rest are approved.
insert into users (id, email, full_name, country, kyc_status, kyc_updated_at, auth_provider, created_at)
select 'usr_bench' || lpad(g::text, 8, '0'), 'bench' || g || '@bench.example', 'Bench Person ' || g,
       (array['NO', 'SE', 'DK', 'PL', 'LT'])[1 + g % 5],
       case when g % 100 = 0 then 'pending' when g % 37 = 0 then 'rejected' else 'approved' end,
       now() - make_interval(hours => (g % 2000)::int),
       (array['bankid', 'vipps', 'email', 'apple', 'google'])[1 + g % 5],
       now() - make_interval(days => (g % 1000)::int)
  from generate_series(:lo::bigint, :hi::bigint) g;
\endif

\if :do_transactions
-- One transaction every 6 seconds back in time (10 million ≈ two years); 2 % failed.
insert into transactions (id, user_id, type, status, send_amount, send_currency, receive_amount, receive_currency,
                          recipient_country, failure_reason, created_at)
select 'tx_bench' || g, 'usr_bench' || lpad((1 + (g * 7919) % :users)::text, 8, '0'),
       (array['transfer', 'transfer', 'transfer', 'top_up', 'withdrawal'])[1 + g % 5],
       case when g % 50 = 0 then 'failed' when g % 97 = 0 then 'pending' else 'completed' end,
       ((g * 31) % 60000 + 10)::numeric(18, 2), 'NOK', ((g * 31) % 60000 + 10) * 0.39, 'PLN', 'PL',
       case when g % 50 = 0 then 'recipient bank timeout' end,
       now() - make_interval(secs => g * 6)
  from generate_series(:lo::bigint, :hi::bigint) g;
\endif

\if :do_alerts
-- An alert on every 100th transaction; the newest 20 % are open (old ones were reviewed).
insert into aml_alerts (id, user_id, transaction_id, rule, status, created_at, reviewed_at, reviewer_notes)
select 'alert_bench' || g, t.user_id, t.id,
       (array['large_transfer', 'velocity', 'high_risk_country', 'structuring'])[1 + g % 4],
       case when g <= :hi_open then 'open' else 'closed' end,
       t.created_at,
       case when g <= :hi_open then null else t.created_at + interval '1 day' end,
       case when g <= :hi_open then null else 'reviewed (bench)' end
  from generate_series(:lo::bigint, :hi::bigint) g join transactions t on t.id = 'tx_bench' || (g * 100);
-- The reviewed ones' outcomes: the console's record, beside Drop's row.
insert into console.alert_reviews (alert_id, outcome)
select 'alert_bench' || g, 'false_positive' from generate_series(greatest(:lo::bigint, :hi_open::bigint + 1), :hi::bigint) g;
\endif

\if :do_runs
insert into console.staff (issuer, subject, display_name, roles)
values ('bench', 'bench', 'Bench Oncall', '{oncall}') on conflict do nothing;
insert into console.runs (id, procedure, target, environment, params, status, started_by, started_by_name,
                          created_at, finished_at)
select gen_random_uuid(), 'deploy', 'apprunner:drop-web', 'production', jsonb_build_object('image', 'bench/drop-api@sha256:' || g, 'digest', 'sha256:' || g, 'tag', 'b' || g),
       'succeeded', (select id from console.staff where subject = 'bench'), 'Bench Oncall',
       now() - make_interval(hours => g::int), now() - make_interval(hours => g::int) + interval '4 minutes'
  from generate_series(:lo::bigint, :hi::bigint) g;
\endif

\if :do_audit
create schema if not exists bench;
create or replace function bench.chain_step(state bytea, head bytea, canonical text) returns bytea
language sql immutable as $$ select sha256(coalesce(state, head, '\x'::bytea) || convert_to(canonical, 'UTF8')) $$;
create or replace aggregate bench.chain(bytea, text) (sfunc = bench.chain_step, stype = bytea);

-- Views of people and of the queue, searches, and pairs of intent + outcome (every intent
-- has its outcome, as in a healthy log). Times rise with seq, up to now. Alerts and people
-- are casework, in the casework chain; searches in the operations chain. Each chain has its
-- own gap-free seq and id range, continued from its head.
-- Each chain's newest id, read once, by the key inside the chain's id range (casework ids start
-- at 10^15): a plain max(id) filtered by chain walked every newer row of the other chain, for
-- every row generated.
with heads as materialized (
    select h.chain, h.seq, h.hash,
           (select coalesce(max(a.id), case h.chain when 'casework' then 999999999999999 else 0 end)
              from console.audit_entries a
             where a.chain = h.chain
               and a.id >= case h.chain when 'casework' then 1000000000000000 else 1 end
               and a.id < case h.chain when 'casework' then 9223372036854775807 else 1000000000000000 end) as max_id
      from console.audit_chain_head h),
numbered as materialized (
    select g, c.chain, row_number() over (partition by c.chain order by g) as k
      from generate_series(:lo, :hi) g,
           lateral (select case when g % 10 = 2 then 'operations' else 'casework' end as chain) c
),
generated as materialized (
    select jsonb_populate_record(null::console.audit_entries, jsonb_build_object(
               'id', h.max_id + n.k, 'seq', h.seq + n.k, 'chain', n.chain,
               'created_at', now() - make_interval(secs => (:total - g) * 6),
               'kind', case g % 10 when 0 then 'intent' when 1 then 'outcome' else 'event' end,
               -- The intent is the row before in the same chain.
               'intent_id', case when g % 10 = 1 then h.max_id + n.k - 1 end,
               'actor', (array['Kari Compliance', 'Ola Oncall', 'Mona MLRO', 'system'])[1 + g % 4],
               'actor_issuer', 'https://login.bench.example',
               'actor_subject', 'sub-' || g % 4,
               'actor_roles', jsonb_build_array((array['compliance', 'oncall', 'mlro', 'admin'])[1 + g % 4]),
               'action', case g % 10 when 0 then 'alert_closed' when 1 then 'alert_closed'
                                     when 2 then 'audit_searched' else 'personal_data_viewed' end,
               'resource_type', case when g % 10 in (0, 1) then 'aml_alert' when g % 10 = 2 then 'audit_log'
                                     else 'person' end,
               'resource_id', case when g % 10 in (0, 1) then 'alert_bench' || (g / 10) when g % 10 = 2 then 'search'
                                   else 'usr_bench' || lpad((1 + g % :users)::text, 8, '0') end,
               'request_id', md5(g::text),
               'client_ip', '10.0.' || g % 250 || '.' || g % 200,
               'outcome', case when g % 10 = 1 then 'succeeded' end,
               'details', '{}'::jsonb)) as r,
           h.hash as head_hash
      from numbered n join heads h using (chain)
), chained as materialized (
    select r, head_hash, bench.chain(head_hash, console.audit_canonical(r)) over w as hash
      from generated window w as (partition by (r).chain order by (r).seq)
)
insert into console.audit_entries (id, seq, chain, created_at, kind, intent_id, actor, actor_issuer, actor_subject, actor_email,
                       actor_roles, action, resource_type, resource_id, reason, request_id, client_ip, user_agent,
                       session_fingerprint, outcome, error, details, prev_hash, hash)
select (r).id, (r).seq, (r).chain, (r).created_at, (r).kind, (r).intent_id, (r).actor, (r).actor_issuer,
       (r).actor_subject, (r).actor_email, (r).actor_roles, (r).action, (r).resource_type, (r).resource_id,
       (r).reason, (r).request_id, (r).client_ip, (r).user_agent, (r).session_fingerprint, (r).outcome, (r).error,
       (r).details, coalesce(lag(hash) over w, head_hash), hash
  from chained window w as (partition by (r).chain order by (r).seq);

update console.audit_chain_head h
   set (seq, hash) = (select a.seq, a.hash from console.audit_entries a where a.chain = h.chain order by a.seq desc limit 1)
 where exists (select 1 from console.audit_entries a where a.chain = h.chain);
select setval('console.audit_operation_ids', max(id)) from console.audit_entries where chain = 'operations' having count(*) > 0;
select setval('console.audit_casework_ids', max(id)) from console.audit_entries where chain = 'casework' having count(*) > 0;
\endif

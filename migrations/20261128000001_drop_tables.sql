-- Drop's application tables (runbook.md §6), as the console expects to find them in `dropapp`.
-- Money is numeric with an explicit ISO 4217 currency; every time is timestamptz.

create table users (
    id             text primary key check (id ~ '^usr_[A-Za-z0-9]{6,40}$'),
    email          text not null check (email like '%_@_%' and length(email) <= 320),
    full_name      text not null check (length(full_name) between 1 and 200),
    country        char(2) not null default 'NO' check (country ~ '^[A-Z]{2}$'),
    kyc_status     text not null check (kyc_status in ('not_started', 'pending', 'approved', 'rejected')),
    kyc_updated_at timestamptz not null default now(),
    auth_provider  text not null check (auth_provider in ('bankid', 'vipps', 'email', 'apple', 'google')),
    created_at     timestamptz not null default now(),
    deleted_at     timestamptz
);
-- Lookup by email (case-insensitive), and the KYC "pending > 24 h / stuck > 2 h" lists.
create index users_email_idx on users (lower(email));
create index users_kyc_pending_idx on users (kyc_updated_at) where kyc_status = 'pending' and deleted_at is null;

create table sessions (
    id           text primary key,
    user_id      text not null references users (id),
    revoked      smallint not null default 0 check (revoked in (0, 1)),
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    user_agent   text
);
-- "Revoke all sessions of a user" touches only that user's live sessions.
create index sessions_user_live_idx on sessions (user_id) where revoked = 0;

create table transactions (
    id             text primary key check (id ~ '^tx_[A-Za-z0-9]{6,40}$'),
    user_id        text not null references users (id),
    type           text not null check (type in ('transfer', 'top_up', 'withdrawal', 'refund')),
    status         text not null check (status in ('pending', 'completed', 'failed', 'reversed')),
    send_amount    numeric(18, 2) not null check (send_amount > 0),
    send_currency  char(3) not null check (send_currency ~ '^[A-Z]{3}$'),
    receive_amount numeric(18, 2) check (receive_amount > 0),
    receive_currency char(3) check (receive_currency ~ '^[A-Z]{3}$'),
    recipient_country char(2) check (recipient_country ~ '^[A-Z]{2}$'),
    failure_reason text,
    created_at     timestamptz not null default now(),
    check ((status = 'failed') = (failure_reason is not null))
);
-- Last 24 h and large transactions (30 days) walk this index newest first; ties broken by id
-- for keyset pagination. One person's history uses the second; failed-in-7-days the third.
create index transactions_created_idx on transactions (created_at desc, id desc);
create index transactions_user_created_idx on transactions (user_id, created_at desc, id desc);
create index transactions_failed_idx on transactions (created_at desc, id desc) where status = 'failed';

create table aml_alerts (
    id             text primary key check (id ~ '^alert_[A-Za-z0-9]{6,40}$'),
    user_id        text not null references users (id),
    transaction_id text references transactions (id),
    rule           text not null check (length(rule) between 1 and 100),
    status         text not null check (status in ('open', 'closed')),
    created_at     timestamptz not null default now(),
    reviewed_at    timestamptz,
    reviewer_notes text check (length(reviewer_notes) <= 10000),
    check ((status = 'closed') = (reviewed_at is not null))
);
create index aml_alerts_open_idx on aml_alerts (created_at, id) where status = 'open';
create index aml_alerts_user_idx on aml_alerts (user_id, created_at desc);

create table str_reports (
    id             text primary key check (id ~ '^str_[A-Za-z0-9]{6,40}$'),
    user_id        text not null references users (id),
    transaction_id text references transactions (id),
    report_type    text not null default 'suspicious_transaction' check (report_type in ('suspicious_transaction')),
    details        jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),
    status         text not null check (status in ('draft', 'pending_review', 'approved', 'filed')),
    created_at     timestamptz not null default now(),
    filed_at       timestamptz,
    check ((status = 'filed') = (filed_at is not null))
);
-- The monthly "any pending filing?" check.
create index str_reports_pending_idx on str_reports (created_at) where status <> 'filed';
create index str_reports_user_idx on str_reports (user_id);

create table data_access_requests (
    id           text primary key check (id ~ '^dar_[A-Za-z0-9]{6,40}$'),
    user_id      text not null references users (id),
    kind         text not null default 'access' check (kind in ('access', 'erasure')),
    status       text not null default 'open' check (status in ('open', 'fulfilled', 'rejected')),
    created_at   timestamptz not null default now(),
    fulfilled_at timestamptz,
    check ((status = 'open') = (fulfilled_at is null))
);
create index data_access_requests_open_idx on data_access_requests (created_at, id) where status = 'open';
create index data_access_requests_user_idx on data_access_requests (user_id);

create table audit_log (
    id            bigint generated always as identity primary key,
    created_at    timestamptz not null default now(),
    actor         text not null default 'system',
    action        text not null check (length(action) between 1 and 100),
    resource_type text not null check (length(resource_type) between 1 and 100),
    resource_id   text not null,
    details       jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object')
);
create index audit_log_created_idx on audit_log (created_at desc, id desc);
create index audit_log_resource_idx on audit_log (resource_type, resource_id, id desc);
create index audit_log_action_idx on audit_log (action, id desc);

-- no-transaction
-- The audit page's actor search follows each name and each email down its own index, newest
-- first (issue 11: at 10 million rows the catch-all search walked the whole key). Built
-- concurrently, and alone in its file (PostgreSQL runs several statements of one migration as
-- a transaction): audit_entries is the largest table the console owns, and a plain CREATE INDEX
-- would hold every audited action for as long as the build takes. Should a build be
-- interrupted, `\d console.audit_entries` shows the index INVALID: drop it and migrate again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_actor_email_idx ON console.audit_entries (lower(actor_email), id DESC);

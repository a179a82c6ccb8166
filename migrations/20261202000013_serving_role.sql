-- The serving role owns nothing and cannot rewrite history. The chain trigger runs with the
-- rights of the migrations' owner (security definer), so the serving role needs no right on
-- the chain's head row or its id sequences: it can append to audit_log and nothing else
-- there. `dropops grant-serving-role ROLE` (run as the owner) grants exactly that.
alter function console.audit_chain() security definer set search_path = pg_catalog, public, pg_temp;
revoke all on function console.audit_chain() from public;

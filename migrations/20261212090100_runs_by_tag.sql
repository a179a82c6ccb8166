-- The deployments page says who put the running image in place: the newest run that deployed
-- its tag, or a failed deploy that rolled back to it. Without these the query walked every run
-- newest first when none matched (20 000 runs: 11 ms on each look at the page). console.runs is
-- the console's own and small next to Drop's tables: built in the migration's transaction.
CREATE INDEX runs_succeeded_tag_idx ON console.runs ((params ->> 'tag'), created_at DESC) WHERE status = 'succeeded';
CREATE INDEX runs_rolled_back_to_idx ON console.runs ((facts ->> 'previous_tag'), created_at DESC)
    WHERE procedure = 'deploy' AND status = 'failed';

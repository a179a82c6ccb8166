-- Staging first (issue 20): deploying an image to Fly.io staging and rolling staging back are
-- runs on their own target (`fly:<app>`), so one staging run at a time, audited and resumable
-- like production's.
ALTER TABLE console.runs DROP CONSTRAINT runs_procedure_check;
ALTER TABLE console.runs ADD CONSTRAINT runs_procedure_check CHECK (procedure = ANY (ARRAY[
    'deploy', 'rollback', 'restart', 'emergency_restart', 'scale', 'rotate_jwt_secret',
    'rotate_db_password', 'snapshot', 'restore_drill', 'vacuum', 'escalation_test',
    'staging_deploy', 'staging_rollback']));

-- Images that passed staging: written by a staging run's last step once staging's health
-- reported the image's version with every machine's checks passing. The production deploy's
-- confirmation reads it (an image never seen healthy on staging needs "skip staging" and a
-- reason, kept in the production run's parameters and its audit row).
CREATE TABLE console.staging_passes (
    run_id uuid PRIMARY KEY REFERENCES console.runs (id),
    tag text NOT NULL,
    -- The ECR image the run was started from (the production deploy names images by digest).
    digest text NOT NULL,
    image text NOT NULL,
    passed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staging_passes_digest_idx ON console.staging_passes (digest, passed_at DESC);

-- The simulator can keep App Runner from starting instances (a scaling change that does not
-- take: its run's instance check fails).
ALTER TABLE console.sim_faults DROP CONSTRAINT sim_faults_name_check;
ALTER TABLE console.sim_faults ADD CONSTRAINT sim_faults_name_check CHECK (name = ANY (ARRAY[
    'health_red', 'db_unreachable', 'storage_low', 'snapshot_missing', 'service_down', 'throttling',
    'slow_responses', 'certificate_expiring', 'deploy_fails', 'release_unhealthy', 'ci_failing',
    'monitoring_unreachable', 'slack_unreachable', 'pager_silent', 'export_api_down', 'bankid_degraded',
    'instances_stuck']));

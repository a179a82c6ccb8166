-- Issue 20's vendors in the simulator: BankID can be degraded (its status page reports an
-- outage and the service misses one of its variables).
ALTER TABLE console.sim_faults DROP CONSTRAINT sim_faults_name_check;
ALTER TABLE console.sim_faults ADD CONSTRAINT sim_faults_name_check CHECK (name = ANY (ARRAY[
    'health_red', 'db_unreachable', 'storage_low', 'snapshot_missing', 'service_down', 'throttling',
    'slow_responses', 'certificate_expiring', 'deploy_fails', 'release_unhealthy', 'ci_failing',
    'monitoring_unreachable', 'slack_unreachable', 'pager_silent', 'export_api_down', 'bankid_degraded']));

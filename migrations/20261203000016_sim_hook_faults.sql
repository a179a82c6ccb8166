-- The simulator plays CI and the monitoring relay too: two more faults to switch on.
alter table console.sim_faults drop constraint sim_faults_name_check;
alter table console.sim_faults add constraint sim_faults_name_check
    check (name in ('health_red', 'db_unreachable', 'storage_low', 'snapshot_missing', 'service_down', 'throttling',
                    'slow_responses', 'certificate_expiring', 'deploy_fails', 'release_unhealthy',
                    'ci_failing', 'monitoring_unreachable'));

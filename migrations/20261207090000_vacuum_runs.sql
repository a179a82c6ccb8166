-- VACUUM (ANALYZE) of one table is a run of the database page (runbook §5), so the procedure
-- list the runs table accepts grows by one.
ALTER TABLE console.runs DROP CONSTRAINT runs_procedure_check;
ALTER TABLE console.runs ADD CONSTRAINT runs_procedure_check CHECK (procedure = ANY (ARRAY[
    'deploy', 'rollback', 'restart', 'emergency_restart', 'scale', 'rotate_jwt_secret',
    'rotate_db_password', 'snapshot', 'restore_drill', 'vacuum']));

DROP INDEX login_attempts_customer_time_idx;
ALTER TABLE login_attempts DROP COLUMN customer_id;

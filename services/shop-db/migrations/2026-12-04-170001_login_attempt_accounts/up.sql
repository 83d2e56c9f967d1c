-- The account an attempt's email belonged to at the time (NULL for an unknown email), so
-- failed logins can be counted per account — the credential-stuffing rule — from a column
-- that identifies no person, without reading the email.
ALTER TABLE login_attempts
    ADD COLUMN customer_id INTEGER REFERENCES customers (id) ON DELETE SET NULL;
-- Attempts recorded before the column existed: the account their email names now.
UPDATE login_attempts a SET customer_id = c.id FROM customers c WHERE c.email = a.email;
CREATE INDEX login_attempts_customer_time_idx ON login_attempts (customer_id, attempt_time)
    WHERE customer_id IS NOT NULL;

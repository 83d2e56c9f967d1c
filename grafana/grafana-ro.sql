-- Grafana's read-only PostgreSQL role: it reads what the lab's SQL alert rules and dashboard
-- panels read (and `labctl check`, which runs the rules' SQL as this role), and nothing else.
-- Nothing that identifies or authenticates a person: no customers table, no
-- login_attempts.email, no orders.customer_id, no orders.payment_reference, no
-- customer_sessions. login_attempts.customer_id is the account's opaque number, which the
-- credential-stuffing rule groups by (it never reads the email).
--
-- Run by grafana-ro.sh beside it (the NixOS unit alertlab-grafana-ro, and the tests), as a
-- superuser, with psql:
--   psql --no-psqlrc --set role=grafana_ro --file grafana-ro.sql --dbname shop
-- with the role's password twice on standard input (for \password) and no terminal.
-- It is idempotent: each run makes the role's privileges exactly the ones below.

\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') AS missing \gset
\if :missing
  CREATE ROLE :"role";
\endif

-- Log in and nothing else, on at most 20 connections (Grafana's data source keeps 10, labctl
-- one), with no statement longer than Grafana's own 30 s query timeout.
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
ALTER ROLE :"role" SET statement_timeout = '30s';

-- The password: psql's \password computes the SCRAM verifier itself and sends only that
-- (ALTER USER ... PASSWORD 'SCRAM-SHA-256$...'), so the password is in no statement the
-- server can log (log_statement, log_min_error_statement, log_min_duration_statement), keep
-- (pg_stat_statements) or show (pg_stat_activity).
\password :"role"

BEGIN;

-- Start from nothing, so that a privilege dropped from this file is taken back, and so is
-- what earlier versions granted: SELECT on every table, and on every future table through
-- default privileges.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"role";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"role";
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE ALL ON %s FROM %I',
              owner.rolname,
              CASE WHEN schema.nspname IS NULL THEN '' ELSE format(' IN SCHEMA %I', schema.nspname) END,
              CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                   WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END,
              :'role')
FROM pg_default_acl d
JOIN pg_roles owner ON owner.oid = d.defaclrole
LEFT JOIN pg_namespace schema ON schema.oid = d.defaclnamespace
WHERE EXISTS (SELECT FROM aclexplode(d.defaclacl) a
              JOIN pg_roles grantee ON grantee.oid = a.grantee
              WHERE grantee.rolname = :'role') \gexec

-- No writing anywhere, temporary tables included (PUBLIC may create them by default, and
-- before PostgreSQL 15 also tables in the public schema); the owner keeps both.
SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()) \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec
GRANT USAGE ON SCHEMA public TO :"role";

-- What the role reads, one column per line. A new rule or panel reading another column adds
-- its line here; a view is one `GRANT SELECT ON <view> TO :"role";` line.
GRANT SELECT (
    id,
    name,
    stock_level,
    low_stock_threshold,
    last_updated
) ON products TO :"role";

GRANT SELECT (
    id,
    product_id,
    quantity,
    total_amount,
    order_status,
    payment_method,
    failure_reason,
    order_time
) ON orders TO :"role";

GRANT SELECT (
    ip_address,
    customer_id,
    success,
    attempt_time
) ON login_attempts TO :"role";

COMMIT;

-- Sessions from POST /login. The API stores only the SHA-256 of each token: tokens are 256
-- random bits, so a fast hash suffices, and a copy of this table logs nobody in.
CREATE TABLE customer_sessions (
    id          BIGSERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX customer_sessions_customer_idx ON customer_sessions (customer_id, created_at);
CREATE INDEX customer_sessions_expiry_idx ON customer_sessions (expires_at);

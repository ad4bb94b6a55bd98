-- The client registry and what authentication keeps beside it (gateway/security).
-- Registered systems (a hospital's HIS, an elderly-care platform, an auditor's tool): their
-- organisation, role and SMART scopes, and how they prove who they are — public keys (JWKS) for
-- private_key_jwt, or, in development only, a salted scrypt hash of a secret (never the secret).
CREATE TABLE client (
    id TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    -- hospital | elderly-care | auditor: decides whom the client may see
    role TEXT NOT NULL,
    -- space-separated SMART v2 system scopes
    scopes TEXT NOT NULL,
    -- {"keys": [...]} public keys only; NULL for a secret-only client
    jwks {json},
    -- scrypt$N$r$p$salt$hash (base64); NULL for a key-only client
    secret_hash TEXT,
    -- active | revoked
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    rotated TEXT
);

-- Assertion ids (jti) already used, kept until the assertion would have expired anyway:
-- a replayed assertion is refused; expired rows are purged on later token requests.
CREATE TABLE client_assertion (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires TEXT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_expires ON client_assertion (expires);

-- The server's own secrets (the HS256 key access tokens are signed with), made on first use
-- and shared through the store by every worker process.
CREATE TABLE server_key (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created TEXT NOT NULL
);

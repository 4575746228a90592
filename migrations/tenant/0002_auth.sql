-- Sign-in: the tenant's admins (people; headless admins are API keys in the control plane),
-- single-use magic-link tokens and server-side sessions. Only hashes of tokens are stored.

CREATE TABLE admins (
    id            text PRIMARY KEY,
    email         text NOT NULL,
    name          text,
    status        text NOT NULL CHECK (status IN ('invited', 'active', 'revoked')),
    activated_at  timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX admins_email_key ON admins (email);

CREATE INDEX admins_page_idx ON admins (created_at DESC, id DESC);

CREATE TABLE magic_tokens (
    id              text PRIMARY KEY,
    token_hash      bytea NOT NULL,
    principal_kind  text NOT NULL CHECK (principal_kind IN ('admin', 'partner')),
    principal_id    text NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('login', 'invite')),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX magic_tokens_hash_key ON magic_tokens (token_hash);

CREATE TABLE sessions (
    id              text PRIMARY KEY,
    principal_kind  text NOT NULL CHECK (principal_kind IN ('admin', 'partner')),
    principal_id    text NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sessions_principal_idx ON sessions (principal_kind, principal_id);

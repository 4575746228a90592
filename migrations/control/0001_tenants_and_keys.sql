-- Control plane: the tenants and the credentials that reach them.
-- On Citus these tables stay on the coordinator as reference tables (see shared CITUS.md, rule 6);
-- nothing on the request path writes them.

CREATE TABLE control.tenants (
    id            text PRIMARY KEY,
    slug          text NOT NULL UNIQUE,
    name          text NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    schema_name   text NOT NULL UNIQUE,
    schema_version integer NOT NULL DEFAULT 0,
    admin_email   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tenants_created_idx ON control.tenants (created_at DESC, id DESC);

-- Only a SHA-256 of each key is stored; `prefix` (8 hex chars after `op_`) narrows the lookup.
CREATE TABLE control.api_keys (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES control.tenants (id),
    prefix      text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('admin', 'scoped', 'partner')),
    scopes      text[] NOT NULL DEFAULT '{}',
    partner_id  text,
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX api_keys_prefix_idx ON control.api_keys (prefix);

CREATE INDEX api_keys_tenant_idx ON control.api_keys (tenant_id, created_at DESC, id DESC);

//! Where a tenant's tables live: one PostgreSQL schema per tenant, named after its
//! generated id (`t_<lower-case ULID>`), never after the slug or any other user input.
//!
//! [`Schema`] is the only way tenant SQL names a schema: it can be built only from a valid
//! tenant id, and it is quoted once, here, so no caller splices a name by hand.

use std::fmt;

/// A tenant id is a ULID, as generated at provisioning.
pub fn valid_tenant_id(id: &str) -> bool {
    id.len() == 26 && ulid::Ulid::from_string(id).is_ok()
}

/// The schema name of a tenant (unquoted, as stored in `control.tenants.schema_name`).
pub fn schema_name(tenant_id: &str) -> String {
    format!("t_{}", tenant_id.to_ascii_lowercase())
}

/// A tenant's schema, quoted for SQL text (`"t_01j…"`). `Display` writes the quoted form,
/// so `format!("SELECT … FROM {schema}.partners")` is the schema-qualified table.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    quoted: String,
}

impl Schema {
    /// The schema of the tenant `id`; `None` if `id` is not a tenant id.
    pub fn of_tenant(id: &str) -> Option<Schema> {
        valid_tenant_id(id).then(|| Schema {
            quoted: quote_ident(&schema_name(id)),
        })
    }

    /// The quoted name, for SQL text.
    pub fn quoted(&self) -> &str {
        &self.quoted
    }

    /// The bare name (as `information_schema` and `control.tenants` hold it).
    pub fn name(&self) -> &str {
        &self.quoted[1..self.quoted.len() - 1]
    }

    /// The tenant id this schema was built from (ULIDs are stored upper-case).
    pub fn tenant_id(&self) -> String {
        self.name()[2..].to_ascii_uppercase()
    }

    /// `<schema>.<table>`, for statements that name their table in full instead of relying on
    /// the transaction's `search_path`.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.quoted)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted)
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quoted)
    }
}

/// Quotes an identifier that we generated ourselves (never user input).
fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_come_from_ids() {
        let id = ulid::Ulid::new().to_string();
        assert!(valid_tenant_id(&id));
        assert_eq!(schema_name(&id), format!("t_{}", id.to_lowercase()));
        let s = Schema::of_tenant(&id).unwrap();
        assert_eq!(s.name(), schema_name(&id));
        assert_eq!(s.quoted(), format!("\"t_{}\"", id.to_lowercase()));
        assert_eq!(
            s.table("partners"),
            format!("\"t_{}\".partners", id.to_lowercase())
        );
        assert!(!valid_tenant_id("acme"));
        assert!(Schema::of_tenant("acme").is_none());
        assert!(Schema::of_tenant("t_x\"; DROP SCHEMA public; --").is_none());
    }
}

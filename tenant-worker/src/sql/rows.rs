//! Multi-row inserts ([`Rows`]) in statements of power-of-two row counts: a connection then
//! prepares at most seven shapes per table (1, 2, 4 … 64 rows) instead of one per batch
//! size, and plain multi-row `VALUES` is what Citus routes straight to the tenant's node
//! (CITUS rule 13).

use bytes::{BufMut, BytesMut};
use op_control::schema::Schema;
use std::fmt::Write;
use tokio_postgres::types::{accepts, to_sql_checked, IsNull, ToSql, Type};

pub type Value = Box<dyn ToSql + Sync + Send>;

/// Rows for one table, written as multi-row `INSERT … VALUES` statements of power-of-two
/// row counts.
pub struct Rows {
    head: String,
    casts: &'static [&'static str],
    tail: &'static str,
    values: Vec<Value>,
}

impl Rows {
    /// Largest rows per statement.
    const MAX_ROWS: usize = 64;

    /// `INSERT INTO {schema}.{table} ({columns}) VALUES … {tail}`; `casts` gives each
    /// column's parameter type (`text`, `numeric`, …).
    pub fn new(
        schema: &Schema,
        table: &str,
        columns: &str,
        casts: &'static [&'static str],
        tail: &'static str,
    ) -> Rows {
        Rows {
            head: format!("INSERT INTO {schema}.{table} ({columns}) VALUES "),
            casts,
            tail,
            values: Vec::new(),
        }
    }

    /// Adds one row; `row` has one value per column.
    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.casts.len());
        self.values.extend(row);
    }

    /// `(sql, parameters)` per statement, rows in the order they were pushed.
    pub fn statements(&self) -> Vec<(String, Vec<&(dyn ToSql + Sync)>)> {
        let width = self.casts.len();
        let mut rows_left = self.values.len() / width;
        let mut values = self.values.iter();
        let mut out = Vec::new();
        while rows_left > 0 {
            let n = chunk(rows_left);
            rows_left -= n;
            let mut sql = String::with_capacity(self.head.len() + n * width * 16 + 64);
            sql.push_str(&self.head);
            let mut i = 0;
            for r in 0..n {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for (c, cast) in self.casts.iter().enumerate() {
                    i += 1;
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    let _ = write!(sql, "${i}::{cast}"); // writing to a String cannot fail
                }
                sql.push(')');
            }
            sql.push(' ');
            sql.push_str(self.tail);
            let params = values
                .by_ref()
                .take(n * width)
                .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                .collect();
            out.push((sql, params));
        }
        out
    }
}

/// The largest power of two not above `rows` (capped at [`Rows::MAX_ROWS`]).
fn chunk(rows: usize) -> usize {
    let p = 1usize << (usize::BITS - 1 - rows.leading_zeros());
    p.min(Rows::MAX_ROWS)
}

/// Boxes a statement parameter for [`Rows::push`].
pub fn val(v: impl ToSql + Sync + Send + 'static) -> Value {
    Box::new(v)
}

/// A `json`/`jsonb` parameter that is already JSON text (serialized once, e.g. a reply that
/// is both stored and sent).
#[derive(Debug)]
pub struct JsonText(pub Vec<u8>);

impl ToSql for JsonText {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1); // jsonb's binary format: a version byte, then the text
        }
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }

    accepts!(JSON, JSONB);
    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::of_tenant("01JDV6S2J8QZ2M4YH7R5KX0ABC").unwrap()
    }

    #[test]
    fn batches_split_into_power_of_two_statements() {
        let mut rows = Rows::new(&schema(), "t", "a, b", &["text", "int"], "RETURNING a");
        for i in 0..45 {
            rows.push(vec![val(format!("r{i}")), val(i)]);
        }
        let stmts = rows.statements();
        let sizes: Vec<usize> = stmts.iter().map(|(_, p)| p.len() / 2).collect();
        assert_eq!(sizes, [32, 8, 4, 1]);
        assert_eq!(
            stmts[3].0,
            format!(
                "INSERT INTO {}.t (a, b) VALUES ($1::text, $2::int) RETURNING a",
                schema()
            )
        );
        assert!(stmts[2].0.contains("($7::text, $8::int) RETURNING a"));
        assert_eq!(chunk(1), 1);
        assert_eq!(chunk(3), 2);
        assert_eq!(chunk(64), 64);
        assert_eq!(chunk(1000), 64);
        let mut big = Rows::new(&schema(), "t", "a", &["int"], "");
        for i in 0..130 {
            big.push(vec![val(i)]);
        }
        let sizes: Vec<usize> = big.statements().iter().map(|(_, p)| p.len()).collect();
        assert_eq!(sizes, [64, 64, 2]);
        assert!(Rows::new(&schema(), "t", "a", &["int"], "")
            .statements()
            .is_empty());
    }
}

//! What one route documents about itself: an [`Op`], built next to its handler and named by
//! its row of the route table. The parts every route shares (path parameters, security,
//! the errors its access rule and method imply) are added by the document
//! ([`super::document_for`]); an `Op` says only what is particular to the operation.

use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT};
use op_control::error_code::ErrorCode;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

/// A schema, generated when the document is: `schema::<T>` for a typed struct.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, as a reference into the document's components when `T` is named.
pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One documented answer.
pub(crate) struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub body: AnswerBody,
}

pub(crate) enum AnswerBody {
    None,
    Json(SchemaFn),
    /// A list page: `{data: [T], <alias>: [T], nextCursor}`.
    Page(SchemaFn, &'static str),
    /// A page of another media type (the click router's 404 page).
    Text(&'static str),
}

/// A query parameter.
pub(crate) struct QueryParam {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: Value,
}

/// The documentation of one operation.
pub struct Op {
    pub(crate) summary: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) body: Option<SchemaFn>,
    /// The body may be left out (an empty body reads as `{}`).
    pub(crate) body_optional: bool,
    pub(crate) query: Vec<QueryParam>,
    pub(crate) answers: Vec<Answer>,
    pub(crate) errors: Vec<(u16, ErrorCode)>,
    pub(crate) headers: Vec<(&'static str, &'static str)>,
}

impl Op {
    pub fn new(summary: &'static str) -> Op {
        Op {
            summary,
            description: None,
            body: None,
            body_optional: false,
            query: Vec::new(),
            answers: Vec::new(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn describe(mut self, text: &'static str) -> Op {
        self.description = Some(text);
        self
    }

    /// A JSON body of type `T` (required).
    pub fn body<T: JsonSchema>(mut self) -> Op {
        self.body = Some(schema::<T>);
        self
    }

    /// A JSON body of type `T` that may be left out.
    pub fn optional_body<T: JsonSchema>(mut self) -> Op {
        self.body = Some(schema::<T>);
        self.body_optional = true;
        self
    }

    /// A query parameter (always optional here: required inputs travel in bodies or paths).
    /// Its values are checked: a bad one is `400 invalid_query`.
    pub fn query(mut self, name: &'static str, description: &'static str, schema: Value) -> Op {
        self.query.push(QueryParam {
            name,
            description,
            schema,
        });
        self.errors(400, &[ErrorCode::InvalidQuery])
    }

    /// A cursor-paginated list answering `200` with a page of `T` under `data` and `alias`.
    pub fn page<T: JsonSchema>(self, alias: &'static str) -> Op {
        let mut op = self
            .query(
                "limit",
                "Items per page (default 50).",
                json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
            )
            .query(
                "cursor",
                "The `nextCursor` of the previous page.",
                json!({"type": "string"}),
            )
            .errors(400, &[ErrorCode::InvalidCursor]);
        op.answers.push(Answer {
            status: 200,
            description: "A page, newest first.",
            body: AnswerBody::Page(schema::<T>, alias),
        });
        op
    }

    /// A JSON answer of type `T` with `status`.
    pub fn ok<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Op {
        self.answers.push(Answer {
            status,
            description,
            body: AnswerBody::Json(schema::<T>),
        });
        self
    }

    /// An answer without a body (`204`, the router's `302`).
    pub fn empty(mut self, status: u16, description: &'static str) -> Op {
        self.answers.push(Answer {
            status,
            description,
            body: AnswerBody::None,
        });
        self
    }

    /// An answer of another media type.
    pub fn text(mut self, status: u16, media: &'static str, description: &'static str) -> Op {
        self.answers.push(Answer {
            status,
            description,
            body: AnswerBody::Text(media),
        });
        self
    }

    /// Error answers particular to this operation: `status` with each of `codes`.
    pub fn errors(mut self, status: u16, codes: &[ErrorCode]) -> Op {
        for c in codes {
            if !self.errors.contains(&(status, *c)) {
                self.errors.push((status, *c));
            }
        }
        self
    }

    /// A response header every answer may carry.
    pub fn header(mut self, name: &'static str, description: &'static str) -> Op {
        self.headers.push((name, description));
        self
    }
}

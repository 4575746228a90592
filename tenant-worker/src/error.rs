//! The worker's one error type, mapped once to `{"error": code, "detail": ...}` + status.

pub use op_control::ErrorCode;
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
    pub detail: String,
    /// Extra top-level fields some errors carry (e.g. `required` on `forbidden_scope`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// Whether the same request may succeed when simply tried again (marked `retryable`:
    /// a deadlock, a serialization failure, a concurrent first event).
    pub fn is_retryable(&self) -> bool {
        self.extra.get("retryable") == Some(&Value::Bool(true))
    }

    pub fn invalid_body(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, ErrorCode::InvalidBody, detail)
    }

    pub fn invalid_query(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, ErrorCode::InvalidQuery, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(404, ErrorCode::NotFound, detail)
    }

    /// `404`: "no partner with id `…`".
    pub fn no_such(what: &str, id: &str) -> ApiError {
        ApiError::not_found(format!("no {what} with id `{id}`"))
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError::new(409, code, detail)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            401,
            ErrorCode::Unauthorized,
            "missing or invalid credentials",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(403, ErrorCode::Forbidden, detail)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            500,
            ErrorCode::Internal,
            "internal error; quote the X-Request-Id when reporting it",
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(503, ErrorCode::Unavailable, detail)
    }

    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.code.as_str()));
        m.insert("detail".into(), json!(self.detail));
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// Database errors are told apart by SQLSTATE only (CITUS rule 10: through Citus the
/// constraint names carry shard suffixes). Handlers avoid most of them with
/// `ON CONFLICT ... DO NOTHING RETURNING`; what reaches here is unexpected or transient.
impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
                ApiError::conflict(ErrorCode::Conflict, "the resource already exists")
            }
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
                ApiError::not_found("a referenced resource does not exist")
            }
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                ApiError::unavailable("concurrent update; retry the request")
                    .with("retryable", true)
            }
            Some(c) if *c == SqlState::QUERY_CANCELED => {
                ApiError::new(504, ErrorCode::Timeout, "the request took too long")
            }
            _ => {
                // The server's message names the failing statement's problem, never a value.
                let db = e.as_db_error();
                tracing::error!(
                    error = %e,
                    sqlstate = db.map(|d| d.code().code()).unwrap_or(""),
                    message = db.map(|d| d.message()).unwrap_or(""),
                    "database error"
                );
                ApiError::internal()
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        tracing::error!(error = %op_control::db::describe(&e), "database pool error");
        ApiError::unavailable("database unavailable; retry the request")
    }
}

impl From<op_control::ControlError> for ApiError {
    fn from(e: op_control::ControlError) -> ApiError {
        match e {
            op_control::ControlError::Db(e) => e.into(),
            op_control::ControlError::Pool(e) => e.into(),
            other => {
                tracing::error!(error = %other, "control plane error");
                ApiError::internal()
            }
        }
    }
}

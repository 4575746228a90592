//! (being written)
use crate::{
    context::{Ctx, Reply},
    error::ApiError,
};
pub async fn identify(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn preflight(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}

//! Delivery log, manual retry, test fires (being written).
use crate::{
    context::{Ctx, Reply},
    error::ApiError,
};
pub async fn deliveries(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn retry(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn test_fire(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}

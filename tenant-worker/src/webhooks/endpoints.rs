//! Webhook endpoint management (being written).
use crate::{
    context::{Ctx, Reply},
    error::ApiError,
};
pub async fn create(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn list(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn get(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn update(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn delete(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}
pub async fn rotate_secret(_ctx: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(501, "not_implemented", "soon"))
}

//! End-to-end tests: the real stack (PostgreSQL, worker processes, gateway) spoken to over
//! HTTP exactly as customers do. See `harness.rs` for how it is started.

mod api_keys;
mod attribution;
mod auth;
mod campaigns;
mod clicks;
mod failover;
mod harness;
mod idempotency;
mod isolation;
mod ledger;
mod migrations;
mod modes;
mod partners;
mod platform;
mod receiver;
mod smtp;
mod tenancy;
mod webhook_endpoints;
mod webhooks;

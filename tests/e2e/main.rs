//! End-to-end tests: the real stack (PostgreSQL, worker processes, gateway) spoken to over
//! HTTP exactly as customers do. See `harness/` for how it is started and for the fixtures
//! the tests build on.

mod api_keys;
mod attribution;
mod auth;
mod body_limit;
mod campaigns;
mod clicks;
mod edge;
mod failover;
mod fuzz_regressions;
mod harness;
mod idempotency;
mod isolation;
mod ledger;
mod migrations;
mod modes;
mod openapi;
mod operate;
mod operator_cli;
mod partners;
mod pending_work;
mod platform;
mod portal;
mod postgres_tls;
mod programs_access;
mod programs_rules;
mod programs_terms;
mod reporting;
mod rolling;
mod smtp;
mod tenancy;
mod traces;
mod webhook_endpoints;
mod webhooks;

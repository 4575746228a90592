//! The gRPC contract between the gateway and the tenant workers.
//!
//! The gateway never interprets a request body: it wraps the HTTP request in an
//! [`Envelope`](v1::Envelope) (tenant, principal, method, path, query, selected headers, body,
//! deadline) and the worker answers with a [`Reply`](v1::Reply) (status, headers, body) plus
//! the cache entries the gateway must drop before it answers the client.

pub mod v1 {
    tonic::include_proto!("openpartner.v1");
}

//! The active-sessions server: the sign-in sessions of an account across first-party products,
//! their trusted devices, and who may see them.
//!
//! Dependencies point one way: gRPC (proto -> domain types) -> service (the commands, one
//! transaction each) -> store (sea-orm) -> domain (pure values and rules). See ARCHITECTURE.md
//! for the map.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod auth;
pub mod call_layer;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod enrich;
pub mod grpc;
pub mod limits;
pub mod oversize;
pub mod probe;
pub mod seal_key;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod time_alignment;

pub use app::{Application, Services, run};

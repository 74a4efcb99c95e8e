//! End-to-end tests: the real server over real gRPC, SQLite always, PostgreSQL when
//! `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is set. Test names cite the requirement they pin.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod account_lifecycle;
mod authorization;
mod balancing;
mod big_accounts;
mod caller_reload;
mod client;
mod clock_alignment;
mod clock_skew;
mod concurrency;
mod deadlines;
mod deploy;
mod eligibility;
mod error_bounds;
mod health;
mod load;
mod operating;
mod operator_break_glass;
mod owner_proof;
mod partition;
mod postgres_tls;
mod replica_process;
mod replicas;
mod retention;
mod revocations;
mod row_samples;
mod security;
mod session_cap;
mod session_layer;
mod session_layer_grpc;
mod sessions;
mod shutdown;
mod token_sealing;
mod tokens;
mod trust_removal;
mod trusted_devices;

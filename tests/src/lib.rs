//! The end-to-end harness: each test gets the real server on a random loopback port, over a
//! fresh database of its own (a new SQLite file, or a new PostgreSQL database when
//! `ACTIVE_SESSIONS_TEST_POSTGRES_URL` is set), and talks to it over real gRPC through the
//! client crate. Time is a [`ManualClock`](active_sessions_server::clock::ManualClock) the test
//! moves.
//!
//! [`e2e!`] writes each test twice, `…::sqlite` and `…::postgres`. Without the PostgreSQL URL
//! the PostgreSQL half prints that it was skipped; under CI (`CI=true`) a missing URL fails it.
//!
//! One module a concern, everything re-exported here: [`database`] (the engines and fresh
//! databases), [`app`] (server start-up, replicas, restarts), [`calls`] (clients and the calls
//! tests repeat), [`requests`] (the messages they send), [`callers`] (callers files and keys),
//! [`seed`] (rows inserted in bulk), [`status`] (what a refusal says), [`raw`] (bytes no client
//! would send), and the helpers of particular tests: [`pki`], [`pg_cluster`], [`product`].

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub use active_sessions_client::proto as pb;

pub mod app;
pub mod bench_support;
pub mod callers;
pub mod calls;
pub mod database;
mod macros;
pub mod pg_cluster;
pub mod pki;
pub mod product;
pub mod raw;
pub mod requests;
pub mod seed;
pub mod status;

pub use app::TestApp;
pub use callers::{TestCaller, callers_file, random_key_hex};
pub use calls::{is_valid_on, live_cache, sign_in_browser};
pub use database::{
    Backend, POSTGRES_URL_VAR, TestDatabase, create_postgres_database, drop_postgres_database,
    replace_database,
};
pub use raw::raw_unary;
pub use requests::{
    SignIn, by_account, by_token, revoke_all_request, revoke_device_request, user_agents,
};
pub use seed::{insert_session_copies, stored_session};
pub use status::{assert_status, violated_fields};

//! The macros that write each end-to-end test once per database engine: `NAME::sqlite` and
//! `NAME::postgres`, each on the harness's multi-thread runtime. Without the PostgreSQL URL
//! the PostgreSQL half prints that it was skipped (see [`TestDatabase::for_test`]).
//!
//! [`TestDatabase::for_test`]: crate::TestDatabase::for_test

/// Writes an end-to-end test twice: `NAME::sqlite` and `NAME::postgres`. The body sees the
/// running server as `app` (mutable, so it can restart it); the server stops and its database
/// goes when the body ends.
///
/// `async fn name(app) { body }`, or with the configuration adjusted first:
/// `async fn name(app) with |config| { ... }, { body }`.
#[macro_export]
macro_rules! e2e {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) with $adjust:expr, $body:block) => {
        $crate::on_each_database! {
            $(#[$meta])*
            async fn $name(backend) {
                #[allow(unused_mut)]
                let Some(mut $app) = $crate::TestApp::spawn_with(backend, $adjust).await else {
                    return;
                };
                $body
                $app.stop().await;
            }
        }
    };
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        $crate::e2e! {
            $(#[$meta])*
            async fn $name($app) with |_| {}, $body
        }
    };
}

/// Writes a test twice, `NAME::sqlite` and `NAME::postgres`, for tests that start their server
/// themselves (with callers or limits). The body gets the backend and returns early when the
/// backend is not configured.
#[macro_export]
macro_rules! on_each_database {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::Backend::Postgres).await;
            }
        }
    };
}

//! Load testing active-sessions with ghz (<https://ghz.sh>), not a copy of it.
//!
//! - [`prepare`] registers sessions across accounts and writes ghz data files: JSON arrays of
//!   request messages that ghz cycles through with `-D`.
//! - [`ghz`] holds what ghz accepts (its config keys, template fields and functions, from its
//!   sources) and checks a config against it: every config under `deploy/ghz/` passes.
//! - [`run`] plays a ghz config for machines without Go (the subset of keys the shipped configs
//!   use) and [`report`] writes ghz's JSON report.

pub mod ghz;
pub mod prepare;
pub mod report;
pub mod run;
pub mod template;

pub use prepare::{Prepare, Prepared, prepare};
pub use report::Report;
pub use run::{RunConfig, run};

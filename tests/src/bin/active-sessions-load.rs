//! `active-sessions-load`: a ghz-compatible load generator (work in progress).

fn main() {}

//! The protocol's own rules: a batch moves the cursor, an empty one says caught up, and
//! nothing is cached while the stream is not live.

use super::{
    store::tests::{event, limits, session},
    *,
};
use crate::proto::RevocationScope;

fn live_state() -> State {
    State {
        live: true,
        ..State::new(Store::new(limits(100)))
    }
}

fn batch(events: Vec<crate::RevocationEvent>) -> RevocationBatch {
    RevocationBatch {
        events,
        cursor: "9".into(),
    }
}

#[test]
fn a_batch_moves_the_cursor_and_only_an_empty_one_says_caught_up() {
    let mut state = live_state();
    state.keep(
        Key::of("a"),
        &session("s-a", "acct", 60),
        state.store.ticket(),
    );
    assert!(!state.apply(batch(vec![event(
        RevocationScope::Session,
        "acct",
        &["s-a"]
    )])));
    assert!(state.store.lookup(&Key::of("a")).is_none());
    assert_eq!(state.cursor.as_deref(), Some("9"));
    assert!(state.apply(batch(vec![])));
}

#[test]
fn answers_are_cached_only_while_the_stream_is_live() {
    let mut state = live_state();
    state.live = false;
    let ticket = state.store.ticket();
    state.keep(Key::of("d"), &session("s-d", "acct3", 60), ticket);
    assert_eq!(state.store.len(), 0);
    state.live = true;
    state.keep(Key::of("d"), &session("s-d", "acct3", 60), ticket);
    assert_eq!(state.store.len(), 1);
}

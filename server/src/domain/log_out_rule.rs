//! The log-out rule, once: what a log-out of one row (a device's sessions) does, from facts
//! about the row. The Active sessions page shows what each row offers, RevokeSession acts on a
//! row or a session, and RemoveTrustedDevice logs a device's sessions out; all three ask
//! [`decide`], so the page never offers what the call would refuse.
//!
//! The order of the checks is the rule: nothing active left is "already logged out" (a retry
//! after a lost response succeeds); the caller's own row is never logged out from the page
//! (S8); a row whose status cannot be confirmed is not offered (S12); a trusted device is
//! logged out and removed (S10); anything else is logged out.

/// What is known about a row (or one session of it) when the log-out is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowFacts {
    /// It still has an active session.
    pub has_active_session: bool,
    /// It holds the caller's current session.
    pub holds_current_session: bool,
    /// One of its sessions has a status that cannot be confirmed.
    pub status_unavailable: bool,
    /// Its device is trusted, and the log-out concerns the whole device.
    pub trusted_device: bool,
}

/// Why a row offers no log-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLogOutReason {
    /// It holds the caller's current session.
    CurrentSession,
    /// Its status cannot be confirmed.
    StatusUnavailable,
}

/// What a log-out of the row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutDecision {
    /// Nothing active is left: the log-out already happened.
    AlreadyLoggedOut,
    /// The row may not be logged out.
    Refused(NoLogOutReason),
    /// "Log out".
    LogOut,
    /// "Log out and remove": the sessions end and the device's trust is removed.
    LogOutAndRemove,
}

/// The rule. Pure: every caller gathers the facts under the account lock, then asks.
pub fn decide(facts: RowFacts) -> LogOutDecision {
    if !facts.has_active_session {
        LogOutDecision::AlreadyLoggedOut
    } else if facts.holds_current_session {
        LogOutDecision::Refused(NoLogOutReason::CurrentSession)
    } else if facts.status_unavailable {
        LogOutDecision::Refused(NoLogOutReason::StatusUnavailable)
    } else if facts.trusted_device {
        LogOutDecision::LogOutAndRemove
    } else {
        LogOutDecision::LogOut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the four facts, against the decision the rule's order gives.
    #[test]
    fn every_row_of_the_decision_table() {
        use LogOutDecision::*;
        use NoLogOutReason::*;
        for bits in 0u8..16 {
            let facts = RowFacts {
                has_active_session: bits & 1 != 0,
                holds_current_session: bits & 2 != 0,
                status_unavailable: bits & 4 != 0,
                trusted_device: bits & 8 != 0,
            };
            let expected = match (
                facts.has_active_session,
                facts.holds_current_session,
                facts.status_unavailable,
                facts.trusted_device,
            ) {
                (false, _, _, _) => AlreadyLoggedOut,
                (true, true, _, _) => Refused(CurrentSession),
                (true, false, true, _) => Refused(StatusUnavailable),
                (true, false, false, true) => LogOutAndRemove,
                (true, false, false, false) => LogOut,
            };
            assert_eq!(decide(facts), expected, "{facts:?}");
        }
    }

    #[test]
    fn the_current_row_is_refused_even_when_its_status_is_unknown_or_trusted() {
        let facts = RowFacts {
            has_active_session: true,
            holds_current_session: true,
            status_unavailable: true,
            trusted_device: true,
        };
        assert_eq!(
            decide(facts),
            LogOutDecision::Refused(NoLogOutReason::CurrentSession)
        );
    }

    #[test]
    fn a_row_with_nothing_active_is_already_logged_out_whatever_else_holds() {
        let facts = RowFacts {
            has_active_session: false,
            holds_current_session: true,
            status_unavailable: true,
            trusted_device: true,
        };
        assert_eq!(decide(facts), LogOutDecision::AlreadyLoggedOut);
    }
}

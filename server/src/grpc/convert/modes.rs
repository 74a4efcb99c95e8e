//! The request booleans that select what a command does, as enums, so that a handler passes
//! `Effect::Preview` rather than a bare `true`. The service commands still take booleans; a
//! handler turns the enum back into one with `is_on` at the call, the one place that knows.

macro_rules! mode {
    (
        $(#[$doc:meta])* $name:ident {
            $(#[$off_doc:meta])* $off:ident, $(#[$on_doc:meta])* $on:ident $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $(#[$off_doc])*
            $off,
            $(#[$on_doc])*
            $on,
        }

        impl From<bool> for $name {
            fn from(flag: bool) -> Self {
                if flag { Self::$on } else { Self::$off }
            }
        }

        impl $name {
            /// The request's boolean, for a command that still takes one.
            pub fn is_on(self) -> bool {
                self == Self::$on
            }
        }
    };
}

mode!(
    /// `validate_only` of RevokeSession and RevokeAllSessions: whether the log-out happens or is
    /// only reported (the confirmation step), recording nothing.
    Effect {
        /// Log out, and record it.
        Apply,
        /// Only report what the log-out would do.
        Preview,
    }
);

mode!(
    /// `remove_trusted_devices` of RevokeAllSessions.
    TrustedDevices {
        /// The account's trusted devices stay trusted.
        Keep,
        /// Every trusted device of the account is removed too.
        Remove,
    }
);

mode!(
    /// `include_hidden_kinds` of RevokeAllSessions: whether the log-out also ends the kinds the
    /// Active sessions page never shows (third-party and connected apps, "Sign in with
    /// ChatGPT", CLI).
    HiddenKinds {
        /// Only the sessions the page shows (unless the reason ends hidden kinds too).
        Spare,
        /// The hidden kinds too.
        End,
    }
);

mode!(
    /// `log_out_sessions` of RemoveTrustedDevice.
    DeviceSessions {
        /// The device's sessions stay signed in.
        Keep,
        /// The device's sessions are logged out with the trust.
        LogOut,
    }
);

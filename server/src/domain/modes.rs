//! The request booleans that select what a command does, as enums: a handler converts the flag
//! once (`From<bool>`), and the service commands take `Effect::Preview` rather than a bare
//! `true`.

macro_rules! mode {
    (
        $(#[$doc:meta])* $name:ident {
            $(#[$off_doc:meta])* $off:ident, $(#[$on_doc:meta])* $on:ident $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub enum $name {
            $(#[$off_doc])*
            #[default]
            $off,
            $(#[$on_doc])*
            $on,
        }

        impl From<bool> for $name {
            fn from(flag: bool) -> Self {
                if flag { Self::$on } else { Self::$off }
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

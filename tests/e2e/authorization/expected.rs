//! The expected authorization matrix: for each RPC and target account, the outcome each role
//! in [`ROLES`](super::ROLES) order gets. This is the table docs/authorization.md shows.

/// A call answered.
const OK: &str = "OK";
/// ValidateSession answered, but the session is not valid for this caller.
const NOT_VALID: &str = "OK (not valid)";
const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
const DENIED: &str = "PERMISSION_DENIED";
const NOT_FOUND: &str = "NOT_FOUND";
const PRECONDITION: &str = "FAILED_PRECONDITION";

/// The expected table: (RPC, account) -> one outcome per role in [`ROLES`](super::ROLES) order
/// (none, product (own), product (other), settings, identity, operator).
#[rustfmt::skip]
pub(super) const EXPECTED: &[(&str, &str, [&str; 6])] = &[
    ("RegisterSession", "own",                   [UNAUTHENTICATED,  OK,      DENIED,     DENIED,        DENIED,  OK]),
    ("RegisterSession", "other",                 [UNAUTHENTICATED,  OK,      DENIED,     DENIED,        DENIED,  OK]),
    ("ValidateSession", "own",                   [UNAUTHENTICATED,  OK,      NOT_VALID,  DENIED,        DENIED,  OK]),
    ("ValidateSession", "other",                 [UNAUTHENTICATED,  OK,      NOT_VALID,  DENIED,        DENIED,  OK]),
    ("TouchSession", "own",                      [UNAUTHENTICATED,  OK,      NOT_FOUND,  DENIED,        DENIED,  OK]),
    ("TouchSession", "other",                    [UNAUTHENTICATED,  OK,      NOT_FOUND,  DENIED,        DENIED,  OK]),
    ("WatchRevocations", "own",                  [UNAUTHENTICATED,  OK,      DENIED,     DENIED,        DENIED,  OK]),
    ("WatchRevocations", "other",                [UNAUTHENTICATED,  OK,      DENIED,     DENIED,        DENIED,  OK]),
    ("ListActiveSessions", "own",                [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("ListActiveSessions", "other",              [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("ListActiveSessions", "SSO-linked",         [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("ListActiveSessions", "own, CLI token",     [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("ListDeviceSessions", "own",                [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("ListDeviceSessions", "other",              [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("ListDeviceSessions", "SSO-linked",         [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("ListDeviceSessions", "own, CLI token",     [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("RevokeSession", "own",                     [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("RevokeSession", "other",                   [UNAUTHENTICATED,  DENIED,  DENIED,     NOT_FOUND,     DENIED,  NOT_FOUND]),
    ("RevokeSession", "SSO-linked",              [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("RevokeSession", "own, CLI token",          [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("RevokeAllSessions", "own",                 [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("RevokeAllSessions", "other",               [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("RevokeAllSessions", "SSO-linked",          [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("RevokeAllSessions", "own, CLI token",      [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("RevokeAllSessions with a reason", "own",   [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("RevokeAllSessions with a reason", "other", [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("GetRevocation", "own",                     [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("GetRevocation", "other",                   [UNAUTHENTICATED,  DENIED,  DENIED,     NOT_FOUND,     DENIED,  NOT_FOUND]),
    ("GetRevocation", "SSO-linked",              [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("GetRevocation", "own, CLI token",          [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("ListSecurityEvents", "own",                [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("ListSecurityEvents", "other",              [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("ListSecurityEvents", "SSO-linked",         [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("ListSecurityEvents", "own, CLI token",     [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("TrustDevice", "own",                       [UNAUTHENTICATED,  OK,      DENIED,     DENIED,        DENIED,  OK]),
    ("TrustDevice", "other",                     [UNAUTHENTICATED,  OK,      DENIED,     DENIED,        DENIED,  OK]),
    ("CheckDeviceTrust", "own",                  [UNAUTHENTICATED,  OK,      OK,         DENIED,        DENIED,  OK]),
    ("CheckDeviceTrust", "other",                [UNAUTHENTICATED,  OK,      OK,         DENIED,        DENIED,  OK]),
    ("ListTrustedDevices", "own",                [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("ListTrustedDevices", "other",              [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("ListTrustedDevices", "SSO-linked",         [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("ListTrustedDevices", "own, CLI token",     [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("RemoveTrustedDevice", "own",               [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            DENIED,  OK]),
    ("RemoveTrustedDevice", "other",             [UNAUTHENTICATED,  DENIED,  DENIED,     NOT_FOUND,     DENIED,  NOT_FOUND]),
    ("RemoveTrustedDevice", "SSO-linked",        [UNAUTHENTICATED,  DENIED,  DENIED,     PRECONDITION,  DENIED,  OK]),
    ("RemoveTrustedDevice", "own, CLI token",    [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        DENIED,  OK]),
    ("CheckEligibility", "own",                  [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            OK,      OK]),
    ("CheckEligibility", "other",                [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("CheckEligibility", "SSO-linked",           [UNAUTHENTICATED,  DENIED,  DENIED,     OK,            OK,      OK]),
    ("CheckEligibility", "own, CLI token",       [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("GetAccount", "own",                        [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("GetAccount", "other",                      [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("SetWorkspaceType", "own",                  [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("SetWorkspaceType", "other",                [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("SetSsoLink / ClearSsoLink", "own",         [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("SetSsoLink / ClearSsoLink", "other",       [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("DisableAccount / EnableAccount", "own",    [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("DisableAccount / EnableAccount", "other",  [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("DeleteAccount", "own",                     [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
    ("DeleteAccount", "other",                   [UNAUTHENTICATED,  DENIED,  DENIED,     DENIED,        OK,      OK]),
];

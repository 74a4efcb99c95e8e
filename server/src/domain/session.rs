//! Sessions: what a sign-in records, which sessions are active, and which the Active sessions
//! page may show. The validity rule lives here, once, and every path (validation, listing,
//! revocation) asks it.

use std::time::Duration;

use super::ids::{AccountId, DeviceId, RevocationId, SessionId};
use crate::{clock::Timestamp, enrich::DeviceDetails, enrich::GeoLocation};

/// A first-party product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Product {
    /// ChatGPT.
    #[strum(serialize = "CHATGPT")]
    ChatGpt,
    /// Codex.
    Codex,
    /// API Platform.
    ApiPlatform,
}

/// The kind of client holding a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientKind {
    /// A web browser.
    Browser,
    /// A first-party desktop app.
    DesktopApp,
    /// A first-party mobile app.
    MobileApp,
    /// A third-party app (hidden).
    ThirdPartyApp,
    /// A connected app (hidden).
    ConnectedApp,
    /// "Sign in with ChatGPT" for a third-party service (hidden).
    #[strum(serialize = "SIGN_IN_WITH_CHATGPT")]
    SignInWithChatGpt,
    /// A command-line client such as the Codex CLI (hidden).
    Cli,
}

impl ClientKind {
    /// Whether sessions of this kind appear on, and are managed from, the Active sessions page.
    pub fn is_visible(self) -> bool {
        matches!(self, Self::Browser | Self::DesktopApp | Self::MobileApp)
    }
}

/// How the user signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthMethod {
    /// Not known.
    Unknown,
    /// Password.
    Password,
    /// Passkey.
    Passkey,
    /// Email code or link.
    EmailCode,
    /// SMS code.
    PhoneCode,
    /// Google.
    Google,
    /// Microsoft.
    Microsoft,
    /// Apple.
    Apple,
    /// Organisation SAML SSO.
    SsoSaml,
    /// Organisation OIDC SSO.
    SsoOidc,
}

/// Whether a session's state can be confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// Known and active.
    Active,
    /// Cannot be confirmed (imported from a legacy store).
    Unavailable,
}

/// Why a session was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RevocationReason {
    /// The owner logged out a row or session.
    UserLogOut,
    /// The owner logged out of all sessions.
    UserLogOutAll,
    /// An operator did it.
    Operator,
    /// A trusted device was removed with its sessions.
    TrustRemoved,
    /// The account reached its session limit and a sign-in ended its oldest session.
    SessionLimit,
    /// The identity system: the password changed.
    PasswordChanged,
    /// The identity system: a sign-in factor changed.
    FactorChanged,
    /// The identity system disabled the account.
    AccountDisabled,
    /// The identity system reset the account's security.
    SecurityReset,
    /// The account was deleted.
    AccountDeleted,
}

impl RevocationReason {
    /// The reasons the identity system (or an operator) may give to RevokeAllSessions.
    pub fn is_identity_reason(self) -> bool {
        matches!(
            self,
            Self::PasswordChanged
                | Self::FactorChanged
                | Self::AccountDisabled
                | Self::SecurityReset
        )
    }

    /// True when a log-out for this reason ends the hidden kinds too: a disabled, reset or
    /// deleted account keeps no CLI or third-party session either.
    pub fn ends_hidden_kinds(self) -> bool {
        matches!(
            self,
            Self::AccountDisabled | Self::SecurityReset | Self::AccountDeleted
        )
    }
}

/// An account's log-out-of-all cut-offs: a visible session born below `visible` is ended, and a
/// session of a hidden kind born below `hidden` (raised only by log-outs that include the hidden
/// kinds, so never above `visible`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerationCut {
    /// `accounts.revoked_generation`.
    pub visible: i64,
    /// `accounts.hidden_cut_generation`.
    pub hidden: i64,
}

impl GenerationCut {
    /// A cut of the visible kinds only (the hidden kinds' cut at zero): what the paths that
    /// only ever see visible sessions (rows, row log-outs) apply.
    pub fn visible_only(visible: i64) -> Self {
        Self { visible, hidden: 0 }
    }
}

/// How long sessions live, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Lifetime when the registration asks for none.
    pub default_lifetime: Duration,
    /// Longest lifetime a registration may ask for.
    pub max_lifetime: Duration,
    /// Inactivity after which a session is no longer valid.
    pub idle_timeout: Duration,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id.
    pub session_id: SessionId,
    /// Its account.
    pub account_id: AccountId,
    /// The product signed in to.
    pub product: Product,
    /// The client kind.
    pub client_kind: ClientKind,
    /// The device (grouping key of rows).
    pub device_id: DeviceId,
    /// The raw user agent.
    pub user_agent: String,
    /// What the user agent says.
    pub device: DeviceDetails,
    /// The latest IP address, if known.
    pub ip_address: Option<String>,
    /// Approximate location of that IP.
    pub location: GeoLocation,
    /// How the user signed in.
    pub auth_method: AuthMethod,
    /// Active, or status unavailable.
    pub status: SessionStatus,
    /// The device had not been seen on the account before this sign-in.
    pub new_device: bool,
    /// The country had not been seen on the account before this sign-in.
    pub new_country: bool,
    /// When it was created.
    pub signed_in_at: Timestamp,
    /// Latest recorded activity.
    pub last_active_at: Timestamp,
    /// Absolute expiry.
    pub expires_at: Timestamp,
    /// When it was revoked, if it was (rows swept by a log-out of all included).
    pub revoked_at: Option<Timestamp>,
    /// The revocation that ended it, if any.
    pub revocation_id: Option<RevocationId>,
    /// The account's log-out-of-all generation when the session was registered (read under
    /// the account row lock): a log-out of all that sets a higher generation ends it.
    pub generation: i64,
}

/// What the Active sessions page shows of a session: a [`Session`] without its raw user
/// agent, IP address and revocation bookkeeping, which a page never sends. Rows carry these, so
/// that a page reads only the columns it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSession {
    /// Its id.
    pub session_id: SessionId,
    /// Its account.
    pub account_id: AccountId,
    /// The product signed in to.
    pub product: Product,
    /// The client kind.
    pub client_kind: ClientKind,
    /// The device (grouping key of rows).
    pub device_id: DeviceId,
    /// What the user agent says.
    pub device: DeviceDetails,
    /// Approximate location of the latest IP address.
    pub location: GeoLocation,
    /// How the user signed in.
    pub auth_method: AuthMethod,
    /// Active, or status unavailable.
    pub status: SessionStatus,
    /// The device had not been seen on the account before this sign-in.
    pub new_device: bool,
    /// The country had not been seen on the account before this sign-in.
    pub new_country: bool,
    /// When it was created.
    pub signed_in_at: Timestamp,
    /// Latest recorded activity.
    pub last_active_at: Timestamp,
    /// Absolute expiry.
    pub expires_at: Timestamp,
}

impl From<Session> for ListedSession {
    fn from(session: Session) -> Self {
        Self {
            session_id: session.session_id,
            account_id: session.account_id,
            product: session.product,
            client_kind: session.client_kind,
            device_id: session.device_id,
            device: session.device,
            location: session.location,
            auth_method: session.auth_method,
            status: session.status,
            new_device: session.new_device,
            new_country: session.new_country,
            signed_in_at: session.signed_in_at,
            last_active_at: session.last_active_at,
            expires_at: session.expires_at,
        }
    }
}

/// What a session's validity depends on: the facts the single validity rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityFacts {
    /// Of a kind the Active sessions page shows (its log-outs of all cut it).
    pub visible: bool,
    /// The generation it was born in.
    pub generation: i64,
    /// Its row is marked revoked.
    pub revoked: bool,
    /// Absolute expiry.
    pub expires_at: Timestamp,
    /// Latest stored activity.
    pub last_active_at: Timestamp,
}

impl ValidityFacts {
    /// The facts of a session with these stored values.
    pub fn of(
        client_kind: ClientKind,
        generation: i64,
        revoked_at: Option<Timestamp>,
        expires_at: Timestamp,
        last_active_at: Timestamp,
    ) -> Self {
        Self {
            visible: client_kind.is_visible(),
            generation,
            revoked: revoked_at.is_some(),
            expires_at,
            last_active_at,
        }
    }

    /// The single validity rule: not revoked (by row, or, for the kinds the Active sessions
    /// page manages, by the account's log-out-of-all generation), not past its absolute expiry,
    /// not idle for too long. `last_active_at` is the latest activity known, which may be newer
    /// than the stored one while heartbeats wait to be flushed. `now` is the deciding replica's
    /// clock (see ARCHITECTURE.md, "Time"); the log-out-of-all decision uses no clock at all.
    pub fn is_active(
        self,
        now: Timestamp,
        idle_timeout: Duration,
        cut: GenerationCut,
        last_active_at: Timestamp,
    ) -> bool {
        !self.revoked
            && !self.is_cut_off_by(cut)
            && now < self.expires_at
            && now < last_active_at.max(self.last_active_at).plus(idle_timeout)
    }

    /// True when the account's log-outs of all sessions end this session: it was registered in
    /// an earlier generation than the cut of its kind. Hidden kinds are never managed from the
    /// Active sessions page, so only a log-out that includes them (disable, security reset,
    /// deletion, or one that asked) moves their cut.
    pub fn is_cut_off_by(self, cut: GenerationCut) -> bool {
        let threshold = if self.visible {
            cut.visible
        } else {
            cut.hidden
        };
        self.generation < threshold
    }
}

/// A session as validation reads it: what the validity rule and ValidateSession's answer need,
/// without the details the Active sessions page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionValidity {
    /// Its id.
    pub session_id: SessionId,
    /// Its account.
    pub account_id: AccountId,
    /// The product signed in to.
    pub product: Product,
    /// The device.
    pub device_id: DeviceId,
    /// When it was created.
    pub signed_in_at: Timestamp,
    /// What its validity depends on.
    pub facts: ValidityFacts,
}

impl SessionValidity {
    /// The validity rule with the stored activity.
    pub fn is_active(&self, now: Timestamp, idle_timeout: Duration, cut: GenerationCut) -> bool {
        self.facts
            .is_active(now, idle_timeout, cut, self.facts.last_active_at)
    }
}

impl Session {
    /// When the session ends if no further activity is recorded.
    pub fn idle_expires_at(&self, idle_timeout: Duration) -> Timestamp {
        self.last_active_at.plus(idle_timeout)
    }

    /// The facts the validity rule reads.
    pub fn facts(&self) -> ValidityFacts {
        ValidityFacts::of(
            self.client_kind,
            self.generation,
            self.revoked_at,
            self.expires_at,
            self.last_active_at,
        )
    }

    /// The validity rule ([`ValidityFacts::is_active`]) with the stored activity.
    pub fn is_active(&self, now: Timestamp, idle_timeout: Duration, cut: GenerationCut) -> bool {
        self.facts()
            .is_active(now, idle_timeout, cut, self.last_active_at)
    }

    /// True when the account's log-outs of all sessions end this session.
    pub fn is_cut_off_by(&self, cut: GenerationCut) -> bool {
        self.facts().is_cut_off_by(cut)
    }
}

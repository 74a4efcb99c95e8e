//! The enum tables between proto and server enums, each written once by `enum_pairs!` for both
//! directions: `From<server enum>` for the proto enum, and back, for a `partial` table,
//! `TryFrom<proto enum>` for the server enum, which refuses UNSPECIFIED (and any value the table
//! leaves out) with [`Unspecified`]. A `total` table maps UNSPECIFIED too, so both of its
//! directions are `From`. Every table also
//! names the pair as a [`WireEnum`], which the field parsers use to read an `i32` field.

use active_sessions::v1 as pb;

use crate::{
    domain::{
        account::{Eligibility, SsoProtocol, WorkspaceType},
        history::SecurityEventType,
        revocation::RevocationScope,
        session::{AuthMethod, ClientKind, Product, RevocationReason, SessionStatus},
        trust::TrustMethod,
    },
    enrich::DeviceType,
    service::sessions::{LogOutAction, NoLogOutReason, RevokeOutcome},
};

/// A proto enum value with no server counterpart: UNSPECIFIED, or one its table leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspecified;

/// A server enum carried on the wire as a proto enum, in an `i32` field.
pub trait WireEnum {
    /// The proto enum.
    type Proto: TryFrom<i32>;
}

/// The wire number of a server enum value.
pub fn number<T: WireEnum>(value: T) -> i32
where
    T::Proto: From<T> + Into<i32>,
{
    T::Proto::from(value).into()
}

/// The wire number of an optional server enum value: UNSPECIFIED (0) when absent.
pub fn optional_number<T: WireEnum>(value: Option<T>) -> i32
where
    T::Proto: From<T> + Into<i32>,
{
    value.map_or(0, number)
}

/// The wire numbers of a list of products.
pub fn product_numbers(products: &[Product]) -> Vec<i32> {
    products.iter().copied().map(number).collect()
}

macro_rules! enum_pairs {
    (@proto $proto:ident, $s:ident) => { pb::$proto::$s };
    (@proto $proto:ident, $s:ident $p:ident) => { pb::$proto::$p };
    (@back total $server:ident $proto:ident [$(($s:ident $($p:ident)?))+]) => {
        impl From<pb::$proto> for $server {
            fn from(value: pb::$proto) -> Self {
                match value {
                    $(enum_pairs!(@proto $proto, $s $($p)?) => Self::$s,)+
                }
            }
        }
    };
    (@back partial $server:ident $proto:ident [$(($s:ident $($p:ident)?))+]) => {
        impl TryFrom<pb::$proto> for $server {
            type Error = Unspecified;

            fn try_from(value: pb::$proto) -> Result<Self, Unspecified> {
                match value {
                    $(enum_pairs!(@proto $proto, $s $($p)?) => Ok(Self::$s),)+
                    #[allow(unreachable_patterns)]
                    _ => Err(Unspecified),
                }
            }
        }
    };
    ($kind:ident $server:ident <=> $proto:ident { $($s:ident $(<=> $p:ident)?),+ $(,)? }
        $(and $extra:ident => $extra_p:ident)?) => {
        impl WireEnum for $server {
            type Proto = pb::$proto;
        }

        impl From<$server> for pb::$proto {
            fn from(value: $server) -> Self {
                match value {
                    $($server::$s => enum_pairs!(@proto $proto, $s $($p)?),)+
                    $($server::$extra => Self::$extra_p,)?
                }
            }
        }

        enum_pairs!(@back $kind $server $proto [$(($s $($p)?))+]);
    };
}

// Each table pairs a server variant with the proto variant of the same name, or the one after
// `<=>`.

enum_pairs!(partial Product <=> Product { ChatGpt <=> Chatgpt, Codex, ApiPlatform });

enum_pairs!(partial ClientKind <=> ClientKind {
    Browser, DesktopApp, MobileApp, ThirdPartyApp, ConnectedApp,
    SignInWithChatGpt <=> SignInWithChatgpt, Cli,
});

enum_pairs!(total AuthMethod <=> AuthMethod {
    Unknown <=> Unspecified, Password, Passkey, EmailCode, PhoneCode, Google, Microsoft, Apple,
    SsoSaml, SsoOidc,
});

enum_pairs!(total DeviceType <=> DeviceType {
    Unknown <=> Unspecified, Desktop, Mobile, Tablet,
});

enum_pairs!(partial SessionStatus <=> SessionStatus { Active, Unavailable });

// A workspace type never recorded is sent as UNSPECIFIED, and a request may not set it.
enum_pairs!(partial WorkspaceType <=> WorkspaceType {
    Personal, Managed,
} and Unknown => Unspecified);

enum_pairs!(partial SsoProtocol <=> SsoProtocol { Saml, Oidc });

enum_pairs!(partial TrustMethod <=> TrustMethod {
    Totp, SmsCode, EmailCode, Passkey, RecoveryCode,
});

enum_pairs!(partial RevocationScope <=> RevocationScope { Session, Device, All });

enum_pairs!(partial RevocationReason <=> RevocationReason {
    PasswordChanged, FactorChanged, AccountDisabled, SecurityReset, AccountDeleted, UserLogOut,
    UserLogOutAll, Operator, TrustRemoved, SessionLimit,
});

enum_pairs!(partial SecurityEventType <=> SecurityEventType {
    SignIn, LogOut, LogOutAll, DeviceTrusted, DeviceTrustRemoved, AccountDisabled, AccountEnabled,
});

enum_pairs!(partial RevokeOutcome <=> RevokeOutcome {
    LoggedOut, LoggedOutAndRemoved, AlreadyLoggedOut,
});

enum_pairs!(partial NoLogOutReason <=> NoLogOutReason { CurrentSession, StatusUnavailable });

/// A row's log-out offer: the action...
impl From<LogOutAction> for pb::LogOutAction {
    fn from(action: LogOutAction) -> Self {
        match action {
            LogOutAction::LogOut => Self::LogOut,
            LogOutAction::LogOutAndRemove => Self::LogOutAndRemove,
            LogOutAction::None(_) => Self::None,
        }
    }
}

/// ... and why there is none (UNSPECIFIED when there is one).
impl From<LogOutAction> for pb::NoLogOutReason {
    fn from(action: LogOutAction) -> Self {
        match action {
            LogOutAction::LogOut | LogOutAction::LogOutAndRemove => Self::Unspecified,
            LogOutAction::None(reason) => reason.into(),
        }
    }
}

/// Why an account may not use the Active sessions page (UNSPECIFIED when it may).
impl From<Eligibility> for pb::IneligibilityReason {
    fn from(eligibility: Eligibility) -> Self {
        match eligibility {
            Eligibility::Eligible => Self::Unspecified,
            Eligibility::SsoLinked(SsoProtocol::Saml) => Self::SsoLinkedSaml,
            Eligibility::SsoLinked(SsoProtocol::Oidc) => Self::SsoLinkedOidc,
            Eligibility::Disabled => Self::AccountDisabled,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn round_trips<T>(values: &[T])
    where
        T: WireEnum + TryFrom<T::Proto> + Copy + PartialEq + std::fmt::Debug,
        T::Proto: From<T>,
    {
        for value in values {
            let back = T::try_from(T::Proto::from(*value)).ok();
            assert_eq!(back, Some(*value));
        }
    }

    #[test]
    fn every_server_value_survives_the_wire() {
        use strum::VariantArray as _;
        round_trips(Product::VARIANTS);
        round_trips(ClientKind::VARIANTS);
        round_trips(AuthMethod::VARIANTS);
        round_trips(SessionStatus::VARIANTS);
        round_trips(RevocationReason::VARIANTS);
    }

    #[test]
    fn unspecified_is_refused_unless_the_table_is_total() {
        assert_eq!(
            Product::try_from(pb::Product::Unspecified),
            Err(Unspecified)
        );
        assert_eq!(
            WorkspaceType::try_from(pb::WorkspaceType::Unspecified),
            Err(Unspecified)
        );
        assert_eq!(
            AuthMethod::from(pb::AuthMethod::Unspecified),
            AuthMethod::Unknown
        );
        assert_eq!(
            pb::WorkspaceType::from(WorkspaceType::Unknown),
            pb::WorkspaceType::Unspecified
        );
        assert_eq!(number(Product::Codex), pb::Product::Codex as i32);
        assert_eq!(optional_number::<Product>(None), 0);
    }

    #[test]
    fn a_row_without_log_out_says_why() {
        let refused = LogOutAction::None(NoLogOutReason::CurrentSession);
        assert_eq!(pb::LogOutAction::from(refused), pb::LogOutAction::None);
        assert_eq!(
            pb::NoLogOutReason::from(refused),
            pb::NoLogOutReason::CurrentSession
        );
        assert_eq!(
            pb::NoLogOutReason::from(LogOutAction::LogOutAndRemove),
            pb::NoLogOutReason::Unspecified
        );
    }
}

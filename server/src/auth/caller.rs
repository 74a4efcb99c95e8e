//! A calling service and the one place that decides what each role may do. Refusals are
//! [`Refusal::PermissionDenied`] (PERMISSION_DENIED, reason CALLER_NOT_ALLOWED); a product
//! backend asking about another product's session is answered as if the session did not exist,
//! by the handlers.

use std::{fmt, num::NonZeroU32};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use strum::VariantArray as _;

use super::Refusal;
use crate::domain::stored::StoredEnum as _;
use crate::domain::{
    history::Actor,
    session::{Product, RevocationReason},
    subject::Subject,
};

/// What a calling service is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A product backend: registers, validates, touches and watches its own products' sessions,
    /// and trusts and checks devices.
    Product,
    /// The settings backend: owner-facing calls, only with the user's own session token.
    Settings,
    /// The identity system: records SSO links and workspace types, logs an account's sessions
    /// out with a reason, disables, enables and deletes accounts.
    Identity,
    /// An operator: every call, naming any account; recorded in the security history.
    Operator,
}

impl Role {
    /// The name used in the callers file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Settings => "settings",
            Self::Identity => "identity",
            Self::Operator => "operator",
        }
    }

    /// Reads a callers-file role name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "product" => Some(Self::Product),
            "settings" => Some(Self::Settings),
            "identity" => Some(Self::Identity),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

/// Which products' sessions a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductScope {
    /// Every product (operators).
    All,
    /// Only these.
    Only(Vec<Product>),
}

impl ProductScope {
    /// True when the scope covers `product`.
    pub fn covers(&self, product: Product) -> bool {
        match self {
            Self::All => true,
            Self::Only(products) => products.contains(&product),
        }
    }

    /// The products a revocation stream asking for `products` (empty: every product) watches:
    /// a product backend watches only its own, all of them when it names none.
    pub fn watchable(&self, products: Vec<Product>) -> Result<Vec<Product>, Refusal> {
        match self {
            Self::All => Ok(products),
            Self::Only(own) if products.iter().any(|product| !own.contains(product)) => Err(
                Refusal::denied("a product backend may watch only its own products"),
            ),
            Self::Only(own) if products.is_empty() => Ok(own.clone()),
            Self::Only(_) => Ok(products),
        }
    }
}

/// An authenticated calling service.
pub struct Caller {
    name: String,
    roles: Vec<Role>,
    products: Vec<Product>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("products", &self.products)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// A caller from the callers file.
    pub fn new(
        name: String,
        roles: Vec<Role>,
        products: Vec<Product>,
        rate_per_second: Option<u32>,
    ) -> Self {
        Self {
            name,
            roles,
            products,
            limiter: rate_per_second
                .and_then(NonZeroU32::new)
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
        }
    }

    /// The caller of local development mode: every role, every product, no limit.
    pub fn local() -> Self {
        Self {
            name: "local".into(),
            roles: vec![
                Role::Product,
                Role::Settings,
                Role::Identity,
                Role::Operator,
            ],
            products: Product::VARIANTS.to_vec(),
            limiter: None,
        }
    }

    /// The caller's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Takes one request from the caller's rate limit; `Err` with how long to wait.
    pub fn take_rate_limit(&self) -> Result<(), std::time::Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => limiter.check().map_err(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            }),
        }
    }

    /// Registering a sign-in or trusting a device for `product`: product backends of that
    /// product, and operators.
    pub fn authorize_product_write(&self, product: Product) -> Result<Actor, Refusal> {
        // A product backend of this product acts as itself, even if it is also an operator.
        if self.has(Role::Product) && self.products.contains(&product) {
            return Ok(Actor::Service(self.name.clone()));
        }
        if self.has(Role::Operator) {
            return Ok(self.operator_actor());
        }
        if self.has(Role::Product) {
            return Err(Refusal::denied(format!(
                "{} may not act for product {}",
                self.name,
                product.as_str()
            )));
        }
        Err(self.role_denied("product"))
    }

    /// Validating, touching and watching sessions, and checking device trust: the products the
    /// caller may see.
    pub fn product_scope(&self) -> Result<ProductScope, Refusal> {
        if self.has(Role::Operator) {
            Ok(ProductScope::All)
        } else if self.has(Role::Product) {
            Ok(ProductScope::Only(self.products.clone()))
        } else {
            Err(self.role_denied("product"))
        }
    }

    /// Owner-facing calls: the settings backend with the user's own token, or an operator.
    pub fn authorize_owner_call(&self, subject: &Subject) -> Result<Actor, Refusal> {
        if self.has(Role::Operator) {
            return Ok(match subject {
                Subject::SessionToken(_) => Actor::User,
                Subject::Account(_) => self.operator_actor(),
            });
        }
        if self.has(Role::Settings) {
            return match subject {
                Subject::SessionToken(_) => Ok(Actor::User),
                Subject::Account(_) => Err(Refusal::denied(
                    "the settings role acts for a user only through the user's session token",
                )),
            };
        }
        Err(self.role_denied("settings"))
    }

    /// RevokeAllSessions. Without a reason it is an owner-facing call. With one (password or
    /// factor changed, account disabled, security reset) it is the identity system's or an
    /// operator's, naming the account by id.
    pub fn authorize_log_out_all(
        &self,
        subject: &Subject,
        reason: Option<RevocationReason>,
    ) -> Result<Actor, Refusal> {
        let by_account = matches!(subject, Subject::Account(_));
        if reason.is_some() {
            if !by_account && (self.has(Role::Operator) || self.has(Role::Identity)) {
                return Err(Refusal::denied(
                    "a log-out with a reason names the account by id, not a user's session token",
                ));
            }
            if self.has(Role::Operator) {
                return Ok(self.operator_actor());
            }
            if self.has(Role::Identity) {
                return Ok(Actor::Service(self.name.clone()));
            }
            return Err(self.role_denied("identity"));
        }
        if self.has(Role::Identity) && !self.has(Role::Operator) && !self.has(Role::Settings) {
            return Err(Refusal::denied(
                "the identity system logs an account out by naming it with a reason",
            ));
        }
        self.authorize_owner_call(subject)
    }

    /// Eligibility checks: settings (with a token), identity and operators.
    pub fn authorize_eligibility_check(&self, subject: &Subject) -> Result<(), Refusal> {
        if self.has(Role::Identity) || self.has(Role::Operator) {
            return Ok(());
        }
        self.authorize_owner_call(subject).map(|_| ())
    }

    /// Recording SSO links and workspace types, reading, disabling, enabling and deleting
    /// accounts: identity and operators.
    pub fn authorize_identity_call(&self) -> Result<Actor, Refusal> {
        if self.has(Role::Operator) {
            Ok(self.operator_actor())
        } else if self.has(Role::Identity) {
            Ok(Actor::Service(self.name.clone()))
        } else {
            Err(self.role_denied("identity"))
        }
    }

    fn operator_actor(&self) -> Actor {
        Actor::Operator(self.name.clone())
    }

    /// Whether a revocation stream watching `products` (empty: every product) may go on after a
    /// callers-file reload left this caller as it is now.
    pub fn may_still_watch(&self, products: &[Product]) -> Result<(), Refusal> {
        match self.product_scope()? {
            ProductScope::All => Ok(()),
            ProductScope::Only(own)
                if !products.is_empty() && products.iter().all(|product| own.contains(product)) =>
            {
                Ok(())
            }
            ProductScope::Only(_) => Err(Refusal::denied(
                "after a callers-file reload this caller may no longer watch these products",
            )),
        }
    }

    fn role_denied(&self, needed: &str) -> Refusal {
        Refusal::denied(format!(
            "{} does not have the {needed} role this call needs",
            self.name
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn product_backend(products: Vec<Product>) -> Caller {
        Caller::new("web".into(), vec![Role::Product], products, None)
    }

    #[test]
    fn a_product_backend_watches_only_its_own_products() {
        let web = product_backend(vec![Product::ChatGpt]);
        let scope = web.product_scope().unwrap();
        assert_eq!(scope.watchable(Vec::new()), Ok(vec![Product::ChatGpt]));
        assert_eq!(
            scope.watchable(vec![Product::Codex]),
            Err(Refusal::denied(
                "a product backend may watch only its own products"
            ))
        );
        assert_eq!(
            ProductScope::All.watchable(Vec::new()),
            Ok(Vec::<Product>::new())
        );
        assert!(web.may_still_watch(&[Product::ChatGpt]).is_ok());
        assert!(web.may_still_watch(&[]).is_err());
        assert!(Caller::local().may_still_watch(&[]).is_ok());
    }

    #[test]
    fn a_reason_makes_log_out_all_the_identity_systems_call() {
        let identity = Caller::new("idp".into(), vec![Role::Identity], Vec::new(), None);
        let account = Subject::Account(crate::domain::ids::AccountId::parse("acct_1").unwrap());
        assert_eq!(
            identity.authorize_log_out_all(&account, Some(RevocationReason::PasswordChanged)),
            Ok(Actor::Service("idp".into()))
        );
        assert!(matches!(
            identity.authorize_log_out_all(&account, None),
            Err(Refusal::PermissionDenied(_))
        ));
    }
}

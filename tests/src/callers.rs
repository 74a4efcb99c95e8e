//! Credentials a test server is given: the calling services it knows (a callers file, each
//! caller with a random bearer token stored only as its SHA-256) and token seal keys.

/// A calling service a test server knows, with the token it authenticates with.
#[derive(Debug, Clone)]
pub struct TestCaller {
    /// Its name.
    pub name: String,
    /// Its roles (`product`, `settings`, `identity`, `operator`).
    pub roles: Vec<String>,
    /// Its products (`CHATGPT`, `CODEX`, `API_PLATFORM`).
    pub products: Vec<String>,
    /// Its bearer token.
    pub token: String,
}

impl TestCaller {
    /// A caller with a fresh random token.
    pub fn new(name: &str, roles: &[&str], products: &[&str]) -> Self {
        Self {
            name: name.into(),
            roles: roles.iter().map(|r| (*r).into()).collect(),
            products: products.iter().map(|p| (*p).into()).collect(),
            token: format!("test-token-{name}-{}", ulid::Ulid::generate()),
        }
    }
}

/// The callers file text for `callers`.
pub fn callers_file(callers: &[TestCaller]) -> String {
    use sha2::{Digest, Sha256};
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    callers
        .iter()
        .map(|caller| {
            let hash: String = Sha256::digest(caller.token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "[[callers]]\nname = {:?}\nroles = [{}]\nproducts = [{}]\ntoken_sha256 = \"{hash}\"\n\n",
                caller.name,
                quoted(&caller.roles),
                quoted(&caller.products),
            )
        })
        .collect()
}

/// 32 random bytes as 64 hexadecimal characters: a token seal key file's content.
pub fn random_key_hex() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("random key");
    key.iter().map(|b| format!("{b:02x}")).collect()
}

//! Entra ID (Azure AD) credentials, chosen as the Azure SDKs choose them,
//! for every Azure service Sluice talks to without a key: the data lake
//! and the registry (through `storage/`, which hands the choice to
//! object_store's own token providers where it has one) and Event Hubs
//! over Kafka (OAUTHBEARER tokens for `https://<namespace>.servicebus.windows.net/.default`,
//! through `kafka/oauth.rs`).
//!
//! `settings.rs` is what may be configured (connections.json, the
//! environment the platform sets); `source.rs` picks one source from it in
//! the SDKs' order; `token.rs` asks that source for a token of a scope;
//! `credential.rs` keeps tokens until shortly before they expire. No secret
//! (a client secret, the platform's identity header, a token) is ever
//! printed: they are [`Secret`]s.

mod credential;
mod error;
mod secret;
mod settings;
mod source;
mod token;

pub use credential::Credential;
pub use error::IdentityError;
pub use secret::Secret;
pub use settings::AzureIdentity;
pub use source::Source;
pub use token::AccessToken;

/// The scope of a token for Azure Storage (Blob and Data Lake).
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

//! The quote-signing key: read from the environment, a file or a mounted secret, and never
//! printed (its `Debug` shows only the address).

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use std::path::Path;

/// The private key that signs paymaster quotes; it must be ToraPaymaster's `signer`.
#[derive(Clone)]
pub struct SignerKey(PrivateKeySigner);

/// Why the signer key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignerKeyError {
    /// No key was given: the named environment variable is unset.
    #[error("no signer key: set {0} or pass a key file")]
    Missing(&'static str),
    /// The key file (its path) could not be read.
    #[error("cannot read signer key file {0}: {1}")]
    Read(String, std::io::Error),
    /// The text is not a 32-byte hex private key.
    #[error("signer key is not a 32-byte hex private key")]
    Invalid,
}

/// The environment variable holding the key in hex.
pub const SIGNER_KEY_ENV: &str = "TORA_PAYMASTER_SIGNER_KEY";

impl SignerKey {
    /// Parses a 32-byte hex private key, ignoring surrounding whitespace.
    pub fn from_hex(text: &str) -> Result<Self, SignerKeyError> {
        let key: B256 = text.trim().parse().map_err(|_| SignerKeyError::Invalid)?;
        PrivateKeySigner::from_bytes(&key).map(Self).map_err(|_| SignerKeyError::Invalid)
    }

    /// A file (Kubernetes mounts secrets as files) holding the hex key.
    pub fn from_file(path: &Path) -> Result<Self, SignerKeyError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SignerKeyError::Read(path.display().to_string(), e))?;
        Self::from_hex(&text)
    }

    /// Reads the hex key from [`SIGNER_KEY_ENV`].
    pub fn from_env() -> Result<Self, SignerKeyError> {
        let text = std::env::var(SIGNER_KEY_ENV).map_err(|_| SignerKeyError::Missing(SIGNER_KEY_ENV))?;
        Self::from_hex(&text)
    }

    /// The address the key signs as.
    pub fn address(&self) -> Address {
        self.0.address()
    }

    /// The key as an alloy signer, for signing quotes.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.0
    }
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({} , key redacted)", self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

    #[test]
    fn debug_never_shows_the_key() {
        let key = SignerKey::from_hex(KEY).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("5de4111a"), "{shown}");
        assert!(shown.contains(&key.address().to_string()), "{shown}");
    }

    #[test]
    fn reads_a_secret_file_with_a_trailing_newline() {
        let path = std::env::temp_dir().join(format!("tora-signer-{}", std::process::id()));
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        let key = SignerKey::from_file(&path).unwrap();
        assert_eq!(key.address(), SignerKey::from_hex(KEY).unwrap().address());
        std::fs::remove_file(path).unwrap();
        assert!(matches!(SignerKey::from_hex("0x1234"), Err(SignerKeyError::Invalid)));
    }
}

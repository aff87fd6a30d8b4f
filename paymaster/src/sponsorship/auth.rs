//! Dapp API keys are JWTs (HS256) signed with one of several secrets named by `kid`, so keys
//! rotate by adding a secret, reissuing, then removing the old one.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
/// What an API key may do.
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May use the policies whose `dapp` is its subject.
    #[default]
    Dapp,
    /// May create and update policies and read spend.
    Admin,
}

/// The JWT claims of an API key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The dapp (or admin) this key belongs to.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// What the key may do; a dapp key when the claim is absent.
    #[serde(default)]
    pub role: Role,
}

/// Why an API key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No key was sent.
    #[error("an API key is required (Authorization: Bearer <key>)")]
    Missing,
    /// The key is malformed, forged or expired.
    #[error("API key is not valid: {0}")]
    Invalid(String),
    /// The key's `kid` names no configured secret, or it has none.
    #[error("API key was signed with unknown key id {0:?}")]
    UnknownKeyId(Option<String>),
}

/// The secrets API keys may be signed with, by key id.
pub struct ApiKeys {
    secrets: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl ApiKeys {
    /// The HS256 secrets by key id; expiry is checked with no leeway.
    pub fn new(secrets: &HashMap<String, Vec<u8>>) -> Self {
        let secrets = secrets.iter().map(|(kid, s)| (kid.clone(), DecodingKey::from_secret(s))).collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        Self { secrets, validation }
    }

    /// The claims of `token`, once its signature (by the secret its `kid` names) and expiry check.
    pub fn verify(&self, token: Option<&str>) -> Result<Claims, AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.secrets.get(kid))
            .ok_or(AuthError::UnknownKeyId(header.kid))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

/// Issues an API key (for the admin tooling and tests).
pub fn issue(kid: &str, secret: &[u8], claims: &Claims) -> String {
    let header = Header { kid: Some(kid.to_owned()), ..Header::new(Algorithm::HS256) };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
        .expect("HS256 encoding cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[(&str, &[u8])]) -> ApiKeys {
        ApiKeys::new(&ids.iter().map(|(k, s)| (k.to_string(), s.to_vec())).collect())
    }

    fn claims(exp: u64) -> Claims {
        Claims { sub: "dapp-1".into(), exp, role: Role::Dapp }
    }

    const FAR: u64 = 4_000_000_000;

    #[test]
    fn keys_rotate_by_key_id() {
        let old = issue("2026-10", b"old secret", &claims(FAR));
        let new = issue("2026-11", b"new secret", &claims(FAR));
        let both = keys(&[("2026-10", b"old secret"), ("2026-11", b"new secret")]);
        assert_eq!(both.verify(Some(&old)).unwrap().sub, "dapp-1");
        assert_eq!(both.verify(Some(&new)).unwrap().role, Role::Dapp);
        let rotated = keys(&[("2026-11", b"new secret")]);
        assert_eq!(rotated.verify(Some(&old)), Err(AuthError::UnknownKeyId(Some("2026-10".into()))));
        assert!(rotated.verify(Some(&new)).is_ok());
    }

    #[test]
    fn forged_expired_and_missing_keys_are_refused() {
        let keys = keys(&[("k", b"secret")]);
        let forged = issue("k", b"guessed", &claims(FAR));
        assert!(matches!(keys.verify(Some(&forged)), Err(AuthError::Invalid(_))));
        let expired = issue("k", b"secret", &claims(1_000));
        assert!(matches!(keys.verify(Some(&expired)), Err(AuthError::Invalid(_))));
        assert_eq!(keys.verify(None), Err(AuthError::Missing));
        assert!(matches!(keys.verify(Some("not.a.jwt")), Err(AuthError::Invalid(_))));
    }
}

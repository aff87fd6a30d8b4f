//! The Ethereum JSON-RPC encoding: addresses, hashes, data and quantities are `0x`-prefixed hex.
//! alloy's parsers also take bare hex; a server that accepts it teaches clients a form every
//! other node refuses, so request parameters are read through [`Hex`] instead.

use serde::de::{Deserializer, Error};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;

/// A value that must arrive as a `0x`-prefixed hex string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Hex<T>(pub T);

impl<'de, T: FromStr> Deserialize<'de> for Hex<T>
where
    T::Err: std::fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        if !text.starts_with("0x") {
            return Err(D::Error::custom(format!("{text:?} is not 0x-prefixed hex")));
        }
        text.parse().map(Hex).map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }
}

/// The first field of `object` whose value is neither `null` nor a `0x`-prefixed string, with
/// why, for a request object whose every field is hex (a user operation).
pub fn first_non_hex_field(object: &serde_json::Map<String, Value>) -> Option<String> {
    object.iter().find_map(|(name, value)| match value {
        Value::Null => None,
        Value::String(s) if s.starts_with("0x") => None,
        Value::String(_) => Some(format!("{name} must be 0x-prefixed hex")),
        _ => Some(format!("{name} must be a 0x-prefixed hex string")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, B256};
    use serde_json::json;

    #[test]
    fn bare_hex_is_refused_and_prefixed_hex_is_read() {
        let hash = format!("{:x}", B256::repeat_byte(0xab));
        assert!(serde_json::from_value::<Hex<B256>>(json!(hash)).is_err());
        let read: Hex<B256> = serde_json::from_value(json!(format!("0x{hash}"))).unwrap();
        assert_eq!(read.0, B256::repeat_byte(0xab));
        assert!(serde_json::from_value::<Hex<Address>>(json!("0x1234")).is_err(), "wrong length");
        assert!(serde_json::from_value::<Hex<Address>>(json!(7)).is_err());
    }

    #[test]
    fn the_first_bad_field_is_named() {
        let ok = json!({ "sender": "0x01", "factory": null });
        assert_eq!(first_non_hex_field(ok.as_object().unwrap()), None);
        let bare = json!({ "sender": "0x01", "callData": "abcd" });
        assert_eq!(
            first_non_hex_field(bare.as_object().unwrap()).unwrap(),
            "callData must be 0x-prefixed hex"
        );
        let number = json!({ "nonce": 1 });
        assert_eq!(
            first_non_hex_field(number.as_object().unwrap()).unwrap(),
            "nonce must be a 0x-prefixed hex string"
        );
    }
}

//! The JSON-RPC surface of the bundler and the paymaster, typed. Each method is a type that
//! names its wire name, its positional params and its result, so a method's JSON shape is
//! written once: servers read [`Method::Params`] and answer [`Method::Output`] through it, and
//! the one client (`tora_jsonrpc::Client`) calls it the same way.

pub mod bundler;
pub mod debug;
pub mod paymaster;

use alloy::primitives::Address;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One JSON-RPC method.
pub trait Method {
    /// The name on the wire, e.g. `eth_sendUserOperation`.
    const NAME: &'static str;
    /// How many positional params it takes; trailing `Option`s may be left out on the wire.
    const ARITY: usize;
    /// The params as a tuple of [`Method::ARITY`] items (`()` for none).
    type Params: Serialize + DeserializeOwned + Send + 'static;
    /// What a successful call answers.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// Declares a [`Method`] type: `method!(Doc, Type, "wire_name", (Param, ...) -> Output)`.
macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $wire:literal, ($($param:ty),*) -> $output:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;

        impl $crate::rpc_api::Method for $name {
            const NAME: &'static str = $wire;
            const ARITY: usize = $crate::rpc_api::count!($($param),*);
            type Params = ($($param,)*);
            type Output = $output;
        }
    };
}
pub(crate) use method;

/// How many types a `method!` lists.
macro_rules! count {
    () => { 0 };
    ($head:ty $(, $tail:ty)*) => { 1 + $crate::rpc_api::count!($($tail),*) };
}
pub(crate) use count;

/// Declares a user operation newtype as one method takes it on the wire: read by
/// [`crate::UserOperation::from_rpc_with_defaults`] with the fields it may leave out (none for an
/// operation sent as final), written as the operation itself.
macro_rules! wire_operation {
    ($(#[$doc:meta])* $name:ident, $defaults:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(pub $crate::UserOperation);

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(deserializer)?;
                $crate::UserOperation::from_rpc_with_defaults(value, $defaults)
                    .map($name)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use wire_operation;

/// An address written with its EIP-55 checksum, as the reference bundler writes entry points
/// (alloy writes addresses in lower case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksummed(pub Address);

impl Serialize for Checksummed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_checksum(None))
    }
}

impl<'de> Deserialize<'de> for Checksummed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Address::deserialize(deserializer).map(Checksummed)
    }
}

/// The answer `"ok"` of methods that only act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged;

impl Serialize for Acknowledged {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("ok")
    }
}

impl<'de> Deserialize<'de> for Acknowledged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "ok" => Ok(Acknowledged),
            _ => Err(serde::de::Error::custom(format!("expected \"ok\", got {text:?}"))),
        }
    }
}

//! Typed parameters: every decoding failure becomes -32602 with serde's reason, never a panic
//! and never "method not found".

use serde::de::DeserializeOwned;
use serde_json::Value;
use tora_core::RpcError;
use tora_core::rpc_api::Method;

/// A call's `params` (an array, an object or `null`), decoded on demand into typed values.
#[derive(Debug, Clone)]
pub struct Params(pub Value);

impl Params {
    /// Positional parameters as a tuple of `arity` elements; missing trailing ones are `null`,
    /// so `Option` fields at the end may be omitted.
    pub fn positional<T: DeserializeOwned>(self, arity: usize) -> Result<T, RpcError> {
        let mut items = match self.0 {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => return Err(RpcError::invalid_params("params must be an array")),
        };
        if items.len() > arity {
            return Err(RpcError::invalid_params(format!(
                "expected at most {arity} params, got {}",
                items.len()
            )));
        }
        items.resize(arity, Value::Null);
        let value = if arity == 1 { items.pop().unwrap_or(Value::Null) } else { Value::Array(items) };
        serde_json::from_value(value).map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
    }

    /// The params of method `M`, as its tuple: at most [`Method::ARITY`] positional items,
    /// missing trailing ones read as `null`.
    pub fn of<M: Method>(self) -> Result<M::Params, RpcError> {
        if M::ARITY == 0 {
            self.none()?;
            return serde_json::from_value(Value::Null)
                .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")));
        }
        let mut items = match self.0 {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => return Err(RpcError::invalid_params("params must be an array")),
        };
        if items.len() > M::ARITY {
            return Err(RpcError::invalid_params(format!(
                "expected at most {} params, got {}",
                M::ARITY,
                items.len()
            )));
        }
        items.resize(M::ARITY, Value::Null);
        // serde's reason alone: the wire types word their own refusals ("sender must be
        // 0x-prefixed hex"), and -32602 already says the params were invalid.
        serde_json::from_value(Value::Array(items)).map_err(|e| RpcError::invalid_params(e.to_string()))
    }

    /// For methods that take no parameters: refuses any that are given.
    pub fn none(self) -> Result<(), RpcError> {
        match &self.0 {
            Value::Null => Ok(()),
            Value::Array(items) if items.is_empty() => Ok(()),
            _ => Err(RpcError::invalid_params("this method takes no params")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trailing_options_may_be_omitted() {
        let (a, b): (u64, Option<String>) = Params(json!([1])).positional(2).unwrap();
        assert_eq!((a, b), (1, None));
        let one: String = Params(json!(["x"])).positional(1).unwrap();
        assert_eq!(one, "x");
    }

    #[test]
    fn wrong_types_and_extra_params_are_invalid_params() {
        let err = Params(json!(["not a number"])).positional::<(u64,)>(1).unwrap_err();
        assert_eq!(err.code.code(), -32602);
        let err = Params(json!([1, 2, 3])).positional::<(u64, u64)>(2).unwrap_err();
        assert_eq!(err.code.code(), -32602);
        assert!(Params(json!([1])).none().is_err());
        assert!(Params(Value::Null).none().is_ok());
    }
}

//! The wire format: what a request may look like, and the response object.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use serde::Serialize;
use serde_json::Value;
use tora_core::{ErrorCode, RpcError};

/// A request id is echoed back exactly: a string stays a string.
pub type Id = Value;

/// A JSON-RPC 2.0 response object: exactly one of `result` and `error` is set.
#[derive(Debug, Serialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: &'static str,
    /// The id of the request answered, `null` when it could not be read.
    pub id: Id,
    /// The call's result, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why the call failed, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// The response to request `id` with its outcome.
    pub fn new(id: Id, outcome: Result<Value, RpcError>) -> Self {
        match outcome {
            Ok(result) => Self { jsonrpc: "2.0", id, result: Some(result), error: None },
            Err(error) => Self { jsonrpc: "2.0", id, result: None, error: Some(error) },
        }
    }
}

/// An HTTP answer carrying a JSON-RPC error for a request whose id is unknown.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: String) -> HttpResponse {
    (status, Json(Response::new(Value::Null, Err(RpcError::new(code, message))))).into_response()
}

/// One call taken apart; `id: None` marks a notification (no response).
#[derive(Debug)]
pub(crate) struct Call {
    pub id: Option<Id>,
    pub method: String,
    pub params: Value,
}

/// Checks one element of a request (or of a batch) against JSON-RPC 2.0.
pub(crate) fn parse_call(value: Value) -> Result<Call, (Id, RpcError)> {
    let invalid = |id: Id, why: &str| (id, RpcError::new(ErrorCode::InvalidRequest, why.to_owned()));
    let Value::Object(mut object) = value else {
        return Err(invalid(Value::Null, "a request must be a JSON object"));
    };
    let id = object.remove("id");
    let echo = id.clone().unwrap_or(Value::Null);
    if !matches!(id, None | Some(Value::Null | Value::String(_) | Value::Number(_))) {
        return Err(invalid(Value::Null, "id must be a string, a number or null"));
    }
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(echo, "jsonrpc must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid(echo, "method must be a string")),
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    if !matches!(params, Value::Null | Value::Array(_) | Value::Object(_)) {
        return Err(invalid(echo, "params must be an array or an object"));
    }
    Ok(Call { id, method, params })
}

/// The `id` of a request that could not be parsed whole: params nested past serde_json's
/// 128-level limit, or a body cut at the size limit. The envelope is read key by key and the
/// rest skipped without recursion, so the caller still gets its id back. `None` when the body is
/// not an object or has no readable id before it breaks off.
pub(crate) fn recover_id(body: &[u8]) -> Option<Id> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct IdOf<'a>(&'a mut Option<Id>);
    impl<'de> Visitor<'de> for IdOf<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON-RPC request object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "id" {
                    let id: Id = map.next_value()?;
                    *self.0 = Some(id);
                } else {
                    // Skipping is iterative in serde_json: depth costs no stack.
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    let mut id = None;
    // The error is the reason the body failed in the first place; only the id matters here.
    let _ = serde_json::Deserializer::from_slice(body).deserialize_map(IdOf(&mut id));
    id.filter(|id| matches!(id, Value::String(_) | Value::Number(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_of_a_too_deep_request_is_recovered() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":"abc","method":"eth_chainId","params":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(serde_json::from_str::<Value>(&deep).is_err(), "serde_json refuses the depth");
        assert_eq!(recover_id(deep.as_bytes()), Some(Value::String("abc".into())));
        // The id after the params is still found.
        let after = format!(r#"{{"params":{}{},"id":7}}"#, "[".repeat(5_000), "]".repeat(5_000));
        assert_eq!(recover_id(after.as_bytes()), Some(Value::from(7)));
    }

    #[test]
    fn the_id_of_a_truncated_body_is_recovered_when_it_comes_first() {
        assert_eq!(
            recover_id(br#"{"jsonrpc":"2.0","id":42,"method":"x","params":["0x00"#),
            Some(Value::from(42))
        );
        assert_eq!(recover_id(br#"{"jsonrpc":"2.0","params":["0x00"#), None);
        assert_eq!(recover_id(b"[1,2"), None);
        // An id that is not a valid JSON-RPC id is not echoed.
        assert_eq!(recover_id(br#"{"id":{"a":1},"params":["#), None);
    }
}

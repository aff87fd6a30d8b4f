//! The wire format: what a request may look like, and the response object.

use serde::Serialize;
use serde_json::Value;
use tora_core::{ErrorCode, RpcError};

/// A request id is echoed back exactly: a string stays a string.
pub type Id = Value;

#[derive(Debug, Serialize)]
pub struct Response {
    pub jsonrpc: &'static str,
    pub id: Id,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn new(id: Id, outcome: Result<Value, RpcError>) -> Self {
        match outcome {
            Ok(result) => Self { jsonrpc: "2.0", id, result: Some(result), error: None },
            Err(error) => Self { jsonrpc: "2.0", id, result: None, error: Some(error) },
        }
    }
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

//! The one JSON-RPC client of the workspace: typed calls of any [`Method`] (the load tester,
//! the demo, every test), and untyped ones for what a typed call cannot send (malformed params
//! in tests of the servers' refusals).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use tora_core::rpc_api::Method;

/// A JSON-RPC error object as a server answered it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The JSON-RPC (ERC-4337) error code.
    pub code: i64,
    /// The server's message.
    pub message: String,
    /// Details, e.g. the ERC-7562 rule id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Why a call did not return a result.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CallError {
    /// The server answered a JSON-RPC error.
    #[error("{} ({})", .0.message, .0.code)]
    Rpc(ErrorObject),
    /// The server answered an HTTP error status (e.g. 429 from a rate limit).
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// No answer: connection refused, reset, timed out.
    #[error("transport: {0}")]
    Transport(String),
    /// An answer that is not the JSON-RPC response or the result type expected.
    #[error("decoding the answer: {0}")]
    Decode(String),
}

impl CallError {
    /// What to count the failure under: the JSON-RPC error code, `http-<status>`,
    /// `transport` or `bad-json`.
    pub fn label(&self) -> String {
        match self {
            Self::Rpc(e) => e.code.to_string(),
            Self::Http { status, .. } => format!("http-{status}"),
            Self::Transport(_) => "transport".into(),
            Self::Decode(_) => "bad-json".into(),
        }
    }

    /// The JSON-RPC error, when the server answered one.
    pub fn rpc(&self) -> Option<&ErrorObject> {
        match self {
            Self::Rpc(e) => Some(e),
            _ => None,
        }
    }
}

/// Calls one JSON-RPC endpoint over HTTP.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    bearer: Option<String>,
    next_id: AtomicU64,
}

impl Client {
    /// A client of the endpoint at `url` (e.g. `http://127.0.0.1:4337`).
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), url)
    }

    /// A client sharing `http`'s connection pool.
    pub fn with_http(http: reqwest::Client, url: impl Into<String>) -> Self {
        Self { http, url: url.into(), bearer: None, next_id: AtomicU64::new(1) }
    }

    /// Sends `key` as `Authorization: Bearer` (the paymaster's API keys).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.bearer = Some(key.into());
        self
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `M` with `params` and decodes its output.
    pub async fn call<M: Method>(&self, params: M::Params) -> Result<M::Output, CallError> {
        let params = if M::ARITY == 0 {
            json!([])
        } else {
            serde_json::to_value(params).map_err(|e| CallError::Decode(e.to_string()))?
        };
        let result = self.raw(M::NAME, params).await?;
        serde_json::from_value(result).map_err(|e| CallError::Decode(format!("{}: {e}", M::NAME)))
    }

    /// Calls `method` with `params` as given: the result, untyped.
    pub async fn raw(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.bearer {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| CallError::Transport(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(CallError::Http { status: status.as_u16(), body });
        }
        let mut answer: Value = response.json().await.map_err(|e| CallError::Decode(e.to_string()))?;
        match answer.get_mut("error").map(Value::take) {
            Some(error) => Err(CallError::Rpc(
                serde_json::from_value(error).map_err(|e| CallError::Decode(format!("error object: {e}")))?,
            )),
            None => Ok(answer.get_mut("result").map(Value::take).unwrap_or(Value::Null)),
        }
    }
}

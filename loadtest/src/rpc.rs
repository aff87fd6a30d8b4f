//! The one JSON-RPC call every scenario makes: its outcome label is the error code, the HTTP
//! status or "transport", so the report can count errors by kind.

use crate::Outcome;
use serde_json::Value;

/// What went wrong with a call: a short label to count by, and the message to show once.
#[derive(Clone, Debug)]
pub struct Failure {
    /// What to count it under: the JSON-RPC error code, `http-<status>`, `transport` or `bad-json`.
    pub label: String,
    /// The error's message or the response body.
    pub message: String,
}

impl Failure {
    fn new(label: impl Into<String>, message: impl ToString) -> Self {
        Self { label: label.into(), message: message.to_string() }
    }
}

/// Posts `body` and returns the `result`, or what went wrong.
pub async fn call(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value, Failure> {
    let response = client.post(url).json(body).send().await.map_err(|e| Failure::new("transport", e))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(Failure::new(format!("http-{}", status.as_u16()), text));
    }
    let mut body: Value = response.json().await.map_err(|e| Failure::new("bad-json", e))?;
    match body.get("error") {
        Some(error) => Err(Failure::new(error["code"].to_string(), &error["message"])),
        None => Ok(body["result"].take()),
    }
}

/// [`call`] when only success matters.
pub async fn outcome(client: &reqwest::Client, url: &str, body: &Value) -> Outcome {
    call(client, url, body).await.map(|_| ()).map_err(|failure| failure.label)
}

/// A JSON-RPC 2.0 request body.
pub fn request(id: u64, method: &str, params: Value) -> Value {
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

//! The one JSON-RPC call every scenario makes: its outcome label is the error code, the HTTP
//! status or "transport", so the report can count errors by kind.

use crate::Outcome;
use serde_json::Value;

/// Posts `body` and returns the `result`, or the label of what went wrong.
pub async fn call(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let response = client.post(url).json(body).send().await.map_err(|_| "transport".to_owned())?;
    if !response.status().is_success() {
        return Err(format!("http-{}", response.status().as_u16()));
    }
    let mut body: Value = response.json().await.map_err(|_| "bad-json".to_owned())?;
    match body.get("error") {
        Some(error) => Err(error["code"].to_string()),
        None => Ok(body["result"].take()),
    }
}

/// [`call`] when only success matters.
pub async fn outcome(client: &reqwest::Client, url: &str, body: &Value) -> Outcome {
    call(client, url, body).await.map(|_| ())
}

/// A JSON-RPC 2.0 request body.
pub fn request(id: u64, method: &str, params: Value) -> Value {
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

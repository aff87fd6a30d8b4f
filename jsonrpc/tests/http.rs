//! The JSON-RPC surface over real HTTP, with a toy service.

use serde_json::{Value, json};
use std::sync::Arc;
use tora_core::{ErrorCode, RpcError};
use tora_jsonrpc::{CallMeta, Limits, Params, RateLimit, RpcService, router};

struct Echo;

impl RpcService for Echo {
    async fn call(&self, meta: &CallMeta, method: &str, params: Params) -> Result<Value, RpcError> {
        match method {
            "echo_key" => Ok(json!(meta.api_key)),
            "echo_add" => {
                let (a, b): (u64, u64) = params.positional(2)?;
                Ok(json!(a + b))
            }
            "echo_fail" => Err(RpcError::new(ErrorCode::ThrottledOrBanned, "throttled")),
            _ => Err(RpcError::new(ErrorCode::MethodNotFound, format!("no method {method}"))),
        }
    }

    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Keys named `key-…` are genuine; anything else is a string a caller made up.
    fn verified_caller(&self, meta: &CallMeta) -> Option<String> {
        meta.api_key.clone().filter(|key| key.starts_with("key-"))
    }
}

async fn serve(limits: Limits) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(Arc::new(Echo), limits)).await.unwrap() });
    format!("http://{addr}")
}

async fn post(url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

const JSON: &str = "application/json";

#[tokio::test]
async fn calls_echo_string_and_number_ids_and_map_errors() {
    let url = serve(Limits::default()).await;
    let (status, body) =
        post(&url, JSON, r#"{"jsonrpc":"2.0","id":"abc","method":"echo_add","params":[2,3]}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "jsonrpc": "2.0", "id": "abc", "result": 5 }));
    let (_, body) = post(&url, JSON, r#"{"jsonrpc":"2.0","id":7,"method":"echo_fail"}"#).await;
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32504);
    let (_, body) = post(&url, JSON, r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#).await;
    assert_eq!(body["error"]["code"], -32601);
    let (_, body) = post(&url, JSON, r#"{"jsonrpc":"2.0","id":1,"method":"echo_add","params":["0x"]}"#).await;
    assert_eq!(body["error"]["code"], -32602, "bad params of a known method are -32602, not -32601");
}

#[tokio::test]
async fn malformed_and_hostile_bodies_get_json_rpc_errors() {
    let url = serve(Limits { max_body_bytes: 64 * 1024, max_batch_len: 3, rate_per_key: None }).await;
    let (status, body) = post(&url, JSON, "{not json").await;
    assert_eq!((status, body["error"]["code"].clone()), (200, json!(-32700)));
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let (status, body) = post(&url, JSON, deep).await;
    assert_eq!((status, body["error"]["code"].clone()), (200, json!(-32700)));
    let (_, body) = post(&url, JSON, r#"{"jsonrpc":"1.0","id":1,"method":"echo_add"}"#).await;
    assert_eq!(body["error"]["code"], -32600);
    let (_, body) = post(&url, JSON, r#"{"jsonrpc":"2.0","id":{"x":1},"method":"echo_add"}"#).await;
    assert_eq!(body["error"]["code"], -32600);
    let (status, body) = post(&url, JSON, vec![b' '; 70 * 1024]).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], -32600);
    let (_, body) = post(&url, JSON, "[]").await;
    assert_eq!(body["error"]["code"], -32600);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"echo_add","params":[1,1]}"#;
    let (_, body) = post(&url, JSON, format!("[{call},{call},{call},{call}]")).await;
    assert_eq!(body["error"]["code"], -32600, "batch over the limit");
}

#[tokio::test]
async fn batches_notifications_and_charset_content_types() {
    let url = serve(Limits::default()).await;
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"echo_add","params":[1,2]},
                    {"jsonrpc":"2.0","method":"echo_add","params":[5,5]},
                    {"jsonrpc":"2.0","id":2,"method":"echo_fail"},
                    42]"#;
    let (status, body) = post(&url, "application/json; charset=utf-8", batch).await;
    assert_eq!(status, 200);
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 3, "the notification gets no response: {body}");
    assert_eq!(items[0]["result"], 3);
    assert_eq!(items[1]["error"]["code"], -32504);
    assert_eq!(items[2]["error"]["code"], -32600);
    let (status, _) =
        post(&url, "text/plain", r#"{"jsonrpc":"2.0","method":"echo_add","params":[1,1]}"#).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let url = serve(Limits::default()).await;
    post(&url, JSON, r#"{"jsonrpc":"2.0","id":1,"method":"echo_add","params":[1,1]}"#).await;
    let get = |path: &'static str| {
        let url = url.clone();
        async move { reqwest::get(format!("{url}{path}")).await.unwrap() }
    };
    assert_eq!(get("/health").await.json::<Value>().await.unwrap()["status"], "ok");
    assert_eq!(get("/ready").await.json::<Value>().await.unwrap()["status"], "ready");
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rpc_requests_total{method=\"echo_add\",code=\"ok\"}"), "{metrics}");
}

#[tokio::test]
async fn api_keys_come_from_the_bearer_header_or_the_query() {
    let url = serve(Limits::default()).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"echo_key"}"#;
    let client = reqwest::Client::new();
    let answer = |request: reqwest::RequestBuilder| async move {
        request.body(call).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let with_header = answer(client.post(&url).header("authorization", "Bearer k1")).await;
    assert_eq!(with_header["result"], "k1");
    let in_query = answer(client.post(format!("{url}/?chain=1&apiKey=k2"))).await;
    assert_eq!(in_query["result"], "k2");
    let (_, none) = post(&url, JSON, call).await;
    assert_eq!(none["result"], Value::Null);
}

#[tokio::test]
async fn each_verified_api_key_has_its_own_rate_limit_and_made_up_ones_share_one() {
    // A refill of one request a day: nothing refills during the test.
    let limit = RateLimit { per_second: 1.0 / 86_400.0, burst: 2.0 };
    let url = serve(Limits { rate_per_key: Some(limit), ..Limits::default() }).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"echo_add","params":[1,1]}"#;
    let client = reqwest::Client::new();
    let send = |key: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move { client.post(&url).bearer_auth(key).body(call).send().await.unwrap() }
    };
    assert_eq!(send("key-a").await.status(), 200);
    assert_eq!(send("key-a").await.status(), 200);
    let limited = send("key-a").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.json::<Value>().await.unwrap()["error"]["code"], -32005);
    assert_eq!(send("key-b").await.status(), 200, "another key is not affected");
    assert_eq!(send("made-up-1").await.status(), 200);
    assert_eq!(send("made-up-2").await.status(), 200);
    assert_eq!(send("made-up-3").await.status(), 429, "a new string is not a new bucket");
}

#[tokio::test]
async fn the_rate_limit_reads_the_query_key_and_leaves_probes_and_metrics_alone() {
    let limit = RateLimit { per_second: 1.0 / 86_400.0, burst: 1.0 };
    let url = serve(Limits { rate_per_key: Some(limit), ..Limits::default() }).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"echo_add","params":[1,1]}"#;
    let keyed = format!("{url}/?apiKey=key-q1");
    assert_eq!(post(&keyed, JSON, call).await.0, 200);
    let (status, body) = post(&keyed, JSON, call).await;
    assert_eq!(status, 429);
    let expected = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32005, "message": "too many requests for this API key or client address" },
    });
    assert_eq!(body, expected);
    // Requests without a key share one bucket, apart from the keyed ones.
    assert_eq!(post(&url, JSON, call).await.0, 200);
    assert_eq!(post(&url, JSON, call).await.0, 429);
    for path in ["/health", "/ready", "/metrics", "/health"] {
        assert_eq!(reqwest::get(format!("{url}{path}")).await.unwrap().status(), 200, "{path}");
    }
}

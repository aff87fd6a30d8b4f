//! The HTTP surface's shapes and refusals, on the real model files. Every request here is
//! refused before the chain would be asked, so the escrow points at no chain at all (the paid
//! path runs against a devnet in paid_embeddings.rs).

mod common;

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use common::minilm_dir;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tora_core::money::ToraUnits;
use tora_inference_gateway::api::{Gateway, HttpLimits, router};
use tora_inference_gateway::metering::Meter;
use tora_inference_gateway::models::bert::queue::EmbedQueue;
use tora_inference_gateway::payment::{Cashier, Escrow, MemoryVoucherStore, PricePerToken};
use tora_inference_gateway::{CpuEmbedder, SentenceTokenizer};

/// 1e15 + 7 base units per token: not round, so a wrong multiplication shows.
const PRICE: u64 = 1_000_000_000_000_007;

struct Served {
    url: String,
    gateway: Arc<Gateway<MemoryVoucherStore>>,
    http: reqwest::Client,
}

/// Nothing listens on the discard port: a chain that cannot be reached.
const NO_CHAIN: &str = "http://127.0.0.1:9";

/// The API on a free port with room for `capacity` waiting requests; the CPU embedder stands
/// in for the GPU one since no request here reaches the model.
async fn serve(capacity: usize, limits: HttpLimits) -> Served {
    serve_with_chain(capacity, limits, NO_CHAIN).await
}

async fn serve_with_chain(capacity: usize, limits: HttpLimits, rpc_url: &str) -> Served {
    let dir = minilm_dir();
    let (queue, _worker) = EmbedQueue::start(CpuEmbedder::load(&dir).unwrap(), capacity);
    let rpc = ProviderBuilder::new().connect_http(rpc_url.parse().unwrap()).erased();
    let escrow = Escrow::new(rpc, 31337, Address::repeat_byte(0xe5), Address::repeat_byte(0x9a));
    let per_token = PricePerToken(ToraUnits(U256::from(PRICE)));
    let gateway = Arc::new(Gateway {
        meter: Meter::new(SentenceTokenizer::load(&dir).unwrap()),
        queue,
        cashier: Cashier::new(MemoryVoucherStore::default(), escrow, per_token),
        dim: 384,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(gateway.clone(), limits);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Served { url, gateway, http: reqwest::Client::new() }
}

impl Served {
    async fn post(&self, body: Value) -> (StatusCode, Value) {
        let response =
            self.http.post(format!("{}/v1/embeddings", self.url)).json(&body).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

use common::openai_error as error;

fn embed(input: Value) -> Value {
    json!({ "model": "all-MiniLM-L6-v2", "input": input })
}

#[tokio::test]
async fn malformed_requests_get_openai_shaped_errors() {
    let s = serve(4, HttpLimits { max_body_bytes: 4_096, ..HttpLimits::default() }).await;
    let url = format!("{}/v1/embeddings", s.url);
    let send = |body: &'static str, content_type: &'static str| {
        s.http.post(&url).header("content-type", content_type).body(body).send()
    };

    let response = send("{\"model\": ", "application/json").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error(&response.json().await.unwrap())["type"], "invalid_request_error");

    // Token arrays and numbers are not texts: 400, as OpenAI answers a body of the wrong shape.
    let response = send(r#"{"model": "all-MiniLM-L6-v2", "input": 5}"#, "application/json").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    error(&response.json().await.unwrap());

    let response = send(r#"{"model": "all-MiniLM-L6-v2", "input": "x"}"#, "text/plain").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    error(&response.json().await.unwrap());

    let big = s.http.post(&url).json(&embed(json!("word ".repeat(2_000)))).send().await.unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    error(&big.json().await.unwrap());

    let (status, body) =
        s.post(json!({ "model": "all-MiniLM-L6-v2", "input": "x", "encoding_format": "int8" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    error(&body);

    let (status, body) =
        s.post(json!({ "model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 512 })).await;
    assert_eq!((status, error(&body)["param"].as_str()), (StatusCode::BAD_REQUEST, Some("dimensions")));
}

#[tokio::test]
async fn only_all_minilm_l6_v2_is_served() {
    let s = serve(4, HttpLimits::default()).await;
    let (status, body) = s.post(json!({ "model": "text-embedding-3-small", "input": "hello" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let e = error(&body);
    assert_eq!((e["code"].as_str(), e["param"].as_str()), (Some("model_not_found"), Some("model")));

    let (status, body) = s.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&body["data"][0]["id"], &body["data"][0]["object"]),
        (&json!("all-MiniLM-L6-v2"), &json!("model"))
    );
}

#[tokio::test]
async fn empty_input_is_refused() {
    let s = serve(4, HttpLimits::default()).await;
    for input in [json!(""), json!([]), json!(["hello", ""])] {
        let (status, body) = s.post(embed(input.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}");
        assert_eq!(error(&body)["param"], "input", "{input}");
    }
    let (status, body) = s.post(embed(json!(vec!["a"; 65]))).await;
    assert_eq!((status, error(&body)["param"].as_str()), (StatusCode::BAD_REQUEST, Some("input")));
}

#[tokio::test]
async fn an_unpaid_call_gets_402_with_the_exact_amount_due() {
    let s = serve(4, HttpLimits::default()).await;
    // [CLS] hello , world ! [SEP]: 6 tokens (checked against vocab.txt in tests/minilm.rs).
    let (status, body) = s.post(embed(json!("Hello, world!"))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let e = error(&body);
    assert_eq!(e["type"], "payment_required");
    assert_eq!(e["amount_due"], (U256::from(PRICE) * U256::from(6)).to_string());
    assert_eq!(e["amount_due"], "6000000000000042");

    // Two texts: 6 + 4 tokens ([CLS] hello world [SEP]).
    let (status, body) = s.post(embed(json!(["Hello, world!", "hello world"]))).await;
    assert_eq!(
        (status, error(&body)["amount_due"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("10000000000000070"))
    );

    let response = s
        .http
        .post(format!("{}/v1/embeddings", s.url))
        .header("x-tora-voucher", r#"{"payer": "0x12", "cumulativeAmount": "1"}"#)
        .json(&embed(json!("Hello, world!")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error(&response.json().await.unwrap())["code"], "invalid_voucher");
}

#[tokio::test]
async fn input_over_the_limit_is_refused_unless_truncation_is_asked() {
    let s = serve(4, HttpLimits::default()).await;
    let long = "inference ".repeat(300);
    let (status, body) = s.post(embed(json!(["short", long]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = error(&body);
    assert_eq!((e["code"].as_str(), e["param"].as_str()), (Some("context_length_exceeded"), Some("input")));
    assert!(e["message"].as_str().unwrap().contains("input[1]"), "{body}");

    // Cut to 256 tokens and metered as such: the price asked is for 256 tokens exactly.
    let (status, body) =
        s.post(json!({ "model": "all-MiniLM-L6-v2", "input": long, "truncate": true })).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(error(&body)["amount_due"], (U256::from(PRICE) * U256::from(256)).to_string());
}

#[tokio::test]
async fn a_full_queue_answers_429_at_once() {
    let s = serve(1, HttpLimits::default()).await;
    // The only place in the queue is taken, as by a request waiting for the model.
    let taken = s.gateway.queue.reserve().unwrap();
    let (status, body) = s.post(embed(json!("Hello, world!"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let e = error(&body);
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("rate_limit_error"), Some("queue_full")));

    drop(taken);
    let (status, _) = s.post(embed(json!("Hello, world!"))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "a free place again: on to payment");
}

#[tokio::test]
async fn pricing_health_and_unknown_routes() {
    let s = serve(4, HttpLimits::default()).await;
    let (status, body) = s.get("/v1/pricing").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["model"], "all-MiniLM-L6-v2");
    assert_eq!(body["data"][0]["price_per_token"], PRICE.to_string());
    assert_eq!(body["provider"].as_str().unwrap().parse::<Address>().unwrap(), Address::repeat_byte(0x9a));
    assert_eq!((body["chain_id"].as_u64(), body["decimals"].as_u64()), (Some(31337), Some(18)));

    assert_eq!(s.get("/health").await, (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = s.get("/ready").await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ready")));

    let (status, body) = s.get("/v1/chat/completions").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error(&body);
    let (status, body) = s.get("/v1/embeddings").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    error(&body);
}

/// A well-formed voucher; no chain here will ever vouch for it.
const SOME_VOUCHER: &str = r#"{"payer": "0x00000000000000000000000000000000000000aa", "cumulativeAmount": "6000000000000042", "signature": "0x01"}"#;

impl Served {
    async fn post_with_voucher(&self, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/v1/embeddings", self.url);
        let response =
            self.http.post(url).header("x-tora-voucher", SOME_VOUCHER).json(&body).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

#[tokio::test]
async fn an_unreachable_chain_is_503_and_serves_nothing() {
    let s = serve(4, HttpLimits::default()).await;
    let (status, body) = s.post_with_voucher(embed(json!("Hello, world!"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error(&body)["type"], "server_error");
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_408() {
    // A "chain" that accepts connections and never answers: the payment check hangs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rpc_url = format!("http://{}", silent.local_addr().unwrap());
    let limits =
        HttpLimits { request_timeout: std::time::Duration::from_millis(300), ..HttpLimits::default() };
    let s = serve_with_chain(4, limits, &rpc_url).await;
    let (status, body) = s.post_with_voucher(embed(json!("Hello, world!"))).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(error(&body)["type"], "timeout_error");
    assert_eq!(s.gateway.queue.waiting(), 0, "the timed-out request gave its queue place back");
}

/// The value of the series `name{labels}` in a Prometheus text exposition, if present.
fn series(exposition: &str, name_and_labels: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let s = serve(4, HttpLimits::default()).await;
    for _ in 0..2 {
        let (status, _) = s.post(json!({ "model": "all-MiniLM-L6-v2", "input": "" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    for path in ["/nowhere/1", "/nowhere/2", "/nowhere/3"] {
        assert_eq!(s.get(path).await.0, StatusCode::NOT_FOUND);
    }
    let response = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    // Counters are process-wide: under nextest each test has its own process, so these are
    // exact; other tests in a shared process could only add to them.
    let bad = series(&text, r#"gateway_http_requests_total{route="/v1/embeddings",status="400"}"#);
    assert!(bad.is_some_and(|n| n >= 2.0), "{text}");
    // Unknown paths share one series instead of one per path.
    let unknown = series(&text, r#"gateway_http_requests_total{route="unmatched",status="404"}"#);
    assert!(unknown.is_some_and(|n| n >= 3.0), "{text}");
    assert!(!text.contains("/nowhere/"), "{text}");
    assert!(
        text.contains(r#"gateway_http_request_duration_seconds{route="/v1/embeddings",quantile="0.5"}"#),
        "{text}"
    );
}

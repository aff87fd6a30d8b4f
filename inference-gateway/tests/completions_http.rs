//! The text endpoints' shapes and refusals, on the real model files: every request here is
//! refused before the chain would be asked (bad input → 400, no voucher → 402 for
//! prompt + max_tokens), so the escrow points at no chain. The paid path, with generation on
//! the GPU, runs against a devnet in paid_completions.rs.

mod common;
#[path = "common/llama.rs"]
mod llama;

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use common::minilm_dir;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tora_core::money::ToraUnits;
use tora_inference_gateway::api::{
    Gateway, HttpLimits, TEXT_MODEL_ID, TextEndpoint, TextModel, router_with_text,
};
use tora_inference_gateway::formats::gguf::Gguf;
use tora_inference_gateway::metering::Meter;
use tora_inference_gateway::models::bert::queue::EmbedQueue;
use tora_inference_gateway::models::llama::{CpuLlama, HostWeights, LlamaFiles};
use tora_inference_gateway::payment::{Cashier, Escrow, MemoryVoucherStore, PricePerToken};
use tora_inference_gateway::{CpuEmbedder, SentenceTokenizer};

const PRICE: u64 = 1_000_000_000_000_007;
/// The text model's price per token: a model's own, not the embeddings'.
const TEXT_PRICE: u64 = 3_000_000_000_000_011;

struct Served {
    url: String,
    http: reqwest::Client,
}

/// The API with SmolLM2 on the CPU reference (no request here reaches the model).
async fn serve() -> Served {
    let dir = minilm_dir();
    let (queue, _worker) = EmbedQueue::start(CpuEmbedder::load(&dir).unwrap(), 4);
    let rpc = ProviderBuilder::new().connect_http("http://127.0.0.1:9".parse().unwrap()).erased();
    let escrow = Escrow::new(rpc, 31337, Address::repeat_byte(0xe5), Address::repeat_byte(0x9a));
    let gateway = Arc::new(Gateway {
        meter: Meter::new(SentenceTokenizer::load(&dir).unwrap()),
        queue,
        cashier: Cashier::new(
            MemoryVoucherStore::default(),
            escrow,
            PricePerToken(ToraUnits(U256::from(PRICE))),
        ),
        dim: 384,
    });
    let LlamaFiles { cfg, tokenizer, chat, .. } = LlamaFiles::load(&llama::smollm_path()).unwrap();
    let weights = HostWeights::load(&Gguf::load(&llama::smollm_path()).unwrap(), &cfg).unwrap();
    let text = TextModel::new(Box::new(CpuLlama::new(cfg, weights)), tokenizer, chat, 2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let text =
        TextEndpoint { model: Arc::new(text), price: PricePerToken(ToraUnits(U256::from(TEXT_PRICE))) };
    let app = router_with_text(gateway, Some(text), HttpLimits::default());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Served { url, http: reqwest::Client::new() }
}

impl Served {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(format!("{}{path}", self.url)).json(&body).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

use common::openai_error as error;

#[tokio::test]
async fn bad_requests_get_openai_shaped_400s() {
    let s = serve().await;
    let completion = |extra: Value| {
        let mut body = json!({ "model": TEXT_MODEL_ID, "prompt": "Hello" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, param) in [
        (json!({ "max_tokens": 0 }), "max_tokens"),
        (json!({ "max_tokens": 513 }), "max_tokens"),
        (json!({ "temperature": 2.5 }), "temperature"),
        (json!({ "top_p": 0.0 }), "top_p"),
        (json!({ "stop": ["a", "b", "c", "d", "e"] }), "stop"),
        (json!({ "stop": "" }), "stop"),
        (json!({ "prompt": "" }), "prompt"),
        (json!({ "prompt": ["a", "b"] }), "prompt"),
    ] {
        let (status, body) = s.post("/v1/completions", completion(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {body}");
        assert_eq!(error(&body)["param"], param, "{extra}");
        assert_eq!(error(&body)["type"], "invalid_request_error");
    }
    let long = "word ".repeat(2100); // 2100 tokens + 16 over the 2048-token context
    let (status, body) = s.post("/v1/completions", completion(json!({ "prompt": long }))).await;
    assert_eq!(
        (status, error(&body)["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("context_length_exceeded"))
    );

    let (status, body) =
        s.post("/v1/chat/completions", json!({ "model": TEXT_MODEL_ID, "messages": [] })).await;
    assert_eq!((status, error(&body)["param"].as_str()), (StatusCode::BAD_REQUEST, Some("messages")));
    let bad_role = json!({ "model": TEXT_MODEL_ID, "messages": [{ "role": "robot", "content": "hi" }] });
    let (status, body) = s.post("/v1/chat/completions", bad_role).await;
    assert_eq!((status, error(&body)["param"].as_str()), (StatusCode::BAD_REQUEST, Some("messages")));

    let (status, body) = s.post("/v1/completions", json!({ "model": "gpt-4", "prompt": "Hello" })).await;
    assert_eq!((status, error(&body)["code"].as_str()), (StatusCode::NOT_FOUND, Some("model_not_found")));
    let (status, body) = s.post("/v1/completions", json!({ "model": TEXT_MODEL_ID })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    error(&body);
}

#[tokio::test]
async fn an_unpaid_completion_gets_402_for_prompt_plus_max_tokens() {
    let s = serve().await;
    let prompt_tokens = llama::smollm().tokenizer.encode("The capital of France is").unwrap().len() as u64;
    assert_eq!(prompt_tokens, 5);
    let body = json!({ "model": TEXT_MODEL_ID, "prompt": "The capital of France is", "max_tokens": 10 });
    let (status, body) = s.post("/v1/completions", body).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(error(&body)["amount_due"], (U256::from(TEXT_PRICE) * U256::from(15)).to_string());

    // The chat prompt: the default system turn + the user turn + the assistant opener.
    let chat = json!({
        "model": TEXT_MODEL_ID,
        "messages": [{ "role": "user", "content": "What is the capital of France?" }],
        "max_tokens": 3,
    });
    let (status, body) = s.post("/v1/chat/completions", chat).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let expected = llama::capital_prompt().len() as u64 + 3;
    assert_eq!(error(&body)["amount_due"], (U256::from(TEXT_PRICE) * U256::from(expected)).to_string());
}

/// What a 402 asks for, in tokens.
fn tokens_due(body: &Value) -> U256 {
    let due: U256 = error(body)["amount_due"].as_str().unwrap().parse().unwrap();
    assert_eq!(due % U256::from(TEXT_PRICE), U256::ZERO);
    due / U256::from(TEXT_PRICE)
}

#[tokio::test]
async fn over_the_context_a_request_that_asks_to_truncate_drops_its_oldest_input() {
    let s = serve().await;
    // 2,100 tokens + 16: over the 2,048-token context.
    let long = "word ".repeat(2100);
    let completion =
        json!({ "model": TEXT_MODEL_ID, "prompt": long.clone(), "max_tokens": 16, "truncate": true });
    let (status, body) = s.post("/v1/completions", completion).await;
    // Cut to the 2,032 tokens that leave room for 16: the whole context is due.
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(tokens_due(&body), U256::from(2048));

    // A chat loses whole turns, oldest first; the system turn and the question stay.
    let system = json!({ "role": "system", "content": "Answer in one word." });
    let question = json!({ "role": "user", "content": "What is the capital of France?" });
    let filler = json!({ "role": "user", "content": "word ".repeat(1500) });
    let reply = json!({ "role": "assistant", "content": "Noted." });
    let chat = |messages: Value, truncate: bool| json!({ "model": TEXT_MODEL_ID, "messages": messages, "max_tokens": 8, "truncate": truncate });
    let short = json!([system.clone(), reply.clone(), question.clone()]);
    let (status, body) = s.post("/v1/chat/completions", chat(short, false)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let kept = tokens_due(&body);
    let two_fillers =
        json!([system.clone(), filler.clone(), filler.clone(), reply.clone(), question.clone()]);
    let (status, body) = s.post("/v1/chat/completions", chat(two_fillers.clone(), false)).await;
    assert_eq!(error(&body)["code"], "context_length_exceeded", "{status}");
    let (status, body) = s.post("/v1/chat/completions", chat(two_fillers, true)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    // Dropping the oldest filler (1,500 tokens) is enough: the rest fits with one left.
    let one_filler = json!([system.clone(), filler, reply, question]);
    let (_, fits) = s.post("/v1/chat/completions", chat(one_filler, false)).await;
    assert_eq!(tokens_due(&body), tokens_due(&fits));
    assert!(tokens_due(&fits) > kept + U256::from(1500));

    // A last message too long alone is refused even when truncation is asked for.
    let too_long = json!({ "role": "user", "content": long });
    let (status, body) = s.post("/v1/chat/completions", chat(json!([system, too_long]), true)).await;
    assert_eq!(
        (status, error(&body)["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("context_length_exceeded"))
    );
}

#[tokio::test]
async fn models_and_pricing_list_both_models() {
    let s = serve().await;
    let (status, body) = s.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["all-MiniLM-L6-v2", TEXT_MODEL_ID]);
    let (_, body) = s.get("/v1/pricing").await;
    let prices: Vec<(&str, &str)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"].as_str().unwrap(), m["price_per_token"].as_str().unwrap()))
        .collect();
    assert_eq!(prices, [("all-MiniLM-L6-v2", "1000000000000007"), (TEXT_MODEL_ID, "3000000000000011")]);
}

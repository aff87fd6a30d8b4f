//! End to end on a devnet: a ToraAccount with TORA in InferenceEscrow pays completions with
//! ERC-1271 vouchers covering prompt + max_tokens; SmolLM2 generates on the GPU (lavapipe);
//! the answers carry exact usage, and a streamed chat arrives as server-sent events ending
//! in `[DONE]`.

mod common;
#[path = "common/llama.rs"]
mod llama;

use alloy::primitives::{B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use common::minilm_dir;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tora_core::escrow_voucher::Voucher;
use tora_core::money::ToraUnits;
use tora_devnet::SmartWallet;
use tora_devnet::harness::{Harness, tora};
use tora_inference_gateway::api::TEXT_MODEL_ID;
use tora_inference_gateway::{GatewaySettings, start};

const PRICE: u64 = 1_000_000_000_000_007;

fn cost(tokens: u64) -> U256 {
    U256::from(PRICE) * U256::from(tokens)
}

fn signed(h: &Harness, wallet: &SmartWallet, provider: alloy::primitives::Address, amount: U256) -> String {
    let digest =
        Voucher::new(wallet.address, provider, amount).digest(h.chain_id, h.contracts().inference_escrow);
    json!({
        "payer": wallet.address,
        "cumulativeAmount": amount.to_string(),
        "signature": Bytes::from(wallet.sign_digest(digest).to_vec()),
    })
    .to_string()
}

/// The `data:` payloads of a server-sent event stream.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smart_wallet_pays_for_a_completion_and_a_streamed_chat() {
    let h = Harness::start().await;
    let wallet = common::wallet_with_escrow(&h, 9, tora(1)).await;

    let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x43)).unwrap();
    let mut settings = GatewaySettings::new(
        h.devnet.deployment.clone(),
        "127.0.0.1:0".parse().unwrap(),
        minilm_dir(),
        ToraUnits(U256::from(PRICE)),
        key.clone(),
    );
    settings.redeem_interval = None;
    settings.text_model = Some(llama::smollm_path());
    settings.http.request_timeout = std::time::Duration::from_secs(600);
    let gateway = start(settings).await.expect("gateway starts");
    let url = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();
    let provider = key.address();

    // "The capital of France is": 5 tokens; 3 more at most: the voucher covers 8.
    let body = json!({ "model": TEXT_MODEL_ID, "prompt": "The capital of France is", "max_tokens": 3, "temperature": 0 });
    let response = http
        .post(format!("{url}/v1/completions"))
        .header("x-tora-voucher", signed(&h, &wallet, provider, cost(8)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let answer: Value = response.json().await.unwrap();
    println!("completion: {answer}");
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], TEXT_MODEL_ID);
    assert_eq!(answer["usage"], json!({ "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8 }));
    assert_eq!(answer["choices"][0]["finish_reason"], "length");
    assert_eq!(answer["choices"][0]["text"], COMPLETION_TEXT);
    assert_eq!(headers["x-tora-charged"], cost(8).to_string().as_str());
    assert_eq!(headers["x-tora-used"], cost(8).to_string().as_str());
    assert_eq!(headers["x-tora-cumulative-amount"], cost(8).to_string().as_str());

    // The chat: default system turn + question (37 tokens), 6 more at most, stopping at
    // " Paris" (which is generated, so metered, but not part of the answer).
    let prompt_tokens = llama::capital_prompt().len() as u64;
    assert_eq!(prompt_tokens, 37);
    let chat = json!({
        "model": TEXT_MODEL_ID,
        "messages": [{ "role": "user", "content": "What is the capital of France?" }],
        "max_tokens": 6,
        "temperature": 0,
        "stop": [" Paris"],
        "stream": true,
    });
    let response = http
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tora-voucher", signed(&h, &wallet, provider, cost(8 + 37 + 6)))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-tora-charged"], cost(37 + 6).to_string().as_str());
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(text, "The capital of France is");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"], json!({ "prompt_tokens": 37, "completion_tokens": 6, "total_tokens": 43 }));

    // The same voucher again pays for nothing.
    let response = http
        .post(format!("{url}/v1/completions"))
        .header("x-tora-voucher", signed(&h, &wallet, provider, cost(8 + 37 + 6)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
}

/// SmolLM2's greedy continuation of "The capital of France is", 3 tokens.
const COMPLETION_TEXT: &str = " Paris.\n";

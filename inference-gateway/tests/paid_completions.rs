//! End to end on a devnet: a ToraAccount with TORA in InferenceEscrow pays completions with
//! ERC-1271 vouchers that make room for prompt + max_tokens; SmolLM2 generates on the GPU
//! (lavapipe); each call is charged exactly prompt + generated tokens, the room left carries
//! over to the next call, a streamed chat arrives as server-sent events ending in `[DONE]`,
//! the ledger survives a restart (Redis), and the provider redeems exactly what was charged.

mod common;
#[path = "common/llama.rs"]
mod llama;

use alloy::primitives::{Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tora_core::contracts::InferenceEscrow;
use tora_core::escrow_voucher::Voucher;
use tora_core::money::ToraUnits;
use tora_devnet::SmartWallet;
use tora_devnet::harness::{Harness, tora};
use tora_devnet::redis_server::RedisServer;
use tora_inference_gateway::api::TEXT_MODEL_ID;
use tora_inference_gateway::payment::{Escrow, Redeemer, RedisVoucherStore, VoucherStore};
use tora_inference_gateway::{RunningGateway, start};

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

async fn start_gateway(h: &Harness, key: &PrivateKeySigner, redis: &RedisServer) -> RunningGateway {
    let mut settings = common::gateway_settings(h, key, PRICE, Some(&redis.url));
    settings.text_model = Some(llama::smollm_path());
    settings.http.request_timeout = std::time::Duration::from_secs(600);
    start(settings).await.expect("gateway starts")
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn complete(url: &str, body: &Value, voucher: String) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/completions"))
        .header("x-tora-voucher", voucher)
        .json(body)
        .send()
        .await
        .unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smart_wallet_pays_exactly_the_tokens_run_and_the_provider_redeems_exactly_that() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let key = common::funded_provider(&h, 0x43).await;
    let wallet = common::wallet_with_escrow(&h, 9, key.address(), tora(1)).await;

    let gateway = start_gateway(&h, &key, &redis).await;
    let mut url = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();
    let provider = key.address();
    let store = RedisVoucherStore::connect(&redis.url, provider).await.unwrap();
    let rpc = ProviderBuilder::new().connect_http(h.devnet.deployment.rpc_url.parse().unwrap()).erased();
    let redeemer = Redeemer::new(
        &h.devnet.deployment.rpc_url,
        key.clone(),
        Escrow::new(rpc, h.chain_id, escrow_addr, provider),
    )
    .unwrap();

    // "The capital of France is": 5 tokens; 3 more at most: the voucher makes room for 8,
    // and all 8 run.
    let body = json!({ "model": TEXT_MODEL_ID, "prompt": "The capital of France is", "max_tokens": 3, "temperature": 0 });
    let answer = complete(&url, &body, signed(&h, &wallet, provider, cost(8))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    println!("completion: {}", answer.body);
    assert_eq!(answer.body["object"], "text_completion");
    assert_eq!(answer.body["model"], TEXT_MODEL_ID);
    assert_eq!(
        answer.body["usage"],
        json!({ "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8 })
    );
    assert_eq!(answer.body["choices"][0]["finish_reason"], "length");
    assert_eq!(answer.body["choices"][0]["text"], COMPLETION_TEXT);
    assert_eq!(answer.headers["x-tora-charged"], cost(8).to_string().as_str());
    assert_eq!(answer.headers["x-tora-used"], cost(8).to_string().as_str());
    assert_eq!(answer.headers["x-tora-cumulative-amount"], cost(8).to_string().as_str());

    // The chat: default system turn + question (37 tokens), 10 more at most, stopping at
    // " Paris", the 6th token (generated, so charged, but not part of the answer): 47 held,
    // 43 charged.
    let prompt_tokens = llama::capital_prompt().len() as u64;
    assert_eq!(prompt_tokens, 37);
    let chat = capital_chat();
    let response = http
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tora-voucher", signed(&h, &wallet, provider, cost(8 + 47)))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-tora-held"], cost(47).to_string().as_str());
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
    assert_eq!(
        last["tora_charge"],
        json!({ "charged": cost(43).to_string(), "cumulative_amount": cost(8 + 43).to_string() })
    );

    // The same voucher again lets nothing in; the next needs to be newer, and to make room for
    // the 51 consumed and the next call's 8.
    let answer = complete(&url, &body, signed(&h, &wallet, provider, cost(55))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED, "{}", answer.body);
    assert_eq!(answer.body["error"]["amount_due"], cost(8).to_string());
    assert_eq!(answer.body["error"]["cumulative_amount_expected"], cost(59).to_string());

    // Redeemed now, the provider claims the 51 tokens run, not the voucher's 55.
    let redemption = redeemer.redeem_latest(&store).await.unwrap();
    assert_eq!((redemption.vouchers, redemption.paid), (1, ToraUnits(cost(51))));
    assert_eq!(h.tora_balance(provider).await, cost(51));
    assert_eq!(escrow.redeemed(wallet.address, provider).call().await.unwrap(), cost(51));

    // The room left under the last voucher carries over: 59 (not 55 + 8) pays the next call.
    let answer = complete(&url, &body, signed(&h, &wallet, provider, cost(59))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["x-tora-charged"], cost(8).to_string().as_str());
    assert_eq!(answer.headers["x-tora-cumulative-amount"], cost(59).to_string().as_str());

    // A completion that stops early, whole: 5 + 10 held, stopped by "." after " Paris" and ".".
    let early = json!({
        "model": TEXT_MODEL_ID, "prompt": "The capital of France is", "max_tokens": 10,
        "temperature": 0, "stop": ["."],
    });
    let answer = complete(&url, &early, signed(&h, &wallet, provider, cost(59 + 15))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["choices"][0]["text"], " Paris");
    assert_eq!(answer.body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer.body["usage"],
        json!({ "prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7 })
    );
    assert_eq!(answer.headers["x-tora-charged"], cost(7).to_string().as_str());
    assert_eq!(answer.headers["x-tora-used"], cost(7).to_string().as_str());
    assert_eq!(answer.headers["x-tora-cumulative-amount"], cost(66).to_string().as_str());

    // A restart keeps the ledger: the last voucher is spent, and 66 are consumed.
    gateway.tasks.iter().for_each(|t| t.abort());
    let gateway = start_gateway(&h, &key, &redis).await;
    url = format!("http://{}", gateway.address);
    let answer = complete(&url, &body, signed(&h, &wallet, provider, cost(74))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.body["error"]["cumulative_amount_expected"], (cost(74) + U256::from(1)).to_string());
    let ledger = store.ledger(wallet.address).await.unwrap();
    assert_eq!((ledger.consumed, ledger.held()), (cost(66), U256::ZERO));

    // The provider is paid exactly the 66 tokens run, of vouchers up to 74.
    let redemption = redeemer.redeem_latest(&store).await.unwrap();
    assert_eq!((redemption.vouchers, redemption.paid), (1, ToraUnits(cost(15))));
    assert_eq!(h.tora_balance(provider).await, cost(66));
    assert_eq!(escrow.redeemed(wallet.address, provider).call().await.unwrap(), cost(66));
    assert_eq!(escrow.balanceOf(wallet.address, provider).call().await.unwrap(), tora(1) - cost(66));
    let again = redeemer.redeem_latest(&store).await.unwrap();
    assert_eq!((again.vouchers, again.tx), (0, None), "nothing left to redeem");
    gateway.tasks.iter().for_each(|t| t.abort());
}

/// SmolLM2's greedy continuation of "The capital of France is", 3 tokens.
const COMPLETION_TEXT: &str = " Paris.\n";

/// Issue 13, SIGTERM: a gateway asked to stop while it streams an answer stops taking new
/// requests but finishes the stream, and the charge is recorded before it exits. Before, stop
/// aborted the server: the stream was cut and the hold never settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_gateway_finishes_the_answer_in_flight_and_records_its_charge() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let key = common::funded_provider(&h, 0x44).await;
    let wallet = common::wallet_with_escrow(&h, 10, key.address(), tora(1)).await;
    let provider = key.address();
    let gateway = start_gateway(&h, &key, &redis).await;
    let url = format!("http://{}", gateway.address);
    let chat = capital_chat();
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tora-voucher", signed(&h, &wallet, provider, cost(47)))
        .json(&chat)
        .send()
        .await
        .unwrap();
    // The headers are in: the generation is running when the stop begins.
    assert_eq!(response.status(), StatusCode::OK);
    let stopping = tokio::spawn(gateway.stop());
    let events = sse_data(&response.text().await.unwrap());
    stopping.await.unwrap();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(last["tora_charge"]["charged"], cost(43).to_string(), "{last}");
    let store = RedisVoucherStore::connect(&redis.url, provider).await.unwrap();
    let ledger = store.ledger(wallet.address).await.unwrap();
    assert_eq!(ledger.consumed, cost(43), "the charge is recorded");
    assert!(reqwest::get(format!("{url}/health")).await.is_err(), "the stopped gateway takes no request");
}

/// The streamed chat both tests send: the capital question, 10 tokens at most, stopping at
/// " Paris" (the 6th token).
fn capital_chat() -> serde_json::Value {
    json!({
        "model": TEXT_MODEL_ID,
        "messages": [{ "role": "user", "content": "What is the capital of France?" }],
        "max_tokens": 10,
        "temperature": 0,
        "stop": [" Paris"],
        "stream": true,
    })
}

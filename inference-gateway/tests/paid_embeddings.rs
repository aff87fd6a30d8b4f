//! End to end on a devnet: a ToraAccount deposits TORA in InferenceEscrow, pays each call with
//! an ERC-1271 voucher, and the provider redeems exactly what the calls cost. The gateway runs
//! as `tora gateway` would start it (GPU embedder on lavapipe, vouchers in Redis).

mod common;

use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tora_core::contracts::InferenceEscrow;
use tora_core::escrow_voucher::Voucher;
use tora_core::money::ToraUnits;
use tora_devnet::SmartWallet;
use tora_devnet::harness::{Harness, tora};
use tora_devnet::keys::{self, signer};
use tora_devnet::redis_server::RedisServer;
use tora_inference_gateway::payment::{Escrow, Redeemer, RedisVoucherStore, VoucherStore};
use tora_inference_gateway::{RunningGateway, start};

/// 1e15 + 7 base units per token: not round, so a wrong multiplication shows.
const PRICE: u64 = 1_000_000_000_000_007;

fn cost(tokens: u64) -> U256 {
    U256::from(PRICE) * U256::from(tokens)
}

struct Client<'a> {
    h: &'a Harness,
    http: reqwest::Client,
    url: String,
    provider: alloy::primitives::Address,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn error_field(&self, field: &str) -> Option<&str> {
        self.body["error"][field].as_str()
    }
}

impl Client<'_> {
    /// A voucher for `amount`, signed by `sign` over the escrow's EIP-712 digest.
    fn voucher(&self, wallet: &SmartWallet, amount: U256, sign: impl Fn(B256) -> Vec<u8>) -> String {
        let digest = Voucher::new(wallet.address, self.provider, amount)
            .digest(self.h.chain_id, self.h.contracts().inference_escrow);
        json!({
            "payer": wallet.address,
            "cumulativeAmount": amount.to_string(),
            "signature": Bytes::from(sign(digest)),
        })
        .to_string()
    }

    fn signed(&self, wallet: &SmartWallet, amount: U256) -> String {
        self.voucher(wallet, amount, |digest| wallet.sign_digest(digest).to_vec())
    }

    async fn embed(&self, body: Value, voucher: Option<String>) -> Answer {
        let mut request = self.http.post(format!("{}/v1/embeddings", self.url)).json(&body);
        if let Some(voucher) = voucher {
            request = request.header("x-tora-voucher", voucher);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.json().await.unwrap(),
        }
    }
}

fn embed(input: Value) -> Value {
    json!({ "model": "all-MiniLM-L6-v2", "input": input })
}

async fn start_gateway(h: &Harness, key: &PrivateKeySigner, redis: &RedisServer) -> RunningGateway {
    let settings = common::gateway_settings(h, key, PRICE, Some(&redis.url));
    start(settings).await.expect("gateway starts")
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smart_wallet_pays_per_token_and_the_provider_redeems_exactly_that() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());

    let key = common::funded_provider(&h, 0x42).await;
    // A deployed ToraAccount with 1 TORA in its channel to the provider, deposited for it by
    // the deployer.
    let wallet = common::wallet_with_escrow(&h, 7, key.address(), tora(1)).await;

    let started = std::time::Instant::now();
    let gateway = start_gateway(&h, &key, &redis).await;
    eprintln!("gateway start (chain checks, model load, kernels): {:?}", started.elapsed());
    assert_eq!(gateway.provider, key.address());
    let mut client = Client {
        h: &h,
        http: reqwest::Client::new(),
        url: format!("http://{}", gateway.address),
        provider: key.address(),
    };

    // [CLS] hello , world ! [SEP] is 6 tokens; [CLS] hello world [SEP] is 4.
    let answer = client.embed(embed(json!("Hello, world!")), None).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.error_field("amount_due"), Some(cost(6).to_string().as_str()));

    let paid = std::time::Instant::now();
    let answer = client.embed(embed(json!("Hello, world!")), Some(client.signed(&wallet, cost(6)))).await;
    eprintln!("first paid call (6 tokens; voucher checks, forward pass, Redis): {:?}", paid.elapsed());
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["object"], "list");
    assert_eq!(answer.body["model"], "all-MiniLM-L6-v2");
    assert_eq!(answer.body["usage"], json!({ "prompt_tokens": 6, "total_tokens": 6 }));
    assert_eq!(
        (&answer.body["data"][0]["object"], &answer.body["data"][0]["index"]),
        (&json!("embedding"), &json!(0))
    );
    let alone: Vec<f32> = serde_json::from_value(answer.body["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(alone.len(), 384);
    assert!((norm(&alone) - 1.0).abs() < 1e-4, "unit length, got {}", norm(&alone));
    assert_eq!(answer.headers["x-tora-charged"], cost(6).to_string().as_str());
    assert_eq!(answer.headers["x-tora-cumulative-amount"], cost(6).to_string().as_str());

    // The same voucher again pays for nothing.
    let answer = client.embed(embed(json!("Hello, world!")), Some(client.signed(&wallet, cost(6)))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.error_field("code"), Some("voucher_required"));
    assert_eq!(answer.error_field("amount_due"), Some(cost(6).to_string().as_str()));
    assert_eq!(answer.error_field("cumulative_amount_expected"), Some(cost(12).to_string().as_str()));

    // Two texts, 10 tokens, with a voucher one base unit short.
    let two = json!({ "model": "all-MiniLM-L6-v2", "input": ["hello world", "Hello, world!"], "encoding_format": "base64" });
    let answer = client.embed(two.clone(), Some(client.signed(&wallet, cost(16) - U256::from(1)))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.error_field("amount_due"), Some(cost(10).to_string().as_str()));
    assert_eq!(answer.error_field("cumulative_amount_expected"), Some(cost(16).to_string().as_str()));

    let paid = std::time::Instant::now();
    let answer = client.embed(two, Some(client.signed(&wallet, cost(16)))).await;
    eprintln!("second paid call (2 texts, 10 tokens, base64): {:?}", paid.elapsed());
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["usage"], json!({ "prompt_tokens": 10, "total_tokens": 10 }));
    let decoded: Vec<Vec<f32>> = answer.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(item["embedding"].as_str().unwrap())
                .unwrap();
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        })
        .collect();
    assert_eq!(decoded.iter().map(Vec::len).collect::<Vec<_>>(), vec![384, 384]);
    let diff = decoded[1].iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-4, "the same text alone and padded in a batch: max diff {diff}");

    // The dashboard's figures: 16 tokens run for pay, their price in micro-TORA rounded down
    // (16 × (1e15 + 7) base units is 16,000 micro-TORA and 112 base units).
    let metrics =
        client.http.get(format!("{}/metrics", client.url)).send().await.unwrap().text().await.unwrap();
    let counter = |series: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series}"));
        line[series.len()..].trim().parse().unwrap()
    };
    assert_eq!(counter(r#"gateway_tokens_total{model="all-MiniLM-L6-v2"}"#), 16);
    assert_eq!(counter(r#"gateway_charged_micro_tora_total{model="all-MiniLM-L6-v2"}"#), 16_000);

    // Signed by a key that is not the wallet's owner: ERC-1271 says no.
    let forged = client.voucher(&wallet, cost(22), |digest| {
        signer(keys::BUNDLER).sign_hash_sync(&digest).unwrap().as_bytes().to_vec()
    });
    let answer = client.embed(embed(json!("Hello, world!")), Some(forged)).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.error_field("code"), Some("invalid_voucher_signature"));

    // More than the 1 TORA deposit.
    let answer = client.embed(embed(json!("Hello, world!")), Some(client.signed(&wallet, tora(2)))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.error_field("code"), Some("insufficient_deposit"));

    // While the wallet asks the escrow for its deposit back, nothing is served, whatever it
    // signs (403, so the OpenAI SDK raises PermissionDenied): the notice is the provider's time
    // to redeem. Called off, the wallet is served again.
    let owner = tora_devnet::provider_for(&h.devnet.deployment.rpc_url, keys::WALLET_OWNER).unwrap();
    let account = tora_core::contracts::SimpleAccount::new(wallet.address, owner.clone());
    let as_wallet = |call: Vec<u8>| account.execute(escrow_addr, U256::ZERO, call.into());
    let request = InferenceEscrow::requestWithdrawalCall { provider: key.address() }.abi_encode();
    tora_devnet::confirm(&owner, "request", as_wallet(request).send().await.unwrap()).await.unwrap();
    let answer = client.embed(embed(json!("Hello, world!")), Some(client.signed(&wallet, cost(22)))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(answer.error_field("code"), Some("withdrawal_requested"));
    let cancel = InferenceEscrow::cancelWithdrawalCall { provider: key.address() }.abi_encode();
    tora_devnet::confirm(&owner, "cancel", as_wallet(cancel).send().await.unwrap()).await.unwrap();

    // A restart keeps the vouchers: the last one is still spent.
    gateway.tasks.iter().for_each(|t| t.abort());
    let gateway = start_gateway(&h, &key, &redis).await;
    client.url = format!("http://{}", gateway.address);
    let answer = client.embed(embed(json!("Hello, world!")), Some(client.signed(&wallet, cost(16)))).await;
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.error_field("cumulative_amount_expected"), Some(cost(22).to_string().as_str()));

    // The provider redeems the latest voucher: exactly the 16 tokens served.
    let store = RedisVoucherStore::connect(&redis.url, key.address()).await.unwrap();
    let ledger = store.ledger(wallet.address).await.unwrap();
    assert_eq!((ledger.latest.unwrap().cumulative_amount, ledger.consumed), (cost(16), cost(16)));
    let rpc = ProviderBuilder::new().connect_http(h.devnet.deployment.rpc_url.parse().unwrap()).erased();
    let view = Escrow::new(rpc, h.chain_id, escrow_addr, key.address());
    let redeemer = Redeemer::new(&h.devnet.deployment.rpc_url, key.clone(), view).unwrap();
    let redemption = redeemer.redeem_latest(&store).await.unwrap();
    assert_eq!((redemption.vouchers, redemption.paid), (1, ToraUnits(cost(16))));
    assert_eq!(h.tora_balance(key.address()).await, cost(16));
    assert_eq!(escrow.balanceOf(wallet.address, key.address()).call().await.unwrap(), tora(1) - cost(16));
    assert_eq!(escrow.redeemed(wallet.address, key.address()).call().await.unwrap(), cost(16));
    let again = redeemer.redeem_latest(&store).await.unwrap();
    assert_eq!((again.vouchers, again.tx), (0, None), "nothing left to redeem");
    gateway.tasks.iter().for_each(|t| t.abort());
}

/// The cashier alone, for a plain key as payer (ECDSA, no ERC-1271) and an in-memory store
/// that loses its vouchers: what the escrow already paid out is never accepted again, two
/// calls at once never share the room under a voucher, and the provider claims what ran.
#[tokio::test]
async fn an_eoa_pays_with_ecdsa_and_redeemed_amounts_are_never_accepted_twice() {
    use tora_inference_gateway::payment::{
        Cashier, MemoryVoucherStore, PaymentError, PricePerToken, SignedVoucher,
    };

    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let payer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x51)).unwrap();
    let key = common::funded_provider(&h, 0x43).await;
    h.deposit_in_escrow(payer.address(), key.address(), tora(1)).await;

    let rpc = ProviderBuilder::new().connect_http(h.devnet.deployment.rpc_url.parse().unwrap()).erased();
    let view = Escrow::new(rpc, h.chain_id, escrow_addr, key.address());
    let cashier = |store| Cashier::new(store, view.clone(), PricePerToken(ToraUnits(U256::from(PRICE))));
    let voucher = |amount: U256, by: &PrivateKeySigner| {
        let digest = Voucher::new(payer.address(), key.address(), amount).digest(h.chain_id, escrow_addr);
        let signature = Bytes::from(by.sign_hash_sync(&digest).unwrap().as_bytes().to_vec());
        SignedVoucher { payer: payer.address(), cumulative_amount: amount, signature }
    };
    let price = ToraUnits(cost(10));

    let first = cashier(MemoryVoucherStore::default());
    let paid = first.authorize(Some(voucher(cost(10), &payer)), price).await.unwrap();
    assert_eq!(first.settle(paid, price).await.unwrap().cumulative_amount, cost(10));
    let other_key = signer(keys::BUNDLER);
    let err = first.authorize(Some(voucher(cost(20), &other_key)), price).await.unwrap_err();
    assert!(matches!(err, PaymentError::InvalidSignature { .. }), "{err}");
    let garbage = SignedVoucher { signature: Bytes::from(vec![1, 2, 3]), ..voucher(cost(20), &payer) };
    let err = first.authorize(Some(garbage), price).await.unwrap_err();
    assert!(matches!(err, PaymentError::InvalidSignature { .. }), "{err}");

    let redeemer = Redeemer::new(&h.devnet.deployment.rpc_url, key.clone(), view.clone()).unwrap();
    assert_eq!(redeemer.redeem_latest(first.store()).await.unwrap().paid, ToraUnits(cost(10)));
    assert_eq!(h.tora_balance(key.address()).await, cost(10));

    // A fresh in-memory store (a restart without Redis) knows no voucher, but the escrow
    // remembers what it paid: the old voucher buys nothing.
    let restarted = cashier(MemoryVoucherStore::default());
    match restarted.authorize(Some(voucher(cost(10), &payer)), price).await.unwrap_err() {
        PaymentError::Underpaid { due, expected, got } => {
            assert_eq!((due, expected, got), (price, cost(20), cost(10)));
        }
        other => panic!("{other}"),
    }
    let paid = restarted.authorize(Some(voucher(cost(20), &payer)), price).await.unwrap();
    assert_eq!(restarted.settle(paid, price).await.unwrap().cumulative_amount, cost(20));

    // Two calls at once, each with its own voucher, where the room fits one worst case of 10:
    // one is let in, the other told to sign for 20 consumed + 10 held + 10.
    let (first_call, second_call) = tokio::join!(
        restarted.authorize(Some(voucher(cost(35), &payer)), price),
        restarted.authorize(Some(voucher(cost(36), &payer)), price),
    );
    let (winner, refused) = match (first_call, second_call) {
        (Ok(winner), Err(refused)) | (Err(refused), Ok(winner)) => (winner, refused),
        (a, b) => panic!("exactly one call must be let in: {a:?} {b:?}"),
    };
    match refused {
        PaymentError::Underpaid { due, expected, .. } => assert_eq!((due, expected), (price, cost(40))),
        other => panic!("{other}"),
    }
    // It ran 3 tokens of its 10: the provider claims 23 in all, 13 of them now.
    let charge = restarted.settle(winner, ToraUnits(cost(3))).await.unwrap();
    assert_eq!((charge.price, charge.cumulative_amount), (ToraUnits(cost(3)), cost(23)));
    assert_eq!(redeemer.redeem_latest(restarted.store()).await.unwrap().paid, ToraUnits(cost(13)));
    assert_eq!(h.tora_balance(key.address()).await, cost(23));
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    assert_eq!(escrow.redeemed(payer.address(), key.address()).call().await.unwrap(), cost(23));
    assert_eq!(escrow.balanceOf(payer.address(), key.address()).call().await.unwrap(), tora(1) - cost(23));
}

/// Issue 12, item 2: a payer may ask for its deposit back right after being served, and the
/// next redemption may fail, so two redemption intervals must fit in the escrow's notice period.
/// Before, any interval shorter than the notice was accepted, one second short included.
#[tokio::test]
async fn a_redeem_interval_with_no_room_for_a_failed_redemption_is_refused_at_start() {
    let h = Harness::start().await;
    let notice = InferenceEscrow::new(h.contracts().inference_escrow, h.deployer.clone())
        .noticePeriod()
        .call()
        .await
        .unwrap();
    let key = signer(keys::PAYMASTER_SIGNER);
    for interval in [notice - 1, notice / 2 + 1] {
        let mut settings = common::gateway_settings(&h, &key, PRICE, None);
        settings.redeem_interval = Some(std::time::Duration::from_secs(interval));
        match start(settings).await {
            Err(e) => assert!(e.to_string().contains("two must fit"), "{e}"),
            Ok(_) => panic!("a gateway redeeming every {interval} s started with a notice of {notice} s"),
        }
    }
}

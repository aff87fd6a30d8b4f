//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

/// Where scripts/fetch-models.sh puts all-MiniLM-L6-v2. Fails the test, never skips it,
/// when the model is not there.
pub(crate) fn minilm_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(tora_inference_gateway::model_dir::MINILM_L6_V2);
    assert!(
        dir.join("model.safetensors").is_file() && dir.join("tokenizer.json").is_file(),
        "all-MiniLM-L6-v2 not found in {}: run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

/// Deterministic pseudo-random f32s in [-scale, scale): reproducible failures, no dependency.
pub(crate) fn random(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            (unit * 2.0 - 1.0) * scale
        })
        .collect()
}

pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Kernels must match their CPU reference to this much (max abs error).
pub(crate) const KERNEL_TOLERANCE: f32 = 1e-4;

/// The machine's Vulkan adapter: no adapter fails the test, it never skips.
pub(crate) fn gpu() -> tora_inference_gateway::Gpu {
    tora_inference_gateway::Gpu::new().unwrap_or_else(|e| panic!("these tests need a Vulkan adapter: {e}"))
}

/// Records what `record` dispatches into one command buffer and reads back `len` f32s of `out`.
pub(crate) fn run(
    gpu: &tora_inference_gateway::Gpu,
    out: &wgpu::Buffer,
    len: usize,
    record: impl FnOnce(&mut tora_inference_gateway::kernels::Pass<'_>),
) -> Vec<f32> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = tora_inference_gateway::kernels::Pass::new(&gpu.device, &mut encoder);
        record(&mut pass);
    }
    gpu.submit_and_read(encoder, out, len).expect("readback")
}

/// A deployed ToraAccount (ERC-1271, so it can sign vouchers) with `amount` TORA in its
/// escrow channel to `provider`.
pub(crate) async fn wallet_with_escrow(
    h: &tora_devnet::harness::Harness,
    salt: u64,
    provider: alloy::primitives::Address,
    amount: alloy::primitives::U256,
) -> tora_devnet::SmartWallet {
    let wallet = h.new_wallet(salt).await;
    let factory = tora_core::contracts::ToraAccountFactory::new(wallet.factory, h.deployer.clone());
    let pending = factory.createAccount(wallet.owner.address(), wallet.salt).send().await.unwrap();
    tora_devnet::confirm(&h.deployer, "create wallet", pending).await.unwrap();
    h.deposit_in_escrow(wallet.address, provider, amount).await;
    wallet
}

/// The provider: a fresh key (`byte` repeated) with 1 ETH for redemption gas and no TORA, so
/// its TORA balance is exactly what redemptions paid it.
pub(crate) async fn funded_provider(
    h: &tora_devnet::harness::Harness,
    byte: u8,
) -> alloy::signers::local::PrivateKeySigner {
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    let key =
        alloy::signers::local::PrivateKeySigner::from_bytes(&alloy::primitives::B256::repeat_byte(byte))
            .unwrap();
    let fund = alloy::rpc::types::TransactionRequest::default()
        .with_to(key.address())
        .with_value(alloy::primitives::U256::from(10u64.pow(18)));
    tora_devnet::confirm(&h.deployer, "fund provider", h.deployer.send_transaction(fund).await.unwrap())
        .await
        .unwrap();
    key
}

/// The error object of an OpenAI-shaped error body, after checking its shape.
pub(crate) fn openai_error(body: &serde_json::Value) -> &serde_json::Value {
    let e = &body["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{body}");
    e
}

/// The gateway as the paid tests run it: MiniLM at `price` base units per token, `key` as the
/// provider, vouchers in the Redis at `redis_url`, no redemption clock (the tests redeem).
pub(crate) fn gateway_settings(
    h: &tora_devnet::harness::Harness,
    key: &alloy::signers::local::PrivateKeySigner,
    price: u64,
    redis_url: Option<&str>,
) -> tora_inference_gateway::GatewaySettings {
    let mut settings = tora_inference_gateway::GatewaySettings::new(
        h.devnet.deployment.clone(),
        "127.0.0.1:0".parse().unwrap(),
        minilm_dir(),
        tora_core::money::ToraUnits(alloy::primitives::U256::from(price)),
        key.clone(),
    );
    settings.redis_url = redis_url.map(str::to_owned);
    settings.redeem_interval = None;
    settings
}

//! The paymaster service over HTTP JSON-RPC on the devnet: a wallet asks for a quote, signs the
//! permit it proposes, and the operation lands paying in TORA (sent straight to the EntryPoint).

use crate::common::{api_key, call, call_with_key, fit_gas, hex_bytes, start_service, start_service_with};
use alloy::primitives::{Address, Bytes, I256, U256};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tora_core::contracts::{EntryPoint, TORA, ToraPaymaster, ToraPriceFeed};
use tora_core::money::ToraUnits;
use tora_core::paymaster_quote::{QUOTE_DATA_LEN, QUOTE_WITH_PERMIT_LEN, token_cost_ceil};
use tora_core::permit::permit;
use tora_core::sponsorship::{Budget, MicroTora, ResetInterval, SponsorshipPolicy, SponsorshipStore};
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::harness::{Harness, event, tora};
use tora_devnet::{SmartWallet, confirm, keys, provider_for};
use tora_paymaster::sponsorship::MemoryStore;
use tora_paymaster::sponsorship::auth::Role;
use tora_paymaster::{PaymasterConfig, settlement};

fn zero_bytes(data: &[u8]) -> usize {
    data.iter().filter(|b| **b == 0).count()
}

#[tokio::test]
async fn a_new_wallet_pays_its_first_op_in_tora_through_the_service_with_a_permit() {
    let h = Harness::start().await;
    let url = start_service(&h, Duration::from_secs(3_600)).await;
    let c = h.contracts().clone();
    let wallet = h.new_wallet(11).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let recipient = Address::repeat_byte(0x42);
    let transfer: Bytes =
        alloy::sol_types::SolCall::abi_encode(&TORA::transferCall { to: recipient, value: tora(5) }).into();
    let mut op = h.op(&wallet, true, SmartWallet::execute(c.tora, U256::ZERO, transfer)).await;
    fit_gas(&h, &mut op, QUOTE_WITH_PERMIT_LEN).await;
    let chain = format!("{:#x}", h.chain_id);

    // 1. The quote: 0.0002 BNB per TORA is 5,000 TORA per BNB, plus the 5% markup.
    let quote = call(&url, "tora_getTokenQuote", json!([op, ENTRY_POINT_V07, chain])).await.unwrap();
    let rate = U256::from(5_250u64) * U256::from(10u64).pow(U256::from(18));
    assert_eq!(quote["exchangeRate"].as_str().unwrap().parse::<U256>().unwrap(), rate);
    let mut priced = op.clone();
    priced.paymaster = Some(c.paymaster);
    priced.paymaster_verification_gas_limit =
        Some(alloy::primitives::U128::from(PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT));
    priced.paymaster_post_op_gas_limit =
        Some(alloy::primitives::U128::from(PaymasterConfig::DEFAULT_POST_OP_GAS));
    let max_token_cost = token_cost_ceil(priced.max_cost_wei(), rate);
    assert_eq!(quote["maxTokenCost"].as_str().unwrap().parse::<U256>().unwrap(), max_token_cost);
    let estimated: U256 = quote["estimatedTokenCost"].as_str().unwrap().parse().unwrap();
    assert!(estimated > U256::ZERO && estimated <= max_token_cost);

    // 2. The wallet signs the permit the quote proposes (ERC-1271: the owner key signs the digest).
    let message = &quote["permit"]["typedData"]["message"];
    let deadline: U256 = message["deadline"].as_str().unwrap().parse().unwrap();
    let expected = permit(wallet.address, c.paymaster, max_token_cost, U256::ZERO, deadline);
    let digest = expected.tora_digest(h.chain_id, c.tora);
    assert_eq!(
        quote["permit"]["digest"].as_str().unwrap().parse::<alloy::primitives::B256>().unwrap(),
        digest
    );
    let signature = Bytes::from(wallet.sign_digest(digest).to_vec());
    let context = json!({ "token": c.tora, "permit": { "value": max_token_cost, "deadline": deadline, "signature": signature } });

    // 3. Stub data for estimation: the final length, no more zero bytes than the final data.
    let stub =
        call(&url, "pm_getPaymasterStubData", json!([op, ENTRY_POINT_V07, chain, context])).await.unwrap();
    assert_eq!(stub["isFinal"], false);
    assert_eq!(stub["paymaster"].as_str().unwrap().parse::<Address>().unwrap(), c.paymaster);
    let stub_data = hex_bytes(&stub["paymasterData"]);
    assert_eq!(stub_data.len(), QUOTE_WITH_PERMIT_LEN);

    // 4. The final data, then the wallet signs and the op lands.
    let data = call(&url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, chain, context])).await.unwrap();
    let paymaster_data = hex_bytes(&data["paymasterData"]);
    assert_eq!(paymaster_data.len(), stub_data.len());
    assert!(zero_bytes(&stub_data) <= zero_bytes(&paymaster_data));
    op.paymaster = Some(c.paymaster);
    op.paymaster_verification_gas_limit =
        serde_json::from_value(stub["paymasterVerificationGasLimit"].clone()).unwrap();
    op.paymaster_post_op_gas_limit = serde_json::from_value(stub["paymasterPostOpGasLimit"].clone()).unwrap();
    op.paymaster_data = Some(paymaster_data);
    let deposit_before = h.paymaster_deposit().await;
    let receipt = h.sign_and_handle(&wallet, op.clone()).await.unwrap();
    let landed: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(landed.success);
    let charged: ToraPaymaster::GasChargedInToken = event(&receipt);
    assert_eq!(charged.exchangeRate, rate);
    assert_eq!(charged.charge + charged.refund, max_token_cost);
    assert_eq!(h.tora_balance(c.paymaster).await, charged.charge);
    assert_eq!(h.tora_balance(wallet.address).await, tora(1_000) - tora(5) - charged.charge);
    assert_eq!(h.tora_balance(recipient).await, tora(5));
    assert_eq!(h.eth_balance(wallet.address).await, U256::ZERO);
    // The paymaster's TORA income covers what its EntryPoint deposit paid, at the oracle rate
    // before markup, to the wei.
    let spent = deposit_before - h.paymaster_deposit().await;
    assert_eq!(spent, landed.actualGasCost);
    let oracle_rate = U256::from(5_000u64) * U256::from(10u64).pow(U256::from(18));
    assert!(charged.charge >= token_cost_ceil(spent, oracle_rate) * U256::from(105) / U256::from(100));
}

#[tokio::test]
async fn bad_targets_contexts_and_prices_get_clear_errors() {
    let h = Harness::start().await;
    let url = start_service(&h, Duration::from_secs(3_600)).await;
    let c = h.contracts().clone();
    let wallet = h.new_wallet(12).await;
    let mut op: UserOperation = h.op(&wallet, true, Bytes::new()).await;
    fit_gas(&h, &mut op, QUOTE_WITH_PERMIT_LEN).await;
    let chain = format!("{:#x}", h.chain_id);
    let token = json!({ "token": c.tora });

    let err = call(&url, "pm_getPaymasterData", json!([op, Address::repeat_byte(1), chain, token]))
        .await
        .unwrap_err();
    assert_eq!(err["code"], -32602);
    assert!(err["message"].as_str().unwrap().contains("entry point"), "{err}");
    let err =
        call(&url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, "0x38", token])).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("chain"), "{err}");
    let err = call(
        &url,
        "pm_getPaymasterData",
        json!([op, ENTRY_POINT_V07, chain, { "token": Address::repeat_byte(9) }]),
    )
    .await
    .unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("unsupported token"), "{err}");
    let err = call(&url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, chain, {}])).await.unwrap_err();
    assert_eq!(err["code"], -32602);
    let err = call(&url, "pm_getPaymasterData", json!([{ "sender": "0x12" }, ENTRY_POINT_V07, chain, token]))
        .await
        .unwrap_err();
    assert_eq!(err["code"], -32602);
    let mut huge = serde_json::to_value(&op).unwrap();
    huge["callGasLimit"] = json!(format!("{:#x}", U256::MAX));
    let err =
        call(&url, "pm_getPaymasterData", json!([huge, ENTRY_POINT_V07, chain, token])).await.unwrap_err();
    assert_eq!(err["code"], -32602, "gas over uint128 is an invalid field");

    // A permit for less than the operation may cost.
    let small = json!({ "token": c.tora, "permit": { "value": "0x1", "deadline": U256::MAX, "signature": Bytes::from(vec![1u8; 65]) } });
    let err =
        call(&url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, chain, small])).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("permit allows"), "{err}");

    // The feed answers zero, then negative: refused, never priced.
    let updater = provider_for(&h.devnet.deployment.rpc_url, keys::PRICE_UPDATER).unwrap();
    let feed = ToraPriceFeed::new(c.price_feed, updater.clone());
    for answer in [0i64, -5] {
        let pending = feed.updateAnswer(I256::try_from(answer).unwrap()).send().await.unwrap();
        confirm(&updater, "update", pending).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await; // past the price cache's ttl
        let err =
            call(&url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, chain, token])).await.unwrap_err();
        assert_eq!(err["code"], -32501);
        assert!(err["message"].as_str().unwrap().contains("positive"), "{err}");
    }
}

#[tokio::test]
async fn a_stale_feed_is_refused() {
    let h = Harness::start().await;
    // A heartbeat of zero: the answer is stale as soon as a second has passed.
    let url = start_service(&h, Duration::ZERO).await;
    let wallet = h.new_wallet(13).await;
    let mut op: UserOperation = h.op(&wallet, true, Bytes::new()).await;
    fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let chain = format!("{:#x}", h.chain_id);
    let context = json!({ "token": h.contracts().tora });
    let err =
        call(&url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, chain, context])).await.unwrap_err();
    assert_eq!(err["code"], -32501);
    assert!(err["message"].as_str().unwrap().contains("stale"), "{err}");
}

#[tokio::test]
async fn a_dapp_sponsors_an_op_within_its_policy_and_the_budget_settles_to_the_actual_charge() {
    let h = Harness::start().await;
    let store = Arc::new(MemoryStore::default());
    let url = start_service_with(&h, Duration::from_secs(3_600), store.clone()).await;
    let c = h.contracts().clone();
    let sponsor = h.deployer_address();
    let pending = h.tora().approve(c.paymaster, tora(500)).send().await.unwrap();
    confirm(&h.deployer, "approve", pending).await.unwrap();
    let pending = h.paymaster().depositForSponsor(sponsor, tora(500)).send().await.unwrap();
    confirm(&h.deployer, "deposit", pending).await.unwrap();

    // The admin creates a policy: only TORA.transfer, 100 TORA a day.
    let transfer_selector = <TORA::transferCall as alloy::sol_types::SolCall>::SELECTOR;
    let policy = SponsorshipPolicy {
        id: "game".into(),
        name: "Game".into(),
        icon: None,
        dapp: "dapp-1".into(),
        sponsor,
        budget: Budget {
            global: Some(MicroTora(100_000_000)),
            per_user: None,
            per_op: None,
            max_ops: Some(5),
        },
        reset: ResetInterval::Daily,
        allowed_targets: vec![c.tora],
        allowed_selectors: vec![transfer_selector.into()],
        valid_after: 0,
        valid_until: 4_000_000_000,
    };
    let client = reqwest::Client::new();
    let admin_url = format!("{url}/admin/policies");
    let unauthenticated = client.post(&admin_url).json(&policy).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(unauthenticated.json::<Value>().await.unwrap()["error"].is_string());
    let as_dapp = client
        .post(&admin_url)
        .bearer_auth(api_key("dapp-1", Role::Dapp))
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(as_dapp.status(), 403);
    let admin_key = api_key("ops", Role::Admin);
    let created = client.post(&admin_url).bearer_auth(&admin_key).json(&policy).send().await.unwrap();
    assert_eq!(created.status(), 201);

    // A brand-new wallet with no TORA and no BNB.
    let wallet = h.new_wallet(21).await;
    let transfer: Bytes = alloy::sol_types::SolCall::abi_encode(&TORA::transferCall {
        to: Address::repeat_byte(1),
        value: U256::ZERO,
    })
    .into();
    let mut op = h.op(&wallet, true, SmartWallet::execute(c.tora, U256::ZERO, transfer)).await;
    fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
    let chain = format!("{:#x}", h.chain_id);
    let context = json!({ "sponsorshipPolicyId": "game" });
    let params = json!([op, ENTRY_POINT_V07, chain, context]);
    let dapp_key = api_key("dapp-1", Role::Dapp);

    let err = call(&url, "pm_getPaymasterStubData", params.clone()).await.unwrap_err();
    assert_eq!(err["code"], -32501, "no API key");
    let other_dapp = api_key("dapp-2", Role::Dapp);
    let err =
        call_with_key(&url, Some(&other_dapp), "pm_getPaymasterStubData", params.clone()).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("may not use"), "{err}");
    let off_list = h.op(&wallet, true, SmartWallet::execute(c.paymaster, U256::ZERO, Bytes::new())).await;
    let err = call_with_key(
        &url,
        Some(&dapp_key),
        "pm_getPaymasterData",
        json!([off_list, ENTRY_POINT_V07, chain, context]),
    )
    .await
    .unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("does not allow"), "{err}");

    let stub = call_with_key(&url, Some(&dapp_key), "pm_getPaymasterStubData", params.clone()).await.unwrap();
    assert_eq!(stub["sponsor"]["name"], "Game");
    let data = call_with_key(&url, Some(&dapp_key), "pm_getPaymasterData", params).await.unwrap();
    op.paymaster = Some(c.paymaster);
    op.paymaster_verification_gas_limit =
        serde_json::from_value(stub["paymasterVerificationGasLimit"].clone()).unwrap();
    op.paymaster_post_op_gas_limit = serde_json::from_value(stub["paymasterPostOpGasLimit"].clone()).unwrap();
    op.paymaster_data = Some(hex_bytes(&data["paymasterData"]));

    // The quote's maximum is reserved against the budget before the op is even sent.
    let max_token_cost =
        token_cost_ceil(op.max_cost_wei(), U256::from(5_250u64) * U256::from(10u64).pow(U256::from(18)));
    let reserved = MicroTora::from_tora_ceil(ToraUnits(max_token_cost)).unwrap();
    let period = ResetInterval::Daily.period(tora_core::clock::unix_now());
    assert_eq!(store.spend("game", period).await.unwrap().total, reserved);

    let receipt = h.sign_and_handle(&wallet, op).await.unwrap();
    let landed: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(landed.success);
    let charged: ToraPaymaster::GasChargedInToken = event(&receipt);
    assert_eq!(charged.payer, sponsor);
    assert_eq!(charged.charge + charged.refund, max_token_cost);
    assert_eq!(h.paymaster().sponsorBalance(sponsor).call().await.unwrap(), tora(500) - charged.charge);

    // Settlement replaces the reservation by the actual charge.
    let block = receipt.block_number.unwrap();
    let settled =
        settlement::settle_blocks(store.as_ref(), &h.deployer, c.paymaster, block, block).await.unwrap();
    assert_eq!(settled, 1);
    let actual = MicroTora::from_tora_ceil(ToraUnits(charged.charge)).unwrap();
    let spend: Value = client
        .get(format!("{url}/admin/policies/game/spend"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spend["spentMicroTora"], actual.0);
    assert_eq!(spend["ops"], 1);
    assert!(actual < reserved);
}

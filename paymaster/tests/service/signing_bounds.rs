//! Issue 12, items 4-7: what the service refuses to sign. Before these bounds it signed any
//! preVerificationGas, fee and gas limit under the TORA cap, priced from one feed, with no limit
//! on token mode, for sponsors leaving, and with permits that read the clock.

use crate::common::{
    Service, api_key, base_fee, bundler_pre_verification_gas, call, call_with_key, fit_gas, hex_bytes,
    start_configured,
};
use alloy::primitives::{Address, Bytes, I256, U128, U256};
use serde_json::{Value, json};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tora_core::contracts::{EntryPoint, ToraPriceFeed};
use tora_core::money::ToraUnits;
use tora_core::paymaster_quote::{PaymasterData, QUOTE_DATA_LEN, QUOTE_WITH_PERMIT_LEN, token_cost_ceil};
use tora_core::sponsorship::{MicroTora, ResetInterval, Spend, SponsorshipStore};
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::harness::{Harness, event, tora};
use tora_devnet::{SmartWallet, confirm};
use tora_paymaster::config::TokenLimits;
use tora_paymaster::gas_bounds::GasBounds;
use tora_paymaster::pricing::Markup;
use tora_paymaster::pricing::feed::rate_from_answer;
use tora_paymaster::sponsorship::MemoryStore;
use tora_paymaster::sponsorship::auth::Role;

fn chain(h: &Harness) -> String {
    format!("{:#x}", h.chain_id)
}

/// A sponsor with 100 TORA deposited and an open policy "open" for dapp-1.
async fn sponsored(h: &Harness, store: &MemoryStore) -> Address {
    crate::common::open_sponsorship(h, store, "open").await
}

async fn sponsored_data(h: &Harness, url: &str, op: &UserOperation) -> Result<Value, Value> {
    let key = api_key("dapp-1", Role::Dapp);
    let params = json!([op, ENTRY_POINT_V07, chain(h), { "sponsorshipPolicyId": "open" }]);
    call_with_key(url, Some(&key), "pm_getPaymasterData", params).await
}

fn refused_as_invalid(result: Result<Value, Value>, words: &str) {
    let err = result.unwrap_err();
    assert_eq!(err["code"], -32602, "{err}");
    assert!(err["message"].as_str().unwrap().contains(words), "{err}");
}

/// Item 4: each gas field is bounded, the bound itself is signed and lands, one more is -32602.
/// Before: every one of these was signed (only the 1,000 TORA cap applied), and whoever bundled
/// the op was paid the inflated gas from the paymaster's deposit, repaid by the sponsor.
#[tokio::test]
async fn inflated_gas_fields_are_refused_and_the_bounds_themselves_are_signed() {
    let h = Harness::start().await;
    let store = Arc::new(MemoryStore::default());
    let url = start_configured(&h, Service { store: store.clone(), ..Service::default() }).await;
    sponsored(&h, &store).await;
    let wallet = h.new_wallet(41).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    let required = fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
    let bounds = GasBounds::default();
    // 110% of the bundler's requirement, rounded down.
    let pvg_cap = required * U256::from(110) / U256::from(100);
    let base = base_fee(&h).await;
    let fee_cap = u128::from(base) * 2 + bounds.max_priority_fee_per_gas;

    let inflated = [
        (UserOperation { pre_verification_gas: pvg_cap + U256::from(1), ..op.clone() }, "preVerificationGas"),
        (
            UserOperation {
                max_priority_fee_per_gas: U128::from(bounds.max_priority_fee_per_gas + 1),
                max_fee_per_gas: U128::from(fee_cap),
                ..op.clone()
            },
            "maxPriorityFeePerGas",
        ),
        (UserOperation { max_fee_per_gas: U128::from(fee_cap + 1), ..op.clone() }, "maxFeePerGas"),
        (UserOperation { call_gas_limit: U128::from(bounds.max_call_gas + 1), ..op.clone() }, "callGasLimit"),
        (
            UserOperation {
                verification_gas_limit: U128::from(bounds.max_verification_gas + 1),
                ..op.clone()
            },
            "verificationGasLimit",
        ),
    ];
    for (op, field) in &inflated {
        refused_as_invalid(sponsored_data(&h, &url, op).await, field);
    }
    let err = sponsored_data(&h, &url, &inflated[0].0).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains(&format!("over {pvg_cap}")), "{err}");

    // The same in token mode.
    let token = json!({ "token": h.contracts().tora });
    let params = json!([inflated[0].0, ENTRY_POINT_V07, chain(&h), token]);
    refused_as_invalid(call(&url, "pm_getPaymasterData", params).await, "preVerificationGas");

    // At the bounds (the whole preVerificationGas margin and the fee cap), the quote is signed
    // and the operation lands, paid by the sponsor.
    op.pre_verification_gas = pvg_cap;
    op.max_fee_per_gas = U128::from(fee_cap);
    let data = sponsored_data(&h, &url, &op).await.unwrap();
    op.paymaster = Some(h.contracts().paymaster);
    op.paymaster_verification_gas_limit =
        Some(U128::from(tora_paymaster::PaymasterConfig::DEFAULT_VERIFICATION_GAS));
    op.paymaster_post_op_gas_limit = Some(U128::from(tora_paymaster::PaymasterConfig::DEFAULT_POST_OP_GAS));
    op.paymaster_data = Some(hex_bytes(&data["paymasterData"]));
    assert_eq!(
        bundler_pre_verification_gas(&h, &op, QUOTE_DATA_LEN),
        required,
        "the formula prices the shape"
    );
    let receipt = h.sign_and_handle(&wallet, op).await.unwrap();
    let landed: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(landed.success);
}

/// Item 5: with a second feed the price must agree within the deviation, and the higher rate
/// is used, exactly. Before, only the deployment's feed was read.
#[tokio::test]
async fn the_price_is_cross_checked_against_a_second_feed() {
    let h = Harness::start().await;
    let deployer = h.deployer_address();
    let second =
        ToraPriceFeed::deploy(h.deployer.clone(), 18, "TORA / BNB (second)".into(), deployer, deployer)
            .await
            .unwrap();
    let set_answer = |answer: i128| {
        let (second, deployer) = (second.clone(), h.deployer.clone());
        async move {
            let pending = second.updateAnswer(I256::try_from(answer).unwrap()).send().await.unwrap();
            confirm(&deployer, "update", pending).await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await; // past the price cache's ttl
        }
    };
    // The deployment's feed says 0.0002 BNB per TORA; the second 0.000197 (1.5% less, within 2%).
    set_answer(197_000_000_000_000).await;
    let two_percent = rust_decimal::Decimal::from_str("0.02").unwrap();
    let service = Service { second_feed: Some((*second.address(), two_percent)), ..Service::default() };
    let url = start_configured(&h, service).await;
    let wallet = h.new_wallet(42).await;
    let op = h.op(&wallet, true, Bytes::new()).await;
    let quote = call(&url, "tora_getTokenQuote", json!([op, ENTRY_POINT_V07, chain(&h)])).await.unwrap();
    let markup = Markup::new(rust_decimal::Decimal::from_str("0.05").unwrap()).unwrap();
    let second_rate = rate_from_answer(I256::try_from(197_000_000_000_000i128).unwrap(), 18).unwrap();
    let expected = markup.apply(second_rate).0;
    assert_eq!(quote["exchangeRate"].as_str().unwrap().parse::<U256>().unwrap(), expected);
    assert!(expected > U256::from(5_250u64) * U256::from(10u64).pow(U256::from(18)), "the higher rate wins");

    // 0.00019 BNB: 5% away, refused.
    set_answer(190_000_000_000_000).await;
    let err = call(&url, "tora_getTokenQuote", json!([op, ENTRY_POINT_V07, chain(&h)])).await.unwrap_err();
    assert_eq!(err["code"], -32501);
    assert!(err["message"].as_str().unwrap().contains("disagree"), "{err}");
}

/// The TORA `op` can be charged at the devnet's marked-up rate, as the store counts it.
fn reservation_of(op: &UserOperation, h: &Harness, permit: bool) -> MicroTora {
    let mut priced = op.clone();
    priced.paymaster = Some(h.contracts().paymaster);
    let verification = if permit {
        tora_paymaster::PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT
    } else {
        tora_paymaster::PaymasterConfig::DEFAULT_VERIFICATION_GAS
    };
    priced.paymaster_verification_gas_limit = Some(U128::from(verification));
    priced.paymaster_post_op_gas_limit =
        Some(U128::from(tora_paymaster::PaymasterConfig::DEFAULT_POST_OP_GAS));
    let rate = U256::from(5_250u64) * U256::from(10u64).pow(U256::from(18));
    MicroTora::from_tora_ceil(ToraUnits(token_cost_ceil(priced.max_cost_wei(), rate))).unwrap()
}

/// pm_getPaymasterData in token mode for `op`.
async fn token_data(url: &str, h: &Harness, op: &UserOperation) -> Result<Value, Value> {
    let token = json!({ "token": h.contracts().tora });
    call(url, "pm_getPaymasterData", json!([op, ENTRY_POINT_V07, chain(h), token])).await
}

/// Item 5: token mode has per-sender and global limits, counted exactly like budgets, and a
/// sender must hold the quote's maximum. Before, any number of quotes was signed for anyone.
#[tokio::test]
async fn token_mode_is_limited_per_sender_and_in_all() {
    let h = Harness::start().await;
    let store = Arc::new(MemoryStore::default());
    let wallets = [h.new_wallet(43).await, h.new_wallet(44).await, h.new_wallet(45).await];
    let mut ops = Vec::new();
    for wallet in &wallets {
        h.send_tora(wallet.address, tora(100)).await;
        let mut op = h.op(wallet, true, Bytes::new()).await;
        fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
        ops.push(op);
    }
    let [first, second, third] = [0, 1, 2].map(|i| reservation_of(&ops[i], &h, false));
    // Room for one and a half operations per sender; in all, for two and a half.
    let limits = TokenLimits {
        per_sender: Some(MicroTora(first.0 * 3 / 2)),
        global: Some(MicroTora(first.0 + second.0 + third.0 / 2)),
        reset: ResetInterval::Daily,
    };
    let url =
        start_configured(&h, Service { store: store.clone(), token_limits: limits, ..Service::default() })
            .await;

    token_data(&url, &h, &ops[0]).await.unwrap();
    let period = ResetInterval::Daily.period(h.now().await);
    let id = TokenLimits::BUDGET_ID;
    assert_eq!(store.user_spend(id, period, wallets[0].address).await.unwrap(), first);
    // The same operation quoted again, and another call on the same nonce: only one of them can
    // land, so they hold nothing more. Before, every quote held the maximum again.
    let same_nonce = UserOperation {
        call_data: SmartWallet::execute(Address::ZERO, U256::ZERO, Bytes::new()),
        ..ops[0].clone()
    };
    for op in [&ops[0], &same_nonce, &ops[0]] {
        token_data(&url, &h, op).await.unwrap();
    }
    assert_eq!(store.user_spend(id, period, wallets[0].address).await.unwrap(), first);
    // The same sender again with another nonce (key 1): another operation, over its limit.
    let again = UserOperation { nonce: ops[0].nonce | (U256::from(1) << 64), ..ops[0].clone() };
    let err = token_data(&url, &h, &again).await.unwrap_err();
    assert_eq!(err["code"], -32501);
    assert!(err["message"].as_str().unwrap().contains("user's budget"), "{err}");
    token_data(&url, &h, &ops[1]).await.unwrap();
    assert_eq!(store.spend(id, period).await.unwrap().total, MicroTora(first.0 + second.0));
    let err = token_data(&url, &h, &ops[2]).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("policy's budget"), "{err}");
    let total = MicroTora(first.0 + second.0);
    assert_eq!(store.spend(id, period).await.unwrap().total, total, "refusals reserve nothing");

    // A sender without the TORA is refused before anything is reserved.
    let poor = h.new_wallet(46).await;
    let mut op = h.op(&poor, true, Bytes::new()).await;
    fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
    let err = token_data(&url, &h, &op).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("holds 0 TORA"), "{err}");
}

/// Item 5: a sender's TORA backs all of its open token-mode quotes, not each one alone. Before,
/// a wallet holding one operation's maximum got a quote for each of any number of nonce keys,
/// and a few such wallets filled the global limit for everyone. Anyone may ask for a quote
/// naming any sender, so a quote that does not fit displaces the sender's older holds rather
/// than being refused: a stranger quoting the wallet on other nonce keys cannot lock it out.
#[tokio::test]
async fn a_senders_balance_backs_all_of_its_open_quotes_and_its_newest_quote_wins() {
    let h = Harness::start().await;
    let store = Arc::new(MemoryStore::default());
    let wallet = h.new_wallet(48).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
    let maximum = reservation_of(&op, &h, false);
    // One and a half operations' worth.
    h.send_tora(wallet.address, MicroTora(maximum.0 * 3 / 2).to_tora().0).await;
    let limits = TokenLimits {
        per_sender: None,
        global: Some(MicroTora(u64::MAX >> 12)),
        reset: ResetInterval::Daily,
    };
    let url =
        start_configured(&h, Service { store: store.clone(), token_limits: limits, ..Service::default() })
            .await;
    token_data(&url, &h, &op).await.unwrap();
    token_data(&url, &h, &op).await.unwrap();
    let period = ResetInterval::Daily.period(h.now().await);
    let held = || store.user_spend(TokenLimits::BUDGET_ID, period, wallet.address);
    assert_eq!(held().await.unwrap(), maximum);
    // A stranger quotes the wallet on nonce keys it never uses: each displaces the last, and
    // the wallet never holds more than one operation's maximum.
    for key in 1..4u64 {
        let stranger = UserOperation { nonce: op.nonce | (U256::from(key) << 64), ..op.clone() };
        token_data(&url, &h, &stranger).await.unwrap();
        assert_eq!(held().await.unwrap(), maximum, "key {key}");
    }
    // The wallet's own operation is quoted again all the same.
    let data = token_data(&url, &h, &op).await.unwrap();
    let quote = PaymasterData::decode(&hex_bytes(&data["paymasterData"])).unwrap().quote;
    assert_eq!(MicroTora::from_tora_ceil(ToraUnits(quote.max_token_cost)).unwrap(), maximum);
    assert_eq!(held().await.unwrap(), maximum);
    // Nor do the displaced quotes take any of the global limit.
    assert_eq!(store.spend(TokenLimits::BUDGET_ID, period).await.unwrap(), Spend { total: maximum, ops: 1 });
}

/// Item 6: while a sponsor's withdrawal is pending the service signs no sponsored quote; after
/// a cancel it does again. Before, quotes were signed for a sponsor about to empty its balance.
#[tokio::test]
async fn no_sponsored_quote_while_the_sponsor_withdraws() {
    let h = Harness::start().await;
    let store = Arc::new(MemoryStore::default());
    let url = start_configured(&h, Service { store: store.clone(), ..Service::default() }).await;
    sponsored(&h, &store).await;
    let wallet = h.new_wallet(47).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
    let pending = h.paymaster().requestSponsorWithdrawal(tora(100)).send().await.unwrap();
    confirm(&h.deployer, "request", pending).await.unwrap();
    let key = api_key("dapp-1", Role::Dapp);
    let params = json!([op, ENTRY_POINT_V07, chain(&h), { "sponsorshipPolicyId": "open" }]);
    for method in ["pm_getPaymasterStubData", "pm_getPaymasterData"] {
        let err = call_with_key(&url, Some(&key), method, params.clone()).await.unwrap_err();
        assert_eq!(err["code"], -32501, "{method}");
        assert!(err["message"].as_str().unwrap().contains("asked to withdraw"), "{err}");
    }
    assert_eq!(store.spend("open", 0).await.unwrap().total, MicroTora(0), "nothing reserved");
    let pending = h.paymaster().cancelSponsorWithdrawal().send().await.unwrap();
    confirm(&h.deployer, "cancel", pending).await.unwrap();
    let data = call_with_key(&url, Some(&key), "pm_getPaymasterData", params).await.unwrap();
    let quote = PaymasterData::decode(&hex_bytes(&data["paymasterData"])).unwrap().quote;
    assert_eq!(
        store.spend("open", 0).await.unwrap().total,
        MicroTora::from_tora_ceil(ToraUnits(quote.max_token_cost)).unwrap()
    );
}

/// Item 7: a permit with a finite deadline makes TORA read TIMESTAMP in validation (ERC-7562
/// OP-011), so bundlers refuse the operation: refused at quote time instead. Before, it was
/// signed.
#[tokio::test]
async fn a_permit_with_a_finite_deadline_is_refused_at_quote_time() {
    let h = Harness::start().await;
    let url = start_configured(&h, Service::default()).await;
    let wallet = h.new_wallet(48).await;
    h.send_tora(wallet.address, tora(100)).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    fit_gas(&h, &mut op, QUOTE_WITH_PERMIT_LEN).await;
    let permit = |deadline: U256| {
        json!({ "token": h.contracts().tora, "permit": {
            "value": tora(100), "deadline": deadline, "signature": Bytes::from(vec![1u8; 65]) } })
    };
    for method in ["pm_getPaymasterStubData", "pm_getPaymasterData"] {
        for deadline in [U256::from(4_000_000_000u64), U256::MAX - U256::from(1)] {
            let params = json!([op, ENTRY_POINT_V07, chain(&h), permit(deadline)]);
            refused_as_invalid(call(&url, method, params).await, "OP-011");
        }
    }
    let params = json!([op, ENTRY_POINT_V07, chain(&h), permit(U256::MAX)]);
    let data = call(&url, "pm_getPaymasterData", params).await.unwrap();
    let signed = PaymasterData::decode(&hex_bytes(&data["paymasterData"])).unwrap();
    assert_eq!(signed.permit.unwrap().deadline, U256::MAX);
}

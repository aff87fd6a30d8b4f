//! Quotes the paymaster must refuse: expired, early, for another chain or paymaster, tampered,
//! signed by someone else, or over their maximum.

use super::common::*;
use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::SolInterface;
use tora_core::UserOperation;
use tora_core::contracts::ToraPaymaster;
use tora_core::paymaster_quote::{PaymasterData, QUOTE_DATA_LEN, quote_hash, token_cost_ceil};
use tora_devnet::SmartWallet;
use tora_devnet::keys::{self, signer};

type Tamper = Box<dyn Fn(&mut UserOperation)>;

async fn funded_wallet(h: &Harness) -> (SmartWallet, UserOperation) {
    let wallet = h.new_wallet(3).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let op = h.op(&wallet, true, Bytes::new()).await;
    (wallet, op)
}

#[tokio::test]
async fn expired_early_foreign_and_tampered_quotes_are_rejected() {
    let h = Harness::start().await;
    let (wallet, base) = funded_wallet(&h).await;
    let now = h.now().await;
    let max = tora(100);

    let mut expired = base.clone();
    let quote = tora_core::paymaster_quote::Quote { valid_until: now - 1, ..h.token_quote(max).await };
    let permit = h.permit(&wallet, max).await;
    h.attach_quote(&mut expired, quote, Some(permit.clone()));
    let err = h.sign_and_handle(&wallet, expired).await.unwrap_err();
    assert_eq!(err.reason, "AA32 paymaster expired or not due");

    let mut early = base.clone();
    let quote = tora_core::paymaster_quote::Quote { valid_after: now + 600, ..h.token_quote(max).await };
    h.attach_quote(&mut early, quote, Some(permit.clone()));
    let err = h.sign_and_handle(&wallet, early).await.unwrap_err();
    assert_eq!(err.reason, "AA32 paymaster expired or not due");

    let mut other_chain = base.clone();
    let paymaster = h.contracts().paymaster;
    h.attach_quote_for(&mut other_chain, h.token_quote(max).await, Some(permit.clone()), 204, paymaster);
    assert_eq!(h.sign_and_handle(&wallet, other_chain).await.unwrap_err().reason, "AA34 signature error");

    let mut other_paymaster = base.clone();
    let elsewhere = Address::repeat_byte(0x99);
    h.attach_quote_for(
        &mut other_paymaster,
        h.token_quote(max).await,
        Some(permit.clone()),
        h.chain_id,
        elsewhere,
    );
    assert_eq!(h.sign_and_handle(&wallet, other_paymaster).await.unwrap_err().reason, "AA34 signature error");

    // Each field the signature binds, changed after signing.
    let mut signed = base.clone();
    h.attach_quote(&mut signed, h.token_quote(max).await, Some(permit.clone()));
    let tampers: Vec<(&str, Tamper)> = vec![
        ("callData", Box::new(|op| op.call_data = Bytes::from(vec![1]))),
        ("nonce", Box::new(|op| op.nonce += U256::from(1) << 64)),
        ("callGasLimit", Box::new(|op| op.call_gas_limit += alloy::primitives::U128::from(1))),
        ("maxFeePerGas", Box::new(|op| op.max_fee_per_gas += alloy::primitives::U128::from(1))),
        ("preVerificationGas", Box::new(|op| op.pre_verification_gas += U256::from(1))),
        (
            "postOpGasLimit",
            Box::new(|op| {
                op.paymaster_post_op_gas_limit =
                    op.paymaster_post_op_gas_limit.map(|g| g + alloy::primitives::U128::from(1))
            }),
        ),
        (
            "maxTokenCost",
            Box::new(|op| {
                let mut data = PaymasterData::decode(op.paymaster_data.as_ref().unwrap()).unwrap();
                data.quote.max_token_cost += U256::from(1);
                op.paymaster_data = Some(data.encode());
            }),
        ),
        (
            "exchangeRate",
            Box::new(|op| {
                let mut data = PaymasterData::decode(op.paymaster_data.as_ref().unwrap()).unwrap();
                data.quote.exchange_rate -= U256::from(1);
                op.paymaster_data = Some(data.encode());
            }),
        ),
    ];
    for (field, tamper) in tampers {
        let mut op = signed.clone();
        tamper(&mut op);
        let err = h.sign_and_handle(&wallet, op).await.unwrap_err();
        assert_eq!(err.reason, "AA34 signature error", "tampered {field}");
    }

    // Signed by a key that is not the paymaster's signer.
    let mut forged = signed.clone();
    let mut data = PaymasterData::decode(forged.paymaster_data.as_ref().unwrap()).unwrap();
    let hash = quote_hash(&forged, &data.quote, h.chain_id, paymaster);
    data.signature = signer(keys::WALLET_OWNER).sign_message_sync(hash.as_slice()).unwrap().as_bytes();
    forged.paymaster_data = Some(data.encode());
    assert_eq!(h.sign_and_handle(&wallet, forged).await.unwrap_err().reason, "AA34 signature error");

    // The untampered op still lands: the rejections above were the quote's, not the op's.
    let receipt = h.sign_and_handle(&wallet, signed).await.unwrap();
    assert!(receipt.status());
}

#[tokio::test]
async fn a_quote_below_the_operations_maximum_cost_is_rejected() {
    let h = Harness::start().await;
    let (wallet, mut op) = funded_wallet(&h).await;
    h.attach_quote(&mut op, h.token_quote(tora(100)).await, None);
    let needed = token_cost_ceil(op.max_cost_wei(), rate());
    let permit = h.permit(&wallet, needed).await;
    h.attach_quote(&mut op, h.token_quote(needed - U256::from(1)).await, Some(permit.clone()));
    let err = h.sign_and_handle(&wallet, op.clone()).await.unwrap_err();
    assert_eq!(err.reason, "AA33 reverted");
    match ToraPaymaster::ToraPaymasterErrors::abi_decode(&err.inner).unwrap() {
        ToraPaymaster::ToraPaymasterErrors::QuoteExceeded(e) => {
            assert_eq!(e.tokenCharge, needed);
            assert_eq!(e.maxTokenCost, needed - U256::from(1));
        }
        other => panic!("{other:?}"),
    }
    // Exactly the maximum is enough.
    h.attach_quote(&mut op, h.token_quote(needed).await, Some(permit));
    let receipt = h.sign_and_handle(&wallet, op).await.unwrap();
    let charged: ToraPaymaster::GasChargedInToken = event(&receipt);
    assert_eq!(charged.charge + charged.refund, needed);
}

#[tokio::test]
async fn malformed_paymaster_data_is_rejected() {
    let h = Harness::start().await;
    let (wallet, mut op) = funded_wallet(&h).await;
    h.attach_quote(&mut op, h.token_quote(tora(100)).await, None);
    let data = op.paymaster_data.clone().unwrap();
    op.paymaster_data = Some(data[..QUOTE_DATA_LEN - 1].to_vec().into());
    let err = h.sign_and_handle(&wallet, op).await.unwrap_err();
    assert_eq!(err.reason, "AA33 reverted");
    assert!(matches!(
        ToraPaymaster::ToraPaymasterErrors::abi_decode(&err.inner).unwrap(),
        ToraPaymaster::ToraPaymasterErrors::InvalidPaymasterData(_)
    ));
}

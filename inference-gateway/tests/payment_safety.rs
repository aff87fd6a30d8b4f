//! What a payer might do to be served and not pay, on a devnet, against the cashier and the
//! redeemer as the gateway runs them: sign in a form the escrow refuses, turn its ERC-1271
//! wallet after being served, ask for its deposit back, or run up a debt between redemptions.

mod common;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use tora_core::contracts::InferenceEscrow;
use tora_core::escrow_voucher::Voucher;
use tora_core::money::ToraUnits;
use tora_devnet::confirm;
use tora_devnet::harness::{Harness, SECP256K1_N, rsv, tora};
use tora_devnet::test_contracts::FickleWallet;
use tora_inference_gateway::payment::{
    Cashier, Due, Escrow, MemoryVoucherStore, PaymentError, PricePerToken, Redeemer, SignedVoucher,
};

/// Base units per token.
const PRICE: u64 = 1_000_000_000_000_007;

fn cost(tokens: u64) -> U256 {
    U256::from(PRICE) * U256::from(tokens)
}

/// The cashier and redeemer of a fresh provider, on an in-memory store.
struct ProviderSide {
    key: PrivateKeySigner,
    cashier: Cashier<MemoryVoucherStore>,
    redeemer: Redeemer,
}

async fn provider(h: &Harness, byte: u8) -> ProviderSide {
    let key = common::funded_provider(h, byte).await;
    let rpc: DynProvider =
        ProviderBuilder::new().connect_http(h.devnet.deployment.rpc_url.parse().unwrap()).erased();
    let view = Escrow::new(rpc, h.chain_id, h.contracts().inference_escrow, key.address());
    let cashier = Cashier::new(
        MemoryVoucherStore::default(),
        view.clone(),
        PricePerToken(ToraUnits(U256::from(PRICE))),
    );
    let redeemer = Redeemer::new(&h.devnet.deployment.rpc_url, key.clone(), view).unwrap();
    ProviderSide { key, cashier, redeemer }
}

fn voucher(h: &Harness, payer: &PrivateKeySigner, provider: Address, amount: U256) -> (SignedVoucher, B256) {
    let digest =
        Voucher::new(payer.address(), provider, amount).digest(h.chain_id, h.contracts().inference_escrow);
    let signature = Bytes::from(payer.sign_hash_sync(&digest).unwrap().as_bytes().to_vec());
    (SignedVoucher { payer: payer.address(), cumulative_amount: amount, signature }, digest)
}

/// Serves one call of `tokens` to `voucher` and charges it in full.
async fn serve(p: &ProviderSide, voucher: SignedVoucher, tokens: u64) -> Result<U256, PaymentError> {
    let price = ToraUnits(cost(tokens));
    let held = p.cashier.authorize(Some(voucher), price).await?;
    Ok(p.cashier.settle(held, price).await?.cumulative_amount)
}

#[tokio::test]
async fn a_signature_the_escrow_would_refuse_is_refused_before_the_call_is_served() {
    let h = Harness::start().await;
    let p = provider(&h, 0x61).await;
    let payer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x62)).unwrap();
    h.deposit_in_escrow(payer.address(), p.key.address(), tora(1)).await;
    let (good, digest) = voucher(&h, &payer, p.key.address(), cost(10));
    let sig = payer.sign_hash_sync(&digest).unwrap();
    let (r, s, v) = (sig.r(), sig.s(), 27 + u8::from(sig.v()));
    // The same signature with v - 27, and its high-s twin: ecrecover-equivalent, and alloy
    // recovers the payer from both, but OpenZeppelin's ECDSA (the escrow's) takes neither.
    for (what, signature) in
        [("v = 0/1", rsv(r, s, v - 27)), ("high s", rsv(r, SECP256K1_N - s, 27 + u8::from(!sig.v())))]
    {
        let bad = SignedVoucher { signature, ..good.clone() };
        match serve(&p, bad, 10).await {
            Err(PaymentError::InvalidSignature { payer: refused, .. }) => {
                assert_eq!(refused, payer.address(), "{what}")
            }
            other => panic!("{what}: expected an invalid signature, got {other:?}"),
        }
    }
    // The canonical form is served, and the provider redeems exactly the call.
    assert_eq!(serve(&p, good, 10).await.unwrap(), cost(10));
    let redemption = p.redeemer.redeem_latest(p.cashier.store()).await.unwrap();
    assert_eq!((redemption.paid, redemption.failed.len()), (ToraUnits(cost(10)), 0));
    assert_eq!(h.tora_balance(p.key.address()).await, cost(10));
}

#[tokio::test]
async fn a_wallet_that_turns_after_being_served_is_suspended_and_the_other_payers_are_still_paid() {
    let h = Harness::start().await;
    let p = provider(&h, 0x63).await;
    let provider = p.key.address();
    let wallet = FickleWallet::deploy(h.deployer.clone()).await.unwrap();
    let honest = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x64)).unwrap();
    h.deposit_in_escrow(*wallet.address(), provider, tora(1)).await;
    h.deposit_in_escrow(honest.address(), provider, tora(1)).await;
    // The wallet's ERC-1271 accepts while it is served...
    let of_wallet = |amount| SignedVoucher {
        payer: *wallet.address(),
        cumulative_amount: amount,
        signature: Bytes::from_static(b"ok"),
    };
    assert_eq!(serve(&p, of_wallet(cost(7)), 7).await.unwrap(), cost(7));
    assert_eq!(serve(&p, voucher(&h, &honest, provider, cost(5)).0, 5).await.unwrap(), cost(5));
    // ...and refuses when the provider claims.
    confirm(&h.deployer, "turn", wallet.setMood(1).send().await.unwrap()).await.unwrap();
    let redemption = p.redeemer.redeem(p.cashier.store(), Due::All).await.unwrap();
    assert_eq!(redemption.vouchers, 2);
    assert_eq!(redemption.paid, ToraUnits(cost(5)), "the honest payer's claim is not blocked");
    assert_eq!(redemption.failed, vec![*wallet.address()]);
    assert_eq!(h.tora_balance(provider).await, cost(5));
    // Not served again, whatever it signs; its exposure stays at the 7 tokens already run.
    match serve(&p, of_wallet(cost(20)), 3).await {
        Err(PaymentError::Suspended { payer, reason }) => {
            assert_eq!(payer, *wallet.address());
            assert!(reason.contains("InvalidSignature"), "{reason}");
        }
        other => panic!("expected a suspension, got {other:?}"),
    }
    // The frequent exposure check leaves a suspended payer alone: no transaction, no gas.
    let exposed = p.redeemer.redeem(p.cashier.store(), Due::Exposed { exposure: cost(1) }).await.unwrap();
    assert_eq!((exposed.vouchers, exposed.tx), (0, None));
    // Honest again: the next redemption succeeds, and that lifts the suspension.
    confirm(&h.deployer, "turn back", wallet.setMood(0).send().await.unwrap()).await.unwrap();
    let redemption = p.redeemer.redeem(p.cashier.store(), Due::All).await.unwrap();
    assert_eq!((redemption.paid, redemption.failed.len()), (ToraUnits(cost(7)), 0));
    assert_eq!(h.tora_balance(provider).await, cost(12));
    assert_eq!(serve(&p, of_wallet(cost(20)), 3).await.unwrap(), cost(10));
}

#[tokio::test]
async fn a_pending_withdrawal_stops_service_and_a_debt_past_the_exposure_is_redeemed_at_once() {
    let h = Harness::start().await;
    let p = provider(&h, 0x65).await;
    let provider = p.key.address();
    let payer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x66)).unwrap();
    h.deposit_in_escrow(payer.address(), provider, tora(1)).await;
    // The payer acts on chain itself: it needs gas.
    let payer_rpc = tora_devnet::provider_for(&h.devnet.deployment.rpc_url, payer.to_bytes()).unwrap();
    let fund =
        alloy::rpc::types::TransactionRequest::default().to(payer.address()).value(U256::from(10u64.pow(18)));
    confirm(&h.deployer, "gas", h.deployer.send_transaction(fund).await.unwrap()).await.unwrap();
    let escrow = InferenceEscrow::new(h.contracts().inference_escrow, payer_rpc.clone());

    assert_eq!(serve(&p, voucher(&h, &payer, provider, cost(4)).0, 4).await.unwrap(), cost(4));
    // Exposure 4 tokens' worth: below 5, the frequent check claims nothing (and reads nothing).
    let below = p.redeemer.redeem(p.cashier.store(), Due::Exposed { exposure: cost(5) }).await.unwrap();
    assert_eq!((below.vouchers, below.tx), (0, None));
    let at = p.redeemer.redeem(p.cashier.store(), Due::Exposed { exposure: cost(4) }).await.unwrap();
    assert_eq!(at.paid, ToraUnits(cost(4)));
    assert_eq!(h.tora_balance(provider).await, cost(4));

    // Once the payer asks for its deposit back, the notice is for the provider to claim in.
    confirm(&payer_rpc, "request", escrow.requestWithdrawal(provider).send().await.unwrap()).await.unwrap();
    match serve(&p, voucher(&h, &payer, provider, cost(10)).0, 2).await {
        Err(PaymentError::WithdrawalRequested { payer: refused }) => assert_eq!(refused, payer.address()),
        other => panic!("expected a refusal, got {other:?}"),
    }
    confirm(&payer_rpc, "cancel", escrow.cancelWithdrawal(provider).send().await.unwrap()).await.unwrap();
    assert_eq!(serve(&p, voucher(&h, &payer, provider, cost(10)).0, 2).await.unwrap(), cost(6));
}

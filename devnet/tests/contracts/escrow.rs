//! InferenceEscrow: deposits into (payer, provider) channels, cumulative vouchers (ECDSA and
//! ERC-1271) that the provider claims up to, batches that skip a failing voucher, withdrawal
//! notice per channel; and the attacks each of these closes.

use super::common::*;
use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::SolInterface;
use tora_core::contracts::{InferenceEscrow, RedeemFailure, ToraAccountFactory};
use tora_core::escrow_voucher::Voucher;
use tora_devnet::harness::{SECP256K1_N, rsv};
use tora_devnet::keys::{self, signer};
use tora_devnet::{DevnetPrices, confirm, provider_for};

fn as_escrow(v: &Voucher) -> InferenceEscrow::Voucher {
    InferenceEscrow::Voucher { payer: v.payer, provider: v.provider, cumulativeAmount: v.cumulativeAmount }
}

/// The escrow as the inference provider (dev key) calls it: only the provider may redeem.
fn as_provider(
    h: &Harness,
) -> (Address, InferenceEscrow::InferenceEscrowInstance<alloy::providers::DynProvider>) {
    let rpc = provider_for(&h.devnet.deployment.rpc_url, keys::INFERENCE_PROVIDER).unwrap();
    (signer(keys::INFERENCE_PROVIDER).address(), InferenceEscrow::new(h.contracts().inference_escrow, rpc))
}

fn escrow_error<T>(result: Result<T, alloy::contract::Error>) -> InferenceEscrow::InferenceEscrowErrors {
    InferenceEscrow::InferenceEscrowErrors::abi_decode(&revert_data(result)).unwrap()
}

#[tokio::test]
async fn smart_wallet_vouchers_redeem_once_per_cumulative_amount() {
    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let wallet = h.new_wallet(6).await;
    let factory = ToraAccountFactory::new(wallet.factory, h.deployer.clone());
    let pending = factory.createAccount(wallet.owner.address(), wallet.salt).send().await.unwrap();
    confirm(&h.deployer, "create wallet", pending).await.unwrap();

    let (provider, by_provider) = as_provider(&h);
    h.deposit_in_escrow(wallet.address, provider, tora(100)).await;
    assert_eq!(escrow.balanceOf(wallet.address, provider).call().await.unwrap(), tora(100));

    let start = h.tora_balance(provider).await;
    let sign = |amount: U256| {
        let voucher = Voucher::new(wallet.address, provider, amount);
        let digest = voucher.digest(h.chain_id, escrow_addr);
        (voucher, Bytes::from(wallet.sign_digest(digest).to_vec()))
    };
    let (ten, ten_sig) = sign(tora(10));
    let on_chain = escrow.voucherDigest(as_escrow(&ten)).call().await.unwrap();
    assert_eq!(on_chain, ten.digest(h.chain_id, escrow_addr), "core's EIP-712 digest matches");

    // Claiming the whole voucher, as the provider does when it was all used.
    let redeem = |v: Voucher, sig: Bytes| {
        let claim = v.cumulativeAmount;
        by_provider.redeem(as_escrow(&v), sig, claim)
    };
    assert_eq!(redeem(ten.clone(), ten_sig.clone()).call().await.unwrap(), tora(10));
    confirm(&h.deployer, "redeem", redeem(ten.clone(), ten_sig.clone()).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(10));

    // The same voucher again pays nothing and does not revert.
    assert_eq!(redeem(ten.clone(), ten_sig.clone()).call().await.unwrap(), U256::ZERO);
    confirm(&h.deployer, "redeem again", redeem(ten.clone(), ten_sig).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(10));
    assert_eq!(escrow.redeemed(wallet.address, provider).call().await.unwrap(), tora(10));

    // A batch with a stale and a newer voucher pays only the difference.
    let (twenty_five, sig25) = sign(tora(25));
    let (thirty, sig30) = sign(tora(30));
    let batch = by_provider.redeemBatch(
        vec![as_escrow(&twenty_five), as_escrow(&thirty)],
        vec![sig25, sig30],
        vec![tora(25), tora(30)],
    );
    assert_eq!(batch.call().await.unwrap(), tora(20));
    confirm(&h.deployer, "batch", batch.send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(30));
    assert_eq!(escrow.balanceOf(wallet.address, provider).call().await.unwrap(), tora(70));

    // Signed by someone else: refused.
    let (forty, _) = sign(tora(40));
    let forged = signer(keys::BUNDLER).sign_hash_sync(&forty.digest(h.chain_id, escrow_addr)).unwrap();
    let err = redeem(forty, Bytes::from(forged.as_bytes().to_vec())).call().await;
    assert!(matches!(escrow_error(err), InferenceEscrow::InferenceEscrowErrors::InvalidVoucherSignature(_)));

    // More than the deposit: refused with the amounts.
    let (too_much, sig) = sign(tora(101));
    match escrow_error(redeem(too_much, sig).call().await) {
        InferenceEscrow::InferenceEscrowErrors::InsufficientDeposit(e) => {
            assert_eq!((e.balance, e.required), (tora(70), tora(71)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_payer_withdraws_the_unspent_balance_only_after_the_notice_period() {
    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let payer = signer(keys::DEPLOYER).address();
    let (provider, by_provider) = as_provider(&h);
    h.deposit_in_escrow(payer, provider, tora(40)).await;

    // An EOA payer's voucher (plain ECDSA) is spent first.
    let voucher = Voucher::new(payer, provider, tora(15));
    let sig = signer(keys::DEPLOYER).sign_hash_sync(&voucher.digest(h.chain_id, escrow_addr)).unwrap();
    let sig = Bytes::from(sig.as_bytes().to_vec());
    let pending = by_provider.redeem(as_escrow(&voucher), sig, tora(15)).send().await.unwrap();
    confirm(&h.deployer, "redeem", pending).await.unwrap();

    assert!(matches!(
        escrow_error(escrow.withdraw(provider).call().await),
        InferenceEscrow::InferenceEscrowErrors::WithdrawalNotRequested(_)
    ));
    let request = escrow.requestWithdrawal(provider);
    confirm(&h.deployer, "request", request.send().await.unwrap()).await.unwrap();
    let at = escrow.withdrawableAt(payer, provider).call().await.unwrap();
    assert_eq!(at, U256::from(h.now().await + DevnetPrices::ESCROW_NOTICE_SECS));
    assert!(matches!(
        escrow_error(escrow.withdraw(provider).call().await),
        InferenceEscrow::InferenceEscrowErrors::WithdrawalLocked(_)
    ));
    // Called off, the channel is served again and the notice starts over on a new request.
    confirm(&h.deployer, "cancel", escrow.cancelWithdrawal(provider).send().await.unwrap()).await.unwrap();
    assert_eq!(escrow.withdrawableAt(payer, provider).call().await.unwrap(), U256::ZERO);
    confirm(&h.deployer, "request again", request.send().await.unwrap()).await.unwrap();

    h.anvil("evm_increaseTime", serde_json::json!([DevnetPrices::ESCROW_NOTICE_SECS])).await;
    h.anvil("evm_mine", serde_json::json!([])).await;
    let before = h.tora_balance(payer).await;
    confirm(&h.deployer, "withdraw", escrow.withdraw(provider).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(payer).await, before + tora(25));
    assert_eq!(escrow.balanceOf(payer, provider).call().await.unwrap(), U256::ZERO);
    assert_eq!(h.tora_balance(escrow_addr).await, U256::ZERO);
}

#[tokio::test]
async fn the_provider_claims_what_was_used_up_to_the_voucher_and_no_one_else_may_redeem() {
    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let payer = signer(keys::DEPLOYER).address();
    let (provider, by_provider) = as_provider(&h);
    h.deposit_in_escrow(payer, provider, tora(50)).await;
    let start = h.tora_balance(provider).await;
    let sign = |amount: U256| {
        let voucher = Voucher::new(payer, provider, amount);
        let sig = signer(keys::DEPLOYER).sign_hash_sync(&voucher.digest(h.chain_id, escrow_addr)).unwrap();
        (as_escrow(&voucher), Bytes::from(sig.as_bytes().to_vec()))
    };
    // A voucher for 20 TORA of which 7 (and 1 wei) were used.
    let (twenty, sig) = sign(tora(20));
    let used = tora(7) + U256::from(1);
    let claim = |amount: U256| by_provider.redeem(twenty.clone(), sig.clone(), amount);

    // Anyone but the provider is refused, whatever the claim: the voucher's ceiling is not a debt.
    match escrow_error(escrow.redeem(twenty.clone(), sig.clone(), used).call().await) {
        InferenceEscrow::InferenceEscrowErrors::NotProvider(e) => {
            assert_eq!((e.caller, e.provider), (payer, provider))
        }
        other => panic!("{other:?}"),
    }
    // More than the voucher: refused with both amounts.
    match escrow_error(claim(tora(20) + U256::from(1)).call().await) {
        InferenceEscrow::InferenceEscrowErrors::ClaimAboveVoucher(e) => {
            assert_eq!((e.claim, e.cumulativeAmount), (tora(20) + U256::from(1), tora(20)));
        }
        other => panic!("{other:?}"),
    }

    assert_eq!(claim(used).call().await.unwrap(), used);
    confirm(&h.deployer, "partial claim", claim(used).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + used);
    assert_eq!(escrow.redeemed(payer, provider).call().await.unwrap(), used);
    assert_eq!(escrow.balanceOf(payer, provider).call().await.unwrap(), tora(50) - used);

    // The same claim again, or a smaller one, pays nothing and changes nothing.
    assert_eq!(claim(used).call().await.unwrap(), U256::ZERO);
    confirm(&h.deployer, "same claim", claim(used).send().await.unwrap()).await.unwrap();
    confirm(&h.deployer, "smaller claim", claim(tora(3)).send().await.unwrap()).await.unwrap();
    assert_eq!(escrow.redeemed(payer, provider).call().await.unwrap(), used);
    assert_eq!(h.tora_balance(provider).await, start + used);

    // Later use under the same voucher: a larger claim pays only the difference.
    assert_eq!(claim(tora(12)).call().await.unwrap(), tora(12) - used);
    confirm(&h.deployer, "larger claim", claim(tora(12)).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(12));
    assert_eq!(escrow.redeemed(payer, provider).call().await.unwrap(), tora(12));

    // In a batch: a newer voucher claimed in part, next to the older one claimed in full.
    let (thirty, sig30) = sign(tora(30));
    let batch = by_provider.redeemBatch(
        vec![twenty.clone(), thirty],
        vec![sig.clone(), sig30.clone()],
        vec![tora(20), tora(25)],
    );
    assert_eq!(batch.call().await.unwrap(), tora(13));
    confirm(&h.deployer, "batch", batch.send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(25));
    assert_eq!(escrow.redeemed(payer, provider).call().await.unwrap(), tora(25));
    assert_eq!(escrow.balanceOf(payer, provider).call().await.unwrap(), tora(25));
    let mismatched = by_provider.redeemBatch(vec![twenty], vec![sig], vec![]);
    assert!(matches!(
        escrow_error(mismatched.call().await),
        InferenceEscrow::InferenceEscrowErrors::LengthMismatch(_)
    ));
}

/// `r || s || v`, as a 65-byte signature of `digest` by the deployer, with `v` as given.
fn raw_signature(digest: alloy::primitives::B256) -> (U256, U256, bool) {
    let sig = signer(keys::DEPLOYER).sign_hash_sync(&digest).unwrap();
    (sig.r(), sig.s(), sig.v())
}

#[tokio::test]
async fn the_signature_rule_is_strict_ecdsa_then_a_gas_capped_erc_1271() {
    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let (provider, _) = as_provider(&h);
    let payer = signer(keys::DEPLOYER).address();
    let voucher = Voucher::new(payer, provider, tora(5));
    let (r, s, odd) = raw_signature(voucher.digest(h.chain_id, escrow_addr));
    let valid = |sig: Bytes| {
        let escrow = escrow.clone();
        let v = as_escrow(&voucher);
        async move { escrow.isValidVoucherSignature(v, sig).call().await.unwrap() }
    };
    let v = 27 + u8::from(odd);
    assert!(valid(rsv(r, s, v)).await, "v = 27/28, low s");
    // alloy's recovery accepts all of these; the escrow (OpenZeppelin's ECDSA) does not.
    assert!(!valid(rsv(r, s, v - 27)).await, "v = 0/1");
    assert!(!valid(rsv(r, SECP256K1_N - s, 27 + u8::from(!odd))).await, "high s");
    assert!(!valid(rsv(r, s, v).slice(..64)).await, "64 bytes");

    // ERC-1271: the wallet's answer now, under the gas cap.
    let wallet = tora_devnet::test_contracts::FickleWallet::deploy(h.deployer.clone()).await.unwrap();
    let of_wallet = Voucher::new(*wallet.address(), provider, tora(5));
    let check = || {
        let escrow = escrow.clone();
        let v = as_escrow(&of_wallet);
        async move { escrow.isValidVoucherSignature(v, Bytes::from_static(b"any")).call().await.unwrap() }
    };
    assert!(check().await, "honest");
    for (mood, name) in [(1u8, "refusing"), (2, "greedy: burns its gas and is refused, not an out-of-gas")] {
        confirm(&h.deployer, "mood", wallet.setMood(mood).send().await.unwrap()).await.unwrap();
        assert!(!check().await, "{name}");
    }
}

#[tokio::test]
async fn a_payer_redeeming_to_itself_or_paying_another_provider_leaves_the_channel_whole() {
    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let payer = signer(keys::DEPLOYER).address();
    let (provider, by_provider) = as_provider(&h);
    h.deposit_in_escrow(payer, provider, tora(10)).await;
    let sign = |to: Address, amount: U256| {
        let voucher = Voucher::new(payer, to, amount);
        let sig = signer(keys::DEPLOYER).sign_hash_sync(&voucher.digest(h.chain_id, escrow_addr)).unwrap();
        (as_escrow(&voucher), Bytes::from(sig.as_bytes().to_vec()))
    };
    // The attack: a voucher to itself, redeemed at once, before the provider claims.
    let (to_self, sig) = sign(payer, tora(10));
    match escrow_error(escrow.redeem(to_self, sig, tora(10)).call().await) {
        InferenceEscrow::InferenceEscrowErrors::InsufficientDeposit(e) => {
            assert_eq!((e.payer, e.balance, e.required), (payer, U256::ZERO, tora(10)));
        }
        other => panic!("{other:?}"),
    }
    // A second gateway's channel is its own: money there never pays the first, and back.
    let other_gateway = signer(keys::BUNDLER).address();
    h.deposit_in_escrow(payer, other_gateway, tora(20)).await;
    let (too_much, sig) = sign(provider, tora(11));
    match escrow_error(by_provider.redeem(too_much, sig, tora(11)).call().await) {
        InferenceEscrow::InferenceEscrowErrors::InsufficientDeposit(e) => {
            assert_eq!((e.balance, e.required), (tora(10), tora(11)));
        }
        other => panic!("{other:?}"),
    }
    // The provider's claim is paid in full.
    let start = h.tora_balance(provider).await;
    let (owed, sig) = sign(provider, tora(10));
    confirm(&h.deployer, "claim", by_provider.redeem(owed, sig, tora(10)).send().await.unwrap())
        .await
        .unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(10));
    assert_eq!(escrow.balanceOf(payer, provider).call().await.unwrap(), U256::ZERO);
    assert_eq!(escrow.balanceOf(payer, other_gateway).call().await.unwrap(), tora(20));
}

#[tokio::test]
async fn a_failing_voucher_in_a_batch_is_skipped_and_reported_and_the_others_are_paid() {
    let h = Harness::start().await;
    let escrow_addr = h.contracts().inference_escrow;
    let escrow = InferenceEscrow::new(escrow_addr, h.deployer.clone());
    let payer = signer(keys::DEPLOYER).address();
    let (provider, by_provider) = as_provider(&h);
    let fickle = tora_devnet::test_contracts::FickleWallet::deploy(h.deployer.clone()).await.unwrap();
    let greedy = tora_devnet::test_contracts::FickleWallet::deploy(h.deployer.clone()).await.unwrap();
    for who in [payer, *fickle.address(), *greedy.address()] {
        h.deposit_in_escrow(who, provider, tora(10)).await;
    }
    let honest = Voucher::new(payer, provider, tora(4));
    let sig = signer(keys::DEPLOYER).sign_hash_sync(&honest.digest(h.chain_id, escrow_addr)).unwrap();
    // The two wallets accepted their vouchers when they were served, and turn before the claim.
    confirm(&h.deployer, "turn", fickle.setMood(1).send().await.unwrap()).await.unwrap();
    confirm(&h.deployer, "turn", greedy.setMood(2).send().await.unwrap()).await.unwrap();
    let vouchers = vec![
        as_escrow(&Voucher::new(*fickle.address(), provider, tora(3))),
        as_escrow(&honest),
        as_escrow(&Voucher::new(*greedy.address(), provider, tora(2))),
    ];
    let signatures =
        vec![Bytes::from_static(b"x"), Bytes::from(sig.as_bytes().to_vec()), Bytes::from_static(b"y")];
    let batch = by_provider.redeemBatch(vouchers, signatures, vec![tora(3), tora(4), tora(2)]);
    assert_eq!(batch.call().await.unwrap(), tora(4));
    let start = h.tora_balance(provider).await;
    let receipt = confirm(&h.deployer, "batch", batch.gas(2_000_000).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, start + tora(4));
    let failed: Vec<(Address, U256, u8)> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<InferenceEscrow::RedeemFailed>().ok())
        .map(|log| (log.inner.data.payer, log.inner.data.index, log.inner.data.failure))
        .collect();
    let invalid = RedeemFailure::InvalidSignature as u8;
    assert_eq!(
        failed,
        vec![(*fickle.address(), U256::ZERO, invalid), (*greedy.address(), U256::from(2), invalid)]
    );
    // Nothing of the two was moved; a single redeem still reverts with the reason.
    assert_eq!(escrow.balanceOf(*fickle.address(), provider).call().await.unwrap(), tora(10));
    let single = by_provider.redeem(
        as_escrow(&Voucher::new(*fickle.address(), provider, tora(3))),
        Bytes::from_static(b"x"),
        tora(3),
    );
    assert!(matches!(
        escrow_error(single.call().await),
        InferenceEscrow::InferenceEscrowErrors::InvalidVoucherSignature(_)
    ));
}

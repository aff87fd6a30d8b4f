//! InferenceEscrow: deposits, cumulative vouchers (ECDSA and ERC-1271), withdrawal notice.

use super::common::*;
use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::SolInterface;
use tora_core::contracts::{InferenceEscrow, ToraAccountFactory};
use tora_core::escrow_voucher::Voucher;
use tora_devnet::keys::{self, signer};
use tora_devnet::{DevnetPrices, confirm};

fn as_escrow(v: &Voucher) -> InferenceEscrow::Voucher {
    InferenceEscrow::Voucher { payer: v.payer, provider: v.provider, cumulativeAmount: v.cumulativeAmount }
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

    confirm(&h.deployer, "approve", h.tora().approve(escrow_addr, tora(100)).send().await.unwrap())
        .await
        .unwrap();
    let pending = escrow.depositFor(wallet.address, tora(100)).send().await.unwrap();
    confirm(&h.deployer, "deposit", pending).await.unwrap();
    assert_eq!(escrow.balanceOf(wallet.address).call().await.unwrap(), tora(100));

    let provider = Address::repeat_byte(0x9a);
    let sign = |amount: U256| {
        let voucher = Voucher::new(wallet.address, provider, amount);
        let digest = voucher.digest(h.chain_id, escrow_addr);
        (voucher, Bytes::from(wallet.sign_digest(digest).to_vec()))
    };
    let (ten, ten_sig) = sign(tora(10));
    let on_chain = escrow.voucherDigest(as_escrow(&ten)).call().await.unwrap();
    assert_eq!(on_chain, ten.digest(h.chain_id, escrow_addr), "core's EIP-712 digest matches");

    let redeem = |v: Voucher, sig: Bytes| escrow.redeem(as_escrow(&v), sig);
    assert_eq!(redeem(ten.clone(), ten_sig.clone()).call().await.unwrap(), tora(10));
    confirm(&h.deployer, "redeem", redeem(ten.clone(), ten_sig.clone()).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, tora(10));

    // The same voucher again pays nothing and does not revert.
    assert_eq!(redeem(ten.clone(), ten_sig.clone()).call().await.unwrap(), U256::ZERO);
    confirm(&h.deployer, "redeem again", redeem(ten.clone(), ten_sig).send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, tora(10));
    assert_eq!(escrow.redeemed(wallet.address, provider).call().await.unwrap(), tora(10));

    // A batch with a stale and a newer voucher pays only the difference.
    let (twenty_five, sig25) = sign(tora(25));
    let (thirty, sig30) = sign(tora(30));
    let batch = escrow.redeemBatch(vec![as_escrow(&twenty_five), as_escrow(&thirty)], vec![sig25, sig30]);
    assert_eq!(batch.call().await.unwrap(), tora(20));
    confirm(&h.deployer, "batch", batch.send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(provider).await, tora(30));
    assert_eq!(escrow.balanceOf(wallet.address).call().await.unwrap(), tora(70));

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
    confirm(&h.deployer, "approve", h.tora().approve(escrow_addr, tora(40)).send().await.unwrap())
        .await
        .unwrap();
    confirm(&h.deployer, "deposit", escrow.deposit(tora(40)).send().await.unwrap()).await.unwrap();

    // An EOA payer's voucher (plain ECDSA) is spent first.
    let provider = Address::repeat_byte(0x9b);
    let voucher = Voucher::new(payer, provider, tora(15));
    let sig = signer(keys::DEPLOYER).sign_hash_sync(&voucher.digest(h.chain_id, escrow_addr)).unwrap();
    let pending =
        escrow.redeem(as_escrow(&voucher), Bytes::from(sig.as_bytes().to_vec())).send().await.unwrap();
    confirm(&h.deployer, "redeem", pending).await.unwrap();

    assert!(matches!(
        escrow_error(escrow.withdraw().call().await),
        InferenceEscrow::InferenceEscrowErrors::WithdrawalNotRequested(_)
    ));
    confirm(&h.deployer, "request", escrow.requestWithdrawal().send().await.unwrap()).await.unwrap();
    let at = escrow.withdrawableAt(payer).call().await.unwrap();
    assert_eq!(at, U256::from(h.now().await + DevnetPrices::ESCROW_NOTICE_SECS));
    assert!(matches!(
        escrow_error(escrow.withdraw().call().await),
        InferenceEscrow::InferenceEscrowErrors::WithdrawalLocked(_)
    ));

    h.anvil("evm_increaseTime", serde_json::json!([DevnetPrices::ESCROW_NOTICE_SECS])).await;
    h.anvil("evm_mine", serde_json::json!([])).await;
    let before = h.tora_balance(payer).await;
    confirm(&h.deployer, "withdraw", escrow.withdraw().send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(payer).await, before + tora(25));
    assert_eq!(escrow.balanceOf(payer).call().await.unwrap(), U256::ZERO);
    assert_eq!(h.tora_balance(escrow_addr).await, U256::ZERO);
}

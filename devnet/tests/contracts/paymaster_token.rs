//! Token mode: the sender pays its gas in TORA.

use super::common::*;
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use tora_core::contracts::{EntryPoint, SimpleAccount, TORA, ToraPaymaster};
use tora_core::paymaster_quote::token_cost_ceil;
use tora_devnet::SmartWallet;

fn tora_transfer(to: Address, amount: U256) -> Bytes {
    TORA::transferCall { to, value: amount }.abi_encode().into()
}

/// Checks what every paid operation must satisfy and returns the TORA charged.
fn assert_paid_exactly(
    receipt: &alloy::rpc::types::TransactionReceipt,
    op: &tora_core::UserOperation,
    deposit_spent: U256,
) -> U256 {
    let op_event: EntryPoint::UserOperationEvent = event(receipt);
    let charged: ToraPaymaster::GasChargedInToken = event(receipt);
    let pre_charge = token_cost_ceil(op.max_cost_wei(), rate());
    assert_eq!(charged.charge + charged.refund, pre_charge, "pre-charge is ceil(maxCost * rate)");
    assert_eq!(charged.exchangeRate, rate());
    // The EntryPoint deposit pays exactly the operation's actual gas cost ...
    assert_eq!(deposit_spent, op_event.actualGasCost);
    // ... and the TORA taken covers it at the signed rate, to the wei ...
    assert!(charged.charge >= token_cost_ceil(op_event.actualGasCost, rate()), "{charged:?}");
    // ... by no more than the bounded extra gas (postOp limit, penalty bound, overhead).
    let fee = op_event.actualGasCost / op_event.actualGasUsed;
    let ceiling = token_cost_ceil(op_event.actualGasCost + extra_gas(op) * fee, rate());
    assert!(charged.charge <= ceiling, "{} > {ceiling}", charged.charge);
    charged.charge
}

#[tokio::test]
async fn new_wallet_with_zero_bnb_pays_its_first_ops_in_tora_via_permit_then_allowance() {
    let h = Harness::start().await;
    let wallet = h.new_wallet(1).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    assert_eq!(h.eth_balance(wallet.address).await, U256::ZERO);
    let recipient = Address::repeat_byte(0x77);
    let paymaster = h.contracts().paymaster;

    // First op: deploys the wallet, permits the paymaster (no approve), pays in TORA.
    let call = SmartWallet::execute(h.contracts().tora, U256::ZERO, tora_transfer(recipient, tora(5)));
    let mut op = h.op(&wallet, true, call.clone()).await;
    let max_token_cost = tora(100);
    let permit = h.permit(&wallet, max_token_cost).await;
    h.attach_quote(&mut op, h.token_quote(max_token_cost).await, Some(permit));
    let deposit_before = h.paymaster_deposit().await;
    let receipt = h.sign_and_handle(&wallet, op.clone()).await.unwrap();
    let first: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(first.success);
    let charge1 = assert_paid_exactly(&receipt, &op, deposit_before - h.paymaster_deposit().await);
    assert_eq!(h.tora_balance(recipient).await, tora(5));
    assert_eq!(h.tora_balance(wallet.address).await, tora(1_000) - tora(5) - charge1);
    assert_eq!(h.tora_balance(paymaster).await, charge1);
    assert_eq!(h.eth_balance(wallet.address).await, U256::ZERO, "never needed BNB");
    let pre_charge1 = token_cost_ceil(op.max_cost_wei(), rate());
    let allowance = h.tora().allowance(wallet.address, paymaster).call().await.unwrap();
    assert_eq!(allowance, max_token_cost - pre_charge1, "the permit set maxTokenCost");

    // Second op: no permit, the remaining allowance pays.
    let mut op = h.op(&wallet, false, call).await;
    h.attach_quote(&mut op, h.token_quote(max_token_cost).await, None);
    let deposit_before = h.paymaster_deposit().await;
    let receipt = h.sign_and_handle(&wallet, op.clone()).await.unwrap();
    let charge2 = assert_paid_exactly(&receipt, &op, deposit_before - h.paymaster_deposit().await);
    assert_eq!(h.tora_balance(wallet.address).await, tora(1_000) - tora(10) - charge1 - charge2);
    assert_eq!(h.tora_balance(paymaster).await, charge1 + charge2);
}

#[tokio::test]
async fn the_user_cannot_make_post_op_revert() {
    let h = Harness::start().await;
    let wallet = h.new_wallet(2).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let paymaster = h.contracts().paymaster;
    let sink = Address::repeat_byte(0x5c);

    // The op moves every TORA it holds after the pre-charge away and revokes the allowance.
    let max_token_cost = tora(100);
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    h.attach_quote(&mut op, h.token_quote(max_token_cost).await, None);
    let pre_charge = token_cost_ceil(op.max_cost_wei(), rate());
    let everything = tora(1_000) - pre_charge;
    let revoke: Bytes = TORA::approveCall { spender: paymaster, value: U256::ZERO }.abi_encode().into();
    op.call_data = SimpleAccount::executeBatchCall {
        dest: vec![h.contracts().tora, h.contracts().tora],
        value: vec![U256::ZERO, U256::ZERO],
        func: vec![tora_transfer(sink, everything), revoke],
    }
    .abi_encode()
    .into();
    let permit = h.permit(&wallet, max_token_cost).await;
    h.attach_quote(&mut op, h.token_quote(max_token_cost).await, Some(permit));
    let deposit_before = h.paymaster_deposit().await;
    let receipt = h.sign_and_handle(&wallet, op.clone()).await.unwrap();
    let result: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(result.success);
    assert!(!has_event::<EntryPoint::PostOpRevertReason>(&receipt));
    let charge = assert_paid_exactly(&receipt, &op, deposit_before - h.paymaster_deposit().await);
    assert_eq!(h.tora_balance(sink).await, everything);
    assert_eq!(h.tora_balance(wallet.address).await, pre_charge - charge, "only the refund");
    assert_eq!(h.tora_balance(paymaster).await, charge);

    // An op whose own call reverts still pays, and postOp still runs.
    let fails = SmartWallet::execute(h.contracts().tora, U256::ZERO, tora_transfer(sink, tora(1_000_000)));
    let balance_before = h.tora_balance(wallet.address).await;
    h.send_tora(wallet.address, tora(50)).await;
    let permit = h.permit(&wallet, max_token_cost).await;
    let mut op = h.op(&wallet, false, fails).await;
    h.attach_quote(&mut op, h.token_quote(max_token_cost).await, Some(permit));
    let deposit_before = h.paymaster_deposit().await;
    let receipt = h.sign_and_handle(&wallet, op.clone()).await.unwrap();
    let result: EntryPoint::UserOperationEvent = event(&receipt);
    assert!(!result.success, "the inner call reverted");
    assert!(has_event::<EntryPoint::UserOperationRevertReason>(&receipt));
    let charge2 = assert_paid_exactly(&receipt, &op, deposit_before - h.paymaster_deposit().await);
    assert_eq!(h.tora_balance(wallet.address).await, balance_before + tora(50) - charge2);
    assert_eq!(h.tora_balance(paymaster).await, charge + charge2);
}

/// Permits in paymasterData use the maximal deadline, which never reads the clock; any other
/// deadline still expires as EIP-2612 says.
#[tokio::test]
async fn permits_expire_unless_their_deadline_is_the_maximum() {
    let h = Harness::start().await;
    let owner = tora_devnet::keys::signer(tora_devnet::keys::WALLET_OWNER);
    let spender = Address::repeat_byte(0x51);
    let sign = |deadline: U256, nonce: U256| {
        let digest = tora_core::permit::permit(owner.address(), spender, tora(1), nonce, deadline)
            .tora_digest(h.chain_id, h.contracts().tora);
        alloy::signers::SignerSync::sign_hash_sync(&owner, &digest).unwrap()
    };
    let past = U256::from(h.now().await - 1);
    let expired = sign(past, U256::ZERO);
    let tora_token = h.tora();
    let call = tora_token.permit(
        owner.address(),
        spender,
        tora(1),
        past,
        27 + expired.v() as u8,
        expired.r().into(),
        expired.s().into(),
    );
    let data = revert_data(call.call().await);
    assert_eq!(&data[..4], &<TORA::ERC2612ExpiredSignature as alloy::sol_types::SolError>::SELECTOR[..]);

    let forever = sign(U256::MAX, U256::ZERO);
    let call = tora_token.permit(
        owner.address(),
        spender,
        tora(1),
        U256::MAX,
        27 + forever.v() as u8,
        forever.r().into(),
        forever.s().into(),
    );
    tora_devnet::confirm(&h.deployer, "permit", call.send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora().allowance(owner.address(), spender).call().await.unwrap(), tora(1));
}

#[tokio::test]
async fn the_tora_account_factory_is_staked() {
    let h = Harness::start().await;
    let info = h.entry_point().getDepositInfo(h.contracts().tora_account_factory).call().await.unwrap();
    assert!(info.staked);
    assert_eq!(U256::from(info.stake), U256::from(tora_devnet::DevnetPrices::FACTORY_STAKE_WEI));
    assert_eq!(info.unstakeDelaySec, tora_devnet::DevnetPrices::UNSTAKE_DELAY_SECS);
}

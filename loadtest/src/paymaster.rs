//! `pm_getPaymasterData` in token mode, a distinct sender per request: the quote path with no
//! cache hit to lean on.

use alloy::primitives::{Address, U64, U128, U256};
use tora_core::rpc_api::paymaster::{DraftOperation, GetPaymasterData, PaymasterContext};
use tora_core::{Deployment, UserOperation};
use tora_jsonrpc::{CallError, Client};

/// Request `i`: a token-mode quote for a sender no other request uses.
pub async fn quote(paymaster: &Client, deployment: &Deployment, i: u64) -> Result<(), CallError> {
    let mut sender = [0u8; 20];
    sender[..8].copy_from_slice(&i.to_be_bytes());
    sender[19] = 0x7a;
    let op = UserOperation {
        sender: Address::from(sender),
        call_gas_limit: U128::from(100_000),
        verification_gas_limit: U128::from(200_000),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U128::from(3_000_000_000u64),
        max_priority_fee_per_gas: U128::from(1_000_000_000u64),
        ..Default::default()
    };
    let context = PaymasterContext { token: Some(deployment.contracts.tora), ..Default::default() };
    let params =
        (DraftOperation(op), deployment.contracts.entry_point, U64::from(deployment.chain_id), Some(context));
    paymaster.call::<GetPaymasterData>(params).await.map(|_| ())
}

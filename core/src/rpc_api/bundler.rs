//! The bundler's `eth_` methods (ERC-4337) and its `tora_` additions for wallets.

use super::{Checksummed, method, wire_operation};
use crate::UserOperation;
use crate::strict_hex::Hex;
use alloy::primitives::{Address, B256, U64, U128, U256};
use alloy::rpc::types::state::StateOverride;
use alloy::rpc::types::{Log, TransactionReceipt};
use serde::{Deserialize, Serialize};

wire_operation!(
    /// A user operation as `eth_sendUserOperation` takes it: every v0.7 field, each `0x`-prefixed
    /// hex, no unknown field ([`UserOperation::from_rpc`]'s rules).
    SentOperation,
    []
);

/// Gas fields and fees a wallet may leave out when it asks for an estimate, with what they are
/// read as: they are what it is asking for, and the estimate ignores them.
pub const ESTIMATE_OPTIONAL: [(&str, &str); 6] = [
    ("callGasLimit", "0x0"),
    ("verificationGasLimit", "0x0"),
    ("preVerificationGas", "0x0"),
    ("maxFeePerGas", "0x0"),
    ("maxPriorityFeePerGas", "0x0"),
    ("signature", "0x"),
];

wire_operation!(
    /// A user operation as `eth_estimateUserOperationGas` takes it: as [`SentOperation`], except
    /// that the [`ESTIMATE_OPTIONAL`] fields may be missing or null (read as zero).
    OperationToEstimate,
    ESTIMATE_OPTIONAL
);

/// What `eth_estimateUserOperationGas` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GasEstimate {
    /// The least preVerificationGas the bundler accepts: the operation's shape plus, on OP Stack
    /// chains, its L1 data fee in L2 gas.
    pub pre_verification_gas: U256,
    /// The validation gas `simulateHandleOp` measured, plus 50%.
    pub verification_gas_limit: U128,
    /// The least callGasLimit the search found to succeed, plus 10% and 5,000 gas.
    pub call_gas_limit: U128,
    /// With a paymaster: the verification estimate, at least the paymaster's limit in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster_verification_gas_limit: Option<U128>,
}

/// An operation found by `eth_getUserOperationByHash`: in the pool (no block yet) or in a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOperationByHash {
    /// The operation as sent.
    pub user_operation: UserOperation,
    /// The EntryPoint it was sent to.
    pub entry_point: Checksummed,
    /// The block of the bundle that carried it; null while pending.
    pub block_number: Option<U64>,
    /// That block's hash; null while pending.
    pub block_hash: Option<B256>,
    /// The bundle transaction; null while pending.
    pub transaction_hash: Option<B256>,
}

/// `eth_getUserOperationReceipt`'s answer for an operation in a block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOperationReceipt {
    /// The operation's userOpHash.
    pub user_op_hash: B256,
    /// The EntryPoint that ran it.
    pub entry_point: Checksummed,
    /// Its sender.
    pub sender: Address,
    /// Its nonce.
    pub nonce: U256,
    /// Its paymaster, or the zero address.
    pub paymaster: Address,
    /// What the EntryPoint charged, in wei.
    pub actual_gas_cost: U256,
    /// The gas the EntryPoint billed.
    pub actual_gas_used: U256,
    /// Whether its call succeeded.
    pub success: bool,
    /// The call's revert data, hex, when it failed (empty otherwise).
    pub reason: String,
    /// The logs its own execution emitted.
    pub logs: Vec<Log>,
    /// The bundle transaction's receipt.
    pub receipt: TransactionReceipt,
}

/// Where an operation is, as `tora_getUserOperationStatus` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    /// A bundle carrying it is in flight.
    Submitted,
    /// In the pool.
    Pending,
    /// In a block, and its call succeeded.
    Included,
    /// In a block, and its call reverted.
    Failed,
    /// Left the pool without being included (the reason says why).
    Dropped,
    /// Neither in the pool nor in the recent blocks.
    Unknown,
}

/// `tora_getUserOperationStatus`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOperationStatus {
    /// Where it is.
    pub status: OperationState,
    /// The bundle transaction, once in a block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_hash: Option<B256>,
    /// The block, once in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_number: Option<U64>,
    /// Why it failed (the revert data, hex) or was dropped (the builder's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl UserOperationStatus {
    /// A status with nothing more to say.
    pub fn only(status: OperationState) -> Self {
        Self { status, transaction_hash: None, block_number: None, reason: None }
    }
}

/// One tier of `tora_getUserOperationGasPrice`, in wei per gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeTier {
    /// The maxFeePerGas to set.
    pub max_fee_per_gas: U128,
    /// The maxPriorityFeePerGas to set.
    pub max_priority_fee_per_gas: U128,
}

/// The fees an operation needs to ride in this bundler's bundles now (the shape wallets know
/// from Pimlico's method of the same name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GasPriceTiers {
    /// Enough to be bundled.
    pub slow: FeeTier,
    /// Room for the base fee to rise a little.
    pub standard: FeeTier,
    /// Room for the base fee to rise a lot.
    pub fast: FeeTier,
}

method!(
    /// `eth_chainId`: the chain userOpHashes are computed for.
    ChainId, "eth_chainId", () -> U64
);
method!(
    /// `eth_supportedEntryPoints`: the EntryPoints this bundler serves.
    SupportedEntryPoints, "eth_supportedEntryPoints", () -> Vec<Checksummed>
);
method!(
    /// `eth_sendUserOperation`: validates and pools an operation; answers its userOpHash.
    SendUserOperation, "eth_sendUserOperation", (SentOperation, Hex<Address>) -> B256
);
method!(
    /// `eth_estimateUserOperationGas`: gas limits that make the operation pass, with an
    /// optional state override.
    EstimateUserOperationGas, "eth_estimateUserOperationGas",
    (OperationToEstimate, Hex<Address>, Option<StateOverride>) -> GasEstimate
);
method!(
    /// `eth_getUserOperationByHash`: a pooled or included operation, or null.
    GetUserOperationByHash, "eth_getUserOperationByHash", (Hex<B256>) -> Option<UserOperationByHash>
);
method!(
    /// `eth_getUserOperationReceipt`: null until the operation is in a block.
    GetUserOperationReceipt, "eth_getUserOperationReceipt", (Hex<B256>) -> Option<UserOperationReceipt>
);
method!(
    /// `tora_getUserOperationStatus`: where an operation is, including dropped and why.
    GetUserOperationStatus, "tora_getUserOperationStatus", (Hex<B256>) -> UserOperationStatus
);
method!(
    /// `tora_getUserOperationGasPrice`: the fees to set, slow / standard / fast.
    GetUserOperationGasPrice, "tora_getUserOperationGasPrice", () -> GasPriceTiers
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn estimate(value: Value) -> Result<UserOperation, serde_json::Error> {
        serde_json::from_value::<OperationToEstimate>(value).map(|op| op.0)
    }

    #[test]
    fn estimates_may_omit_gas_fields_and_fees_but_not_the_rest() {
        let op = json!({ "sender": Address::repeat_byte(1), "nonce": "0x0", "callData": "0x" });
        let parsed = estimate(op.clone()).unwrap();
        assert_eq!(parsed.call_gas_limit, U128::ZERO);
        assert!(parsed.signature.is_empty());
        let mut no_sender = op;
        no_sender.as_object_mut().unwrap().remove("sender");
        assert!(estimate(no_sender).is_err());
        assert!(estimate(Value::Null).is_err());
        // Fields given as null are omitted ones.
        let mut nulls = json!({ "sender": Address::repeat_byte(1), "nonce": "0x0", "callData": "0x" });
        nulls["maxFeePerGas"] = Value::Null;
        nulls["paymaster"] = Value::Null;
        assert_eq!(estimate(nulls).unwrap().max_fee_per_gas, U128::ZERO);
    }
}

//! The paymaster's methods: ERC-7677's `pm_getPaymasterStubData` / `pm_getPaymasterData`, and
//! `tora_getTokenQuote` for wallets that pay in TORA.

use super::bundler::ESTIMATE_OPTIONAL;
use super::{method, wire_operation};
use alloy::primitives::{Address, B256, Bytes, U64, U128, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

wire_operation!(
    /// ERC-7677 sends a user operation before gas estimation: missing (or null) gas fields,
    /// nonce, callData and signature are read as zero / empty; everything present is checked as
    /// strictly as `eth_sendUserOperation` checks it (v0.7 fields only, strict hex).
    DraftOperation,
    DRAFT_ONLY.into_iter().chain(ESTIMATE_OPTIONAL)
);

/// What a draft may leave out besides what an estimate request may ([`ESTIMATE_OPTIONAL`]),
/// with the value it is read as.
const DRAFT_ONLY: [(&str, &str); 2] = [("nonce", "0x0"), ("callData", "0x")];

/// ERC-7677's paymaster-specific `context`: who pays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymasterContext {
    /// The sender pays in this token (only TORA is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Address>,
    /// An EIP-2612 permit the wallet signed for the paymaster (from `tora_getTokenQuote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit: Option<PermitContext>,
    /// A dapp pays, under this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsorship_policy_id: Option<String>,
}

/// A signed EIP-2612 permit of TORA to the paymaster, carried in the context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermitContext {
    /// The allowance granted, in TORA base units.
    pub value: U256,
    /// Must be 2^256-1: a finite deadline makes TORA read the clock during validation.
    pub deadline: U256,
    /// The owner's signature: 65 bytes, ECDSA or through the account's ERC-1271.
    pub signature: Bytes,
}

/// Shown to the user by wallets when a dapp pays (ERC-7677 `sponsor`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SponsorInfo {
    /// The policy's display name.
    pub name: String,
    /// An icon URL or data URI.
    pub icon: Option<String>,
}

/// `pm_getPaymasterStubData`'s answer: paymaster fields of the final length for estimation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StubData {
    /// ToraPaymaster.
    pub paymaster: Address,
    /// Data of the final data's length and no fewer non-zero bytes.
    pub paymaster_data: Bytes,
    /// The verification gas the paymaster needs (more with a permit).
    pub paymaster_verification_gas_limit: Option<U128>,
    /// The postOp gas the paymaster needs.
    pub paymaster_post_op_gas_limit: Option<U128>,
    /// Always false: the signature binds the gas limits, final only after estimation.
    pub is_final: bool,
    /// The sponsor, when a dapp pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<SponsorInfo>,
}

/// `pm_getPaymasterData`'s answer: the signed quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymasterData {
    /// ToraPaymaster.
    pub paymaster: Address,
    /// The quote and its signature (and the permit, when one was given).
    pub paymaster_data: Bytes,
}

/// One field of an EIP-712 struct type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedField {
    /// The field's name.
    pub name: String,
    /// Its Solidity type.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The EIP-712 domain of TORA's permits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermitDomain {
    /// TORA's EIP-712 name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The chain.
    pub chain_id: u64,
    /// TORA's address.
    pub verifying_contract: Address,
}

/// The EIP-2612 permit message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitMessage {
    /// The sender (the smart account).
    pub owner: Address,
    /// ToraPaymaster.
    pub spender: Address,
    /// The allowance, in TORA base units: the quote's maximum.
    pub value: U256,
    /// The owner's TORA permit nonce.
    pub nonce: U256,
    /// 2^256-1 (no expiry; see [`PermitContext::deadline`]).
    pub deadline: U256,
}

/// The permit as `eth_signTypedData_v4` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermitTypedData {
    /// The domain.
    pub domain: PermitDomain,
    /// `Permit`.
    pub primary_type: String,
    /// The struct types (`Permit`).
    pub types: BTreeMap<String, Vec<TypedField>>,
    /// The values to sign.
    pub message: PermitMessage,
}

/// The permit a token quote proposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermitProposal {
    /// The EIP-712 digest to sign (ERC-1271 accounts sign this).
    pub digest: B256,
    /// The same, as typed data.
    pub typed_data: PermitTypedData,
}

/// `tora_getTokenQuote`'s answer: what an operation costs in TORA and the permit that pays it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenQuote {
    /// ToraPaymaster.
    pub paymaster: Address,
    /// TORA.
    pub token: Address,
    /// TORA base units per 1e18 wei, markup included.
    pub exchange_rate: U256,
    /// The likely charge at the current base fee, in TORA base units.
    pub estimated_token_cost: U256,
    /// The most the operation may be charged, in TORA base units.
    pub max_token_cost: U256,
    /// The sender's allowance to the paymaster now.
    pub current_allowance: U256,
    /// The allowance that covers the maximum.
    pub approve_amount: U256,
    /// A permit for that allowance.
    pub permit: PermitProposal,
}

method!(
    /// ERC-7677: paymaster fields for gas estimation.
    GetPaymasterStubData, "pm_getPaymasterStubData",
    (DraftOperation, Address, U64, Option<PaymasterContext>) -> StubData
);
method!(
    /// ERC-7677: the signed paymaster data for the estimated operation.
    GetPaymasterData, "pm_getPaymasterData",
    (DraftOperation, Address, U64, Option<PaymasterContext>) -> PaymasterData
);
method!(
    /// What an operation costs in TORA, with the permit to sign.
    GetTokenQuote, "tora_getTokenQuote", (DraftOperation, Address, U64) -> TokenQuote
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserOperation;
    use serde_json::json;

    fn draft(value: serde_json::Value) -> Result<UserOperation, String> {
        serde_json::from_value::<DraftOperation>(value).map(|d| d.0).map_err(|e| e.to_string())
    }

    #[test]
    fn a_draft_may_leave_out_what_estimation_fills_but_is_otherwise_read_strictly() {
        let sender = "0x1111111111111111111111111111111111111111";
        let op = draft(json!({ "sender": sender, "callGasLimit": null })).unwrap();
        assert_eq!(op.sender, sender.parse::<Address>().unwrap());
        assert_eq!((op.nonce, op.call_gas_limit, op.signature.len()), (U256::ZERO, U128::ZERO, 0));
        // A field of another EntryPoint version would be dropped from what is signed.
        let err = draft(json!({ "sender": sender, "eip7702Auth": { "chainId": "0x1" } })).unwrap_err();
        assert!(err.contains("unknown user operation field eip7702Auth"), "{err}");
        let err = draft(json!({ "sender": sender, "nonce": "12" })).unwrap_err();
        assert!(err.contains("nonce"), "{err}");
        assert!(draft(json!([sender])).unwrap_err().contains("JSON object"));
    }
}

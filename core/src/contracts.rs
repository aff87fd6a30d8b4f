//! Bindings generated from `contracts/artifacts/*.json` (ABI and bytecode), so that no service
//! spells a selector or an ABI by hand and `cargo build` never needs Node.
//!
//! Each artifact defines its own copy of shared structs such as `PackedUserOperation`; the
//! EntryPoint's is the canonical one (`crate::user_operation::PackedUserOperation`).

// Generated code: `sol!` turns every ABI function, event and error into types with no doc
// comments (the artifacts carry none), and Solidity functions take as many arguments as they do.
#![allow(missing_docs, clippy::too_many_arguments)]

// The generated `IEntryPoint.UserOpsPerAggregator` looks for `PackedUserOperation` in this
// scope; SimpleAccount's copy is the same Solidity struct. Handlers use `EntryPoint`'s own.
use SimpleAccount::PackedUserOperation;

alloy::sol!(
    #[sol(rpc, all_derives)]
    EntryPoint,
    "../contracts/artifacts/EntryPoint.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    SimpleAccount,
    "../contracts/artifacts/SimpleAccount.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    SimpleAccountFactory,
    "../contracts/artifacts/SimpleAccountFactory.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    ToraAccountFactory,
    "../contracts/artifacts/ToraAccountFactory.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    TORA,
    "../contracts/artifacts/TORA.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    ToraPriceFeed,
    "../contracts/artifacts/ToraPriceFeed.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    ToraPaymaster,
    "../contracts/artifacts/ToraPaymaster.json"
);

alloy::sol!(
    #[sol(rpc, all_derives)]
    InferenceEscrow,
    "../contracts/artifacts/InferenceEscrow.json"
);

alloy::sol! {
    /// `InferenceEscrow.Failure`, the reason in `RedeemFailed` (an ABI carries it as a bare
    /// uint8). In the contract's order: a test checks it against the source.
    #[derive(Debug, PartialEq, Eq)]
    enum RedeemFailure {
        /// No failure: paid, or nothing above what the provider already took.
        None,
        /// The caller is not the voucher's provider.
        NotProvider,
        /// The claim is above the voucher's `cumulativeAmount`.
        ClaimAboveVoucher,
        /// The payer's signature (ECDSA or ERC-1271) does not verify.
        InvalidSignature,
        /// The payer's deposit does not cover what is due.
        InsufficientDeposit
    }
}

/// The CREATE2 factory present on anvil and on most EVM chains (Arachnid's deterministic deployer).
pub const CREATE2_DEPLOYER: alloy::primitives::Address =
    alloy::primitives::address!("4e59b44847b379578588920cA78FbF26c0B4956C");

/// Salt under which EntryPoint v0.7 was deployed through [`CREATE2_DEPLOYER`].
pub const ENTRY_POINT_V07_SALT: alloy::primitives::B256 =
    alloy::primitives::b256!("90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3");

/// keccak256 of the canonical EntryPoint v0.7 runtime code (16,035 bytes).
pub const ENTRY_POINT_V07_CODE_HASH: alloy::primitives::B256 =
    alloy::primitives::b256!("8db5ff695839d655407cc8490bb7a5d82337a86a6b39c3f0258aa6c3b582fc58");

/// SenderCreator, created by the EntryPoint v0.7 constructor at its canonical address.
pub const SENDER_CREATOR_V07: alloy::primitives::Address =
    alloy::primitives::address!("EFC2c1444eBCC4Db75e7613d20C6a62fF67A167C");

/// Every artifact generates its own copy of `PackedUserOperation`; this implements the move from
/// the EntryPoint's copy into another binding's (`$target`), field by field.
#[macro_export]
macro_rules! packed_user_operation_from_entry_point {
    ($target:ty) => {
        impl From<$crate::user_operation::PackedUserOperation> for $target {
            fn from(op: $crate::user_operation::PackedUserOperation) -> Self {
                Self {
                    sender: op.sender,
                    nonce: op.nonce,
                    initCode: op.initCode,
                    callData: op.callData,
                    accountGasLimits: op.accountGasLimits,
                    preVerificationGas: op.preVerificationGas,
                    gasFees: op.gasFees,
                    paymasterAndData: op.paymasterAndData,
                    signature: op.signature,
                }
            }
        }
    };
}

packed_user_operation_from_entry_point!(ToraPaymaster::PackedUserOperation);

#[cfg(test)]
mod tests {
    use super::RedeemFailure;

    /// The ABI names no enum values, so the Rust copy is checked against the contract's source.
    #[test]
    fn redeem_failures_follow_the_contracts_enum() {
        let source = include_str!("../../contracts/src/InferenceEscrow.sol");
        let body = source.split("enum Failure {").nth(1).and_then(|rest| rest.split('}').next()).unwrap();
        let names: Vec<&str> = body.split(',').map(str::trim).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(format!("{:?}", RedeemFailure::try_from(i as u8).unwrap()), *name);
        }
        assert!(RedeemFailure::try_from(names.len() as u8).is_err());
    }
}

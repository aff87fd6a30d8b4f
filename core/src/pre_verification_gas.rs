//! preVerificationGas: what the bundle transaction pays for an operation outside its gas
//! limits: its share of the calldata and of the transaction's fixed cost and, on OP Stack
//! chains, the L1 data fee of its bytes expressed in L2 gas.
//!
//! One function, [`required_pre_verification_gas`], serves the bundler's estimate, the check
//! its `eth_sendUserOperation` makes (so an operation built with the estimate is always
//! accepted), and the paymaster's bound on the preVerificationGas it signs (so a wallet cannot
//! make a sponsor pay for gas no bundler needs).
//! It prices the operation's *shape*, not the values in its gas and fee fields (those are what
//! the wallet asks for, and are zero when it asks), nor the exact bytes of its signature and
//! paymaster data (dummies when it asks): gas fields and fees count as 8 non-zero bytes each,
//! the signature and paymaster data as that many non-zero bytes (a signature as at least 65),
//! and the L1 fee takes the oracle's length-only upper bound.

use crate::UserOperation;
use crate::contracts::EntryPoint;
use crate::l1_fee::{L1FeeParams, fjord_l1_fee_upper_bound, gas_for_fee};
use alloy::primitives::{Address, Bytes, U128, U256};
use alloy::sol_types::{SolCall, SolValue};

/// The transaction's base cost, charged to a bundle of one (the worst case).
pub const TRANSACTION_BASE_GAS: u64 = 21_000;
/// The EntryPoint's own bookkeeping per operation outside the gas limits (eth-infinitism's
/// `perUserOp`).
pub const PER_OPERATION_GAS: u64 = 18_300;
/// Per 32-byte word of the operation (memory copying; eth-infinitism's `perUserOpWord`).
pub const PER_WORD_GAS: u64 = 4;
/// The length of a signature the estimate assumes when the caller sent a shorter dummy.
pub const ASSUMED_SIGNATURE_LEN: usize = 65;
/// What a gas field or fee is priced as: 8 non-zero bytes, enough for any real value.
const FIELD_PLACEHOLDER: u64 = u64::MAX;

/// EIP-2028 calldata cost: 4 gas per zero byte, 16 per non-zero byte.
pub fn calldata_cost(data: &[u8]) -> u64 {
    data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// The L2 gas price the L1 fee is converted at, with the oracle's parameters of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Price {
    /// The GasPriceOracle's parameters at that block.
    pub params: L1FeeParams,
    /// Wei per L2 gas the operation pays (its effective gas price).
    pub gas_price: U256,
}

/// `op` as priced: placeholder gas fields and fees, a signature of at least 65 bytes.
fn priced_shape(op: &UserOperation) -> UserOperation {
    let field = U128::from(FIELD_PLACEHOLDER);
    let mut shape = UserOperation {
        call_gas_limit: field,
        verification_gas_limit: field,
        pre_verification_gas: U256::from(FIELD_PLACEHOLDER),
        max_fee_per_gas: field,
        max_priority_fee_per_gas: field,
        paymaster_verification_gas_limit: op.paymaster.map(|_| field),
        paymaster_post_op_gas_limit: op.paymaster.map(|_| field),
        ..op.clone()
    };
    // Signatures (the account's, and the paymaster's inside its data) are filled in after the
    // estimate and are mostly non-zero bytes: priced as all non-zero, by length.
    shape.signature = Bytes::from(vec![0xff; op.signature.len().max(ASSUMED_SIGNATURE_LEN)]);
    shape.paymaster_data = op.paymaster_data.as_ref().map(|data| Bytes::from(vec![0xff; data.len()]));
    shape
}

/// Calldata cost of the packed operation in `handleOps`, plus the fixed overheads.
pub fn calldata_gas(op: &UserOperation) -> u64 {
    let encoded = priced_shape(op).pack().abi_encode();
    let words = encoded.len().div_ceil(32) as u64;
    TRANSACTION_BASE_GAS + PER_OPERATION_GAS + calldata_cost(&encoded) + PER_WORD_GAS * words
}

/// The bytes of a bundle of one carrying `op`, unsigned: `handleOps([op], beneficiary)`.
pub fn bundle_of_one(op: &UserOperation) -> Vec<u8> {
    EntryPoint::handleOpsCall { ops: vec![priced_shape(op).pack()], beneficiary: Address::ZERO }.abi_encode()
}

/// The L1 data fee of a bundle of one, in L2 gas at `price`, rounded up.
pub fn l1_gas(op: &UserOperation, price: &L1Price) -> U256 {
    let fee = fjord_l1_fee_upper_bound(bundle_of_one(op).len() as u64, &price.params);
    gas_for_fee(fee, price.gas_price)
}

/// What `op` pays per gas at `base_fee`: min(maxFee, baseFee + maxPriorityFee); the base fee
/// itself when the operation names no fees yet (an estimate request).
pub fn effective_gas_price(op: &UserOperation, base_fee: u64) -> U256 {
    let base = U256::from(base_fee);
    if op.max_fee_per_gas.is_zero() {
        return base;
    }
    U256::from(op.max_fee_per_gas).min(base + U256::from(op.max_priority_fee_per_gas))
}

/// The least preVerificationGas the bundler accepts for `op`, and what it estimates.
pub fn required_pre_verification_gas(op: &UserOperation, l1: Option<&L1Price>) -> U256 {
    U256::from(calldata_gas(op)) + l1.map_or(U256::ZERO, |price| l1_gas(op, price))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calldata_costs_four_per_zero_and_sixteen_per_other_byte() {
        assert_eq!(calldata_cost(&[0, 0, 1, 255]), 4 + 4 + 16 + 16);
        assert_eq!(calldata_cost(&[]), 0);
    }

    #[test]
    fn calldata_gas_counts_the_encoded_operation_shape() {
        let op = UserOperation { sender: Address::repeat_byte(0x11), ..Default::default() };
        let mut expected = op.pack();
        let eight = U256::from(u64::MAX);
        expected.accountGasLimits = alloy::primitives::B256::from((eight << 128) | eight);
        expected.gasFees = expected.accountGasLimits;
        expected.preVerificationGas = eight;
        expected.signature = Bytes::from(vec![0xff; 65]);
        let encoded = expected.abi_encode();
        // 21,000 + 18,300 fixed, calldata, and 4 per word.
        let want = 21_000 + 18_300 + calldata_cost(&encoded) + 4 * (encoded.len() as u64).div_ceil(32);
        assert_eq!(calldata_gas(&op), want);
        // The values in the gas fields and fees, and the bytes of the signature, do not change
        // the price.
        let filled = UserOperation {
            call_gas_limit: U128::from(123_456),
            max_fee_per_gas: U128::from(3_000_000_000u64),
            pre_verification_gas: U256::from(50_000),
            signature: Bytes::from(vec![0u8; 65]),
            ..op.clone()
        };
        assert_eq!(calldata_gas(&filled), want);
        // Paymaster data is priced by its length, as non-zero bytes.
        let paying = |data: Vec<u8>| UserOperation {
            paymaster: Some(Address::repeat_byte(0x22)),
            paymaster_data: Some(Bytes::from(data)),
            ..op.clone()
        };
        assert_eq!(calldata_gas(&paying(vec![0; 97])), calldata_gas(&paying(vec![0xab; 97])));
        // 64 more non-zero bytes: 16 each, 4 per added word, and the length word gains a
        // non-zero byte (16 instead of 4).
        let longer = UserOperation { call_data: Bytes::from(vec![1u8; 64]), ..op.clone() };
        assert_eq!(calldata_gas(&longer), want + 64 * 16 + 2 * 4 + 12);
        // No L1 fee: only the calldata part.
        assert_eq!(required_pre_verification_gas(&op, None), U256::from(want));
    }

    fn price(l1_base_fee: u64, gas_price: u64) -> L1Price {
        L1Price {
            params: L1FeeParams {
                l1_base_fee: U256::from(l1_base_fee),
                blob_base_fee: U256::from(1u64),
                base_fee_scalar: 1_368,
                blob_base_fee_scalar: 810_949,
            },
            gas_price: U256::from(gas_price),
        }
    }

    /// The OP Stack share, worked by hand: with m = n + 68 signed bytes, size = max(100e6,
    /// 836,500 × (m + m / 255 + 16) − 42,585,600), fee = size × (16 × 1,368 × l1BaseFee +
    /// 810,949) / 1e12, gas = ceil(fee / gasPrice).
    #[test]
    fn the_l1_share_is_the_oracles_upper_bound_fee_over_the_l2_gas_price() {
        let op = UserOperation {
            sender: Address::repeat_byte(0x11),
            call_data: Bytes::from(vec![7u8; 100]),
            ..Default::default()
        };
        let n = bundle_of_one(&op).len() as u64;
        // handleOps selector, two head words, the array (length, offset, 9 head words of the
        // tuple, then initCode, callData (100 → 4 words), paymasterAndData, signature (65 → 3
        // words), each with its length word).
        assert_eq!(n, 4 + 32 * 2 + 32 * 2 + 32 * 9 + 32 + 32 * 5 + 32 + 32 * 4);
        let compressed = n + 68 + (n + 68) / 255 + 16;
        let size = compressed * 836_500 - 42_585_600;
        for (l1_base_fee, gas_price) in [(3_000_000_000u64, 1_000_000_000u64), (1, 7), (50_000_000_000, 3)] {
            let weighted = 16 * 1_368 * u128::from(l1_base_fee) + 810_949;
            let fee = u128::from(size) * weighted / 1_000_000_000_000;
            let gas = fee.div_ceil(u128::from(gas_price));
            let p = price(l1_base_fee, gas_price);
            assert_eq!(l1_gas(&op, &p), U256::from(gas), "l1 base fee {l1_base_fee}, gas price {gas_price}");
            assert_eq!(
                required_pre_verification_gas(&op, Some(&p)),
                U256::from(calldata_gas(&op)) + U256::from(gas)
            );
        }
        // A free L2 (gas price 0) cannot convert the fee; it adds nothing.
        assert_eq!(l1_gas(&op, &price(1, 0)), U256::ZERO);
    }
}

//! preVerificationGas: what the bundle transaction pays for an operation outside its gas
//! limits: its share of the calldata and of the transaction's fixed cost.

use alloy::sol_types::SolValue;
use tora_core::UserOperation;

/// The transaction's base cost, charged to a bundle of one (the worst case).
pub const TRANSACTION_BASE_GAS: u64 = 21_000;
/// The EntryPoint's own bookkeeping per operation outside the gas limits (eth-infinitism's
/// `perUserOp`).
pub const PER_OPERATION_GAS: u64 = 18_300;
/// Per 32-byte word of the operation (memory copying; eth-infinitism's `perUserOpWord`).
pub const PER_WORD_GAS: u64 = 4;
/// The length of a signature the estimate assumes when the caller sent a shorter dummy.
pub const ASSUMED_SIGNATURE_LEN: usize = 65;

/// EIP-2028 calldata cost: 4 gas per zero byte, 16 per non-zero byte.
pub fn calldata_cost(data: &[u8]) -> u64 {
    data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// Calldata cost of the packed operation in `handleOps`, plus the fixed overheads.
pub fn pre_verification_gas(op: &UserOperation) -> u64 {
    let mut packed = op.pack();
    if packed.signature.len() < ASSUMED_SIGNATURE_LEN {
        // A real signature is mostly non-zero bytes.
        packed.signature = vec![0xff; ASSUMED_SIGNATURE_LEN].into();
    }
    let encoded = packed.abi_encode();
    let words = encoded.len().div_ceil(32) as u64;
    TRANSACTION_BASE_GAS + PER_OPERATION_GAS + calldata_cost(&encoded) + PER_WORD_GAS * words
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, Bytes};

    #[test]
    fn calldata_costs_four_per_zero_and_sixteen_per_other_byte() {
        assert_eq!(calldata_cost(&[0, 0, 1, 255]), 4 + 4 + 16 + 16);
        assert_eq!(calldata_cost(&[]), 0);
    }

    #[test]
    fn pre_verification_gas_counts_the_encoded_operation() {
        let op = UserOperation { sender: Address::repeat_byte(0x11), ..Default::default() };
        let mut expected = op.pack();
        expected.signature = Bytes::from(vec![0xff; 65]);
        let encoded = expected.abi_encode();
        // 21,000 + 18,300 + calldata + 4 per word.
        let want = 21_000 + 18_300 + calldata_cost(&encoded) + 4 * (encoded.len() as u64).div_ceil(32);
        assert_eq!(pre_verification_gas(&op), want);
        // 64 more non-zero bytes: 16 each, 4 per added word, and the length word gains a
        // non-zero byte (16 instead of 4).
        let longer = UserOperation { call_data: Bytes::from(vec![1u8; 64]), ..op.clone() };
        assert_eq!(pre_verification_gas(&longer), want + 64 * 16 + 2 * 4 + 12);
    }
}

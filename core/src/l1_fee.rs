//! The OP Stack L1 data fee (Fjord and later): what an L2 transaction pays for its bytes on L1,
//! on top of execution gas. Bundlers fold it into `preVerificationGas`; paymasters pay it
//! through that field.

use crate::money::Wei;
use alloy::eips::BlockId;
use alloy::network::TransactionBuilder;
use alloy::primitives::Bytes;
use alloy::primitives::{Address, U256, address};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use std::sync::{Mutex, PoisonError};

/// The GasPriceOracle predeploy on every OP Stack chain.
pub const GAS_PRICE_ORACLE: Address = address!("420000000000000000000000000000000000000F");

alloy::sol! {
    /// The parts of the GasPriceOracle predeploy (Ecotone/Fjord) a fee estimate reads.
    #[sol(rpc)]
    interface GasPriceOracle {
        function l1BaseFee() external view returns (uint256);
        function blobBaseFee() external view returns (uint256);
        function baseFeeScalar() external view returns (uint32);
        function blobBaseFeeScalar() external view returns (uint32);
        function getL1Fee(bytes memory data) external view returns (uint256);
    }
}

/// The L1 prices and scalars the oracle publishes each L1 block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1FeeParams {
    /// The L1 base fee, in L1 wei per gas (`l1BaseFee`).
    pub l1_base_fee: U256,
    /// The L1 blob base fee, in L1 wei per blob gas (`blobBaseFee`).
    pub blob_base_fee: U256,
    /// Weight of the L1 base fee, scaled by 1e6 (`baseFeeScalar`).
    pub base_fee_scalar: u32,
    /// Weight of the blob base fee, scaled by 1e6 (`blobBaseFeeScalar`).
    pub blob_base_fee_scalar: u32,
}

/// Fjord's estimated L1 size of `tx` (the signed, RLP-encoded transaction), scaled by 1e6:
/// `max(100e6, 836_500 × fastlzLen(tx) − 42_585_600)`.
pub fn fjord_estimated_size(tx: &[u8]) -> u64 {
    op_alloy_flz::tx_estimated_size_fjord(tx)
}

/// Fjord's L1 fee: `size × (16 × baseFeeScalar × l1BaseFee + blobBaseFeeScalar × blobBaseFee) / 1e12`,
/// rounded down as the chain rounds it.
pub fn fjord_l1_fee(tx: &[u8], params: &L1FeeParams) -> Wei {
    fjord_fee_for_size(fjord_estimated_size(tx), params)
}

/// The oracle's `getL1FeeUpperBound(unsignedTxSize)`: the fee of a transaction of that many
/// unsigned bytes at FastLZ's practical worst case (`size + 68` signed, `+ size / 255 + 16`
/// compressed). It depends on the length only, so a quote made before the final bytes (a
/// signature, paymaster data) exist still holds for them.
pub fn fjord_l1_fee_upper_bound(unsigned_tx_size: u64, params: &L1FeeParams) -> Wei {
    let signed = unsigned_tx_size.saturating_add(68);
    let compressed = signed.saturating_add(signed / 255).saturating_add(16);
    let size = compressed
        .saturating_mul(op_alloy_flz::L1_COST_FASTLZ_COEF)
        .saturating_sub(op_alloy_flz::L1_COST_INTERCEPT)
        .max(op_alloy_flz::MIN_TX_SIZE_SCALED);
    fjord_fee_for_size(size, params)
}

/// `size × (16 × baseFeeScalar × l1BaseFee + blobBaseFeeScalar × blobBaseFee) / 1e12`.
fn fjord_fee_for_size(size: u64, params: &L1FeeParams) -> Wei {
    let weighted = U256::from(16u64) * U256::from(params.base_fee_scalar) * params.l1_base_fee
        + U256::from(params.blob_base_fee_scalar) * params.blob_base_fee;
    Wei(U256::from(size) * weighted / U256::from(1_000_000_000_000u64))
}

/// Gas that pays `fee` at `gas_price`, rounded up (the bundler must not fall short).
pub fn gas_for_fee(fee: Wei, gas_price: U256) -> U256 {
    if gas_price.is_zero() { U256::ZERO } else { fee.0.div_ceil(gas_price) }
}

/// Reads the oracle's [`L1FeeParams`] in one JSON-RPC batch (four `eth_call`s in one HTTP
/// request), pinned to a block and cached for it: the oracle changes only when an L1 block is
/// posted, at most once per L2 block. The bundler's estimator and the paymaster's bounds share it.
pub struct OracleReader {
    provider: DynProvider,
    oracle: Address,
    cached: Mutex<Option<(u64, L1FeeParams)>>,
}

fn node<E: std::fmt::Display>(e: E) -> String {
    format!("GasPriceOracle: {e}")
}

impl OracleReader {
    /// A reader of the GasPriceOracle at `oracle` through `provider`, with nothing cached yet.
    pub fn new(provider: DynProvider, oracle: Address) -> Self {
        Self { provider, oracle, cached: Mutex::new(None) }
    }

    /// The parameters at `block`, and the node calls that took: none when that block's are
    /// cached, else one batch of four.
    pub async fn params(&self, block: u64) -> Result<(L1FeeParams, u64), String> {
        if let Some((at, params)) = *self.cached.lock().unwrap_or_else(PoisonError::into_inner)
            && at == block
        {
            return Ok((params, 0));
        }
        let call = |data: Vec<u8>| {
            (TransactionRequest::default().with_to(self.oracle).with_input(data), BlockId::number(block))
        };
        let client = self.provider.client();
        let mut batch = alloy::rpc::client::BatchRequest::new(client);
        let l1_base_fee = batch
            .add_call::<_, Bytes>("eth_call", &call(GasPriceOracle::l1BaseFeeCall {}.abi_encode()))
            .map_err(node)?;
        let blob_base_fee = batch
            .add_call::<_, Bytes>("eth_call", &call(GasPriceOracle::blobBaseFeeCall {}.abi_encode()))
            .map_err(node)?;
        let base_fee_scalar = batch
            .add_call::<_, Bytes>("eth_call", &call(GasPriceOracle::baseFeeScalarCall {}.abi_encode()))
            .map_err(node)?;
        let blob_base_fee_scalar = batch
            .add_call::<_, Bytes>("eth_call", &call(GasPriceOracle::blobBaseFeeScalarCall {}.abi_encode()))
            .map_err(node)?;
        batch.send().await.map_err(node)?;
        let word = |bytes: &Bytes| -> Result<U256, String> {
            U256::try_from_be_slice(bytes.get(..32).ok_or_else(|| node("short answer"))?)
                .ok_or_else(|| node("bad word"))
        };
        let scalar = |bytes: &Bytes| -> Result<u32, String> {
            u32::try_from(word(bytes)?).map_err(|_| node("scalar above uint32"))
        };
        let params = L1FeeParams {
            l1_base_fee: word(&l1_base_fee.await.map_err(node)?)?,
            blob_base_fee: word(&blob_base_fee.await.map_err(node)?)?,
            base_fee_scalar: scalar(&base_fee_scalar.await.map_err(node)?)?,
            blob_base_fee_scalar: scalar(&blob_base_fee_scalar.await.map_err(node)?)?,
        };
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some((block, params));
        Ok((params, 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> L1FeeParams {
        L1FeeParams {
            l1_base_fee: U256::from(3_000_000_000u64), // 3 gwei on BSC
            blob_base_fee: U256::from(1u64),
            base_fee_scalar: 1_368,
            blob_base_fee_scalar: 810_949,
        }
    }

    #[test]
    fn small_transactions_pay_the_minimum_size() {
        // 1,000 zero bytes compress to 21: 836,500 × 21 < 42,585,600, so the 100e6 floor applies.
        assert_eq!(fjord_estimated_size(&[0u8; 1_000]), 100_000_000);
        // 100e6 × (16 × 1,368 × 3e9 + 810,949 × 1) / 1e12 = 6,566,400,081.0949, rounded down
        // (worked out with Python integers).
        assert_eq!(fjord_l1_fee(&[0u8; 1_000], &params()), Wei(U256::from(6_566_400_081u64)));
    }

    #[test]
    fn incompressible_bytes_pay_by_their_compressed_length() {
        let tx: Vec<u8> = (0..=255u8).cycle().take(256).collect();
        let len = op_alloy_flz::flz_compress_len(&tx) as u64;
        assert!(len > 256, "no repeats: FastLZ adds literal headers");
        let size = len * 836_500 - 42_585_600;
        assert_eq!(fjord_estimated_size(&tx), size);
        let expected = U256::from(size) * U256::from(16u64 * 1_368 * 3_000_000_000 + 810_949)
            / U256::from(10u64).pow(U256::from(12));
        assert_eq!(fjord_l1_fee(&tx, &params()).0, expected);
    }

    #[test]
    fn the_upper_bound_follows_the_oracles_getl1feeupperbound() {
        // 100 bytes: 168 signed, 168 + 0 + 16 = 184 compressed; 184 × 836,500 − 42,585,600 =
        // 111,330,400 (above the 100e6 floor).
        let weighted = U256::from(16u64 * 1_368 * 3_000_000_000 + 810_949);
        let fee = U256::from(111_330_400u64) * weighted / U256::from(10u64).pow(U256::from(12));
        assert_eq!(fjord_l1_fee_upper_bound(100, &params()).0, fee);
        // Small transactions pay the floor, like the exact formula.
        assert_eq!(fjord_l1_fee_upper_bound(0, &params()), fjord_l1_fee(&[0u8; 1_000], &params()));
        // 1,000 bytes: 1,068 + 4 + 16 = 1,088 compressed.
        let size = U256::from(1_088u64 * 836_500 - 42_585_600);
        assert_eq!(
            fjord_l1_fee_upper_bound(1_000, &params()).0,
            size * weighted / U256::from(10u64).pow(U256::from(12))
        );
    }

    #[test]
    fn gas_for_a_fee_rounds_up() {
        assert_eq!(gas_for_fee(Wei(U256::from(10u64)), U256::from(3u64)), U256::from(4u64));
        assert_eq!(gas_for_fee(Wei(U256::from(9u64)), U256::from(3u64)), U256::from(3u64));
        assert_eq!(gas_for_fee(Wei(U256::from(9u64)), U256::ZERO), U256::ZERO);
    }
}

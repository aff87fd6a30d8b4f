//! The OP Stack GasPriceOracle's L1 fee parameters, read in one JSON-RPC batch (four
//! `eth_call`s in one HTTP request) and cached for the block they were read at: the oracle
//! changes only when an L1 block is posted, at most once per L2 block.

use super::error::EstimationError;
use alloy::eips::BlockId;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use std::sync::{Mutex, PoisonError};
use tora_core::l1_fee::{GasPriceOracle, L1FeeParams};

pub struct OracleReader {
    provider: DynProvider,
    oracle: Address,
    cached: Mutex<Option<(u64, L1FeeParams)>>,
}

fn node<E: std::fmt::Display>(e: E) -> EstimationError {
    EstimationError::Node(format!("GasPriceOracle: {e}"))
}

impl OracleReader {
    pub fn new(provider: DynProvider, oracle: Address) -> Self {
        Self { provider, oracle, cached: Mutex::new(None) }
    }

    /// The parameters at `block`, and the node calls that took: none when that block's are
    /// cached, else one batch of four.
    pub async fn params(&self, block: u64) -> Result<(L1FeeParams, u64), EstimationError> {
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
        let word = |bytes: &Bytes| -> Result<U256, EstimationError> {
            U256::try_from_be_slice(bytes.get(..32).ok_or_else(|| node("short answer"))?)
                .ok_or_else(|| node("bad word"))
        };
        let scalar = |bytes: &Bytes| -> Result<u32, EstimationError> {
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

//! Bounds on the gas fields a quote signs. Whoever submits an operation is paid its whole gas
//! cost by the EntryPoint, so a wallet that inflated preVerificationGas, its fees or its gas
//! limits and bundled the operation itself would turn the paymaster's deposit (repaid by a
//! sponsor, or by the user's TORA at the quoted rate) into BNB. The bounds keep what it can
//! gain to the margins below.

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tora_core::UserOperation;
use tora_core::l1_fee::{L1FeeParams, OracleReader};
use tora_core::pre_verification_gas::{L1Price, effective_gas_price, required_pre_verification_gas};

/// Caps on the fees and gas fields of an operation the paymaster signs a quote for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GasBounds {
    /// The most priority fee per gas signed: what a bundler-for-itself earns on every gas unit.
    pub max_priority_fee_per_gas: u128,
    /// maxFeePerGas may be at most this many times the current base fee, plus the priority cap
    /// (room for the base fee to rise while the operation waits in a mempool).
    pub base_fee_multiplier: u64,
    /// preVerificationGas may exceed the bundler's own formula by this many percent (wallets add
    /// a buffer to estimates).
    pub pre_verification_gas_margin_percent: u64,
    /// Per-operation caps on the limits: the EntryPoint pays the submitter 10% of unused
    /// execution gas, so an inflated callGasLimit is itself a payout.
    pub max_call_gas: u64,
    /// The cap on verificationGasLimit, in gas.
    pub max_verification_gas: u64,
}

impl GasBounds {
    /// 2 gwei: BSC validators' minimum tip is below 1 gwei, OP Stack chains' far less.
    pub const DEFAULT_MAX_PRIORITY_FEE_PER_GAS: u128 = 2_000_000_000;
    /// maxFeePerGas up to twice the base fee, plus the priority cap.
    pub const DEFAULT_BASE_FEE_MULTIPLIER: u64 = 2;
    /// preVerificationGas up to 10% over the bundler's own formula.
    pub const DEFAULT_PRE_VERIFICATION_GAS_MARGIN_PERCENT: u64 = 10;
    /// The default cap on callGasLimit, in gas.
    pub const DEFAULT_MAX_CALL_GAS: u64 = 2_000_000;
    /// Account deployment (factory) plus validation, with the bundler's 50% estimation margin.
    pub const DEFAULT_MAX_VERIFICATION_GAS: u64 = 1_000_000;
}

impl Default for GasBounds {
    fn default() -> Self {
        Self {
            max_priority_fee_per_gas: Self::DEFAULT_MAX_PRIORITY_FEE_PER_GAS,
            base_fee_multiplier: Self::DEFAULT_BASE_FEE_MULTIPLIER,
            pre_verification_gas_margin_percent: Self::DEFAULT_PRE_VERIFICATION_GAS_MARGIN_PERCENT,
            max_call_gas: Self::DEFAULT_MAX_CALL_GAS,
            max_verification_gas: Self::DEFAULT_MAX_VERIFICATION_GAS,
        }
    }
}

/// What the chain charges now: the base fee and, on OP Stack chains, the L1 fee parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainGas {
    /// The latest block's base fee per gas, in wei.
    pub base_fee: u64,
    /// The GasPriceOracle's L1 fee parameters on OP Stack chains; `None` elsewhere.
    pub l1: Option<L1FeeParams>,
}

/// A fee or gas field over the paymaster's bounds: the quote is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoundError {
    /// maxPriorityFeePerGas is over the cap.
    #[error("maxPriorityFeePerGas {offered} is over this paymaster's cap of {cap}")]
    PriorityFee {
        /// The operation's maxPriorityFeePerGas, in wei.
        offered: U256,
        /// The cap, in wei.
        cap: U256,
    },
    /// maxFeePerGas is over the base fee multiple plus the priority cap.
    #[error("maxFeePerGas {offered} is over {cap} ({multiplier} × base fee {base_fee} + the priority cap)")]
    MaxFee {
        /// The operation's maxFeePerGas, in wei.
        offered: U256,
        /// `multiplier × base_fee` plus the priority cap, in wei.
        cap: U256,
        /// The configured base fee multiplier.
        multiplier: u64,
        /// The current base fee per gas, in wei.
        base_fee: u64,
    },
    /// preVerificationGas is over the bundler's requirement plus the margin.
    #[error("preVerificationGas {offered} is over {cap} (the bundler's {required} + {margin_percent}%)")]
    PreVerificationGas {
        /// The operation's preVerificationGas.
        offered: U256,
        /// The most preVerificationGas accepted.
        cap: U256,
        /// What the bundler's formula requires for this operation.
        required: U256,
        /// The margin allowed over `required`, in percent.
        margin_percent: u64,
    },
    /// callGasLimit or verificationGasLimit is over its cap.
    #[error("{field} {offered} is over this paymaster's cap of {cap} per operation")]
    GasLimit {
        /// The field's name as ERC-4337 spells it.
        field: &'static str,
        /// The operation's value, in gas.
        offered: U256,
        /// The cap, in gas.
        cap: u64,
    },
}

impl GasBounds {
    /// Checks `op`, whose paymaster fields and data (or same-length stub data) are set, since
    /// preVerificationGas prices the paymaster data's length too.
    pub fn check(&self, op: &UserOperation, chain: &ChainGas) -> Result<(), BoundError> {
        self.check_limits(op)?;
        self.check_fees(op, chain)?;
        self.check_pre_verification_gas(op, chain)
    }

    fn check_limits(&self, op: &UserOperation) -> Result<(), BoundError> {
        let limits = [
            ("callGasLimit", U256::from(op.call_gas_limit), self.max_call_gas),
            ("verificationGasLimit", U256::from(op.verification_gas_limit), self.max_verification_gas),
        ];
        for (field, offered, cap) in limits {
            if offered > U256::from(cap) {
                return Err(BoundError::GasLimit { field, offered, cap });
            }
        }
        Ok(())
    }

    fn check_fees(&self, op: &UserOperation, chain: &ChainGas) -> Result<(), BoundError> {
        let priority_cap = U256::from(self.max_priority_fee_per_gas);
        let priority = U256::from(op.max_priority_fee_per_gas);
        if priority > priority_cap {
            return Err(BoundError::PriorityFee { offered: priority, cap: priority_cap });
        }
        let cap = U256::from(chain.base_fee) * U256::from(self.base_fee_multiplier) + priority_cap;
        let offered = U256::from(op.max_fee_per_gas);
        if offered > cap {
            let (multiplier, base_fee) = (self.base_fee_multiplier, chain.base_fee);
            return Err(BoundError::MaxFee { offered, cap, multiplier, base_fee });
        }
        Ok(())
    }

    /// The cap is the bundler's own requirement plus the margin, rounded down.
    pub fn pre_verification_gas_cap(&self, op: &UserOperation, chain: &ChainGas) -> (U256, U256) {
        let l1 =
            chain.l1.map(|params| L1Price { params, gas_price: effective_gas_price(op, chain.base_fee) });
        let required = required_pre_verification_gas(op, l1.as_ref());
        let margin = U256::from(self.pre_verification_gas_margin_percent);
        (required, required * (U256::from(100u8) + margin) / U256::from(100u8))
    }

    fn check_pre_verification_gas(&self, op: &UserOperation, chain: &ChainGas) -> Result<(), BoundError> {
        let (required, cap) = self.pre_verification_gas_cap(op, chain);
        if op.pre_verification_gas > cap {
            return Err(BoundError::PreVerificationGas {
                offered: op.pre_verification_gas,
                cap,
                required,
                margin_percent: self.pre_verification_gas_margin_percent,
            });
        }
        Ok(())
    }
}

/// Reads [`ChainGas`] from the node at most once per `ttl` (a quote must not cost node round
/// trips; the base fee moves at most 12.5% a block and the cap has room for that). Requests that
/// find it stale wait for one refresh instead of each reading the node.
pub struct ChainGasReader {
    provider: DynProvider,
    /// The GasPriceOracle predeploy's reader, on OP Stack chains.
    oracle: Option<OracleReader>,
    ttl: Duration,
    last: Mutex<Option<(Instant, ChainGas)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl ChainGasReader {
    /// Reads through `provider`, and the GasPriceOracle at `oracle` on OP Stack chains; one
    /// read serves for `ttl`.
    pub fn new(provider: DynProvider, oracle: Option<Address>, ttl: Duration) -> Self {
        Self {
            oracle: oracle.map(|oracle| OracleReader::new(provider.clone(), oracle)),
            provider,
            ttl,
            last: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<ChainGas> {
        let cached = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        cached.filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, gas)| gas)
    }

    /// The chain's current gas prices, from the cache while it is younger than the ttl.
    pub async fn read(&self) -> Result<ChainGas, String> {
        if let Some(gas) = self.fresh() {
            return Ok(gas);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(gas) = self.fresh() {
            return Ok(gas);
        }
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| format!("node: {e}"))?
            .ok_or("node has no latest block")?;
        let base_fee = block.header.base_fee_per_gas.unwrap_or_default();
        // The oracle at the block the base fee came from, as the bundler prices it.
        let l1 = match &self.oracle {
            Some(oracle) => Some(oracle.params(block.header.number).await?.0),
            None => None,
        };
        let gas = ChainGas { base_fee, l1 };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), gas));
        Ok(gas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U128;
    use tora_core::pre_verification_gas::calldata_gas;

    fn op(priority: u64, max_fee: u64, pvg: u64, call: u64, verification: u64) -> UserOperation {
        UserOperation {
            sender: Address::repeat_byte(0x5e),
            max_priority_fee_per_gas: U128::from(priority),
            max_fee_per_gas: U128::from(max_fee),
            pre_verification_gas: U256::from(pvg),
            call_gas_limit: U128::from(call),
            verification_gas_limit: U128::from(verification),
            ..Default::default()
        }
    }

    const BOUNDS: GasBounds = GasBounds {
        max_priority_fee_per_gas: 100,
        base_fee_multiplier: 2,
        pre_verification_gas_margin_percent: 10,
        max_call_gas: 1_000,
        max_verification_gas: 2_000,
    };
    const CHAIN: ChainGas = ChainGas { base_fee: 50, l1: None };

    #[test]
    fn each_bound_is_inclusive_and_one_more_is_refused() {
        let required = calldata_gas(&op(0, 0, 0, 0, 0));
        // 110% of the requirement, rounded down.
        let pvg_cap = required * 110 / 100;
        let at_bounds = op(100, 2 * 50 + 100, pvg_cap, 1_000, 2_000);
        assert_eq!(BOUNDS.check(&at_bounds, &CHAIN), Ok(()));
        let over = [
            op(101, 200, pvg_cap, 1_000, 2_000),
            op(100, 201, pvg_cap, 1_000, 2_000),
            op(100, 200, pvg_cap + 1, 1_000, 2_000),
            op(100, 200, pvg_cap, 1_001, 2_000),
            op(100, 200, pvg_cap, 1_000, 2_001),
        ];
        let errors: Vec<_> = over.iter().map(|op| BOUNDS.check(op, &CHAIN).unwrap_err()).collect();
        assert_eq!(errors[0], BoundError::PriorityFee { offered: U256::from(101), cap: U256::from(100) });
        assert!(matches!(errors[1], BoundError::MaxFee { cap, .. } if cap == U256::from(200)));
        assert!(matches!(
            errors[2],
            BoundError::PreVerificationGas { cap, required: r, .. } if cap == U256::from(pvg_cap) && r == U256::from(required)
        ));
        assert!(matches!(errors[3], BoundError::GasLimit { field: "callGasLimit", cap: 1_000, .. }));
        assert!(matches!(errors[4], BoundError::GasLimit { field: "verificationGasLimit", cap: 2_000, .. }));
    }

    #[test]
    fn on_op_stack_the_cap_includes_the_l1_fee_at_the_operations_gas_price() {
        let params = L1FeeParams {
            l1_base_fee: U256::from(3_000_000_000u64),
            blob_base_fee: U256::from(1u64),
            base_fee_scalar: 1_368,
            blob_base_fee_scalar: 810_949,
        };
        let chain = ChainGas { base_fee: 1_000, l1: Some(params) };
        let op = op(7, 5_000, 0, 0, 0);
        let price = L1Price { params, gas_price: U256::from(1_007) };
        let required = required_pre_verification_gas(&op, Some(&price));
        assert!(required > U256::from(calldata_gas(&op)), "the L1 part counts");
        assert_eq!(
            BOUNDS.pre_verification_gas_cap(&op, &chain),
            (required, required * U256::from(110) / U256::from(100))
        );
    }
}

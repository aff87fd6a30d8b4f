//! eth_estimateUserOperationGas: preVerificationGas from the operation's shape, fixed overheads
//! and, on OP Stack chains, the L1 data fee; verificationGasLimit from the validation gas
//! `simulateHandleOp` reports, with a margin; callGasLimit by binary search over the
//! operation's own callGasLimit, each probe judged by whether the operation's execution
//! succeeded (`UserOperationEvent.success`).
//!
//! Every probe runs `EntryPointSimulations.simulateHandleOp` in revm over the node's state at
//! the latest block (the validator's state machinery: fetched on demand, cached per block), with
//! the caller's state overrides on top. The logs are what make the search sound: v0.7's
//! EntryPoint does not revert when the call runs out of gas, and `eth_call` returns no logs.
//! The search itself costs no node calls once the first probe has loaded the state it touches.

mod error;
mod handle_op;
mod overlay;
mod search;

pub use error::EstimationError;
pub use handle_op::{HandleOpRun, simulate_handle_op};
pub use overlay::Overlay;
pub use search::min_gas;
// The formula lives in tora-core: the paymaster bounds what it signs with the same one.
pub use tora_core::pre_verification_gas::{
    L1Price, bundle_of_one, calldata_cost, calldata_gas, effective_gas_price, l1_gas,
    required_pre_verification_gas,
};

use crate::evm::head::ChainHead;
use crate::evm::simulation::overrides as simulation_overrides;
use crate::evm::state::{CodeCache, RecentBlockCaches, RpcState};
use crate::evm::{PinnedBlock, SimulationEnv, deposit_slot};
use crate::validation::ValidationSettings;
use alloy::primitives::{Address, B256, U128, U256};
use alloy::providers::DynProvider;
use alloy::rpc::types::state::StateOverride;
use error::node;
use revm::DatabaseRef;
use revm::primitives::hardfork::SpecId;
use std::sync::Arc;
use tora_core::chain_spec::DaFee;
use tora_core::l1_fee::OracleReader;
use tora_core::{ChainSpec, UserOperation};

/// Gas of one estimation simulation transaction (capped by the block's gas limit).
pub const SIMULATION_GAS: u64 = 15_000_000;
/// The most callGasLimit the search tries; an operation needing more is refused.
pub const CALL_GAS_CEILING: u64 = 5_000_000;
/// The verification limits every probe runs with (account and paymaster each).
pub const VERIFICATION_GAS_CEILING: u64 = 2_000_000;
/// Binary-search precision, in gas. Probes are local, so it can be tight: about
/// log2(CALL_GAS_CEILING / 64) ≈ 17 probes.
pub const SEARCH_TOLERANCE: u64 = 64;

/// What eth_estimateUserOperationGas answers (its wire type).
pub use tora_core::rpc_api::bundler::GasEstimate;

/// What an estimate cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EstimateCost {
    /// Requests to the node (the block, state the cache lacked, the L1 oracle).
    pub node_calls: u64,
    /// simulateHandleOp runs in revm.
    pub simulations: u32,
    /// The least callGasLimit the search found to succeed (to within [`SEARCH_TOLERANCE`]),
    /// before the margin.
    pub call_gas_found: u64,
}

/// Margins over what the simulation measured: verification by 50% (its gas depends on
/// calldata and warm/cold state that differ in a bundle), execution by 10% plus a floor.
pub fn with_margin(verification: u64, call: u64) -> (u64, u64) {
    let scale = |gas: u64, num: u128, den: u128| {
        u64::try_from((u128::from(gas) * num).div_ceil(den)).unwrap_or(u64::MAX)
    };
    (scale(verification, 3, 2), scale(call, 11, 10).saturating_add(5_000))
}

/// Answers eth_estimateUserOperationGas and the send-time preVerificationGas and fee checks,
/// simulating in revm over the node's state at the latest block.
pub struct Estimator {
    provider: DynProvider,
    entry_point: Address,
    chain_id: u64,
    spec: SpecId,
    p256_precompile: bool,
    sender_creator: Address,
    /// Some on OP Stack chains.
    oracle: Option<OracleReader>,
    codes: CodeCache,
    /// State caches of the newest blocks pinned, dropped as the chain moves on.
    block_cache: RecentBlockCaches,
    /// The head the send-time preVerificationGas check prices the L1 fee at: the oracle's
    /// parameters move slowly, and asking the node for its latest block on every send would
    /// cost a node call per operation. The validator's own ([`crate::Validator::head`]).
    head: Arc<ChainHead>,
}

impl Estimator {
    /// `settings` gives the EVM rules and the SenderCreator, as the validator uses them; `head`
    /// is the validator's cached head.
    pub fn new(
        provider: DynProvider,
        chain: &ChainSpec,
        settings: &ValidationSettings,
        head: Arc<ChainHead>,
    ) -> Self {
        let oracle = match chain.da_fee {
            DaFee::None => None,
            DaFee::OpStack { gas_price_oracle } => {
                Some(OracleReader::new(provider.clone(), gas_price_oracle))
            }
        };
        Self {
            head,
            provider,
            entry_point: chain.entry_point,
            chain_id: chain.id,
            spec: settings.spec,
            p256_precompile: settings.p256_precompile,
            sender_creator: settings.sender_creator,
            oracle,
            codes: CodeCache::default(),
            block_cache: RecentBlockCaches::new(settings.state_reads),
        }
    }

    /// Estimates `op`'s gas fields; its own gas fields are ignored, and its fees only price
    /// the L1 data fee on OP Stack chains (the base fee when it has none).
    pub async fn estimate(
        &self,
        op: &UserOperation,
        overrides: Option<StateOverride>,
    ) -> Result<GasEstimate, EstimationError> {
        self.estimate_with_cost(op, overrides).await.map(|(estimate, _)| estimate)
    }

    /// [`Estimator::estimate`] and what it cost.
    pub async fn estimate_with_cost(
        &self,
        op: &UserOperation,
        overrides: Option<StateOverride>,
    ) -> Result<(GasEstimate, EstimateCost), EstimationError> {
        let block = self.latest_block().await?;
        let mut overrides = overrides.unwrap_or_default();
        // The simulation code must stay at the EntryPoint; its storage may be overridden.
        if let Some(entry) = overrides.get_mut(&self.entry_point) {
            entry.code = None;
        }

        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| node(format!("estimation needs a tokio runtime: {e}")))?;
        let state = RpcState::new(
            self.provider.clone(),
            handle,
            block,
            self.block_cache.for_block(block.hash),
            self.codes.clone(),
            simulation_overrides(self.entry_point),
        );
        let search = Search {
            op: op.clone(),
            env: SimulationEnv {
                entry_point: self.entry_point,
                sender_creator: self.sender_creator,
                chain_id: self.chain_id,
                spec: self.spec,
                gas_limit: SIMULATION_GAS,
                block,
                p256_precompile: self.p256_precompile,
            },
            overrides,
        };
        let (measured, state_calls) = tokio::task::spawn_blocking(move || {
            let measured = search.run(&state);
            (measured, state.rpc_calls())
        })
        .await
        .map_err(|e| node(format!("estimation task failed: {e}")))?;
        let measured = measured?;
        let (l1, oracle_calls) = self.l1_price(op, &block).await?;
        let (verification, call) = with_margin(measured.verification, measured.call);
        let estimate = GasEstimate {
            pre_verification_gas: required_pre_verification_gas(op, l1.as_ref()),
            verification_gas_limit: U128::from(verification),
            call_gas_limit: U128::from(call),
            // The probes run the paymaster's validation with its stub data, which a paymaster
            // may check more cheaply than its real data: never less than the paymaster asked.
            paymaster_verification_gas_limit: op.paymaster.map(|_| {
                U128::from(verification).max(op.paymaster_verification_gas_limit.unwrap_or_default())
            }),
        };
        let cost = EstimateCost {
            // The block lookup, the state the cache lacked, the oracle.
            node_calls: 1 + state_calls + oracle_calls,
            simulations: measured.simulations,
            call_gas_found: measured.call,
        };
        tracing::debug!(sender = %op.sender, node_calls = cost.node_calls, simulations = cost.simulations, "estimated");
        Ok((estimate, cost))
    }

    /// The least preVerificationGas `eth_sendUserOperation` accepts for `op` now: what an
    /// estimate with the operation's fees would answer. No node call off OP Stack chains.
    pub async fn required_pre_verification_gas(&self, op: &UserOperation) -> Result<U256, EstimationError> {
        let l1 = match self.oracle {
            None => None,
            Some(_) => {
                let (head, _) = self.head.latest().await.map_err(node)?;
                self.l1_price(op, &head).await?.0
            }
        };
        Ok(required_pre_verification_gas(op, l1.as_ref()))
    }

    /// The least maxFeePerGas an operation may offer now: the head's base fee (an operation
    /// below it cannot be included until the base fee falls), and never 0.
    pub async fn least_max_fee_per_gas(&self) -> Result<u128, EstimationError> {
        Ok(self.base_fee().await?.max(1))
    }

    /// The head's base fee (cached for `head_max_age`).
    pub async fn base_fee(&self) -> Result<u128, EstimationError> {
        let (head, _) = self.head.latest().await.map_err(node)?;
        Ok(u128::from(head.base_fee))
    }

    /// The L1 fee's parameters and gas price for `op` at `block` (None off OP Stack), and the
    /// node calls that took.
    async fn l1_price(
        &self,
        op: &UserOperation,
        block: &PinnedBlock,
    ) -> Result<(Option<L1Price>, u64), EstimationError> {
        let Some(oracle) = &self.oracle else {
            return Ok((None, 0));
        };
        let (params, calls) = oracle.params(block.number).await.map_err(EstimationError::Node)?;
        Ok((Some(L1Price { params, gas_price: effective_gas_price(op, block.base_fee) }), calls))
    }

    async fn latest_block(&self) -> Result<PinnedBlock, EstimationError> {
        latest_block(&self.provider).await
    }
}

/// More than any probe's prefund: (verification + call ceilings) × 1 wei.
const PROBE_PREFUND: U256 = U256::from_limbs([1_000_000_000, 0, 0, 0]);

/// Makes an account that pays its own gas take the costly path in every probe: its deposit
/// is zeroed and its balance raised by just the probe's prefund, so validation sends the
/// prefund (a value call to the EntryPoint, ~10k gas) as it will in a bundle with real fees,
/// even before the wallet is funded. Without this, an estimate with zero fees (or a deposit
/// covering the probes' 1-wei fees) would skip that call and come out short. `balance` is the
/// account's balance under the caller's overrides; a storage override the caller gave for
/// the deposit slot wins.
fn prefund_from_balance(overrides: &mut StateOverride, entry_point: Address, sender: Address, balance: U256) {
    overrides.entry(sender).or_default().balance = Some(balance.saturating_add(PROBE_PREFUND));
    let entry = overrides.entry(entry_point).or_default();
    if entry.state.is_none() {
        entry
            .state_diff
            .get_or_insert_with(Default::default)
            .entry(deposit_slot(sender))
            .or_insert(B256::ZERO);
    }
}

/// The node's latest block, as simulations pin it.
pub async fn latest_block(provider: &DynProvider) -> Result<PinnedBlock, EstimationError> {
    PinnedBlock::latest(provider).await.map_err(node)
}

/// What the simulations measured, before margins.
struct Measured {
    verification: u64,
    call: u64,
    simulations: u32,
}

/// One estimate's blocking part: every probe over one block's state.
struct Search {
    op: UserOperation,
    env: SimulationEnv,
    overrides: StateOverride,
}

impl Search {
    /// `op` with `call_gas` as its callGasLimit and generous verification limits. An account
    /// paying its own gas gets fees of 1 wei, so a prefund is due and sent (see
    /// [`prefund_from_balance`]); with a paymaster, fees of zero, so the paymaster's charge
    /// cannot fail the probe.
    fn probe(&self, call_gas: u64) -> tora_core::user_operation::PackedUserOperation {
        let ceiling = U128::from(VERIFICATION_GAS_CEILING);
        let fee = if self.op.paymaster.is_none() { U128::from(1) } else { U128::ZERO };
        UserOperation {
            call_gas_limit: U128::from(call_gas),
            verification_gas_limit: ceiling,
            pre_verification_gas: U256::ZERO,
            max_fee_per_gas: fee,
            max_priority_fee_per_gas: fee,
            paymaster_verification_gas_limit: self.op.paymaster.map(|_| ceiling),
            ..self.op.clone()
        }
        .pack()
    }

    fn run(&self, base: &RpcState) -> Result<Measured, EstimationError> {
        let op = &self.op;
        base.prefetch(&self.env.accounts_read(op))?;
        let mut overrides = self.overrides.clone();
        if op.paymaster.is_none() {
            let sender = Overlay::new(base, &self.overrides)?.basic_ref(op.sender)?;
            let balance = sender.map(|account| account.balance).unwrap_or_default();
            prefund_from_balance(&mut overrides, self.env.entry_point, op.sender, balance);
        }
        let db = Overlay::new(base, &overrides)?;
        let mut simulations = 0u32;
        let mut simulate = |call_gas: u64| {
            simulations += 1;
            simulate_handle_op(&db, &self.env, &self.probe(call_gas))
        };

        let ceiling = simulate(CALL_GAS_CEILING)?.map_err(EstimationError::Rejected)?;
        if !ceiling.success {
            return Err(failure(&ceiling));
        }
        let verification: u64 = ceiling.result.preOpGas.saturating_to();
        // A probe the EntryPoint refuses (AA95: not enough gas left for the call) counts as a
        // failure; any other refusal already showed at the ceiling.
        let call = min_gas(0, CALL_GAS_CEILING, SEARCH_TOLERANCE, |gas| {
            simulate(gas).map(|run| run.is_ok_and(|r| r.success))
        })?
        .unwrap_or(CALL_GAS_CEILING);
        Ok(Measured { verification, call, simulations })
    }
}

/// Why an operation fails even with the most gas the search gives it.
fn failure(run: &HandleOpRun) -> EstimationError {
    if let Some(revert) = &run.call_revert {
        return EstimationError::CallReverted { revert: revert.clone() };
    }
    if let Some(revert) = &run.post_op_revert {
        return EstimationError::PostOpReverted { revert: revert.clone() };
    }
    EstimationError::NeverSucceeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_are_half_again_for_verification_and_a_tenth_plus_5000_for_execution() {
        assert_eq!(with_margin(100_000, 50_000), (150_000, 60_000));
        assert_eq!(with_margin(1, 1), (2, 5_002));
        // Saturates instead of wrapping.
        assert_eq!(with_margin(u64::MAX, u64::MAX), (u64::MAX, u64::MAX));
    }

    #[test]
    fn the_effective_gas_price_is_capped_by_max_fee_and_defaults_to_the_base_fee() {
        let op = |max: u64, tip: u64| UserOperation {
            max_fee_per_gas: U128::from(max),
            max_priority_fee_per_gas: U128::from(tip),
            ..Default::default()
        };
        assert_eq!(effective_gas_price(&op(0, 0), 7), U256::from(7));
        assert_eq!(effective_gas_price(&op(100, 5), 7), U256::from(12));
        assert_eq!(effective_gas_price(&op(10, 5), 7), U256::from(10));
    }
}

//! The validator: pins the latest block, runs the simulation on a blocking thread over that
//! block's cached state, and turns the EntryPoint's result and the trace into a verdict.

use super::error::ValidationError;
use super::outcome::{EntityInfo, SIG_VALIDATION_FAILED, ValidationData, ValidationOutcome, Wei};
use super::rules::{self, RuleContext, Violation};
use super::run::simulate_validation;
use crate::evm::bindings::{StakeInfo, deposit_slot};
use crate::evm::head::{ChainHead, Freshness};
use crate::evm::prediction::{OperationShape, ReadPredictor};
use crate::evm::simulation::{self, SimulationEnv};
use crate::evm::state::{ChainReads, CodeCache, PinnedBlock, RecentBlockCaches, RpcState, StateReads};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use revm::DatabaseRef;
use revm::primitives::hardfork::SpecId;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tora_core::contracts::SENDER_CREATOR_V07;
use tora_core::{ChainSpec, UserOperation};

/// How long an operation of a shape not learned yet waits for the first one of that shape to
/// teach its reads: about one cold validation, past which it discovers them itself.
const FIRST_OF_SHAPE_PATIENCE: Duration = Duration::from_millis(500);
/// How long a refused operation waits for a head the node has not produced yet, before the
/// refusal stands (see [`Validator::validate`]).
pub const NEW_HEAD_GRACE: Duration = Duration::from_millis(100);

/// ERC-7562 MIN_UNSTAKE_DELAY: one day.
pub const MIN_UNSTAKE_DELAY: u64 = 86_400;

/// Knobs that differ per chain or per operator.
#[derive(Clone, Debug)]
pub struct ValidationSettings {
    /// ERC-7562 MIN_STAKE_VALUE: "adjustable per chain", about $1000 of the native token.
    pub min_stake: Wei,
    /// ERC-7562 MIN_UNSTAKE_DELAY.
    pub min_unstake_delay_secs: u64,
    /// An operation must stay valid at least this long after the pinned block (validUntil), or
    /// it could not be bundled in time.
    pub valid_time_margin_secs: u64,
    /// Gas for the whole simulation transaction (capped by the block's gas limit).
    pub simulation_gas_limit: u64,
    /// The EVM rules of the chain; gas costs must match the node's for the verdict to hold.
    pub spec: SpecId,
    /// RIP-7212's secp256r1 precompile is live on this chain (ERC-7562 OP-062).
    pub p256_precompile: bool,
    /// The EntryPoint's SenderCreator, through which factories are called.
    pub sender_creator: Address,
    /// How old a head new operations may be validated against (see [`ChainHead`]).
    pub head_max_age: Duration,
    /// Accept an unstaked paymaster that returns a context: the v0.7-era ERC-7562 had lifted
    /// EREP-050, which the current text has again (and the default follows).
    pub unstaked_paymaster_context: bool,
    /// How simulations read the node's state (the estimator's too).
    pub state_reads: StateReads,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            min_stake: Wei(U256::from(10u64).pow(U256::from(18))),
            min_unstake_delay_secs: MIN_UNSTAKE_DELAY,
            valid_time_margin_secs: 30,
            simulation_gas_limit: 10_000_000,
            spec: SpecId::PRAGUE,
            p256_precompile: false,
            sender_creator: SENDER_CREATOR_V07,
            head_max_age: Duration::from_millis(100),
            unstaked_paymaster_context: false,
            state_reads: StateReads::default(),
        }
    }
}

impl ValidationSettings {
    /// The defaults with the chain's own stake minimums and precompiles.
    pub fn for_chain(chain: &ChainSpec) -> Self {
        Self {
            min_stake: Wei(chain.stake.min_stake_wei),
            min_unstake_delay_secs: chain.stake.min_unstake_delay_secs,
            p256_precompile: chain.rip7212_p256,
            state_reads: if chain.state_proofs { StateReads::Proofs } else { StateReads::Fields },
            ..Self::default()
        }
    }
}

/// Validates user operations against one node. Cheap to share (`Arc`): Send + Sync, and each
/// validation runs its EVM on a blocking thread.
pub struct Validator {
    provider: DynProvider,
    entry_point: Address,
    chain_id: u64,
    settings: ValidationSettings,
    codes: CodeCache,
    /// State caches of the newest blocks pinned, dropped as the chain moves on.
    block_cache: RecentBlockCaches,
    /// Shared with the estimator (see [`Validator::head`]).
    head: Arc<ChainHead>,
    reads: ReadPredictor,
}

impl Validator {
    /// Connects to `rpc_url` and refuses a node whose chain id is not the spec's (a wrong id
    /// would make every userOpHash wrong).
    pub async fn new(
        rpc_url: &str,
        chain: &ChainSpec,
        settings: ValidationSettings,
    ) -> Result<Self, ValidationError> {
        let client = crate::node::client(rpc_url).map_err(|e| ValidationError::Url(e.0))?;
        let provider = ProviderBuilder::new().connect_client(client).erased();
        let node = provider.get_chain_id().await.map_err(|e| ValidationError::Node(e.to_string()))?;
        if node != chain.id {
            return Err(ValidationError::ChainIdMismatch { node, spec: chain.id });
        }
        Ok(Self {
            head: Arc::new(ChainHead::new(provider.clone(), settings.head_max_age)),
            provider,
            entry_point: chain.entry_point,
            chain_id: chain.id,
            block_cache: RecentBlockCaches::new(settings.state_reads),
            settings,
            codes: CodeCache::default(),
            reads: ReadPredictor::default(),
        })
    }

    /// The EntryPoint operations are validated against.
    pub fn entry_point(&self) -> Address {
        self.entry_point
    }

    /// The chain id the node was checked to serve.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The cached head validations pin. A send's checks before validation (the base fee, the
    /// L1 fee) read the same one: with a head each, an operation arriving after a quiet spell
    /// asked the node for its latest block twice.
    pub fn head(&self) -> &Arc<ChainHead> {
        &self.head
    }

    /// Simulates `op` at the chain's head and judges it by ERC-7562. The head may be up to
    /// [`ValidationSettings::head_max_age`] old; an operation it rejects is tried again at the
    /// node's latest block, so that state the wallet already sees is never held against it.
    /// A wallet often sends right after the transaction that makes its operation valid (a
    /// funding transfer, a deposit): when the node's head has not moved yet, it is asked once
    /// more after [`NEW_HEAD_GRACE`], which only a refusal waits for.
    pub async fn validate(&self, op: &UserOperation) -> Result<ValidationOutcome, ValidationError> {
        let started = Instant::now();
        let (block, freshness) = self.head.latest().await.map_err(ValidationError::Node)?;
        let mut head_calls = u64::from(freshness == Freshness::Fetched);
        let mut verdict = self.validate_at(op, block).await;
        if verdict.as_ref().is_err_and(ValidationError::depends_on_state) {
            // A head fetched for this very call is the node's latest: only waiting can help.
            let mut fresh = match freshness {
                Freshness::Fetched => block,
                Freshness::Cached => {
                    head_calls += 1;
                    self.head.fetch().await.map_err(ValidationError::Node)?
                }
            };
            if fresh.hash == block.hash {
                tokio::time::sleep(NEW_HEAD_GRACE).await;
                fresh = self.head.fetch().await.map_err(ValidationError::Node)?;
                head_calls += 1;
            }
            if fresh.hash != block.hash {
                verdict = self.validate_at(op, fresh).await;
            }
        }
        let mut outcome = verdict?;
        outcome.rpc_calls += head_calls;
        outcome.rpc_round_trips += head_calls;
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }

    /// Simulates `op` at `block` (the builder's fresh head, at bundle time).
    pub async fn validate_at(
        &self,
        op: &UserOperation,
        block: PinnedBlock,
    ) -> Result<ValidationOutcome, ValidationError> {
        let started = Instant::now();
        let cache = self.block_cache.for_block(block.hash);
        // The state blocks on this runtime from the blocking thread below; a caller outside
        // tokio gets an error instead of a panic.
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| ValidationError::Node(format!("validate needs a tokio runtime: {e}")))?;
        let state = RpcState::new(
            self.provider.clone(),
            handle,
            block,
            cache,
            self.codes.clone(),
            simulation::overrides(self.entry_point),
        );
        let env = self.env(block);
        // The first operation of a new shape learns its reads; those arriving meanwhile wait
        // for it rather than each discover the same reads one round trip at a time.
        let _lesson = self.reads.lesson(shape(op), FIRST_OF_SHAPE_PATIENCE).await;
        let expected = self.expected_reads(op, &env);
        let judge = Judge { op: op.clone(), settings: self.settings.clone(), env };
        let (mut outcome, reads, mapping_keys) = tokio::task::spawn_blocking(move || {
            judge.run(&state, &expected).map(|(outcome, mapping_keys)| (outcome, state.reads(), mapping_keys))
        })
        .await
        .map_err(|e| ValidationError::Node(format!("validation task failed: {e}")))??;
        self.reads.learn(shape(op), op.sender, &reads, &mapping_keys);
        outcome.elapsed = started.elapsed();
        tracing::debug!(
            sender = %op.sender,
            block = outcome.block_number,
            elapsed_ms = outcome.elapsed.as_secs_f64() * 1e3,
            rpc_calls = outcome.rpc_calls,
            rpc_round_trips = outcome.rpc_round_trips,
            "user operation passed validation"
        );
        Ok(outcome)
    }

    /// Fetches, in as few node round trips as a batch allows, what validating each of `ops`
    /// at `block` is expected to read: the builder validates a whole bundle again at once.
    pub async fn prefetch(&self, ops: &[&UserOperation], block: PinnedBlock) -> Result<u64, ValidationError> {
        let env = self.env(block);
        let mut reads = ChainReads::default();
        for op in ops {
            reads.extend(self.expected_reads(op, &env));
        }
        self.block_cache
            .for_block(block.hash)
            .prefetch(&self.provider, &self.codes, block.number, &reads)
            .await
            .map_err(|e| ValidationError::Node(e.to_string()))
    }

    fn env(&self, block: PinnedBlock) -> SimulationEnv {
        SimulationEnv {
            entry_point: self.entry_point,
            sender_creator: self.settings.sender_creator,
            chain_id: self.chain_id,
            spec: self.settings.spec,
            gas_limit: self.settings.simulation_gas_limit,
            block,
            p256_precompile: self.settings.p256_precompile,
        }
    }

    /// What validating `op` will read: the accounts every simulation reads, and what earlier
    /// operations of its shape read, for its sender.
    fn expected_reads(&self, op: &UserOperation, env: &SimulationEnv) -> ChainReads {
        let mut reads = self.reads.predict(shape(op), op.sender);
        reads.extend(env.accounts_read(op));
        reads
    }
}

fn shape(op: &UserOperation) -> OperationShape {
    OperationShape { factory: op.factory, paymaster: op.paymaster }
}

/// `(key, slot, keccak)` of the 64-byte keccaks a validation's trace saw.
type MappingKeys = Vec<(B256, B256, U256)>;

/// One validation's blocking part: simulate, then judge.
struct Judge {
    op: UserOperation,
    settings: ValidationSettings,
    env: SimulationEnv,
}

impl Judge {
    /// The verdict, and the trace's mapping keys (what the read predictor learns from).
    fn run(
        self,
        state: &RpcState,
        expected: &ChainReads,
    ) -> Result<(ValidationOutcome, MappingKeys), ValidationError> {
        let op = &self.op;
        let packed = op.pack();
        // The EVM would otherwise fetch these one by one.
        state.prefetch(expected)?;
        let output = simulate_validation(state, &self.env, &packed, op.sender, op.paymaster)?;
        let result = output.result.map_err(ValidationError::Rejected)?;
        let trace = output.trace;

        let entity = |address: Address, info: &StakeInfo| {
            let stake = Wei(info.stake);
            let delay: u64 = info.unstakeDelaySec.saturating_to();
            EntityInfo {
                address,
                stake,
                unstake_delay_secs: delay,
                staked: stake >= self.settings.min_stake && delay >= self.settings.min_unstake_delay_secs,
            }
        };
        let sender = entity(op.sender, &result.senderInfo);
        let factory = op.factory.map(|f| entity(f, &result.factoryInfo));
        let paymaster = op.paymaster.map(|p| entity(p, &result.paymasterInfo));

        let mut probed: BTreeSet<Address> = trace.touched.iter().copied().collect();
        probed.extend(trace.calls.iter().map(|c| c.code_address));
        probed.extend(trace.ext_code.iter().map(|a| a.target));
        probed.extend(trace.storage.iter().map(|a| a.contract));
        probed.insert(op.sender);
        probed.extend(op.factory);
        probed.extend(op.paymaster);
        let mut code_hashes = BTreeMap::new();
        let mut codeless = HashSet::new();
        for address in probed {
            let hash = state.chain_code_hash(address)?;
            if hash == revm::primitives::KECCAK_EMPTY {
                codeless.insert(address);
            } else {
                code_hashes.insert(address, hash);
            }
        }

        let ctx = RuleContext {
            entry_point: self.env.entry_point,
            sender: op.sender,
            factory: op.factory,
            paymaster: op.paymaster,
            sender_staked: sender.staked,
            factory_staked: factory.is_some_and(|f| f.staked),
            paymaster_staked: paymaster.is_some_and(|p| p.staked),
            codeless,
            p256_precompile: self.settings.p256_precompile,
        };
        let verdict = rules::check_trace(&trace, &ctx);
        if let Some(violation) = verdict.violations.into_iter().next() {
            return Err(violation.into());
        }

        let info = &result.returnInfo;
        let account = ValidationData::parse(info.accountValidationData);
        let paymaster_data = ValidationData::parse(info.paymasterValidationData);
        match account.aggregator {
            a if a == Address::ZERO => {}
            a if a == SIG_VALIDATION_FAILED => {
                return Err(ValidationError::Signature { paymaster: false });
            }
            a => return Err(ValidationError::UnsupportedAggregator(a)),
        }
        // A paymaster has no aggregator: anything but 0 in the low bits is a failed signature.
        if paymaster_data.aggregator != Address::ZERO {
            return Err(ValidationError::Signature { paymaster: true });
        }
        let time_range = account.time_range.intersect(paymaster_data.time_range);
        let now = self.env.block.timestamp;
        let margin = self.settings.valid_time_margin_secs;
        let expires_too_soon = time_range.valid_until.is_some_and(|u| u < now.saturating_add(margin));
        // ERC-4337: validAfter <= block.timestamp. One not yet valid would fail in handleOps
        // (AA22/AA32) and have its entity banned for it.
        let starts_too_late = time_range.valid_after > now;
        if expires_too_soon || starts_too_late {
            return Err(ValidationError::OutOfTimeRange { range: time_range, now, margin });
        }
        // EREP-050 (current ERC-7562): an unstaked paymaster may not return a context, unless
        // the operator runs the v0.7-era rules that lifted it.
        if let Some(p) = paymaster
            && !p.staked
            && !info.paymasterContext.is_empty()
            && !self.settings.unstaked_paymaster_context
        {
            return Err(Violation::UnstakedPaymasterContext { paymaster: p.address }.into());
        }
        // EREP-010 needs the paymaster's deposit: its slot was read by the simulation, so
        // this is a cache hit, not a node call.
        let paymaster_deposit = match op.paymaster {
            Some(p) => Some(Wei(state.storage_ref(self.env.entry_point, deposit_slot(p).into())?)),
            None => None,
        };

        let outcome = ValidationOutcome {
            user_op_hash: op.hash(self.env.entry_point, self.env.chain_id),
            block_number: self.env.block.number,
            block_hash: self.env.block.hash,
            pre_op_gas: info.preOpGas,
            prefund: Wei(info.prefund),
            time_range,
            account_validation_data: info.accountValidationData,
            paymaster_validation_data: info.paymasterValidationData,
            paymaster_context: info.paymasterContext.clone(),
            paymaster_deposit,
            sender,
            factory,
            paymaster,
            storage: rules::storage_map(&trace, self.env.entry_point),
            associated_storage: verdict.associated_storage,
            code_hashes,
            rpc_calls: state.rpc_calls(),
            rpc_round_trips: state.round_trips(),
            elapsed: Duration::ZERO,
        };
        Ok((outcome, trace.mapping_keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RPC layer shares one validator across tasks and awaits `validate` in handlers.
    #[allow(dead_code)]
    fn validator_and_its_future_are_send_and_sync(v: &Validator, op: &UserOperation) {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        send_sync(v);
        send(&v.validate(op));
    }
}

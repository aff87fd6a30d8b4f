//! How every simulation runs in revm over the node's state: EntryPointSimulations' runtime
//! code sits at the EntryPoint's address (same storage layout), exactly as bundlers do with an
//! `eth_call` state override; the chain's rules, block and precompiles; and how a refusal by
//! the EntryPoint is decoded.

use super::bindings::EntryPointSimulations;
use super::state::{AccountOverride, ChainReads, PinnedBlock, StateError};
use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolInterface;
use revm::context::result::EVMError;
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::handler::EthPrecompiles;
use revm::precompile::{PrecompileSpecId, Precompiles, secp256r1};
use revm::primitives::TxKind;
use revm::primitives::hardfork::SpecId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The simulating caller: no key, no code, and a balance the overlay makes large enough for any
/// gas price, as `eth_call` does.
pub const SIMULATION_CALLER: Address = Address::ZERO;

/// Where and how a simulation runs.
#[derive(Clone, Copy, Debug)]
pub struct SimulationEnv {
    /// The EntryPoint, where the simulation code is placed and which the transaction calls.
    pub entry_point: Address,
    /// The EntryPoint's SenderCreator, which calls the factory to deploy an account.
    pub sender_creator: Address,
    /// The chain id the EVM runs with.
    pub chain_id: u64,
    /// The chain's EVM hardfork rules.
    pub spec: SpecId,
    /// Gas of the simulation transaction, capped by the block's gas limit.
    pub gas_limit: u64,
    /// The block whose state and header the simulation runs on.
    pub block: PinnedBlock,
    /// RIP-7212's P256VERIFY at 0x100 is live on the chain.
    pub p256_precompile: bool,
}

impl SimulationEnv {
    /// The chain's rules, with eth_call's leniency: the caller is a placeholder whose nonce
    /// does not matter, and the transaction may use the whole simulation gas.
    pub fn configure(&self, cfg: &mut CfgEnv) {
        cfg.chain_id = self.chain_id;
        cfg.spec = self.spec;
        cfg.disable_nonce_check = true;
        cfg.tx_gas_limit_cap = Some(u64::MAX);
    }

    /// The pinned block, as the simulated transaction sees it.
    pub fn configure_block(&self, b: &mut BlockEnv) {
        let block = self.block;
        b.number = U256::from(block.number);
        b.timestamp = U256::from(block.timestamp);
        b.basefee = block.base_fee;
        b.gas_limit = block.gas_limit;
        b.beneficiary = block.beneficiary;
        b.prevrandao = Some(block.prevrandao);
    }

    /// The simulating caller's call of the EntryPoint (simulation code) with `calldata`.
    pub fn transaction(&self, calldata: Vec<u8>) -> TxEnv {
        TxEnv {
            caller: SIMULATION_CALLER,
            kind: TxKind::Call(self.entry_point),
            data: calldata.into(),
            gas_limit: self.gas_limit.min(self.block.gas_limit),
            gas_price: u128::from(self.block.base_fee),
            chain_id: Some(self.chain_id),
            ..Default::default()
        }
    }
}

impl SimulationEnv {
    /// The chain's precompiles: the EVM spec's own, plus P256VERIFY where the chain has it and
    /// the spec lacks it (revm's Prague set stops at 0x11; OP Stack chains run RIP-7212), so a
    /// signature check through 0x100 gets the chain's answer, not an empty account's.
    pub fn precompiles(&self) -> EthPrecompiles {
        let mut precompiles = EthPrecompiles::new(self.spec);
        if self.p256_precompile && !precompiles.contains(secp256r1::P256VERIFY.address()) {
            precompiles.precompiles = with_p256(self.spec);
        }
        precompiles
    }
}

/// The spec's precompiles plus RIP-7212 P256VERIFY (3,450 gas), built once per spec.
fn with_p256(spec: SpecId) -> &'static Precompiles {
    static SETS: OnceLock<Mutex<HashMap<SpecId, &'static Precompiles>>> = OnceLock::new();
    let mut sets = SETS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    sets.entry(spec).or_insert_with(|| {
        let mut set = Precompiles::new(PrecompileSpecId::from_spec_id(spec)).clone();
        set.extend([secp256r1::P256VERIFY]);
        // One small table per spec for the life of the process.
        Box::leak(Box::new(set))
    })
}

/// The ecrecover precompile: signature checks call it, and the EVM loads its account.
const ECRECOVER: Address = Address::with_last_byte(1);

impl SimulationEnv {
    /// Accounts any simulation of `op` reads (the caller, the EntryPoint, the block's
    /// beneficiary, the entities, ecrecover): fetched upfront instead of one by one.
    pub fn accounts_read(&self, op: &tora_core::UserOperation) -> ChainReads {
        let mut reads = ChainReads::default();
        reads.accounts.extend([
            SIMULATION_CALLER,
            self.entry_point,
            self.block.beneficiary,
            op.sender,
            ECRECOVER,
        ]);
        reads.accounts.extend(op.factory);
        reads.accounts.extend(op.factory.map(|_| self.sender_creator));
        reads.accounts.extend(op.paymaster);
        reads
    }
}

/// A failed simulation transaction: the node's error when state could not be read, else why
/// revm refused the transaction.
pub fn evm_error(e: EVMError<StateError>) -> StateError {
    match e {
        EVMError::Database(db) => db,
        other => StateError(format!("the simulation transaction is invalid: {other}")),
    }
}

/// How the EntryPoint refused the operation (`FailedOp` / `FailedOpWithRevert`, or anything
/// else it reverted or halted with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulationRevert {
    /// The `AAxx` reason, or a description of an undecodable revert or halt.
    pub reason: String,
    /// The entity's own revert data, for `FailedOpWithRevert`.
    pub inner: Bytes,
}

impl std::fmt::Display for SimulationRevert {
    /// The `AAxx` reason, then what the entity itself reverted with, decoded.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.inner.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.reason, revert_reason(&self.inner))
        }
    }
}

/// Revert data as a person reads it: the message of `Error(string)`, the code of
/// `Panic(uint256)`, or the data in hex.
pub fn revert_reason(data: &[u8]) -> String {
    use alloy::sol_types::{GenericContractError, SolInterface};
    match GenericContractError::abi_decode(data) {
        Ok(GenericContractError::Revert(revert)) => revert.reason,
        Ok(GenericContractError::Panic(panic)) => format!("panic {:#x}", panic.code),
        Ok(GenericContractError::CustomError(never)) => match never {},
        Err(_) => alloy::hex::encode_prefixed(data),
    }
}

/// The same substitution as an `eth_call` state override (EntryPointSimulations' code at the
/// EntryPoint), for running a simulation on the node: how tests cross-check the revm verdicts.
pub fn eth_call_overrides(entry_point: Address) -> alloy::rpc::types::state::StateOverride {
    let mut overrides = alloy::rpc::types::state::StateOverride::default();
    overrides.insert(
        entry_point,
        alloy::rpc::types::state::AccountOverride {
            code: Some(EntryPointSimulations::DEPLOYED_BYTECODE.clone()),
            ..Default::default()
        },
    );
    overrides
}

/// The overlay every simulation needs: simulation code at the EntryPoint, a rich caller.
pub fn overrides(entry_point: Address) -> HashMap<Address, AccountOverride> {
    HashMap::from([
        (
            entry_point,
            AccountOverride { code: Some(EntryPointSimulations::DEPLOYED_BYTECODE.clone()), balance: None },
        ),
        (
            SIMULATION_CALLER,
            AccountOverride {
                code: None,
                // Enough for gas_limit × any sane base fee, far from overflow.
                balance: Some(U256::from(u128::MAX)),
            },
        ),
    ])
}

/// `FailedOp(opIndex, reason)` / `FailedOpWithRevert(opIndex, reason, inner)`, or the raw data.
pub fn decode_revert(data: &[u8]) -> SimulationRevert {
    use EntryPointSimulations::EntryPointSimulationsErrors as Errors;
    match Errors::abi_decode(data) {
        Ok(Errors::FailedOp(e)) => SimulationRevert { reason: e.reason, inner: Bytes::new() },
        Ok(Errors::FailedOpWithRevert(e)) => SimulationRevert { reason: e.reason, inner: e.inner },
        _ => SimulationRevert {
            reason: format!("simulation reverted: {}", Bytes::copy_from_slice(data)),
            inner: Bytes::copy_from_slice(data),
        },
    }
}

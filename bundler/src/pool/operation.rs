//! A pending operation with what validation learned about it that the pool's rules need.

use crate::validation::{EntityInfo, Phase, ValidationOutcome, Wei};
use alloy::primitives::{Address, B256, U256};
use std::collections::BTreeMap;
use tora_core::UserOperation;

/// A validated user operation waiting in the mempool, with its entities, prefund and the code
/// hashes its validation saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolOperation {
    /// The user operation as the wallet sent it.
    pub op: UserOperation,
    /// Its userOpHash.
    pub hash: B256,
    /// The sender and its stake.
    pub sender: EntityInfo,
    /// The factory and its stake, when the operation deploys its account.
    pub factory: Option<EntityInfo>,
    /// The paymaster and its stake, when it has one.
    pub paymaster: Option<EntityInfo>,
    /// None: valid forever.
    pub valid_until: Option<u64>,
    /// What the EntryPoint takes from the sender's or paymaster's deposit up front: every gas
    /// limit at maxFeePerGas (ERC-7562 EREP-010 sums these per paymaster).
    pub prefund: Wei,
    /// The paymaster's deposit when the operation was validated.
    pub paymaster_deposit: Option<Wei>,
    /// Code hash of every contract the validation touched, for the bundle-time recheck
    /// (ERC-7562 COD-010).
    pub code_hashes: BTreeMap<Address, B256>,
}

impl PoolOperation {
    /// The pool's entry for `op`, from what its validation reported.
    pub fn new(op: UserOperation, outcome: &ValidationOutcome) -> Self {
        Self {
            op,
            hash: outcome.user_op_hash,
            sender: outcome.sender,
            factory: outcome.factory,
            paymaster: outcome.paymaster,
            valid_until: outcome.time_range.valid_until,
            prefund: outcome.prefund,
            paymaster_deposit: outcome.paymaster_deposit,
            code_hashes: outcome.code_hashes.clone(),
        }
    }

    /// Sender, factory and paymaster, those present.
    pub fn entities(&self) -> impl Iterator<Item = &EntityInfo> {
        std::iter::once(&self.sender).chain(self.factory.as_ref()).chain(self.paymaster.as_ref())
    }

    /// Each entity with its role, named by the validation phase it is judged in.
    pub fn entities_with_roles(&self) -> impl Iterator<Item = (Phase, &EntityInfo)> {
        std::iter::once((Phase::Account, &self.sender))
            .chain(self.factory.as_ref().map(|f| (Phase::Factory, f)))
            .chain(self.paymaster.as_ref().map(|p| (Phase::Paymaster, p)))
    }

    /// Factory and paymaster addresses: the entities other than the sender (STO-040).
    pub fn non_sender_entities(&self) -> Vec<Address> {
        self.factory.iter().chain(self.paymaster.iter()).map(|e| e.address).collect()
    }

    /// Whether `entity` is this operation's sender, factory or paymaster.
    pub fn references(&self, entity: Address) -> bool {
        self.entities().any(|e| e.address == entity)
    }

    /// What the bundler earns per gas at `base_fee`: min(maxFee, baseFee + maxPriorityFee).
    pub fn effective_fee(&self, base_fee: u128) -> u128 {
        let max_fee: u128 = self.op.max_fee_per_gas.to();
        let priority: u128 = self.op.max_priority_fee_per_gas.to();
        max_fee.min(base_fee.saturating_add(priority))
    }

    /// Contracts whose code changed between this operation's acceptance and `outcome`, a
    /// later validation of it (ERC-7562 COD-010). A contract the later run did not touch is
    /// not counted: its code cannot have influenced that verdict.
    pub fn changed_code(&self, outcome: &ValidationOutcome) -> Vec<Address> {
        self.code_hashes
            .iter()
            .filter(|(address, hash)| outcome.code_hashes.get(*address).is_some_and(|now| now != *hash))
            .map(|(address, _)| *address)
            .collect()
    }

    /// Every gas limit of the operation together: the most it can add to a bundle.
    pub fn gas_limit(&self) -> U256 {
        let op = &self.op;
        U256::from(op.verification_gas_limit)
            + U256::from(op.call_gas_limit)
            + U256::from(op.paymaster_verification_gas_limit.unwrap_or_default())
            + U256::from(op.paymaster_post_op_gas_limit.unwrap_or_default())
            + op.pre_verification_gas
    }
}

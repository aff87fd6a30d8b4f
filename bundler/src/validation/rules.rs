//! The ERC-7562 opcode, call and storage rules, judged on a [`ValidationTrace`]. Pure: the
//! facts that need the chain (which addresses have code, who is staked) come in
//! [`RuleContext`], so every rule is testable without an EVM.

use super::tracer::{Phase, StorageAccess, ValidationTrace};
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use revm::bytecode::opcode::{self, OpCode};
use revm::interpreter::CallScheme;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tora_core::ErrorCode;
use tora_core::contracts::EntryPoint;

/// ERC-7562 OP-011: opcodes that read the block environment or destroy/create state.
/// BLOBHASH and BLOBBASEFEE read the block environment as well (later revisions of the list
/// name them too), so they are blocked for the same reason.
pub const BANNED_OPCODES: [u8; 14] = [
    opcode::ORIGIN,
    opcode::GASPRICE,
    opcode::BLOCKHASH,
    opcode::COINBASE,
    opcode::TIMESTAMP,
    opcode::NUMBER,
    opcode::DIFFICULTY,
    opcode::GASLIMIT,
    opcode::BASEFEE,
    opcode::BLOBHASH,
    opcode::BLOBBASEFEE,
    opcode::CREATE,
    opcode::INVALID,
    opcode::SELFDESTRUCT,
];

/// Whether a rule judges this opcode by itself (OP-011, OP-013, OP-080): the tracer records
/// only these, not every step.
pub fn is_restricted_opcode(op: u8) -> bool {
    BANNED_OPCODES.contains(&op)
        || OpCode::new(op).is_none()
        || matches!(op, opcode::BALANCE | opcode::SELFBALANCE)
}

/// ERC-7562 "associated storage": `keccak(A || x) + n` with `n` in `0..128`.
pub const ASSOCIATED_SLOT_RANGE: u64 = 128;

/// ERC-7562 OP-062: the core precompiles 0x01..=0x09 are pure functions of their input.
pub const MAX_CORE_PRECOMPILE: u64 = 0x09;

/// RIP-7212 secp256r1 verification, allowed only where the network has it.
pub const P256_PRECOMPILE: Address =
    Address::new([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]);

/// A broken ERC-7562 rule. `code()` maps it to the ERC-4337 JSON-RPC code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("{rule}: {phase:?} phase: {contract} used {} ({opcode:#04x})", opcode_name(*.opcode))]
    Opcode { rule: &'static str, phase: Phase, contract: Address, opcode: u8 },
    #[error("OP-020: {phase:?} phase: a frame of {contract} ran out of gas")]
    OutOfGas { phase: Phase, contract: Address },
    #[error("OP-031: {phase:?} phase: {creator}: {detail}")]
    Create { phase: Phase, creator: Address, detail: String },
    #[error("OP-041: {phase:?} phase: {contract} accessed {target}, which has no code")]
    CodelessAccess { phase: Phase, contract: Address, target: Address },
    #[error("{rule}: {phase:?} phase: {contract} may not access the EntryPoint: {detail}")]
    EntryPointAccess { rule: &'static str, phase: Phase, contract: Address, detail: String },
    #[error("OP-061: {phase:?} phase: {contract} called {target} with value {value}")]
    ValueCall { phase: Phase, contract: Address, target: Address, value: U256 },
    #[error("OP-062: {phase:?} phase: {contract} called precompile {precompile}, not allowed")]
    Precompile { phase: Phase, contract: Address, precompile: Address },
    #[error(
        "{rule}: {phase:?} phase: {} of slot {slot:#x} of {contract} is not allowed",
        access_name(*.write, *.transient)
    )]
    Storage { rule: &'static str, phase: Phase, contract: Address, slot: U256, write: bool, transient: bool },
    #[error("{rule}: {phase:?} phase: {entity} must be staked: {detail}")]
    NeedsStake { rule: &'static str, phase: Phase, entity: Address, detail: String },
    #[error("STO-040: {entity} is an entity here and the sender of an operation in the mempool")]
    EntityIsPoolSender { entity: Address },
    #[error("STO-041: associated storage of {contract} is used, and it is a sender in the mempool")]
    AssociatedStorageOfPoolSender { contract: Address },
}

impl Violation {
    /// ERC-4337: a rule a stake would lift is "stake too low" (-32505); the rest are banned
    /// opcode / storage / call (-32502).
    pub fn code(&self) -> ErrorCode {
        match self {
            Violation::NeedsStake { .. } => ErrorCode::StakeTooLow,
            _ => ErrorCode::BannedOpcode,
        }
    }

    /// The ERC-7562 rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::Opcode { rule, .. }
            | Violation::EntryPointAccess { rule, .. }
            | Violation::Storage { rule, .. }
            | Violation::NeedsStake { rule, .. } => rule,
            Violation::OutOfGas { .. } => "OP-020",
            Violation::Create { .. } => "OP-031",
            Violation::CodelessAccess { .. } => "OP-041",
            Violation::ValueCall { .. } => "OP-061",
            Violation::Precompile { .. } => "OP-062",
            Violation::EntityIsPoolSender { .. } => "STO-040",
            Violation::AssociatedStorageOfPoolSender { .. } => "STO-041",
        }
    }
}

fn opcode_name(op: u8) -> &'static str {
    OpCode::new(op).map_or("an unassigned opcode", |o| o.as_str())
}

fn access_name(write: bool, transient: bool) -> &'static str {
    match (write, transient) {
        (false, false) => "SLOAD",
        (true, false) => "SSTORE",
        (false, true) => "TLOAD",
        (true, true) => "TSTORE",
    }
}

/// What the rules need to know beyond the trace.
#[derive(Clone, Debug)]
pub struct RuleContext {
    pub entry_point: Address,
    pub sender: Address,
    pub factory: Option<Address>,
    pub paymaster: Option<Address>,
    pub sender_staked: bool,
    pub factory_staked: bool,
    pub paymaster_staked: bool,
    /// Addresses the trace touched that have no code at the pinned block.
    pub codeless: HashSet<Address>,
    /// RIP-7212 secp256r1 precompile at 0x100 is live on this chain.
    pub p256_precompile: bool,
}

impl RuleContext {
    /// The entity a phase is attributed to, and whether it is staked.
    fn entity(&self, phase: Phase) -> (Address, bool) {
        match phase {
            Phase::Factory => (self.factory.unwrap_or_default(), self.factory_staked),
            Phase::Account => (self.sender, self.sender_staked),
            Phase::Paymaster => (self.paymaster.unwrap_or_default(), self.paymaster_staked),
        }
    }
}

/// The rules' verdict on one trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceVerdict {
    /// Every broken rule, in trace order within each group (opcodes, calls, storage).
    pub violations: Vec<Violation>,
    /// Contracts whose storage the operation used through association with its sender or a
    /// staked entity (the mempool checks these against other senders, STO-041).
    pub associated_storage: BTreeSet<Address>,
}

/// Judges a whole trace.
pub fn check_trace(trace: &ValidationTrace, ctx: &RuleContext) -> TraceVerdict {
    let mut verdict = TraceVerdict::default();
    check_opcodes(trace, ctx, &mut verdict.violations);
    check_creates(trace, ctx, &mut verdict.violations);
    check_calls(trace, ctx, &mut verdict.violations);
    for access in &trace.storage {
        match check_storage(access, trace, ctx) {
            StorageVerdict::Allowed => {}
            StorageVerdict::Associated => {
                verdict.associated_storage.insert(access.contract);
            }
            StorageVerdict::Broken(v) => verdict.violations.push(v),
        }
    }
    verdict
}

fn check_opcodes(trace: &ValidationTrace, ctx: &RuleContext, out: &mut Vec<Violation>) {
    for used in &trace.opcodes {
        let op = used.opcode;
        let violation =
            |rule| Violation::Opcode { rule, phase: used.phase, contract: used.contract, opcode: op };
        if BANNED_OPCODES.contains(&op) {
            out.push(violation("OP-011"));
        } else if OpCode::new(op).is_none() {
            out.push(violation("OP-013"));
        } else if matches!(op, opcode::BALANCE | opcode::SELFBALANCE) {
            let (entity, staked) = ctx.entity(used.phase);
            if !staked {
                out.push(Violation::NeedsStake {
                    rule: "OP-080",
                    phase: used.phase,
                    entity,
                    detail: format!("{} used {}", used.contract, opcode_name(op)),
                });
            }
        }
    }
    for &(phase, contract) in &trace.gas_misuse {
        out.push(Violation::Opcode { rule: "OP-012", phase, contract, opcode: opcode::GAS });
    }
    for &(phase, contract) in &trace.out_of_gas {
        out.push(Violation::OutOfGas { phase, contract });
    }
}

fn check_creates(trace: &ValidationTrace, ctx: &RuleContext, out: &mut Vec<Violation>) {
    let mut create2_in_factory = 0;
    for create in trace.creates.iter().filter(|c| c.create2) {
        let detail = if create.phase != Phase::Factory {
            Some("CREATE2 outside the deployment phase".to_owned())
        } else {
            create2_in_factory += 1;
            if create2_in_factory > 1 {
                Some("CREATE2 used more than once".to_owned())
            } else if create.address.is_some_and(|a| a != ctx.sender) {
                Some(format!(
                    "CREATE2 deployed {}, not the sender {}",
                    create.address.unwrap_or_default(),
                    ctx.sender
                ))
            } else {
                None
            }
        };
        if let Some(detail) = detail {
            out.push(Violation::Create { phase: create.phase, creator: create.creator, detail });
        }
    }
}

/// Precompile addresses are 0x01..=0xff plus 0x100 (RIP-7212); none of them has code.
fn precompile_number(address: Address) -> Option<u64> {
    let word = U256::from_be_bytes(address.into_word().0);
    (!word.is_zero() && word <= U256::from(0x1ff)).then(|| word.to::<u64>())
}

fn check_calls(trace: &ValidationTrace, ctx: &RuleContext, out: &mut Vec<Violation>) {
    for call in &trace.calls {
        let phase = call.phase;
        if call.target == ctx.entry_point {
            // OP-052: depositTo(sender) from the sender or the factory, any value.
            let deposit_for_sender = call.selector == Some(EntryPoint::depositToCall::SELECTOR)
                && EntryPoint::depositToCall::abi_decode(&call.input).is_ok_and(|c| c.account == ctx.sender)
                && (call.caller == ctx.sender || Some(call.caller) == ctx.factory);
            // OP-053: the sender paying its prefund through the fallback (`receive`).
            let sender_fallback = call.caller == ctx.sender && call.input.is_empty();
            if !(deposit_for_sender || sender_fallback) {
                out.push(Violation::EntryPointAccess {
                    rule: "OP-054",
                    phase,
                    contract: call.caller,
                    detail: "only depositTo(sender) or the sender's plain transfer".to_owned(),
                });
            }
            continue;
        }
        if !call.value.is_zero() && call.scheme != CallScheme::DelegateCall {
            out.push(Violation::ValueCall {
                phase,
                contract: call.caller,
                target: call.target,
                value: call.value,
            });
        }
        if let Some(number) = precompile_number(call.code_address) {
            let allowed = number <= MAX_CORE_PRECOMPILE
                || (ctx.p256_precompile && call.code_address == P256_PRECOMPILE);
            if !allowed {
                out.push(Violation::Precompile {
                    phase,
                    contract: call.caller,
                    precompile: call.code_address,
                });
            }
            continue;
        }
        // OP-041 / OP-042: code-less targets, except the sender the factory is deploying.
        if ctx.codeless.contains(&call.code_address) && call.code_address != ctx.sender {
            out.push(Violation::CodelessAccess { phase, contract: call.caller, target: call.code_address });
        }
    }
    for access in &trace.ext_code {
        if access.target == ctx.entry_point {
            // OP-051: `EXTCODESIZE ISZERO` checks the EntryPoint exists before depositTo.
            let size_check =
                access.opcode == opcode::EXTCODESIZE && access.next_opcode == Some(opcode::ISZERO);
            if !size_check {
                out.push(Violation::EntryPointAccess {
                    rule: "OP-054",
                    phase: access.phase,
                    contract: access.contract,
                    detail: format!("{} other than EXTCODESIZE ISZERO", opcode_name(access.opcode)),
                });
            }
        } else if ctx.codeless.contains(&access.target)
            && access.target != ctx.sender
            && precompile_number(access.target).is_none()
        {
            out.push(Violation::CodelessAccess {
                phase: access.phase,
                contract: access.contract,
                target: access.target,
            });
        }
    }
}

/// Whether `slot` is associated with `address`: the slot is the address itself, or lies in
/// `keccak(address || x) .. + 128` for a keccak the trace saw.
pub fn is_associated(slot: U256, address: Address, keccak: &[(B256, U256)]) -> bool {
    let word = address.into_word();
    if slot == U256::from_be_bytes(word.0) {
        return true;
    }
    keccak.iter().any(|(first_word, hash)| {
        *first_word == word && slot.checked_sub(*hash).is_some_and(|n| n < U256::from(ASSOCIATED_SLOT_RANGE))
    })
}

enum StorageVerdict {
    Allowed,
    /// Allowed because the slot is associated with the sender or a staked entity.
    Associated,
    Broken(Violation),
}

fn check_storage(access: &StorageAccess, trace: &ValidationTrace, ctx: &RuleContext) -> StorageVerdict {
    let phase = access.phase;
    // The EntryPoint's own bookkeeping (deposits, nonces) is trusted code on trusted storage.
    if access.contract == ctx.entry_point {
        return StorageVerdict::Allowed;
    }
    // STO-010: the account's own storage.
    if access.contract == ctx.sender {
        return StorageVerdict::Allowed;
    }
    let (entity, staked) = ctx.entity(phase);
    let needs_stake = |rule, entity, detail: String| {
        StorageVerdict::Broken(Violation::NeedsStake { rule, phase, entity, detail })
    };
    let describe = || {
        format!(
            "{} of slot {:#x} of {}",
            access_name(access.write, access.transient),
            access.slot,
            access.contract
        )
    };
    // STO-021 / STO-022: the sender's associated storage, unless the sender is being created
    // by an unstaked factory.
    if is_associated(access.slot, ctx.sender, &trace.keccak) {
        return match ctx.factory {
            Some(factory) if !ctx.factory_staked => needs_stake("STO-022", factory, describe()),
            _ => StorageVerdict::Associated,
        };
    }
    // STO-031: the entity's own storage.
    if access.contract == entity {
        return if staked { StorageVerdict::Allowed } else { needs_stake("STO-031", entity, describe()) };
    }
    // STO-032: storage associated with the entity, in another contract.
    if is_associated(access.slot, entity, &trace.keccak) {
        return if staked { StorageVerdict::Associated } else { needs_stake("STO-032", entity, describe()) };
    }
    // STO-033: a staked entity may read anything else, never write it.
    if !access.write {
        return if staked { StorageVerdict::Allowed } else { needs_stake("STO-033", entity, describe()) };
    }
    StorageVerdict::Broken(Violation::Storage {
        rule: "STO-033",
        phase,
        contract: access.contract,
        slot: access.slot,
        write: access.write,
        transient: access.transient,
    })
}

/// Slots read or written per contract (the EntryPoint's excluded), for the mempool's storage
/// conflict checks.
pub fn storage_map(trace: &ValidationTrace, entry_point: Address) -> BTreeMap<Address, BTreeSet<U256>> {
    let mut map: BTreeMap<Address, BTreeSet<U256>> = BTreeMap::new();
    for access in trace.storage.iter().filter(|a| a.contract != entry_point) {
        map.entry(access.contract).or_default().insert(access.slot);
    }
    map
}

/// ERC-7562 STO-040 / STO-041, the local rules that need the mempool: `entities` are this
/// operation's factory and paymaster, `associated_storage` its associated-storage contracts;
/// `pool_senders` / `pool_entities` are the senders and entities of the other operations.
pub fn check_mempool_conflicts(
    sender: Address,
    entities: &[Address],
    associated_storage: &BTreeSet<Address>,
    pool_senders: &HashSet<Address>,
    pool_entities: &HashSet<Address>,
) -> Result<(), Violation> {
    if let Some(&entity) = entities.iter().find(|e| pool_senders.contains(*e)) {
        return Err(Violation::EntityIsPoolSender { entity });
    }
    if pool_entities.contains(&sender) {
        return Err(Violation::EntityIsPoolSender { entity: sender });
    }
    if let Some(&contract) = associated_storage.iter().find(|c| **c != sender && pool_senders.contains(*c)) {
        return Err(Violation::AssociatedStorageOfPoolSender { contract });
    }
    Ok(())
}

#[cfg(test)]
// Each test swaps one field of an otherwise empty trace; reassigning reads clearer here.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::validation::tracer::{CallRecord, CreateRecord, ExtCodeAccess, OpcodeUse};
    use alloy::primitives::{Bytes, keccak256};

    const EP: Address = Address::repeat_byte(0xe0);
    const SENDER: Address = Address::repeat_byte(0x5e);
    const FACTORY: Address = Address::repeat_byte(0xfa);
    const PAYMASTER: Address = Address::repeat_byte(0x9a);
    const TOKEN: Address = Address::repeat_byte(0x70);

    fn ctx() -> RuleContext {
        RuleContext {
            entry_point: EP,
            sender: SENDER,
            factory: None,
            paymaster: Some(PAYMASTER),
            sender_staked: false,
            factory_staked: false,
            paymaster_staked: false,
            codeless: HashSet::new(),
            p256_precompile: false,
        }
    }

    /// `balances[holder]` of a Solidity mapping at slot 0, and the keccak the trace saw for it.
    fn mapping_slot(holder: Address) -> (U256, (B256, U256)) {
        let mut preimage = [0u8; 64];
        preimage[..32].copy_from_slice(holder.into_word().as_slice());
        let hash = U256::from_be_bytes(keccak256(preimage).0);
        (hash, (holder.into_word(), hash))
    }

    fn access(phase: Phase, contract: Address, slot: U256, write: bool) -> StorageAccess {
        StorageAccess { phase, contract, slot, write, transient: false }
    }

    fn rules_of(trace: &ValidationTrace, ctx: &RuleContext) -> Vec<&'static str> {
        check_trace(trace, ctx).violations.iter().map(Violation::rule).collect()
    }

    #[test]
    fn association_covers_the_address_and_128_slots_after_its_keccak() {
        let (slot, keccak) = mapping_slot(SENDER);
        let seen = [keccak];
        assert!(is_associated(slot, SENDER, &seen));
        assert!(is_associated(slot + U256::from(127), SENDER, &seen));
        assert!(!is_associated(slot + U256::from(128), SENDER, &seen));
        assert!(!is_associated(slot - U256::from(1), SENDER, &seen));
        assert!(!is_associated(slot, PAYMASTER, &seen));
        // The slot equal to the address itself.
        let own = U256::from_be_bytes(SENDER.into_word().0);
        assert!(is_associated(own, SENDER, &[]));
        // A keccak near U256::MAX must not overflow.
        assert!(!is_associated(U256::ZERO, SENDER, &[(SENDER.into_word(), U256::MAX)]));
    }

    #[test]
    fn sender_associated_storage_needs_a_staked_factory_while_the_sender_is_created() {
        let (slot, keccak) = mapping_slot(SENDER);
        let mut trace = ValidationTrace::default();
        trace.keccak.push(keccak);
        trace.storage.push(access(Phase::Paymaster, TOKEN, slot, true));

        // STO-021: the account exists (no factory).
        let verdict = check_trace(&trace, &ctx());
        assert!(verdict.violations.is_empty());
        assert!(verdict.associated_storage.contains(&TOKEN));

        // STO-022: created by an unstaked factory: the factory needs stake.
        let mut with_factory = ctx();
        with_factory.factory = Some(FACTORY);
        let verdict = check_trace(&trace, &with_factory);
        assert_eq!(
            verdict.violations,
            vec![Violation::NeedsStake {
                rule: "STO-022",
                phase: Phase::Paymaster,
                entity: FACTORY,
                detail: format!("SSTORE of slot {slot:#x} of {TOKEN}"),
            }]
        );
        with_factory.factory_staked = true;
        assert!(check_trace(&trace, &with_factory).violations.is_empty());
    }

    #[test]
    fn staked_entities_may_use_their_own_and_associated_storage_and_read_anything() {
        let (pm_slot, keccak) = mapping_slot(PAYMASTER);
        let mut trace = ValidationTrace::default();
        trace.keccak.push(keccak);
        trace.storage = vec![
            access(Phase::Paymaster, PAYMASTER, U256::from(3), true),
            access(Phase::Paymaster, TOKEN, pm_slot, true),
            access(Phase::Paymaster, TOKEN, U256::from(9), false),
        ];
        assert_eq!(rules_of(&trace, &ctx()), ["STO-031", "STO-032", "STO-033"]);
        let mut staked = ctx();
        staked.paymaster_staked = true;
        assert!(rules_of(&trace, &staked).is_empty());
        // STO-033 is read-only: a write to unassociated storage is banned even when staked.
        trace.storage.push(access(Phase::Paymaster, TOKEN, U256::from(9), true));
        let verdict = check_trace(&trace, &staked);
        assert_eq!(verdict.violations.len(), 1);
        assert_eq!(verdict.violations[0].code(), ErrorCode::BannedOpcode);
    }

    #[test]
    fn the_accounts_own_and_entry_point_storage_are_always_allowed() {
        let mut trace = ValidationTrace::default();
        trace.storage = vec![
            access(Phase::Account, SENDER, U256::from(1), true),
            access(Phase::Paymaster, SENDER, U256::from(2), false),
            access(Phase::Account, EP, U256::from(3), true),
        ];
        assert!(rules_of(&trace, &ctx()).is_empty());
    }

    fn call(phase: Phase, caller: Address, target: Address, value: u64, input: Bytes) -> CallRecord {
        CallRecord {
            phase,
            caller,
            target,
            code_address: target,
            scheme: CallScheme::Call,
            value: U256::from(value),
            selector: input.get(..4).map(|s| [s[0], s[1], s[2], s[3]]),
            input,
        }
    }

    #[test]
    fn entry_point_calls_allow_only_deposit_to_sender_and_the_senders_transfer() {
        let deposit = |account| -> Bytes { EntryPoint::depositToCall { account }.abi_encode().into() };
        let mut trace = ValidationTrace::default();
        trace.calls = vec![
            // OP-053: the sender's prefund through `receive`.
            call(Phase::Account, SENDER, EP, 5, Bytes::new()),
            // OP-052: depositTo(sender) from the sender.
            call(Phase::Account, SENDER, EP, 5, deposit(SENDER)),
        ];
        assert!(rules_of(&trace, &ctx()).is_empty());
        trace.calls = vec![
            call(Phase::Account, SENDER, EP, 5, deposit(PAYMASTER)),
            call(Phase::Paymaster, PAYMASTER, EP, 0, Bytes::new()),
        ];
        assert_eq!(rules_of(&trace, &ctx()), ["OP-054", "OP-054"]);
    }

    #[test]
    fn extcodesize_of_the_entry_point_is_allowed_only_before_iszero() {
        let ext = |opcode, next| ExtCodeAccess {
            phase: Phase::Account,
            contract: SENDER,
            target: EP,
            opcode,
            next_opcode: next,
        };
        let mut trace = ValidationTrace::default();
        trace.ext_code = vec![ext(opcode::EXTCODESIZE, Some(opcode::ISZERO))];
        assert!(rules_of(&trace, &ctx()).is_empty());
        trace.ext_code = vec![
            ext(opcode::EXTCODESIZE, Some(opcode::DUP1)),
            ext(opcode::EXTCODEHASH, Some(opcode::ISZERO)),
        ];
        assert_eq!(rules_of(&trace, &ctx()), ["OP-054", "OP-054"]);
    }

    #[test]
    fn codeless_targets_are_banned_except_the_sender_and_precompiles() {
        let mut c = ctx();
        let nobody = Address::repeat_byte(0x01);
        c.codeless = HashSet::from([SENDER, nobody, Address::with_last_byte(1)]);
        let mut trace = ValidationTrace::default();
        trace.calls = vec![
            call(Phase::Factory, FACTORY, SENDER, 0, Bytes::new()),
            call(Phase::Account, SENDER, Address::with_last_byte(1), 0, Bytes::new()),
            call(Phase::Account, SENDER, nobody, 0, Bytes::new()),
        ];
        assert_eq!(rules_of(&trace, &c), ["OP-041"]);
    }

    #[test]
    fn p256_is_allowed_only_where_the_chain_has_it() {
        let mut trace = ValidationTrace::default();
        trace.calls = vec![call(Phase::Account, SENDER, P256_PRECOMPILE, 0, Bytes::new())];
        assert_eq!(rules_of(&trace, &ctx()), ["OP-062"]);
        let mut c = ctx();
        c.p256_precompile = true;
        assert!(rules_of(&trace, &c).is_empty());
    }

    #[test]
    fn create2_is_allowed_once_for_the_sender_in_the_deployment_phase() {
        let create =
            |phase, address| CreateRecord { phase, creator: FACTORY, create2: true, address: Some(address) };
        let mut c = ctx();
        c.factory = Some(FACTORY);
        let mut trace = ValidationTrace::default();
        trace.creates = vec![create(Phase::Factory, SENDER)];
        assert!(rules_of(&trace, &c).is_empty());
        trace.creates = vec![create(Phase::Factory, TOKEN)];
        assert_eq!(rules_of(&trace, &c), ["OP-031"]);
        trace.creates = vec![create(Phase::Factory, SENDER), create(Phase::Factory, SENDER)];
        assert_eq!(rules_of(&trace, &c), ["OP-031"]);
        trace.creates = vec![create(Phase::Account, SENDER)];
        assert_eq!(rules_of(&trace, &c), ["OP-031"]);
    }

    #[test]
    fn opcode_rules_distinguish_banned_unassigned_and_stake_gated_opcodes() {
        let used = |opcode| OpcodeUse { phase: Phase::Account, contract: SENDER, opcode };
        let mut trace = ValidationTrace::default();
        trace.opcodes = vec![
            used(opcode::ADD),
            used(opcode::TIMESTAMP),
            used(0x0c), // unassigned
            used(opcode::SELFBALANCE),
        ];
        assert_eq!(rules_of(&trace, &ctx()), ["OP-011", "OP-013", "OP-080"]);
        let mut staked = ctx();
        staked.sender_staked = true;
        assert_eq!(rules_of(&trace, &staked), ["OP-011", "OP-013"]);
    }

    #[test]
    fn mempool_conflicts_follow_sto_040_and_sto_041() {
        let none = HashSet::new();
        let associated = BTreeSet::from([TOKEN]);
        assert_eq!(check_mempool_conflicts(SENDER, &[PAYMASTER], &associated, &none, &none), Ok(()));
        // STO-040: our paymaster is another operation's sender, or our sender their entity.
        let senders = HashSet::from([PAYMASTER]);
        assert_eq!(
            check_mempool_conflicts(SENDER, &[PAYMASTER], &associated, &senders, &none).unwrap_err().rule(),
            "STO-040"
        );
        let entities = HashSet::from([SENDER]);
        assert_eq!(
            check_mempool_conflicts(SENDER, &[], &associated, &none, &entities).unwrap_err().rule(),
            "STO-040"
        );
        // STO-041: associated storage in a contract that is another operation's sender.
        let senders = HashSet::from([TOKEN]);
        assert_eq!(
            check_mempool_conflicts(SENDER, &[], &associated, &senders, &none),
            Err(Violation::AssociatedStorageOfPoolSender { contract: TOKEN })
        );
    }
}

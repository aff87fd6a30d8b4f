//! The ERC-7562 opcode, call and storage rules, judged on a [`ValidationTrace`]. Pure: the
//! facts that need the chain (which addresses have code, who is staked) come in
//! [`RuleContext`], so every rule is testable without an EVM.
//!
//! The rules are those of ERC-7562 as of ethereum/ERCs 9c718c7 (2026-08), judged the way the
//! eth-infinitism reference bundler judges them where the text leaves room (docs/architecture/
//! bundler.md lists where): messages use the reference's wording, so that clients and the
//! compatibility suite that match on them keep working, and carry our rule id beside it.

use super::tracer::{Phase, StorageAccess, ValidationTrace};
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use revm::bytecode::opcode::{self, OpCode};
use revm::interpreter::CallScheme;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tora_core::contracts::EntryPoint;

pub use super::tracer::{BANNED_OPCODES, is_restricted_opcode};

/// ERC-7562 "associated storage": `keccak(A || x) + n` with `n` in `0..128`.
pub const ASSOCIATED_SLOT_RANGE: u64 = 128;

/// ERC-7562 OP-062: the core precompiles 0x01..=0x11 (through Prague's BLS12-381 set) are
/// pure functions of their input.
pub const MAX_CORE_PRECOMPILE: u64 = 0x11;

/// RIP-7212 / EIP-7951 secp256r1 verification (P256VERIFY), allowed only where the network
/// has it.
pub const P256_PRECOMPILE: Address =
    Address::new([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]);

/// A broken ERC-7562 rule, worded as the reference bundler words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// OP-011 (banned), OP-012 (GAS not before a call), OP-013 (unassigned).
    #[error("{phase} uses banned opcode: {} (in {contract})", opcode_name(*.opcode))]
    Opcode {
        /// The ERC-7562 rule id.
        rule: &'static str,
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account whose code ran the opcode.
        contract: Address,
        /// The opcode byte.
        opcode: u8,
    },
    /// OP-080: BALANCE / SELFBALANCE from an unstaked entity.
    #[error("unstaked {phase} uses banned opcode: {} (in {contract})", opcode_name(*.opcode))]
    UnstakedOpcode {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The unstaked entity the phase belongs to.
        entity: Address,
        /// The account whose code ran the opcode.
        contract: Address,
        /// The opcode byte.
        opcode: u8,
    },
    /// OP-020: a frame ran out of gas inside the phase.
    #[error("{phase} internally reverts on oog (a frame of {contract} ran out of gas)")]
    OutOfGas {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account whose frame halted out of gas.
        contract: Address,
    },
    /// OP-031: CREATE2 outside the factory's deployment, more than once, or to an address
    /// other than the sender.
    #[error("{phase} {detail}")]
    Create {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account that ran CREATE2.
        creator: Address,
        /// Which misuse, in the reference's words.
        detail: String,
    },
    /// OP-041: a call or EXTCODE* on an address with no code (other than the sender being
    /// deployed).
    #[error("{phase} accesses un-deployed contract address {target} with opcode {how}")]
    CodelessAccess {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account making the access.
        contract: Address,
        /// The address without code.
        target: Address,
        /// The opcode used (CALL, EXTCODESIZE, ...).
        how: &'static str,
    },
    /// OP-054: an access to the EntryPoint that OP-051..OP-053 do not allow (a call other than
    /// depositTo(sender) or the sender's prefund, an EXTCODE* other than `EXTCODESIZE ISZERO`),
    /// or its code run by DELEGATECALL/CALLCODE.
    #[error("{phase} {detail}")]
    EntryPointAccess {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account making the access.
        contract: Address,
        /// Which access, in the reference's words.
        detail: String,
    },
    /// OP-061: a call that moves value, other than to the EntryPoint.
    #[error("{phase} may not make a CALL with value: {contract} sent {value} wei to {target}")]
    ValueCall {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account sending the value.
        contract: Address,
        /// The account called.
        target: Address,
        /// The value sent, in wei.
        value: U256,
    },
    /// OP-062: a call to a precompile other than the core 0x01..=0x11 (and P256VERIFY where the
    /// chain has it).
    #[error("{phase} calls forbidden precompile {precompile}")]
    Precompile {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account making the call.
        contract: Address,
        /// The precompile's address.
        precompile: Address,
    },
    /// A write to storage no stake allows (STO-033 is read-only).
    #[error(
        "{phase} has forbidden write to {}{contract} slot {slot:#x}",
        if *.transient { "transient " } else { "" }
    )]
    Storage {
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The account whose storage was written.
        contract: Address,
        /// The slot written.
        slot: U256,
        /// A TSTORE rather than an SSTORE.
        transient: bool,
    },
    /// STO-022 / STO-031 / STO-032 / STO-033 broken by an entity that is not staked; `entity`
    /// is the one whose stake would allow it.
    #[error("unstaked {phase} accessed {contract} slot {slot:#x} ({}; {entity} must be staked)", access_name(*.write, *.transient))]
    NeedsStake {
        /// The ERC-7562 rule id.
        rule: &'static str,
        /// The phase whose code broke the rule.
        phase: Phase,
        /// The entity whose stake would allow the access.
        entity: Address,
        /// The account whose storage was accessed.
        contract: Address,
        /// The slot accessed.
        slot: U256,
        /// A store rather than a load.
        write: bool,
        /// Transient storage (TLOAD/TSTORE) rather than persistent.
        transient: bool,
    },
    /// EREP-050: the paymaster's postOp would run code its stake does not answer for.
    #[error("unstaked paymaster {paymaster} must not return a context")]
    UnstakedPaymasterContext {
        /// The unstaked paymaster.
        paymaster: Address,
    },
    /// STO-040: this operation's factory or paymaster is another pending operation's sender.
    #[error(
        "A {role} at {entity} in this UserOperation is used as a sender entity in another UserOperation currently in mempool."
    )]
    EntityIsPoolSender {
        /// "Paymaster" or "Factory".
        role: &'static str,
        /// The factory or paymaster.
        entity: Address,
    },
    /// STO-040: this operation's sender is another pending operation's factory or paymaster.
    #[error(
        "The sender address {sender} is used as a different entity in another UserOperation currently in mempool"
    )]
    SenderIsPoolEntity {
        /// This operation's sender.
        sender: Address,
    },
}

impl Violation {
    /// The ERC-7562 rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::Opcode { rule, .. } | Violation::NeedsStake { rule, .. } => rule,
            Violation::UnstakedOpcode { .. } => "OP-080",
            Violation::OutOfGas { .. } => "OP-020",
            Violation::Create { .. } => "OP-031",
            Violation::CodelessAccess { .. } => "OP-041",
            Violation::EntryPointAccess { .. } => "OP-054",
            Violation::ValueCall { .. } => "OP-061",
            Violation::Precompile { .. } => "OP-062",
            Violation::Storage { .. } => "STO-033",
            Violation::UnstakedPaymasterContext { .. } => "EREP-050",
            Violation::EntityIsPoolSender { .. } | Violation::SenderIsPoolEntity { .. } => "STO-040",
        }
    }

    /// The validation phase that broke it (None for the mempool's own rules).
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Violation::Opcode { phase, .. }
            | Violation::UnstakedOpcode { phase, .. }
            | Violation::OutOfGas { phase, .. }
            | Violation::Create { phase, .. }
            | Violation::CodelessAccess { phase, .. }
            | Violation::EntryPointAccess { phase, .. }
            | Violation::ValueCall { phase, .. }
            | Violation::Precompile { phase, .. }
            | Violation::Storage { phase, .. }
            | Violation::NeedsStake { phase, .. } => Some(*phase),
            Violation::UnstakedPaymasterContext { .. } => Some(Phase::Paymaster),
            Violation::EntityIsPoolSender { .. } | Violation::SenderIsPoolEntity { .. } => None,
        }
    }
}

/// An opcode's mnemonic as the reference tracer (geth's) names it: 0x44 is `DIFFICULTY`.
fn opcode_name(op: u8) -> String {
    OpCode::new(op).map_or_else(|| format!("{op:#04x}"), |o| o.as_str().to_owned())
}

fn access_name(write: bool, transient: bool) -> &'static str {
    match (write, transient) {
        (false, false) => "SLOAD",
        (true, false) => "SSTORE",
        (false, true) => "TLOAD",
        (true, true) => "TSTORE",
    }
}

fn call_name(scheme: CallScheme) -> &'static str {
    match scheme {
        CallScheme::Call => "CALL",
        CallScheme::CallCode => "CALLCODE",
        CallScheme::DelegateCall => "DELEGATECALL",
        CallScheme::StaticCall => "STATICCALL",
    }
}

/// What the rules need to know beyond the trace.
#[derive(Clone, Debug)]
pub struct RuleContext {
    /// The EntryPoint: using its storage is allowed, calling into it is limited (OP-051..OP-054).
    pub entry_point: Address,
    /// The operation's sender.
    pub sender: Address,
    /// The factory, when the operation deploys its account.
    pub factory: Option<Address>,
    /// The paymaster, when it has one.
    pub paymaster: Option<Address>,
    /// The sender meets MIN_STAKE_VALUE and MIN_UNSTAKE_DELAY.
    pub sender_staked: bool,
    /// The factory is staked (false without a factory).
    pub factory_staked: bool,
    /// The paymaster is staked (false without a paymaster).
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
    /// Every broken rule, in the reference's order of checks (out-of-gas, opcodes, CREATE2,
    /// storage, calls), so that the first is the one it would report.
    pub violations: Vec<Violation>,
    /// Contracts whose storage the operation used through association with its sender or a
    /// staked entity.
    pub associated_storage: BTreeSet<Address>,
}

/// Judges a whole trace.
pub fn check_trace(trace: &ValidationTrace, ctx: &RuleContext) -> TraceVerdict {
    let mut verdict = TraceVerdict::default();
    check_opcodes(trace, ctx, &mut verdict.violations);
    check_creates(trace, ctx, &mut verdict.violations);
    for access in &trace.storage {
        match check_storage(access, trace, ctx) {
            StorageVerdict::Allowed => {}
            StorageVerdict::Associated => {
                verdict.associated_storage.insert(access.contract);
            }
            StorageVerdict::Broken(v) => verdict.violations.push(v),
        }
    }
    check_calls(trace, ctx, &mut verdict.violations);
    verdict
}

fn check_opcodes(trace: &ValidationTrace, ctx: &RuleContext, out: &mut Vec<Violation>) {
    for &(phase, contract) in &trace.out_of_gas {
        out.push(Violation::OutOfGas { phase, contract });
    }
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
                out.push(Violation::UnstakedOpcode {
                    phase: used.phase,
                    entity,
                    contract: used.contract,
                    opcode: op,
                });
            }
        }
    }
    for &(phase, contract) in &trace.gas_misuse {
        out.push(Violation::Opcode { rule: "OP-012", phase, contract, opcode: opcode::GAS });
    }
}

fn check_creates(trace: &ValidationTrace, ctx: &RuleContext, out: &mut Vec<Violation>) {
    let mut create2_in_factory = 0;
    for create in trace.creates.iter().filter(|c| c.create2) {
        let detail = if create.phase != Phase::Factory {
            Some("uses banned opcode: CREATE2 (outside the deployment phase)".to_owned())
        } else {
            create2_in_factory += 1;
            if create2_in_factory > 1 {
                Some("with too many CREATE2".to_owned())
            } else if create.address.is_some_and(|a| a != ctx.sender) {
                Some(format!(
                    "uses CREATE2 to deploy {}, not the sender {}",
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
        // DELEGATECALL and CALLCODE run the EntryPoint's code in the caller's context: its
        // target is the caller, so the code address is what says the EntryPoint is entered.
        if call.code_address == ctx.entry_point && call.target != ctx.entry_point {
            out.push(Violation::EntryPointAccess {
                phase,
                contract: call.caller,
                detail: format!("runs the EntryPoint's code by {}", call_name(call.scheme)),
            });
            continue;
        }
        if call.target == ctx.entry_point {
            // OP-052: depositTo(sender) from the sender or the factory, any value.
            let deposit_for_sender = call.selector == Some(EntryPoint::depositToCall::SELECTOR)
                && EntryPoint::depositToCall::abi_decode(&call.input).is_ok_and(|c| c.account == ctx.sender)
                && (call.caller == ctx.sender || Some(call.caller) == ctx.factory);
            // OP-053: the sender paying its prefund through the fallback (`receive`).
            let sender_fallback = call.caller == ctx.sender && call.input.is_empty();
            if !(deposit_for_sender || sender_fallback) {
                let method = call.selector.map_or_else(|| "0x".to_owned(), alloy::hex::encode_prefixed);
                out.push(Violation::EntryPointAccess {
                    phase,
                    contract: call.caller,
                    detail: format!("makes an illegal call into EntryPoint during validation {method}"),
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
            out.push(Violation::CodelessAccess {
                phase,
                contract: call.caller,
                target: call.code_address,
                how: call_name(call.scheme),
            });
        }
    }
    for access in &trace.ext_code {
        let how = OpCode::new(access.opcode).map_or("EXTCODE*", |o| o.as_str());
        if access.target == ctx.entry_point {
            // OP-051: `EXTCODESIZE ISZERO` checks the EntryPoint exists before depositTo.
            let size_check =
                access.opcode == opcode::EXTCODESIZE && access.next_opcode == Some(opcode::ISZERO);
            if !size_check {
                out.push(Violation::EntryPointAccess {
                    phase: access.phase,
                    contract: access.contract,
                    detail: format!(
                        "accesses EntryPoint contract address {} with opcode {how}",
                        ctx.entry_point.to_string().to_lowercase()
                    ),
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
                how,
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
    // The EntryPoint's own bookkeeping (deposits, nonces) is trusted code on trusted storage,
    // and STO-010: the account's own storage is always allowed.
    if access.contract == ctx.entry_point || access.contract == ctx.sender {
        return StorageVerdict::Allowed;
    }
    let (entity, staked) = ctx.entity(phase);
    let needs_stake = |rule, entity| {
        StorageVerdict::Broken(Violation::NeedsStake {
            rule,
            phase,
            entity,
            contract: access.contract,
            slot: access.slot,
            write: access.write,
            transient: access.transient,
        })
    };
    if is_associated(access.slot, ctx.sender, &trace.keccak) {
        return match ctx.factory {
            // STO-021: the account exists.
            None => StorageVerdict::Associated,
            // STO-022: while the account is created, its own validation may use its
            // associated storage behind a staked factory; otherwise the entity using it needs
            // its own stake (the reference's reading, which the suite pins: an unstaked
            // paymaster behind a staked factory is refused, a staked one behind an unstaked
            // factory may read balanceOf(sender)).
            Some(_) if staked || (phase == Phase::Account && ctx.factory_staked) => {
                StorageVerdict::Associated
            }
            Some(factory) if phase == Phase::Account => needs_stake("STO-022", factory),
            Some(_) => needs_stake("STO-022", entity),
        };
    }
    let (rule, allowed) = if is_associated(access.slot, entity, &trace.keccak) {
        // STO-032: storage associated with the entity, in another contract.
        ("STO-032", StorageVerdict::Associated)
    } else if access.contract == entity {
        // STO-031: the entity's own storage.
        ("STO-031", StorageVerdict::Allowed)
    } else if !access.write {
        // STO-033: a staked entity may read anything else...
        ("STO-033", StorageVerdict::Allowed)
    } else {
        // ...and never write it.
        return StorageVerdict::Broken(Violation::Storage {
            phase,
            contract: access.contract,
            slot: access.slot,
            transient: access.transient,
        });
    };
    if staked { allowed } else { needs_stake(rule, entity) }
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

/// ERC-7562 STO-040, the admission rule that needs the mempool: `entities` are this
/// operation's factory and paymaster; `pool_senders` / `pool_entities` the senders and the
/// factories and paymasters of the other pending operations. (STO-041 is judged when a bundle
/// is built: see `builder::selection`.)
pub fn check_mempool_roles(
    sender: Address,
    factory: Option<Address>,
    paymaster: Option<Address>,
    pool_senders: &HashSet<Address>,
    pool_entities: &HashSet<Address>,
) -> Result<(), Violation> {
    let roles = [("Paymaster", paymaster), ("Factory", factory)];
    if let Some((role, entity)) =
        roles.into_iter().find_map(|(role, e)| e.filter(|e| pool_senders.contains(e)).map(|e| (role, e)))
    {
        return Err(Violation::EntityIsPoolSender { role, entity });
    }
    if pool_entities.contains(&sender) {
        return Err(Violation::SenderIsPoolEntity { sender });
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
    fn sender_associated_storage_while_the_sender_is_created_follows_sto_022() {
        let (slot, keccak) = mapping_slot(SENDER);
        let mut trace = ValidationTrace::default();
        trace.keccak.push(keccak);
        trace.storage.push(access(Phase::Paymaster, TOKEN, slot, false));

        // STO-021: the account exists (no factory).
        let verdict = check_trace(&trace, &ctx());
        assert!(verdict.violations.is_empty());
        assert!(verdict.associated_storage.contains(&TOKEN));

        // An unstaked paymaster reading it while an unstaked factory creates the sender.
        let mut with_factory = ctx();
        with_factory.factory = Some(FACTORY);
        let verdict = check_trace(&trace, &with_factory);
        let stake_of = |entity| Violation::NeedsStake {
            rule: "STO-022",
            phase: Phase::Paymaster,
            entity,
            contract: TOKEN,
            slot,
            write: false,
            transient: false,
        };
        assert_eq!(verdict.violations, vec![stake_of(PAYMASTER)]);
        assert_eq!(
            verdict.violations[0].to_string(),
            format!("unstaked paymaster accessed {TOKEN} slot {slot:#x} (SLOAD; {PAYMASTER} must be staked)")
        );
        // A staked factory allows the account's own use only: the paymaster still needs stake.
        with_factory.factory_staked = true;
        assert_eq!(check_trace(&trace, &with_factory).violations, vec![stake_of(PAYMASTER)]);
        // A staked paymaster may read balanceOf(sender) of an account an unstaked factory
        // creates (the hole: an early return refused it).
        with_factory.factory_staked = false;
        with_factory.paymaster_staked = true;
        assert!(check_trace(&trace, &with_factory).violations.is_empty());

        // The account's own validation: allowed behind a staked factory only.
        let mut account_trace = trace.clone();
        account_trace.storage = vec![access(Phase::Account, TOKEN, slot, false)];
        let mut behind = ctx();
        behind.factory = Some(FACTORY);
        assert_eq!(rules_of(&account_trace, &behind), ["STO-022"]);
        let Violation::NeedsStake { entity, .. } = &check_trace(&account_trace, &behind).violations[0] else {
            panic!("expected STO-022");
        };
        assert_eq!(*entity, FACTORY, "the factory's stake would allow it");
        behind.factory_staked = true;
        assert!(rules_of(&account_trace, &behind).is_empty());
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
        assert_eq!(
            verdict.violations[0],
            Violation::Storage {
                phase: Phase::Paymaster,
                contract: TOKEN,
                slot: U256::from(9),
                transient: false
            }
        );
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
    fn mempool_roles_follow_sto_040_both_ways() {
        let none = HashSet::new();
        assert_eq!(check_mempool_roles(SENDER, None, Some(PAYMASTER), &none, &none), Ok(()));
        // Our paymaster (or factory) is another operation's sender.
        let senders = HashSet::from([PAYMASTER]);
        assert_eq!(
            check_mempool_roles(SENDER, None, Some(PAYMASTER), &senders, &none),
            Err(Violation::EntityIsPoolSender { role: "Paymaster", entity: PAYMASTER })
        );
        let senders = HashSet::from([FACTORY]);
        assert_eq!(
            check_mempool_roles(SENDER, Some(FACTORY), None, &senders, &none).unwrap_err().rule(),
            "STO-040"
        );
        // Our sender is another operation's paymaster or factory.
        let entities = HashSet::from([SENDER]);
        assert_eq!(
            check_mempool_roles(SENDER, None, None, &none, &entities),
            Err(Violation::SenderIsPoolEntity { sender: SENDER })
        );
    }
}

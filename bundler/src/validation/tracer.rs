//! A revm inspector that records what ERC-7562 judges: per validation phase (factory, account,
//! paymaster), the opcodes, storage accesses, calls, contract creations, keccak preimages and
//! out-of-gas halts. It only records; `rules` decides.
//!
//! Phases are split where the EntryPoint's own frame calls out: into SenderCreator (factory),
//! the sender's `validateUserOp` (account) and the paymaster's `validatePaymasterUserOp`
//! (paymaster). Everything those frames run, to any depth, belongs to that phase. Code the
//! EntryPoint runs itself is trusted and never judged.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::sol_types::SolCall;
use revm::Inspector;
use revm::bytecode::opcode;
use revm::context::ContextTr;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::{InputsTr, Jumps, MemoryTr};
use revm::interpreter::{
    CallInputs, CallOutcome, CallScheme, CallValue, CreateInputs, CreateOutcome, CreateScheme,
    InstructionResult, Interpreter,
};
use tora_core::contracts::{SimpleAccount, ToraPaymaster};

/// ERC-7562 OP-011: opcodes that read the block environment or destroy/create state.
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
        || revm::bytecode::opcode::OpCode::new(op).is_none()
        || matches!(op, opcode::BALANCE | opcode::SELFBALANCE)
}

/// The validation phase an operation's code runs in, each attributed to one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// The factory's account deployment, through the SenderCreator (initCode).
    Factory,
    /// The sender's `validateUserOp`.
    Account,
    /// The paymaster's `validatePaymasterUserOp`.
    Paymaster,
}

impl std::fmt::Display for Phase {
    /// The entity the phase belongs to, as ERC-7562 messages name it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Factory => "factory",
            Phase::Account => "account",
            Phase::Paymaster => "paymaster",
        })
    }
}

/// One opcode an entity's code executed that a rule may care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpcodeUse {
    /// The phase whose code ran it.
    pub phase: Phase,
    /// The contract whose code ran it.
    pub contract: Address,
    /// The opcode byte.
    pub opcode: u8,
}

/// `SLOAD`/`SSTORE`, or `TLOAD`/`TSTORE` (ERC-7562 OP-070 treats both alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageAccess {
    /// The phase whose code made the access.
    pub phase: Phase,
    /// The account whose storage was accessed (the executing context, not the code).
    pub contract: Address,
    /// The storage slot.
    pub slot: U256,
    /// `SSTORE`/`TSTORE` rather than a load.
    pub write: bool,
    /// Transient storage (`TLOAD`/`TSTORE`) rather than persistent.
    pub transient: bool,
}

/// A `*CALL` made by an entity's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The phase whose code made the call.
    pub phase: Phase,
    /// The account making the call (the executing context of the calling frame).
    pub caller: Address,
    /// The account called (whose code runs, except under DELEGATECALL/CALLCODE).
    pub target: Address,
    /// The account whose code the call runs (differs from `target` under DELEGATECALL/CALLCODE).
    pub code_address: Address,
    /// CALL, CALLCODE, DELEGATECALL or STATICCALL.
    pub scheme: CallScheme,
    /// The value moved (0 for DELEGATECALL, whose value is only apparent).
    pub value: U256,
    /// The first 4 bytes of the call data, when it has that many.
    pub selector: Option<[u8; 4]>,
    /// The whole call data.
    pub input: Bytes,
}

/// `EXTCODESIZE`/`EXTCODEHASH`/`EXTCODECOPY` by an entity's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtCodeAccess {
    /// The phase whose code ran the opcode.
    pub phase: Phase,
    /// The account executing the opcode.
    pub contract: Address,
    /// The address whose code was inspected.
    pub target: Address,
    /// `EXTCODESIZE`, `EXTCODEHASH` or `EXTCODECOPY`.
    pub opcode: u8,
    /// The opcode right after it in the same code: ERC-7562 OP-051 allows `EXTCODESIZE ISZERO`
    /// on the EntryPoint.
    pub next_opcode: Option<u8>,
}

/// A `CREATE`/`CREATE2` frame started by an entity's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRecord {
    /// The phase whose code started the creation.
    pub phase: Phase,
    /// The account that ran `CREATE`/`CREATE2`.
    pub creator: Address,
    /// `CREATE2` rather than `CREATE`.
    pub create2: bool,
    /// The created address, once the frame ended (None if it failed before an address).
    pub address: Option<Address>,
}

/// Everything recorded while simulating one operation.
#[derive(Clone, Debug, Default)]
pub struct ValidationTrace {
    /// Restricted opcodes only ([`is_restricted_opcode`]).
    pub opcodes: Vec<OpcodeUse>,
    /// Every storage access made in a phase.
    pub storage: Vec<StorageAccess>,
    /// Every call made from a phase (the EntryPoint's calls into the entities excluded).
    pub calls: Vec<CallRecord>,
    /// Every `EXTCODE*` made in a phase.
    pub ext_code: Vec<ExtCodeAccess>,
    /// Every `CREATE`/`CREATE2` frame started in a phase.
    pub creates: Vec<CreateRecord>,
    /// `GAS` not immediately followed by a `*CALL` (ERC-7562 OP-012).
    pub gas_misuse: Vec<(Phase, Address)>,
    /// Frames in a phase that halted out of gas (ERC-7562 OP-020).
    pub out_of_gas: Vec<(Phase, Address)>,
    /// `(first 32 bytes, keccak)` of every keccak input of at least 32 bytes, to associate
    /// storage slots with addresses (ERC-7562 "associated storage").
    pub keccak: Vec<(B256, U256)>,
    /// `(key, slot, keccak)` of every 64-byte keccak input: how Solidity locates a mapping's
    /// entry, so a slot can be traced back to the keys it was derived from.
    pub mapping_keys: Vec<(B256, B256, U256)>,
    /// Contracts whose code ran or was inspected in a phase (COD-010 needs their code hashes).
    pub touched: Vec<Address>,
    /// Which phases actually ran.
    pub phases_entered: Vec<Phase>,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    phase: Option<Phase>,
}

/// Keccak inputs beyond this are not mapping or array slots; skipping them bounds memory.
const MAX_KECCAK_PREIMAGE: usize = 1024;

/// The inspector. Build one per simulation.
pub struct ValidationTracer {
    entry_point: Address,
    sender_creator: Address,
    sender: Address,
    paymaster: Option<Address>,
    frames: Vec<Frame>,
    /// Set after `GAS`: the next opcode in the same frame must be a call.
    pending_gas: Option<(usize, Phase, Address)>,
    /// Set after `EXTCODE*`: the next opcode in the same frame, for OP-051.
    pending_ext: Option<(usize, usize)>,
    /// What has been recorded so far; taken once the simulation ends.
    pub trace: ValidationTrace,
}

impl ValidationTracer {
    /// A tracer for one operation of `sender` (and `paymaster`), splitting phases where the
    /// `entry_point` calls the `sender_creator`, the sender or the paymaster.
    pub fn new(
        entry_point: Address,
        sender_creator: Address,
        sender: Address,
        paymaster: Option<Address>,
    ) -> Self {
        Self {
            entry_point,
            sender_creator,
            sender,
            paymaster,
            frames: Vec::new(),
            pending_gas: None,
            pending_ext: None,
            trace: ValidationTrace::default(),
        }
    }

    fn current_phase(&self) -> Option<Phase> {
        self.frames.last().and_then(|f| f.phase)
    }

    /// The phase a new call frame belongs to: inherited, or started by the EntryPoint's own
    /// (outermost) frame calling one of the three entities.
    fn phase_of_call(&self, inputs: &CallInputs, selector: Option<[u8; 4]>) -> Option<Phase> {
        if self.frames.len() != 1 || inputs.caller != self.entry_point {
            return self.current_phase();
        }
        if inputs.target_address == self.sender_creator {
            Some(Phase::Factory)
        } else if inputs.target_address == self.sender
            && selector == Some(SimpleAccount::validateUserOpCall::SELECTOR)
        {
            Some(Phase::Account)
        } else if Some(inputs.target_address) == self.paymaster
            && selector == Some(ToraPaymaster::validatePaymasterUserOpCall::SELECTOR)
        {
            Some(Phase::Paymaster)
        } else {
            None
        }
    }

    fn enter(&mut self, phase: Option<Phase>) {
        if let Some(phase) = phase
            && !self.trace.phases_entered.contains(&phase)
        {
            self.trace.phases_entered.push(phase);
        }
        self.frames.push(Frame { phase });
    }
}

/// The stack item `n` from the top, or None on underflow (the opcode will halt by itself).
fn peek(interp: &Interpreter<EthInterpreter>, n: usize) -> Option<U256> {
    interp.stack.peek(n).ok()
}

fn as_address(word: U256) -> Address {
    Address::from_word(B256::from(word))
}

/// Memory `[offset, offset + len)` as the opcode will see it: bytes past the end of memory are
/// zero (expansion), and an empty read is empty. Never panics, whatever the stack holds.
fn read_memory(interp: &Interpreter<EthInterpreter>, offset: U256, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let Ok(offset) = usize::try_from(offset) else {
        return out;
    };
    let size = interp.memory.size();
    if len == 0 || offset >= size {
        return out;
    }
    let available = (size - offset).min(len);
    let slice = interp.memory.slice(offset..offset + available);
    out[..available].copy_from_slice(&slice);
    out
}

impl ValidationTracer {
    /// A 64-byte keccak, in any code (the EntryPoint's nonce and deposit lookups included).
    fn record_mapping_key(&mut self, interp: &Interpreter<EthInterpreter>) {
        if let (Some(offset), Some(len)) = (peek(interp, 0), peek(interp, 1))
            && len == U256::from(64)
        {
            let data = read_memory(interp, offset, 64);
            let hash = U256::from_be_bytes(keccak256(&data).0);
            let (key, slot) = data.split_at(32);
            self.trace.mapping_keys.push((B256::from_slice(key), B256::from_slice(slot), hash));
        }
    }
}

impl<CTX: ContextTr> Inspector<CTX, EthInterpreter> for ValidationTracer {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        let op = interp.bytecode.opcode();
        let depth = self.frames.len();

        if let Some((at, phase, contract)) = self.pending_gas.take()
            && at == depth
            && !matches!(op, opcode::CALL | opcode::CALLCODE | opcode::DELEGATECALL | opcode::STATICCALL)
        {
            self.trace.gas_misuse.push((phase, contract));
        }
        if let Some((at, index)) = self.pending_ext.take()
            && at == depth
            && let Some(access) = self.trace.ext_code.get_mut(index)
        {
            access.next_opcode = Some(op);
        }

        if op == opcode::KECCAK256 {
            self.record_mapping_key(interp);
        }
        let Some(phase) = self.current_phase() else {
            return;
        };
        let contract = interp.input.target_address();
        // The EntryPoint's code on its own storage (its receive/depositTo reached from a phase)
        // and SenderCreator's (which only forwards initCode to the factory) are trusted, not
        // entity code. Their code run in an entity's context (DELEGATECALL, CALLCODE) is the
        // entity's doing and is judged like the entity's own.
        let code = interp.input.bytecode_address().copied().unwrap_or(contract);
        if code == contract && (code == self.entry_point || code == self.sender_creator) {
            return;
        }

        match op {
            opcode::SLOAD | opcode::SSTORE | opcode::TLOAD | opcode::TSTORE => {
                if let Some(slot) = peek(interp, 0) {
                    self.trace.storage.push(StorageAccess {
                        phase,
                        contract,
                        slot,
                        write: matches!(op, opcode::SSTORE | opcode::TSTORE),
                        transient: matches!(op, opcode::TLOAD | opcode::TSTORE),
                    });
                }
            }
            opcode::KECCAK256 => {
                if let (Some(offset), Some(len)) = (peek(interp, 0), peek(interp, 1))
                    && let Ok(len) = usize::try_from(len)
                    && (32..=MAX_KECCAK_PREIMAGE).contains(&len)
                {
                    let data = read_memory(interp, offset, len);
                    let hash = U256::from_be_bytes(keccak256(&data).0);
                    self.trace.keccak.push((B256::from_slice(&data[..32]), hash));
                }
            }
            opcode::GAS => self.pending_gas = Some((depth, phase, contract)),
            opcode::EXTCODESIZE | opcode::EXTCODEHASH | opcode::EXTCODECOPY => {
                if let Some(target) = peek(interp, 0) {
                    self.pending_ext = Some((depth, self.trace.ext_code.len()));
                    self.trace.ext_code.push(ExtCodeAccess {
                        phase,
                        contract,
                        target: as_address(target),
                        opcode: op,
                        next_opcode: None,
                    });
                }
            }
            _ => {}
        }
        if is_restricted_opcode(op) {
            self.trace.opcodes.push(OpcodeUse { phase, contract, opcode: op });
        }
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let input = inputs.input.bytes(context);
        let selector = input.get(..4).map(|s| [s[0], s[1], s[2], s[3]]);
        let phase = self.phase_of_call(inputs, selector);
        // Calls the EntryPoint's frame makes start phases; only calls from a phase are judged.
        if let Some(caller_phase) = self.current_phase()
            && !(self.frames.len() == 1 && inputs.caller == self.entry_point)
        {
            let value = match inputs.value {
                CallValue::Transfer(v) => v,
                CallValue::Apparent(_) => U256::ZERO,
            };
            self.trace.calls.push(CallRecord {
                phase: caller_phase,
                caller: inputs.caller,
                target: inputs.target_address,
                code_address: inputs.bytecode_address,
                scheme: inputs.scheme,
                value,
                selector,
                input,
            });
            self.trace.touched.push(inputs.bytecode_address);
        }
        self.enter(phase);
        None
    }

    fn call_end(&mut self, _context: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        if let Some(frame) = self.frames.pop()
            && let Some(phase) = frame.phase
            && is_out_of_gas(outcome.result.result)
        {
            self.trace.out_of_gas.push((phase, inputs.target_address));
        }
        self.pending_gas = None;
        self.pending_ext = None;
    }

    fn create(&mut self, _context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let phase = self.current_phase();
        if let Some(phase) = phase {
            self.trace.creates.push(CreateRecord {
                phase,
                creator: inputs.caller(),
                create2: matches!(inputs.scheme(), CreateScheme::Create2 { .. }),
                address: None,
            });
        }
        self.enter(phase);
        None
    }

    fn create_end(&mut self, _context: &mut CTX, inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        if let Some(frame) = self.frames.pop()
            && let Some(phase) = frame.phase
        {
            if is_out_of_gas(outcome.result.result) {
                self.trace.out_of_gas.push((phase, inputs.caller()));
            }
            // Creations never overlap at one depth, so the last unfinished record is this one.
            if let Some(record) = self
                .trace
                .creates
                .iter_mut()
                .rev()
                .find(|r| r.address.is_none() && r.creator == inputs.caller())
            {
                record.address = outcome.address;
            }
        }
        self.pending_gas = None;
        self.pending_ext = None;
    }
}

/// A frame of entity code that ran out of gas (OP-020). A precompile given too little gas is
/// not one: its cost is a function of its input, which leaks nothing of the gas limit.
fn is_out_of_gas(result: InstructionResult) -> bool {
    matches!(
        result,
        InstructionResult::OutOfGas
            | InstructionResult::MemoryOOG
            | InstructionResult::MemoryLimitOOG
            | InstructionResult::InvalidOperandOOG
            | InstructionResult::ReentrancySentryOOG
    )
}

//! Predicts what a validation will read from the chain, so that it can be fetched in one
//! batch before the EVM starts instead of one node round trip per account or slot the EVM
//! meets. Operations with the same factory and paymaster run the same code over storage laid
//! out the same way, differing in the sender: the predictor learns, from each validation, the
//! reads as templates in terms of the sender (`balances[sender]`,
//! `allowance[sender][paymaster]`, the sender's own slot 0, the EntryPoint's nonce of the
//! sender) and instantiates them for the next sender.
//!
//! A wrong prediction costs a wasted read in the batch, once: a read the next operation of the
//! shape does not make is forgotten. A missing one costs the round trip the EVM would have made
//! anyway. Verdicts never depend on it.

use super::state::ChainReads;
use alloy::primitives::{Address, B256, U256, keccak256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// A 32-byte word of a storage key: the sender, a constant, or the keccak of two words (a
/// Solidity mapping entry: `keccak(key || slot)`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Word {
    Sender,
    Constant(B256),
    Mapping(Box<Word>, Box<Word>),
}

impl Word {
    fn value(&self, sender: B256) -> B256 {
        match self {
            Word::Sender => sender,
            Word::Constant(value) => *value,
            Word::Mapping(key, slot) => {
                let mut preimage = [0u8; 64];
                preimage[..32].copy_from_slice(key.value(sender).as_slice());
                preimage[32..].copy_from_slice(slot.value(sender).as_slice());
                keccak256(preimage)
            }
        }
    }

    fn mentions_sender(&self) -> bool {
        match self {
            Word::Sender => true,
            Word::Constant(_) => false,
            Word::Mapping(key, slot) => key.mentions_sender() || slot.mentions_sender(),
        }
    }
}

/// Whose state a read is of.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Holder {
    Sender,
    Contract(Address),
}

impl Holder {
    fn address(&self, sender: Address) -> Address {
        match self {
            Holder::Sender => sender,
            Holder::Contract(address) => *address,
        }
    }
}

/// One read, in terms of the sender: an account, or a slot `word + offset` of a holder (a
/// struct member sits at an offset from its mapping entry).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Template {
    Account(Holder),
    Slot { holder: Holder, word: Word, offset: u8 },
}

/// ERC-7562's range of "associated" slots after a mapping entry; struct members beyond it are
/// not worth tracing back.
const MAX_OFFSET: u64 = 128;
/// How many mappings deep a key is traced back (`allowance[a][b]` is two).
const MAX_DEPTH: usize = 4;
/// Bounds on what is remembered: operation shapes (factory, paymaster) and reads per shape.
const MAX_SHAPES: usize = 1_024;
const MAX_TEMPLATES_PER_SHAPE: usize = 256;

/// One read, for one sender.
enum Read {
    Account(Address),
    Slot(Address, U256),
}

impl Template {
    fn read_of(&self, sender: Address) -> Read {
        match self {
            Template::Account(holder) => Read::Account(holder.address(sender)),
            Template::Slot { holder, word, offset } => {
                let base = U256::from_be_bytes(word.value(sender.into_word()).0);
                Read::Slot(holder.address(sender), base.wrapping_add(U256::from(*offset)))
            }
        }
    }
}

/// What identifies operations that read alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OperationShape {
    /// The operation's factory, when it deploys its account.
    pub factory: Option<Address>,
    /// The operation's paymaster, when it has one.
    pub paymaster: Option<Address>,
}

/// Templates of one shape, each with its standing: raised when a validation makes the read,
/// lowered when it was predicted and not made. A read that only one operation makes (its own
/// storage layout, or an attempt to make every later operation fetch junk) is forgotten at the
/// next operation that does not make it, so a prediction costs at most one wasted read each.
type Known = HashMap<Template, u8>;

/// Standing of a template just learned, and the most it can save up.
const FIRST_STANDING: u8 = 1;
const MAX_STANDING: u8 = 8;

/// Per operation shape, templates of the accounts and slots its validations read, in terms of
/// the sender, so the next operation's reads can be fetched in one batch.
#[derive(Default)]
pub struct ReadPredictor {
    templates: Mutex<HashMap<OperationShape, Known>>,
    /// Shapes whose first operation is being validated now; the sender is dropped when it has
    /// taught its reads (or failed), which wakes the operations waiting on it.
    teachers: Arc<Mutex<HashMap<OperationShape, watch::Receiver<()>>>>,
}

/// Held by the first validation of a shape not learned yet: dropping it (after
/// [`ReadPredictor::learn`], or on any failure) lets the operations of that shape that arrived
/// meanwhile go on, with its reads predicted.
pub struct Lesson {
    shape: OperationShape,
    teachers: Arc<Mutex<HashMap<OperationShape, watch::Receiver<()>>>>,
    _taught: watch::Sender<()>,
}

impl Drop for Lesson {
    fn drop(&mut self) {
        self.teachers.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.shape);
    }
}

impl ReadPredictor {
    /// For an operation of a shape with nothing learned yet: the first one gets the
    /// [`Lesson`] and goes on at once; the others wait for it (at most `patience`) instead of
    /// each discovering the same reads one node round trip at a time, as a burst of a new
    /// shape would. `None` when the shape is known, or after waiting.
    pub async fn lesson(&self, shape: OperationShape, patience: Duration) -> Option<Lesson> {
        if self.templates.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&shape) {
            return None;
        }
        let waiting = {
            let mut teachers = self.teachers.lock().unwrap_or_else(PoisonError::into_inner);
            match teachers.get(&shape) {
                Some(taught) => taught.clone(),
                None => {
                    let (taught, waiting) = watch::channel(());
                    teachers.insert(shape, waiting);
                    return Some(Lesson { shape, teachers: self.teachers.clone(), _taught: taught });
                }
            }
        };
        let mut waiting = waiting;
        // The sender never sends: `changed` returns when the lesson is dropped.
        let _ = tokio::time::timeout(patience, waiting.changed()).await;
        None
    }

    /// What an operation of `shape` from `sender` is expected to read.
    pub fn predict(&self, shape: OperationShape, sender: Address) -> ChainReads {
        let mut reads = ChainReads::default();
        let templates = self.templates.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(known) = templates.get(&shape) else {
            return reads;
        };
        for template in known.keys() {
            match template.read_of(sender) {
                Read::Account(address) => reads.accounts.insert(address),
                Read::Slot(address, slot) => reads.slots.insert((address, slot)),
            };
        }
        reads
    }

    /// Learns what a validation of an operation of `shape` from `sender` read; `mapping_keys`
    /// are the `(key, slot, keccak)` of the 64-byte keccaks its trace saw.
    pub fn learn(
        &self,
        shape: OperationShape,
        sender: Address,
        reads: &ChainReads,
        mapping_keys: &[(B256, B256, U256)],
    ) {
        let preimages: HashMap<U256, (B256, B256)> =
            mapping_keys.iter().map(|(key, slot, hash)| (*hash, (*key, *slot))).collect();
        let deriving = Derivation { sender: sender.into_word(), preimages: &preimages };
        let holder = |address: Address| {
            if address == sender { Holder::Sender } else { Holder::Contract(address) }
        };
        let mut learned: BTreeSet<Template> =
            reads.accounts.iter().map(|a| Template::Account(holder(*a))).collect();
        for &(address, slot) in &reads.slots {
            let (word, offset) = deriving.slot(slot);
            learned.insert(Template::Slot { holder: holder(address), word, offset });
        }
        let mut templates = self.templates.lock().unwrap_or_else(PoisonError::into_inner);
        if templates.len() >= MAX_SHAPES && !templates.contains_key(&shape) {
            // Start over rather than stop learning: the shapes in use come back at once.
            templates.clear();
        }
        let known = templates.entry(shape).or_default();
        known.retain(|template, standing| {
            let made = match template.read_of(sender) {
                Read::Account(address) => reads.accounts.contains(&address),
                Read::Slot(address, slot) => reads.slots.contains(&(address, slot)),
            };
            *standing = if made { (*standing + 1).min(MAX_STANDING) } else { *standing - 1 };
            *standing > 0
        });
        for template in learned {
            if known.len() >= MAX_TEMPLATES_PER_SHAPE {
                break;
            }
            known.entry(template).or_insert(FIRST_STANDING);
        }
    }
}

/// Traces slots back to the sender through the keccaks a validation computed.
struct Derivation<'a> {
    sender: B256,
    preimages: &'a HashMap<U256, (B256, B256)>,
}

impl Derivation<'_> {
    /// `slot` as a word plus an offset: the nearest mapping entry at or below it that the
    /// trace computed, else the slot itself.
    fn slot(&self, slot: U256) -> (Word, u8) {
        let nearest = self
            .preimages
            .keys()
            .filter_map(|hash| {
                slot.checked_sub(*hash).filter(|n| *n < U256::from(MAX_OFFSET)).map(|n| (n, *hash))
            })
            .min();
        match nearest {
            Some((offset, hash)) => {
                let word = self.word(B256::from(hash), MAX_DEPTH);
                // A mapping entry that does not depend on the sender is a constant slot.
                if word.mentions_sender() {
                    return (word, offset.saturating_to());
                }
                (self.word(B256::from(slot), 0), 0)
            }
            None => (self.word(B256::from(slot), 0), 0),
        }
    }

    fn word(&self, value: B256, depth: usize) -> Word {
        if value == self.sender {
            return Word::Sender;
        }
        if depth > 0
            && let Some((key, slot)) = self.preimages.get(&U256::from_be_bytes(value.0))
        {
            return Word::Mapping(
                Box::new(self.word(*key, depth - 1)),
                Box::new(self.word(*slot, depth - 1)),
            );
        }
        Word::Constant(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: B256, slot: U256) -> (B256, B256, U256) {
        let slot = B256::from(slot);
        let mut preimage = [0u8; 64];
        preimage[..32].copy_from_slice(key.as_slice());
        preimage[32..].copy_from_slice(slot.as_slice());
        (key, slot, U256::from_be_bytes(keccak256(preimage).0))
    }

    /// `balances[holder]` at slot 3 and `allowance[holder][spender]` at slot 4, as Solidity
    /// lays them out, with the keccaks their lookup computes.
    fn token_reads(holder: Address, spender: Address) -> (Vec<(B256, B256, U256)>, U256, U256) {
        let balance = entry(holder.into_word(), U256::from(3));
        let inner = entry(holder.into_word(), U256::from(4));
        let allowance = entry(spender.into_word(), inner.2);
        let slots = (balance.2, allowance.2);
        (vec![balance, inner, allowance], slots.0, slots.1)
    }

    #[test]
    fn reads_of_one_sender_predict_the_next_senders_reads() {
        let token = Address::repeat_byte(0x70);
        let paymaster = Address::repeat_byte(0x50);
        let shape = OperationShape { factory: Some(Address::repeat_byte(0xfa)), paymaster: Some(paymaster) };
        let first = Address::repeat_byte(1);
        let (keys, balance, allowance) = token_reads(first, paymaster);
        // A struct member two slots into the balance entry, a constant slot, the sender's own slot 0.
        let reads_of = |sender: Address, balance: U256, allowance: U256| {
            let mut reads = ChainReads::default();
            reads.accounts.extend([sender, token]);
            reads.slots.extend([
                (token, balance),
                (token, balance + U256::from(2)),
                (token, allowance),
                (token, U256::from(9)),
                (sender, U256::ZERO),
            ]);
            reads
        };
        let reads = reads_of(first, balance, allowance);
        let predictor = ReadPredictor::default();
        predictor.learn(shape, first, &reads, &keys);

        let next = Address::repeat_byte(2);
        let (_, next_balance, next_allowance) = token_reads(next, paymaster);
        assert_eq!(predictor.predict(shape, next), reads_of(next, next_balance, next_allowance));
        // Another shape has learned nothing.
        let other = OperationShape { factory: None, paymaster: Some(paymaster) };
        assert!(predictor.predict(other, next).is_empty());
    }

    #[test]
    fn a_mapping_entry_of_another_address_stays_constant() {
        let paymaster = Address::repeat_byte(0x50);
        let shape = OperationShape { factory: None, paymaster: Some(paymaster) };
        let sender = Address::repeat_byte(1);
        let deposit = entry(paymaster.into_word(), U256::ZERO);
        let mut reads = ChainReads::default();
        reads.slots.insert((paymaster, deposit.2));
        let predictor = ReadPredictor::default();
        predictor.learn(shape, sender, &reads, &[deposit]);
        let predicted = predictor.predict(shape, Address::repeat_byte(2));
        assert_eq!(predicted.slots.into_iter().collect::<Vec<_>>(), vec![(paymaster, deposit.2)]);
    }

    #[test]
    fn a_read_one_operation_made_and_the_next_did_not_is_forgotten() {
        let shape = OperationShape { factory: None, paymaster: None };
        let predictor = ReadPredictor::default();
        let (odd, usual, next) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let reads_of = |sender: Address, own: &[u64]| {
            let mut reads = ChainReads::default();
            reads.accounts.insert(sender);
            reads.slots.extend(own.iter().map(|i| (sender, U256::from(*i))));
            reads
        };
        // One operation reads 100 slots of its own storage; the usual ones read slot 0 only.
        let odd_reads: Vec<u64> = (0..100).collect();
        predictor.learn(shape, odd, &reads_of(odd, &odd_reads), &[]);
        assert_eq!(predictor.predict(shape, next).slots.len(), 100);
        predictor.learn(shape, usual, &reads_of(usual, &[0]), &[]);
        assert_eq!(predictor.predict(shape, next), reads_of(next, &[0]));
    }

    #[test]
    fn what_is_remembered_per_shape_is_bounded() {
        let shape = OperationShape { factory: None, paymaster: None };
        let predictor = ReadPredictor::default();
        let sender = Address::repeat_byte(1);
        let mut reads = ChainReads::default();
        reads.slots.extend((0..1_000u64).map(|i| (Address::repeat_byte(9), U256::from(i))));
        predictor.learn(shape, sender, &reads, &[]);
        assert_eq!(predictor.predict(shape, sender).slots.len(), MAX_TEMPLATES_PER_SHAPE);
    }
}

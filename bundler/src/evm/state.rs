//! The node's state as a revm database: accounts, code and storage fetched over JSON-RPC at one
//! pinned block, cached for that block, with code cached by hash for good (code under a hash
//! never changes). An overlay replaces accounts the simulation must see differently (the
//! EntryPoint's code, the simulating caller's balance) without touching the caches.

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes, U64, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::EIP1186AccountProofResponse;
use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{KECCAK_EMPTY, StorageKey, StorageValue};
use revm::state::AccountInfo;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::Handle;

/// A node call the simulation needed failed; the operation's verdict is then unknown.
#[derive(Clone, Debug, thiserror::Error)]
#[error("node state unavailable: {0}")]
pub struct StateError(pub String);

impl DBErrorMarker for StateError {}

/// Code by hash, shared by every block's state: a hash names one code forever.
pub type CodeCache = Arc<Mutex<HashMap<B256, Bytecode>>>;

/// How the state is read from the node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateReads {
    /// One `eth_getProof` per address (balance, nonce, code hash and its slots), code only
    /// when its hash is new: the fewest calls, for nodes that bill per call.
    #[default]
    Proofs,
    /// `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode` per account and
    /// `eth_getStorageAt` per slot: more calls, each cheaper for the node to answer (a proof
    /// walks the state trie), for nodes that do not bill per call or lack `eth_getProof`.
    Fields,
}

/// What one block's state has fetched so far; shared by every validation at that block.
#[derive(Debug, Default)]
pub struct BlockCache {
    accounts: Mutex<HashMap<Address, Option<AccountInfo>>>,
    storage: Mutex<HashMap<(Address, U256), U256>>,
    /// How it fetches what it lacks.
    reads_with: StateReads,
}

impl BlockCache {
    /// Caches a fetched account (and its code, by hash) for the rest of the block.
    fn remember_account(&self, codes: &CodeCache, fetched: FetchedAccount) {
        let FetchedAccount { address, balance, nonce, code_hash, code } = fetched;
        let no_code = has_no_code(code_hash);
        let info = if balance.is_zero() && nonce == 0 && no_code {
            None
        } else if no_code {
            Some(AccountInfo::new(balance, nonce, KECCAK_EMPTY, Bytecode::default()))
        } else {
            let bytecode = match code {
                Some(code) => {
                    let bytecode = bytecode_of(&code);
                    lock(codes).insert(code_hash, bytecode.clone());
                    bytecode
                }
                None => lock(codes).get(&code_hash).cloned().unwrap_or_default(),
            };
            Some(AccountInfo::new(balance, nonce, code_hash, bytecode))
        };
        lock(&self.accounts).insert(address, info);
    }

    /// What of `reads` this block has not fetched yet.
    fn missing(&self, reads: &ChainReads) -> ChainReads {
        let accounts = lock(&self.accounts);
        let storage = lock(&self.storage);
        ChainReads {
            accounts: reads.accounts.iter().filter(|a| !accounts.contains_key(*a)).copied().collect(),
            slots: reads.slots.iter().filter(|s| !storage.contains_key(*s)).copied().collect(),
        }
    }

    /// Fetches what of `reads` is not cached yet in one batch of node calls; returns the
    /// number of calls.
    pub async fn prefetch(
        &self,
        provider: &DynProvider,
        codes: &CodeCache,
        block: u64,
        reads: &ChainReads,
    ) -> Result<u64, StateError> {
        let missing = self.missing(reads);
        if missing.is_empty() {
            return Ok(0);
        }
        let block = BlockId::number(block);
        let fetched = match self.reads_with {
            StateReads::Proofs => fetch_by_proof(provider, codes, block, &missing).await?,
            StateReads::Fields => fetch_by_field(provider, block, &missing).await?,
        };
        let calls = fetched.calls;
        for account in fetched.accounts {
            self.remember_account(codes, account);
        }
        lock(&self.storage).extend(fetched.slots);
        Ok(calls)
    }
}

/// The [`BlockCache`]s of the few newest blocks simulations pinned: new operations are
/// validated on a cached head while the builder validates a bundle on the latest block, and
/// keeping one block only would make each throw away the other's cache.
#[derive(Debug, Default)]
pub struct RecentBlockCaches {
    held: Mutex<VecDeque<(B256, Arc<BlockCache>)>>,
    reads_with: StateReads,
}

/// Blocks whose state stays cached; older ones are dropped first.
const CACHED_BLOCKS: usize = 4;

impl RecentBlockCaches {
    /// Caches whose blocks read the node `reads_with`.
    pub fn new(reads_with: StateReads) -> Self {
        Self { held: Mutex::default(), reads_with }
    }

    /// The cache for block `hash`: a held one, or a fresh one that replaces the oldest.
    pub fn for_block(&self, hash: B256) -> Arc<BlockCache> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, cache)) = held.iter().find(|(cached, _)| *cached == hash) {
            return cache.clone();
        }
        let cache = Arc::new(BlockCache { reads_with: self.reads_with, ..BlockCache::default() });
        if held.len() >= CACHED_BLOCKS {
            held.pop_front();
        }
        held.push_back((hash, cache.clone()));
        cache
    }
}

/// The pinned block a simulation runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedBlock {
    /// The block number.
    pub number: u64,
    /// The block hash: the state caches are keyed by it.
    pub hash: B256,
    /// The block timestamp, in seconds.
    pub timestamp: u64,
    /// The block's base fee, in wei per gas (0 when the chain has none).
    pub base_fee: u64,
    /// The block's gas limit.
    pub gas_limit: u64,
    /// The block's fee recipient (coinbase).
    pub beneficiary: Address,
    /// The block's PREVRANDAO value (the header's mixHash).
    pub prevrandao: B256,
}

impl PinnedBlock {
    /// The node's latest block, as simulations pin it (the node's error as text).
    pub async fn latest(provider: &DynProvider) -> Result<Self, String> {
        let block = provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the node has no latest block".to_owned())?;
        Ok(Self::from_header(&block.header))
    }

    /// The block a node's header describes.
    pub fn from_header(header: &alloy::rpc::types::Header) -> Self {
        Self {
            number: header.number,
            hash: header.hash,
            timestamp: header.timestamp,
            base_fee: header.base_fee_per_gas.unwrap_or_default(),
            gas_limit: header.gas_limit,
            beneficiary: header.beneficiary,
            prevrandao: header.mix_hash,
        }
    }
}

/// An account as the simulation must see it regardless of the chain.
#[derive(Clone, Debug, Default)]
pub struct AccountOverride {
    /// Code that replaces the chain's, when set.
    pub code: Option<Bytes>,
    /// Balance in wei that replaces the chain's, when set.
    pub balance: Option<U256>,
}

/// The revm database of one simulation. Its methods block on the node, so it must only be
/// used from a blocking thread (`spawn_blocking`), never from inside an async task.
pub struct RpcState {
    provider: DynProvider,
    handle: Handle,
    block: PinnedBlock,
    cache: Arc<BlockCache>,
    codes: CodeCache,
    overrides: HashMap<Address, AccountOverride>,
    reads: Mutex<ChainReads>,
    rpc_calls: AtomicU64,
    round_trips: AtomicU64,
}

impl RpcState {
    /// A simulation's state at `block`: reads go through the block's `cache` and the shared code
    /// cache, then to `provider` on `handle`; `overrides` replace accounts as the chain has them.
    pub fn new(
        provider: DynProvider,
        handle: Handle,
        block: PinnedBlock,
        cache: Arc<BlockCache>,
        codes: CodeCache,
        overrides: HashMap<Address, AccountOverride>,
    ) -> Self {
        Self {
            provider,
            handle,
            block,
            cache,
            codes,
            overrides,
            reads: Mutex::default(),
            rpc_calls: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
        }
    }

    /// Node requests this state has made (cache misses only).
    pub fn rpc_calls(&self) -> u64 {
        self.rpc_calls.load(Ordering::Relaxed)
    }

    /// Times the simulation waited on the node (concurrent calls count once).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Blocks on `fut`, counting the wait as one round trip.
    fn wait<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.handle.block_on(fut)
    }

    /// The account as the chain has it, before any overlay.
    fn chain_account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        lock(&self.reads).accounts.insert(address);
        let one = ChainReads { accounts: BTreeSet::from([address]), ..Default::default() };
        self.prefetch(&one)?;
        lock(&self.cache.accounts)
            .get(&address)
            .cloned()
            .ok_or_else(|| StateError(format!("account {address} missing after its fetch")))
    }

    /// Loads what the simulation is expected to read, all at once: one round trip to the node
    /// instead of one each time the EVM meets another account or slot.
    pub fn prefetch(&self, reads: &ChainReads) -> Result<(), StateError> {
        if self.cache.missing(reads).is_empty() {
            return Ok(());
        }
        let calls = self.wait(self.cache.prefetch(&self.provider, &self.codes, self.block.number, reads))?;
        self.rpc_calls.fetch_add(calls, Ordering::Relaxed);
        Ok(())
    }

    /// Every account and slot the simulation read from the chain so far.
    pub fn reads(&self) -> ChainReads {
        lock(&self.reads).clone()
    }

    /// The code hash the chain has at `address` (empty-code hash when there is none); used to
    /// report the code an operation depends on (ERC-7562 COD-010).
    pub fn chain_code_hash(&self, address: Address) -> Result<B256, StateError> {
        Ok(self.chain_account(address)?.map_or(KECCAK_EMPTY, |info| info.code_hash))
    }
}

/// Whether a code hash from the node says "no code" (nodes report an account that does not
/// exist with the zero hash, an empty one with the empty-code hash).
fn has_no_code(code_hash: B256) -> bool {
    code_hash == KECCAK_EMPTY || code_hash == B256::ZERO
}

/// The node's code as revm runs it. Malformed EIP-7702-prefixed code (no chain with EIP-3541
/// can hold it) is kept as plain legacy code rather than letting revm's parser panic.
fn bytecode_of(code: &Bytes) -> Bytecode {
    Bytecode::new_raw_checked(code.clone()).unwrap_or_else(|_| Bytecode::new_legacy(code.clone()))
}

/// An account as the node reports it: its code only when its hash was not cached yet.
struct FetchedAccount {
    address: Address,
    balance: U256,
    nonce: u64,
    code_hash: B256,
    code: Option<Bytes>,
}

/// Accounts and storage slots of the chain at one block: what a simulation read, or is
/// expected to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReads {
    /// Accounts (balance, nonce and code) read.
    pub accounts: BTreeSet<Address>,
    /// Storage slots read, by contract and slot.
    pub slots: BTreeSet<(Address, U256)>,
}

impl ChainReads {
    /// Whether nothing is read.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.slots.is_empty()
    }

    /// Each address read, with whether its account is wanted and the slots of it that are:
    /// what one `eth_getProof` per address fetches.
    fn by_address(&self) -> Vec<AddressReads> {
        let mut by: std::collections::BTreeMap<Address, AddressReads> = Default::default();
        for address in &self.accounts {
            by.entry(*address).or_insert_with(|| AddressReads::new(*address)).account = true;
        }
        for (address, slot) in &self.slots {
            by.entry(*address).or_insert_with(|| AddressReads::new(*address)).slots.push(*slot);
        }
        by.into_values().collect()
    }

    /// Adds the accounts and slots of `other`.
    pub fn extend(&mut self, other: ChainReads) {
        self.accounts.extend(other.accounts);
        self.slots.extend(other.slots);
    }
}

/// What is read of one address: its account, some of its storage, or both.
#[derive(Clone, Debug)]
struct AddressReads {
    address: Address,
    account: bool,
    slots: Vec<U256>,
}

impl AddressReads {
    fn new(address: Address) -> Self {
        Self { address, account: false, slots: Vec::new() }
    }
}

/// Addresses in one JSON-RPC batch: a bundle's worth of operations takes a handful of round
/// trips, and no node refuses it.
const MAX_BATCH_ADDRESSES: usize = 333;

struct FetchedBatch {
    accounts: Vec<FetchedAccount>,
    slots: Vec<((Address, U256), U256)>,
    /// Node calls it took.
    calls: u64,
}

/// Fetches `reads` with one `eth_getProof` per address: its balance, nonce, code hash and
/// every slot asked of it in one call (hosted nodes bill per call, not per batch), in batches
/// of [`MAX_BATCH_ADDRESSES`] sent concurrently; then, in one more batch, the code of accounts
/// whose code hash is not cached yet (code under a hash never changes).
async fn fetch_by_proof(
    provider: &DynProvider,
    codes: &CodeCache,
    block: BlockId,
    reads: &ChainReads,
) -> Result<FetchedBatch, StateError> {
    let all = reads.by_address();
    let mut batches = tokio::task::JoinSet::new();
    for chunk in all.chunks(MAX_BATCH_ADDRESSES) {
        batches.spawn(fetch_proofs(provider.clone(), block, chunk.to_vec()));
    }
    let mut out = FetchedBatch { accounts: Vec::new(), slots: Vec::new(), calls: all.len() as u64 };
    while let Some(joined) = batches.join_next().await {
        let (accounts, slots) = joined.map_err(|e| StateError(e.to_string()))??;
        out.accounts.extend(accounts);
        out.slots.extend(slots);
    }
    let unknown: Vec<usize> = {
        let codes = lock(codes);
        (0..out.accounts.len())
            .filter(|&i| {
                let hash = out.accounts[i].code_hash;
                !has_no_code(hash) && !codes.contains_key(&hash)
            })
            .collect()
    };
    if !unknown.is_empty() {
        let addresses: Vec<Address> = unknown.iter().map(|&i| out.accounts[i].address).collect();
        let fetched = fetch_codes(provider, block, &addresses).await?;
        out.calls += fetched.len() as u64;
        for (i, code) in unknown.into_iter().zip(fetched) {
            out.accounts[i].code = Some(code);
        }
    }
    Ok(out)
}

/// The accounts and slots of one batch of `eth_getProof` calls. Slots of an address whose
/// account was not asked for are kept; its account is not (its code may not be loaded).
async fn fetch_proofs(
    provider: DynProvider,
    block: BlockId,
    reads: Vec<AddressReads>,
) -> Result<(Vec<FetchedAccount>, Vec<((Address, U256), U256)>), StateError> {
    let failed = |e: alloy::transports::TransportError| StateError(e.to_string());
    let client = provider.client();
    let mut batch = alloy::rpc::client::BatchRequest::new(client);
    let mut calls = Vec::with_capacity(reads.len());
    for read in reads {
        let keys: Vec<B256> = read.slots.iter().map(|slot| B256::from(*slot)).collect();
        let call = batch
            .add_call::<_, EIP1186AccountProofResponse>("eth_getProof", &(read.address, keys, block))
            .map_err(failed)?;
        calls.push((read, call));
    }
    batch.send().await.map_err(failed)?;
    let (mut accounts, mut slots) = (Vec::new(), Vec::new());
    for (read, call) in calls {
        let proof = call.await.map_err(failed)?;
        for (slot, stored) in read.slots.iter().zip(&proof.storage_proof) {
            slots.push(((read.address, *slot), stored.value));
        }
        if proof.storage_proof.len() != read.slots.len() {
            return Err(StateError(format!(
                "eth_getProof of {} answered {} slots for {} asked",
                read.address,
                proof.storage_proof.len(),
                read.slots.len()
            )));
        }
        if read.account {
            accounts.push(FetchedAccount {
                address: read.address,
                balance: proof.balance,
                nonce: proof.nonce,
                code_hash: proof.code_hash,
                code: None,
            });
        }
    }
    Ok((accounts, slots))
}

/// Fetches `reads` as [`StateReads::Fields`]: three calls per account and one per slot, in
/// batches of at most [`MAX_BATCH_ADDRESSES`] × 3 calls sent concurrently.
async fn fetch_by_field(
    provider: &DynProvider,
    block: BlockId,
    reads: &ChainReads,
) -> Result<FetchedBatch, StateError> {
    let all: Vec<Read> = reads
        .accounts
        .iter()
        .map(|a| Read::Account(*a))
        .chain(reads.slots.iter().map(|(a, s)| Read::Slot(*a, *s)))
        .collect();
    let calls = reads.accounts.len() as u64 * 3 + reads.slots.len() as u64;
    let mut batches = tokio::task::JoinSet::new();
    for chunk in all.chunks(MAX_BATCH_ADDRESSES) {
        batches.spawn(fetch_fields(provider.clone(), block, chunk.to_vec()));
    }
    let mut out = FetchedBatch { accounts: Vec::new(), slots: Vec::new(), calls };
    while let Some(joined) = batches.join_next().await {
        let (accounts, slots) = joined.map_err(|e| StateError(e.to_string()))??;
        out.accounts.extend(accounts);
        out.slots.extend(slots);
    }
    Ok(out)
}

/// One account or one slot to fetch field by field.
#[derive(Clone, Copy)]
enum Read {
    Account(Address),
    Slot(Address, U256),
}

/// One JSON-RPC batch: balance, nonce and code of each account, and each slot.
async fn fetch_fields(
    provider: DynProvider,
    block: BlockId,
    reads: Vec<Read>,
) -> Result<(Vec<FetchedAccount>, Vec<((Address, U256), U256)>), StateError> {
    let failed = |e: alloy::transports::TransportError| StateError(e.to_string());
    let mut batch = alloy::rpc::client::BatchRequest::new(provider.client());
    let (mut account_calls, mut slot_calls) = (Vec::new(), Vec::new());
    for read in reads {
        match read {
            Read::Account(address) => account_calls.push((
                address,
                batch.add_call::<_, U256>("eth_getBalance", &(address, block)).map_err(failed)?,
                batch.add_call::<_, U64>("eth_getTransactionCount", &(address, block)).map_err(failed)?,
                batch.add_call::<_, Bytes>("eth_getCode", &(address, block)).map_err(failed)?,
            )),
            Read::Slot(address, slot) => slot_calls.push((
                (address, slot),
                batch.add_call::<_, U256>("eth_getStorageAt", &(address, slot, block)).map_err(failed)?,
            )),
        }
    }
    batch.send().await.map_err(failed)?;
    let mut accounts = Vec::with_capacity(account_calls.len());
    for (address, balance, nonce, code) in account_calls {
        let (balance, nonce, code) =
            (balance.await.map_err(failed)?, nonce.await.map_err(failed)?, code.await.map_err(failed)?);
        let code_hash = if code.is_empty() { KECCAK_EMPTY } else { alloy::primitives::keccak256(&code) };
        accounts.push(FetchedAccount {
            address,
            balance,
            nonce: nonce.saturating_to(),
            code_hash,
            code: Some(code),
        });
    }
    let mut slots = Vec::with_capacity(slot_calls.len());
    for (key, value) in slot_calls {
        slots.push((key, value.await.map_err(failed)?));
    }
    Ok((accounts, slots))
}

/// The code of `addresses`, in one batch.
async fn fetch_codes(
    provider: &DynProvider,
    block: BlockId,
    addresses: &[Address],
) -> Result<Vec<Bytes>, StateError> {
    let failed = |e: alloy::transports::TransportError| StateError(e.to_string());
    let mut batch = alloy::rpc::client::BatchRequest::new(provider.client());
    let calls = addresses
        .iter()
        .map(|address| batch.add_call::<_, Bytes>("eth_getCode", &(*address, block)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    batch.send().await.map_err(failed)?;
    let mut codes = Vec::with_capacity(calls.len());
    for call in calls {
        codes.push(call.await.map_err(failed)?);
    }
    Ok(codes)
}

/// A poisoned cache only means another validation panicked mid-insert; the map is still valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DatabaseRef for RpcState {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let chain = self.chain_account(address)?;
        let Some(over) = self.overrides.get(&address) else {
            return Ok(chain);
        };
        let mut info = chain.unwrap_or_default();
        if let Some(balance) = over.balance {
            info.balance = balance;
        }
        if let Some(code) = &over.code {
            let bytecode = bytecode_of(code);
            info.code_hash = bytecode.hash_slow();
            lock(&self.codes).insert(info.code_hash, bytecode.clone());
            info.code = Some(bytecode);
        }
        Ok(Some(info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        // Every hash revm asks for came from `basic_ref`, which cached its code.
        lock(&self.codes)
            .get(&code_hash)
            .cloned()
            .ok_or_else(|| StateError(format!("code {code_hash} was never loaded")))
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, Self::Error> {
        lock(&self.reads).slots.insert((address, index));
        let one = ChainReads { slots: BTreeSet::from([(address, index)]), ..Default::default() };
        self.prefetch(&one)?;
        lock(&self.cache.storage)
            .get(&(address, index))
            .copied()
            .ok_or_else(|| StateError(format!("slot {index} of {address} missing after its fetch")))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        // BLOCKHASH is banned during validation (ERC-7562 OP-011), but the EVM must still
        // answer it when an entity breaks that rule, so the trace can report it.
        if number == self.block.number {
            return Ok(self.block.hash);
        }
        self.rpc_calls.fetch_add(1, Ordering::Relaxed);
        let block = self
            .wait(self.provider.get_block_by_number(number.into()).into_future())
            .map_err(|e| StateError(e.to_string()))?;
        Ok(block.map_or(B256::ZERO, |b| b.header.hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_of_the_newest_blocks_are_kept_and_the_oldest_dropped() {
        let caches = RecentBlockCaches::default();
        let hashes: Vec<B256> = (1..=5u8).map(B256::repeat_byte).collect();
        let first = caches.for_block(hashes[0]);
        let second = caches.for_block(hashes[1]);
        // Alternating between two blocks keeps both caches.
        assert!(Arc::ptr_eq(&first, &caches.for_block(hashes[0])));
        assert!(Arc::ptr_eq(&second, &caches.for_block(hashes[1])));
        for hash in &hashes[2..] {
            caches.for_block(*hash);
        }
        // The fifth block pushed out the first; the newest stays held.
        assert!(!Arc::ptr_eq(&first, &caches.for_block(hashes[0])));
        assert!(Arc::ptr_eq(&caches.for_block(hashes[4]), &caches.for_block(hashes[4])));
    }

    #[test]
    fn malformed_delegation_code_does_not_panic() {
        // EIP-7702's magic with a truncated address: revm's `new_raw` would panic on it.
        let code = Bytes::from_static(&[0xef, 0x01, 0x00, 0x12, 0x34]);
        let bytecode = bytecode_of(&code);
        assert_eq!(bytecode.original_bytes(), code);
        // Well-formed delegation code stays a delegation.
        let mut delegation = vec![0xef, 0x01, 0x00];
        delegation.extend_from_slice(Address::repeat_byte(0xaa).as_slice());
        assert!(bytecode_of(&Bytes::from(delegation)).is_eip7702());
    }
}

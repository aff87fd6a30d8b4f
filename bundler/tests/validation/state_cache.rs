//! The block state cache filled in JSON-RPC batches: what a batch fetched is what the node
//! says, and reading it afterwards costs no node call.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use revm::DatabaseRef;
use std::collections::HashMap;
use tora_bundler::evm::state::{CodeCache, RecentBlockCaches, RpcState, StateReads};
use tora_bundler::evm::{ChainReads, PinnedBlock};
use tora_core::ENTRY_POINT_V07;
use tora_devnet::harness::{Harness, ether};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetch_larger_than_one_batch_fills_the_cache_with_the_nodes_answers() {
    let h = Harness::start().await;
    let funded = Address::repeat_byte(0x5a);
    h.fund(funded, ether(3)).await;
    // Both ways of reading answer the same; proofs take one call per address, fields three
    // per account and one per slot.
    prefetch_fills_the_cache(&h, funded, StateReads::Proofs, 400 + 1).await;
    prefetch_fills_the_cache(&h, funded, StateReads::Fields, 400 * 3 + 30).await;
}

/// Prefetches 400 accounts (`funded`, holding 3 ETH, among them) and 30 slots `reads_with`,
/// in `expected_calls` node calls, then reads them back from the cache alone.
async fn prefetch_fills_the_cache(h: &Harness, funded: Address, reads_with: StateReads, expected_calls: u64) {
    let entry_point = ENTRY_POINT_V07;
    let block = PinnedBlock::latest(&h.deployer).await.unwrap();

    // 400 accounts and 30 slots of one of them: more than one batch either way (as proofs,
    // 400 eth_getProof calls and one eth_getCode for the only code not cached yet).
    let mut reads = ChainReads::default();
    reads.accounts.extend((1..=398u64).map(|i| Address::left_padding_from(&(0x10_000 + i).to_be_bytes())));
    reads.accounts.extend([funded, entry_point]);
    reads.slots.extend((0..30u64).map(|i| (entry_point, U256::from(i))));
    let cache = RecentBlockCaches::new(reads_with).for_block(block.hash);
    let codes = CodeCache::default();
    let calls = cache.prefetch(&h.deployer, &codes, block.number, &reads).await.unwrap();
    assert_eq!(calls, expected_calls, "{reads_with:?}");

    let handle = tokio::runtime::Handle::current();
    let state = RpcState::new(h.deployer.clone(), handle, block, cache.clone(), codes, HashMap::new());
    let (balance, code_hash, slot) = tokio::task::spawn_blocking(move || {
        let funded = state.basic_ref(funded).unwrap().expect("funded account");
        let entry = state.basic_ref(entry_point).unwrap().expect("EntryPoint");
        let slot = state.storage_ref(entry_point, U256::from(2)).unwrap();
        assert_eq!(state.rpc_calls(), 0, "everything came from the cache");
        (funded.balance, entry.code_hash, slot)
    })
    .await
    .unwrap();
    assert_eq!(balance, ether(3));
    let code = h.deployer.get_code_at(entry_point).number(block.number).await.unwrap();
    assert_eq!(code_hash, alloy::primitives::keccak256(&code));
    let expected_slot =
        h.deployer.get_storage_at(entry_point, U256::from(2)).number(block.number).await.unwrap();
    assert_eq!(slot, expected_slot);

    // A second prefetch of the same reads finds them all cached.
    assert_eq!(cache.prefetch(&h.deployer, &CodeCache::default(), block.number, &reads).await.unwrap(), 0);
}

//! Building one bundle on a free signer lane: select, re-validate, simulate `handleOps`, price,
//! sign and send. What happens after the send (waiting, resubmission, cancellation) is in
//! `tracker`; reorgs are in `reorg`.

use super::fees::BundleFees;
use super::lanes::{InFlight, Lane};
use super::{Builder, BuilderError, Settled, hold_back_storage_conflicts, node, select_bundle};
use crate::evm::PinnedBlock;
use crate::pool::{Mempool, PoolOperation, ReputationStatus};
use alloy::eips::BlockId;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Block, TransactionRequest};
use alloy::sol_types::{SolCall, SolInterface};
use std::collections::HashSet;
use tokio::sync::oneshot;
use tora_core::UserOperation;
use tora_core::contracts::EntryPoint;

impl<P: Mempool> Builder<P> {
    /// Builds and sends a bundle on the first free lane; returns where its settlement will be
    /// reported, or `None` when no operation can go.
    pub(super) async fn start_bundle(
        &self,
        block: &Block,
    ) -> Result<Option<oneshot::Receiver<Settled>>, BuilderError> {
        let _one_at_a_time = self.building.lock().await;
        let mut free = None;
        for lane in self.lanes.iter().filter(|lane| self.leases.holds(lane.address)) {
            let guard = lane.in_flight.lock().await;
            if guard.is_none() {
                free = Some((lane, guard));
                break;
            }
        }
        // Checked before any node call: auto mode asks on every tick.
        let Some((lane, mut in_flight)) = free else {
            return Err(BuilderError::AllKeysBusy);
        };
        // An empty pool costs the node nothing.
        if self.pool.best(1).is_empty() {
            return Ok(None);
        }
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        let fees = self.price(base_fee).await?;
        let gas_target = self.settings.max_bundle_gas.min(block.header.gas_limit);
        let candidates: Vec<PoolOperation> = self
            .pool
            .best(self.settings.max_bundle_ops.saturating_mul(4))
            .into_iter()
            .filter(|p| !self.is_submitted(&p.hash) && fees.covered_by(p))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let throttled: HashSet<Address> = candidates
            .iter()
            .flat_map(|p| p.entities().map(|e| e.address))
            .filter(|a| self.pool.reputation_status(*a) == ReputationStatus::Throttled)
            .collect();
        let mut chosen = select_bundle(candidates, gas_target, self.settings.max_bundle_ops, &throttled);
        // Another replica's builder may be bundling some of them right now.
        let claimed = self.pool.claim(&chosen.iter().map(|p| p.hash).collect::<Vec<_>>()).await;
        chosen.retain(|p| claimed.contains(&p.hash));
        let sent = self.build_and_send(block, lane, &mut in_flight, chosen, fees).await;
        // Claimed but not sent (dropped, held back, or the send failed): free for the next.
        let kept: HashSet<B256> = in_flight.iter().flat_map(|f| f.ops.iter().map(|p| p.hash)).collect();
        let unsent: Vec<B256> = claimed.into_iter().filter(|hash| !kept.contains(hash)).collect();
        self.pool.release(&unsent).await;
        sent
    }

    /// The rest of [`Builder::start_bundle`], once the operations are claimed.
    async fn build_and_send(
        &self,
        block: &Block,
        lane: &Lane,
        in_flight: &mut Option<InFlight>,
        mut chosen: Vec<PoolOperation>,
        fees: BundleFees,
    ) -> Result<Option<oneshot::Receiver<Settled>>, BuilderError> {
        if chosen.is_empty() {
            return Ok(None);
        }
        let (mut dropped, touched) =
            self.revalidate(&mut chosen, PinnedBlock::from_header(&block.header)).await;
        let held = hold_back_storage_conflicts(&mut chosen, &touched, &self.pool.senders());
        if !held.is_empty() {
            tracing::debug!(
                ?held,
                "operations using another pending sender's storage wait for a later bundle (STO-041)"
            );
        }
        dropped.extend(self.drop_failing(lane.address, &mut chosen).await?);
        for (hash, reason) in &dropped {
            self.drops.record(*hash, reason.clone());
        }
        if chosen.is_empty() {
            return Ok(None);
        }
        let nonce = lane
            .provider
            .get_transaction_count(lane.address)
            .block_id(BlockId::latest())
            .await
            .map_err(node)?;
        let op_gas = chosen.iter().fold(U256::ZERO, |sum, p| sum.saturating_add(p.gas_limit()));
        let gas = op_gas.saturating_add(U256::from(self.settings.bundle_overhead_gas)).saturating_to::<u64>();
        let calldata = self.handle_ops_call(&chosen, lane.address);
        let request = bundle_request(lane.address, self.entry_point, nonce, gas, calldata.clone(), fees);
        // Building can take a while (every operation is validated again): count the blocks a
        // bundle waits from when it was sent, not from the head it was built on.
        let sent_at_block = lane.provider.get_block_number().await.map_err(node)?.max(block.header.number);
        let hash = *lane.provider.send_transaction(request).await.map_err(node)?.tx_hash();
        tracing::info!(tx = %hash, signer = %lane.address, nonce, ops = chosen.len(), "bundle sent");
        crate::metrics::bundle_sent(chosen.len());
        let (done, settled) = oneshot::channel();
        self.set_in_flight(chosen.iter().map(|p| p.hash));
        *in_flight = Some(InFlight {
            nonce,
            ops: chosen,
            gas,
            calldata,
            fees,
            sent: vec![hash],
            cancel: None,
            last_sent_block: sent_at_block,
            first_sent: std::time::Instant::now(),
            resubmissions: 0,
            dropped,
            done: Some(done),
        });
        Ok(Some(settled))
    }

    /// Simulates `handleOps` until the EntryPoint accepts the whole bundle, removing each
    /// operation it names in `FailedOp` from the bundle and the pool. An operation that still
    /// validates alone failed because of the others in the bundle: the entity at fault is
    /// penalised (ERC-7562 GREP-040).
    async fn drop_failing(
        &self,
        from: Address,
        chosen: &mut Vec<PoolOperation>,
    ) -> Result<Vec<(B256, String)>, BuilderError> {
        let mut dropped = Vec::new();
        while !chosen.is_empty() {
            let Some((index, reason)) = self.simulate(from, chosen).await? else {
                break;
            };
            if index >= chosen.len() {
                return Err(BuilderError::Node(format!("FailedOp names op {index} of {}", chosen.len())));
            }
            let failed = chosen.remove(index);
            tracing::info!(hash = %failed.hash, %reason, "dropped an operation that fails in the bundle");
            self.pool.remove(failed.hash).await;
            // handleOps ran on the node's latest block, which may be newer than the one the
            // bundle was validated again on: an operation that fails its validation alone there
            // met changed state, and nobody is banned for that.
            let latest = PinnedBlock::from_header(&self.latest_block().await?.header);
            if let Err(e) = self.validator.validate_at(&failed.op, latest).await {
                dropped.push((failed.hash, self.failed_second_validation(&failed, &e).await));
                continue;
            }
            if let Some(entity) = at_fault(&failed, &reason) {
                // GREP-040, and GREP-010: the banned entity's other operations go too.
                let purged = self.pool.penalize(entity).await;
                chosen.retain(|p| !purged.contains(&p.hash));
                let why = format!("GREP-010: {entity} was banned for failing a bundle ({reason})");
                dropped.extend(purged.into_iter().map(|hash| (hash, why.clone())));
            }
            dropped.push((failed.hash, reason));
        }
        Ok(dropped)
    }

    /// `handleOps` by `eth_call`: `None` when it succeeds, else the failing operation's index
    /// and the EntryPoint's reason.
    pub(super) async fn simulate(
        &self,
        from: Address,
        ops: &[PoolOperation],
    ) -> Result<Option<(usize, String)>, BuilderError> {
        let request = TransactionRequest::default()
            .with_from(from)
            .with_to(self.entry_point)
            .with_input(self.handle_ops_call(ops, from));
        let Err(err) = self.lanes[0].provider.call(request).await else {
            return Ok(None);
        };
        let data = err.as_error_resp().and_then(|e| e.as_revert_data()).ok_or_else(|| node(&err))?;
        let (index, reason) = match EntryPoint::EntryPointErrors::abi_decode(&data) {
            Ok(EntryPoint::EntryPointErrors::FailedOp(e)) => (e.opIndex, e.reason),
            Ok(EntryPoint::EntryPointErrors::FailedOpWithRevert(e)) => (e.opIndex, e.reason),
            _ => return Err(BuilderError::Node(format!("handleOps simulation reverted: {data}"))),
        };
        Ok(Some((index.saturating_to(), reason)))
    }

    /// `handleOps(ops, beneficiary)`: the signer collects the fees.
    fn handle_ops_call(&self, ops: &[PoolOperation], beneficiary: Address) -> Bytes {
        let packed = ops.iter().map(|p| UserOperation::pack(&p.op)).collect();
        EntryPoint::handleOpsCall { ops: packed, beneficiary }.abi_encode().into()
    }
}

/// The bundle transaction at `nonce` with `fees`; a resubmission differs only in the fees.
pub(super) fn bundle_request(
    from: Address,
    entry_point: Address,
    nonce: u64,
    gas: u64,
    calldata: Bytes,
    fees: BundleFees,
) -> TransactionRequest {
    TransactionRequest::default()
        .with_from(from)
        .with_to(entry_point)
        .with_input(calldata)
        .with_nonce(nonce)
        .with_gas_limit(gas)
        .with_max_fee_per_gas(fees.max_fee_per_gas)
        .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
}

/// The entity ERC-7562 reputation blames for a `FailedOp` reason: the factory for AA1x; for
/// AA2x the account, or its factory when that is staked (EREP-020); for AA3x (validation) and
/// AA5x (postOp) the paymaster, or the account when that is staked (EREP-030); nobody for AA9x,
/// which are the bundle's own faults (its gas, its beneficiary).
fn at_fault(op: &PoolOperation, reason: &str) -> Option<Address> {
    let sender = op.sender.address;
    let factory = op.factory.map(|f| f.address);
    let staked_factory = op.factory.filter(|f| f.staked).map(|f| f.address);
    let paymaster = op.paymaster.map(|p| p.address);
    match reason.get(..3) {
        Some("AA1") => factory.or(Some(sender)),
        Some("AA2") => staked_factory.or(Some(sender)),
        Some("AA3" | "AA5") if op.sender.staked => Some(sender),
        Some("AA3" | "AA5") => paymaster.or(Some(sender)),
        Some("AA9") => None,
        _ => Some(sender),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::{EntityInfo, Wei};

    fn entity(byte: u8) -> EntityInfo {
        EntityInfo {
            address: Address::repeat_byte(byte),
            stake: Wei(U256::ZERO),
            unstake_delay_secs: 0,
            staked: false,
        }
    }

    #[test]
    fn the_entity_at_fault_follows_the_reason_prefix() {
        let op = PoolOperation {
            op: UserOperation::default(),
            hash: B256::ZERO,
            sender: entity(1),
            factory: Some(entity(2)),
            paymaster: Some(entity(3)),
            valid_until: None,
            prefund: Wei(U256::ZERO),
            paymaster_deposit: None,
            code_hashes: Default::default(),
        };
        assert_eq!(at_fault(&op, "AA13 initCode failed or OOG"), Some(Address::repeat_byte(2)));
        assert_eq!(at_fault(&op, "AA31 paymaster deposit too low"), Some(Address::repeat_byte(3)));
        assert_eq!(at_fault(&op, "AA23 reverted"), Some(Address::repeat_byte(1)));
        // EREP-020: a staked factory answers for the account it deploys.
        let mut staked_factory = op.clone();
        staked_factory.factory = Some(EntityInfo { staked: true, ..entity(2) });
        assert_eq!(at_fault(&staked_factory, "AA23 reverted"), Some(Address::repeat_byte(2)));
        // EREP-030: a staked account answers for its paymaster.
        let mut staked_sender = op.clone();
        staked_sender.sender.staked = true;
        assert_eq!(at_fault(&staked_sender, "AA33 reverted"), Some(Address::repeat_byte(1)));
        assert_eq!(at_fault(&op, "AA95 out of gas"), None);
        let bare = PoolOperation { factory: None, paymaster: None, ..op };
        assert_eq!(at_fault(&bare, "AA31 paymaster deposit too low"), Some(Address::repeat_byte(1)));
        assert_eq!(at_fault(&bare, ""), Some(Address::repeat_byte(1)));
    }
}

//! The eth-infinitism `debug_bundler_` methods, for the bundler spec tests and local work.

use super::BundlerRpc;
use crate::pool::Mempool;
use alloy::primitives::{Address, U256};
use serde_json::Value;
use tora_core::RpcError;
use tora_core::contracts::EntryPoint;
use tora_core::rpc_api::debug::{
    ClearMempool, ClearReputation, ClearState, DumpMempool, DumpReputation, GetStakeStatus, SendBundleNow,
    SendBundleNowResult, SetBundlingMode, SetReputation, StakeInfo, StakeStatus,
};
use tora_core::rpc_api::{Acknowledged, Method};
use tora_jsonrpc::{Params, answer};

impl<P: Mempool> BundlerRpc<P> {
    /// The eth-infinitism shape, from `EntryPoint.getDepositInfo`; staked by ERC-7562's rule
    /// with this bundler's minimums.
    async fn stake_status(&self, address: Address) -> Result<StakeStatus, RpcError> {
        let info = EntryPoint::new(self.entry_point, &self.provider)
            .getDepositInfo(address)
            .call()
            .await
            .map_err(|e| RpcError::internal(format!("node: {e}")))?;
        let stake = U256::from(info.stake.to::<u128>());
        let delay = u64::from(info.unstakeDelaySec);
        let rule = self.stake_rule;
        Ok(StakeStatus {
            stake_info: StakeInfo {
                addr: address,
                stake: stake.to_string(),
                unstake_delay_sec: delay.to_string(),
            },
            is_staked: stake >= rule.min_stake.0 && delay >= rule.min_unstake_delay_secs,
        })
    }

    pub(super) async fn debug(&self, method: &str, params: Params) -> Result<Value, RpcError> {
        match method {
            ClearState::NAME => {
                answer::<ClearState, _, _>(params, |()| async {
                    self.pool.clear().await;
                    self.pool.clear_reputation().await;
                    Ok(Acknowledged)
                })
                .await
            }
            ClearMempool::NAME => {
                answer::<ClearMempool, _, _>(params, |()| async {
                    self.pool.clear().await;
                    Ok(Acknowledged)
                })
                .await
            }
            ClearReputation::NAME => {
                answer::<ClearReputation, _, _>(params, |()| async {
                    self.pool.clear_reputation().await;
                    Ok(Acknowledged)
                })
                .await
            }
            DumpMempool::NAME => {
                answer::<DumpMempool, _, _>(params, |(entry_point,)| async move {
                    self.check_entry_point(entry_point)?;
                    Ok(self.pool.dump().into_iter().map(|p| p.op).collect())
                })
                .await
            }
            DumpReputation::NAME => {
                answer::<DumpReputation, _, _>(params, |(entry_point,)| async move {
                    self.check_entry_point(entry_point)?;
                    Ok(self.pool.dump_reputation())
                })
                .await
            }
            SetReputation::NAME => {
                answer::<SetReputation, _, _>(params, |(entries, entry_point)| async move {
                    self.check_entry_point(entry_point)?;
                    self.pool.set_reputation(&entries).await;
                    Ok(Acknowledged)
                })
                .await
            }
            SetBundlingMode::NAME => {
                answer::<SetBundlingMode, _, _>(params, |(mode,)| async move {
                    self.builder.set_mode(mode);
                    Ok(Acknowledged)
                })
                .await
            }
            SendBundleNow::NAME => {
                answer::<SendBundleNow, _, _>(params, |()| async {
                    let outcome = self
                        .builder
                        .send_bundle_now()
                        .await
                        .map_err(|e| RpcError::internal(e.to_string()))?;
                    Ok(outcome.map_or(SendBundleNowResult::Nothing(Acknowledged), |o| {
                        SendBundleNowResult::Sent {
                            transaction_hash: o.transaction_hash,
                            user_op_hashes: o.included,
                        }
                    }))
                })
                .await
            }
            GetStakeStatus::NAME => {
                answer::<GetStakeStatus, _, _>(params, |(address, entry_point)| async move {
                    self.check_entry_point(entry_point)?;
                    self.stake_status(address).await
                })
                .await
            }
            _ => Err(super::method_not_found(method)),
        }
    }
}

//! The eth-infinitism `debug_bundler_` methods, for the bundler spec tests and local work.

use super::BundlerRpc;
use crate::builder::BundlingMode;
use crate::pool::{Mempool, ReputationEntry};
use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use tora_core::RpcError;
use tora_core::contracts::EntryPoint;
use tora_jsonrpc::Params;

impl<P: Mempool> BundlerRpc<P> {
    /// The eth-infinitism shape: `{stakeInfo: {addr, stake, unstakeDelaySec}, isStaked}`, from
    /// `EntryPoint.getDepositInfo`; staked by ERC-7562's rule with this bundler's minimums.
    async fn stake_status(&self, address: Address) -> Result<Value, RpcError> {
        let info = EntryPoint::new(self.entry_point, &self.provider)
            .getDepositInfo(address)
            .call()
            .await
            .map_err(|e| RpcError::internal(format!("node: {e}")))?;
        let stake = U256::from(info.stake.to::<u128>());
        let delay = u64::from(info.unstakeDelaySec);
        let rule = self.stake_rule;
        // Decimal strings, as the eth-infinitism bundler answers (a stake need not fit a JSON
        // number).
        Ok(json!({
            "stakeInfo": { "addr": address, "stake": stake.to_string(), "unstakeDelaySec": delay.to_string() },
            "isStaked": stake >= rule.min_stake.0 && delay >= rule.min_unstake_delay_secs,
        }))
    }

    pub(super) async fn debug(&self, method: &str, params: Params) -> Result<Value, RpcError> {
        let ok = || Ok(json!("ok"));
        match method {
            "debug_bundler_clearState" => {
                params.none()?;
                self.pool.clear();
                self.pool.clear_reputation();
                ok()
            }
            "debug_bundler_clearMempool" => {
                params.none()?;
                self.pool.clear();
                ok()
            }
            "debug_bundler_clearReputation" => {
                params.none()?;
                self.pool.clear_reputation();
                ok()
            }
            "debug_bundler_dumpMempool" => {
                self.check_entry_point(params.positional::<Option<Address>>(1)?)?;
                Ok(json!(self.pool.dump().into_iter().map(|p| p.op).collect::<Vec<_>>()))
            }
            "debug_bundler_dumpReputation" => {
                self.check_entry_point(params.positional::<Option<Address>>(1)?)?;
                Ok(json!(self.pool.dump_reputation()))
            }
            "debug_bundler_setReputation" => {
                let (entries, entry_point): (Vec<ReputationEntry>, Option<Address>) = params.positional(2)?;
                self.check_entry_point(entry_point)?;
                self.pool.set_reputation(&entries);
                ok()
            }
            "debug_bundler_setBundlingMode" => {
                let mode: BundlingMode = params.positional(1)?;
                self.builder.set_mode(mode);
                ok()
            }
            "debug_bundler_sendBundleNow" => {
                params.none()?;
                let outcome =
                    self.builder.send_bundle_now().await.map_err(|e| RpcError::internal(e.to_string()))?;
                // The eth-infinitism shape: the bundle sent, or "ok" when there was none to send.
                Ok(outcome.map_or_else(
                    || json!("ok"),
                    |o| json!({ "transactionHash": o.transaction_hash, "userOpHashes": o.included }),
                ))
            }
            "debug_bundler_getStakeStatus" => {
                let (address, entry_point): (Address, Option<Address>) = params.positional(2)?;
                self.check_entry_point(entry_point)?;
                self.stake_status(address).await
            }
            _ => Err(super::method_not_found(method)),
        }
    }
}

//! The eth-infinitism `debug_bundler_` methods, for the bundler spec tests and local work.

use super::BundlerRpc;
use crate::builder::BundlingMode;
use crate::pool::{Mempool, ReputationEntry};
use alloy::primitives::Address;
use serde_json::{Value, json};
use tora_core::RpcError;
use tora_jsonrpc::Params;

impl<P: Mempool> BundlerRpc<P> {
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
                Ok(json!(outcome.map(|o| o.transaction_hash)))
            }
            _ => Err(super::method_not_found(method)),
        }
    }
}

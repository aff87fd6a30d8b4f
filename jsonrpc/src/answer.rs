//! Serving one typed method: decode its params (or -32602), run the handler, encode its output.

use crate::Params;
use serde_json::Value;
use std::future::Future;
use tora_core::RpcError;
use tora_core::rpc_api::Method;

/// Decodes `params` as `M`'s, runs `handler` on them and encodes what it answers.
pub async fn answer<M, F, Fut>(params: Params, handler: F) -> Result<Value, RpcError>
where
    M: Method,
    F: FnOnce(M::Params) -> Fut,
    Fut: Future<Output = Result<M::Output, RpcError>>,
{
    encode::<M>(handler(params.of::<M>()?).await?)
}

/// `M`'s output as the JSON result, for a handler that decodes its params itself (to word a
/// refusal its own way).
pub fn encode<M: Method>(output: M::Output) -> Result<Value, RpcError> {
    serde_json::to_value(output).map_err(|e| RpcError::internal(format!("encoding {}: {e}", M::NAME)))
}

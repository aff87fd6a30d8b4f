//! What paid calls ran and were charged, as Prometheus counters per model: tokens, and TORA in
//! micro-TORA. Recorded where a call is settled, so only charges that were recorded count.

use tora_core::money::ToraUnits;
use tora_core::sponsorship::MicroTora;

/// A paid call of `model` ran `tokens` tokens and was charged `price`. The counter is in
/// micro-TORA rounded down (a u64 of base units would overflow at 18 TORA); the exact amounts
/// are the ledger's.
pub(crate) fn charged(model: &'static str, tokens: u64, price: ToraUnits) {
    metrics::counter!("gateway_tokens_total", "model" => model).increment(tokens);
    let micro = MicroTora::from_tora_floor(price);
    metrics::counter!("gateway_charged_micro_tora_total", "model" => model).increment(micro.0);
}

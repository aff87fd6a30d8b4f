//! The paymaster's own Prometheus figures (the JSON-RPC layer records `rpc_*`), in micro-TORA
//! per budget: a policy id, or token mode's `~token-mode`. Budget ids come from the admin API,
//! so the label set stays as small as the policy list.

use tora_core::sponsorship::MicroTora;

/// A quote added `amount` to the holds against `budget` (0 for another quote of an operation
/// already held).
pub(crate) fn reserved(budget: &str, amount: MicroTora) {
    metrics::counter!("paymaster_reserved_micro_tora_total", "budget" => budget.to_owned())
        .increment(amount.0);
}

/// An operation's charge, as GasChargedInToken logged it, settled against `budget`.
pub(crate) fn settled(budget: String, amount: MicroTora) {
    metrics::counter!("paymaster_settled_micro_tora_total", "budget" => budget).increment(amount.0);
}

//! What one paymaster deployment is configured with.

use crate::pricing::Markup;
use alloy::primitives::Address;
use std::time::Duration;
use tora_core::money::ToraUnits;

#[derive(Clone, Debug)]
pub struct PaymasterConfig {
    // Where it runs
    pub chain_id: u64,
    pub entry_point: Address,
    /// The ToraPaymaster contract.
    pub paymaster: Address,
    /// The TORA token it accepts.
    pub token: Address,

    // Pricing
    pub markup: Markup,
    /// How long a signed quote stays valid (`validUntil − now`).
    pub quote_validity: Duration,
    /// The most TORA one operation may be quoted: a bound on any pricing mistake.
    pub max_token_cost_per_op: ToraUnits,

    // Gas the ToraPaymaster needs, returned to wallets and bound by the signature
    pub verification_gas: u64,
    /// Validation applying an EIP-2612 permit (ERC-1271 check on the wallet) costs more.
    pub verification_gas_with_permit: u64,
    pub post_op_gas: u64,
}

impl PaymasterConfig {
    /// Gas limits measured for ToraPaymaster on the devnet, with headroom.
    pub const DEFAULT_VERIFICATION_GAS: u64 = 120_000;
    pub const DEFAULT_VERIFICATION_GAS_WITH_PERMIT: u64 = 200_000;
    pub const DEFAULT_POST_OP_GAS: u64 = 60_000;
}

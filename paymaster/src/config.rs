//! What one paymaster deployment is configured with.

use crate::gas_bounds::GasBounds;
use crate::pricing::Markup;
use alloy::primitives::Address;
use std::time::Duration;
use tora_core::money::ToraUnits;
use tora_core::sponsorship::{Budget, MicroTora, ResetInterval};

/// One deployment's quoting settings: its chain and contracts, pricing, and bounds on what is signed.
#[derive(Clone, Debug)]
pub struct PaymasterConfig {
    // Where it runs
    /// The chain id quotes are signed for; requests for another chain are refused.
    pub chain_id: u64,
    /// The EntryPoint v0.7 served; requests naming another entry point are refused.
    pub entry_point: Address,
    /// The ToraPaymaster contract.
    pub paymaster: Address,
    /// The TORA token it accepts.
    pub token: Address,
    /// The GasPriceOracle predeploy on OP Stack chains, for the L1 part of preVerificationGas.
    pub gas_price_oracle: Option<Address>,

    // Pricing
    /// The margin added to the oracle rate.
    pub markup: Markup,
    /// How long a signed quote stays valid (`validUntil − now`).
    pub quote_validity: Duration,
    /// The most TORA one operation may be quoted: a bound on any pricing mistake.
    pub max_token_cost_per_op: ToraUnits,

    // Bounds on what is signed
    /// Caps on the gas fields and fees a quote signs.
    pub gas_bounds: GasBounds,
    /// How much TORA token mode exchanges for the paymaster's deposit, per sender and in all.
    pub token_limits: TokenLimits,

    // Gas the ToraPaymaster needs, returned to wallets and bound by the signature
    /// paymasterVerificationGasLimit set on operations without a permit.
    pub verification_gas: u64,
    /// Validation applying an EIP-2612 permit (ERC-1271 check on the wallet) costs more.
    pub verification_gas_with_permit: u64,
    /// paymasterPostOpGasLimit set on every quoted operation.
    pub post_op_gas: u64,
}

impl PaymasterConfig {
    /// Gas limits measured for ToraPaymaster on the devnet, with headroom.
    pub const DEFAULT_VERIFICATION_GAS: u64 = 120_000;
    /// Verification gas when a permit is applied, measured the same way.
    pub const DEFAULT_VERIFICATION_GAS_WITH_PERMIT: u64 = 200_000;
    /// PostOp gas, measured the same way.
    pub const DEFAULT_POST_OP_GAS: u64 = 60_000;
}

/// Token mode's limits, counted in the sponsorship store like a policy's budgets: each quote
/// reserves its maximum, settlement replaces it by the charge. They bound how much of the
/// deposit users can take at a quoted rate before the price is read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLimits {
    /// The most micro-TORA one sender may have reserved or charged per period; `None`: no limit.
    pub per_sender: Option<MicroTora>,
    /// The most micro-TORA all senders together may have reserved or charged per period;
    /// `None`: no limit.
    pub global: Option<MicroTora>,
    /// When the counters start again.
    pub reset: ResetInterval,
}

impl TokenLimits {
    /// The id the token mode's counters are kept under: not a valid policy id (admin ids are
    /// letters, digits, `-` and `_`), so no policy can share them.
    pub const BUDGET_ID: &str = "~token-mode";

    /// No limits: token-mode quotes reserve nothing.
    pub fn none() -> Self {
        Self { per_sender: None, global: None, reset: ResetInterval::Never }
    }

    /// These limits as a sponsorship [`Budget`], for the store's reserve check.
    pub fn budget(&self) -> Budget {
        Budget { global: self.global, per_user: self.per_sender, per_op: None, max_ops: None }
    }

    /// Whether neither limit is set, so token-mode quotes need no reservation.
    pub fn is_unlimited(&self) -> bool {
        self.per_sender.is_none() && self.global.is_none()
    }
}

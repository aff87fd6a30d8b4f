//! Quotes: how much TORA an operation may cost at the current rate, the signed
//! `paymasterData` that lets ToraPaymaster charge it, and same-length stub data for estimation.

use crate::config::PaymasterConfig;
use crate::signer_key::SignerKey;
use alloy::primitives::{Address, Bytes, U128, U256};
use std::time::{SystemTime, UNIX_EPOCH};
use tora_core::UserOperation;
use tora_core::money::{ExchangeRate, ToraUnits, Wei};
use tora_core::paymaster_quote::{PaymasterData, Permit, Quote, QuoteMode, sign_quote};
use tora_core::price::{PriceError, PriceSource};

/// Who pays, as the wallet's ERC-7677 `context` asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payer {
    /// The sender pays in TORA, from an allowance or from the permit it signed.
    Sender { permit: Option<Permit>, permit_value: Option<U256> },
    /// A dapp's deposit in the paymaster pays.
    Sponsor { sponsor: Address },
}

impl Payer {
    fn has_permit(&self) -> bool {
        matches!(self, Payer::Sender { permit: Some(_), .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error(transparent)]
    Price(#[from] PriceError),
    #[error("operation could cost {cost}, over this paymaster's limit of {limit} per operation")]
    OverLimit { cost: ToraUnits, limit: ToraUnits },
    #[error(
        "the permit allows {allowed} but the operation may cost up to {cost}: sign a permit for at least that"
    )]
    PermitTooSmall { allowed: ToraUnits, cost: ToraUnits },
    #[error("cost overflows: the operation's gas fields are absurd")]
    Overflow,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The figures a wallet sees before it signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Costs {
    pub rate: ExchangeRate,
    /// Exactly what ToraPaymaster pre-charges: `ceil(maxCost × rate)`.
    pub max_token_cost: ToraUnits,
}

pub struct Quoter<P> {
    pub config: PaymasterConfig,
    price: P,
    signer: SignerKey,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<P: PriceSource> Quoter<P> {
    pub fn new(config: PaymasterConfig, price: P, signer: SignerKey) -> Self {
        Self { config, price, signer }
    }

    /// Points `op` at the paymaster with the gas limits the quote will bind.
    pub fn attach_paymaster(&self, op: &mut UserOperation, payer: &Payer) {
        let verification = if payer.has_permit() {
            self.config.verification_gas_with_permit
        } else {
            self.config.verification_gas
        };
        op.paymaster = Some(self.config.paymaster);
        op.paymaster_verification_gas_limit = Some(U128::from(verification));
        op.paymaster_post_op_gas_limit = Some(U128::from(self.config.post_op_gas));
    }

    /// The marked-up rate and the maximum TORA `op` (paymaster fields set) can be charged.
    pub async fn costs(&self, op: &UserOperation) -> Result<Costs, QuoteError> {
        let rate = self.config.markup.apply(self.price.price().await?.rate);
        let max_token_cost = rate.tora_for(Wei(op.max_cost_wei())).ok_or(QuoteError::Overflow)?;
        let limit = self.config.max_token_cost_per_op;
        if max_token_cost > limit {
            return Err(QuoteError::OverLimit { cost: max_token_cost, limit });
        }
        Ok(Costs { rate, max_token_cost })
    }

    /// Signs a quote for `op` and returns the final `paymasterData`; `op`'s paymaster fields
    /// are set here, its gas fields must be final (the signature binds them).
    pub async fn paymaster_data(
        &self,
        op: &mut UserOperation,
        payer: &Payer,
    ) -> Result<(Quote, Bytes), QuoteError> {
        self.attach_paymaster(op, payer);
        let costs = self.costs(op).await?;
        let (mode, payer_address, permit, max_token_cost) = match payer {
            Payer::Sender { permit, permit_value } => {
                // With a permit the wallet consented to its value: that is the quote's cap.
                let cap = permit_value.map_or(costs.max_token_cost, ToraUnits);
                if cap < costs.max_token_cost {
                    return Err(QuoteError::PermitTooSmall { allowed: cap, cost: costs.max_token_cost });
                }
                (QuoteMode::Token, self.config.token, permit.clone(), cap)
            }
            Payer::Sponsor { sponsor } => (QuoteMode::Sponsor, *sponsor, None, costs.max_token_cost),
        };
        let quote = Quote {
            mode,
            valid_until: unix_now() + self.config.quote_validity.as_secs(),
            valid_after: 0,
            payer: payer_address,
            exchange_rate: costs.rate.0,
            max_token_cost: max_token_cost.0,
        };
        let signature =
            sign_quote(self.signer.signer(), op, &quote, self.config.chain_id, self.config.paymaster)
                .map_err(|e| QuoteError::Signing(e.to_string()))?;
        let data = PaymasterData { quote: quote.clone(), signature, permit }.encode();
        Ok((quote, data))
    }

    /// Stub `paymasterData` for gas estimation: the final data's length, no more zero bytes
    /// (so calldata-based preVerificationGas is not underestimated), a mode the contract
    /// parses, and a signature that fails verification without reverting.
    pub fn stub_data(&self, payer: &Payer) -> Bytes {
        let mode = match payer {
            Payer::Sender { .. } => QuoteMode::Token,
            Payer::Sponsor { .. } => QuoteMode::Sponsor,
        };
        let filler = Quote {
            mode,
            valid_until: 0xffff_ffff_ffff,
            valid_after: 0xffff_ffff_ffff,
            payer: Address::repeat_byte(0xff),
            exchange_rate: U256::MAX,
            max_token_cost: U256::MAX,
        };
        let permit = payer.has_permit().then_some(Permit { deadline: U256::MAX, signature: [0xff; 65] });
        PaymasterData { quote: filler, signature: [0xff; 65], permit }.encode()
    }
}

//! Quotes: how much TORA an operation may cost at the current rate, the signed
//! `paymasterData` that lets ToraPaymaster charge it, and same-length stub data for estimation.

use crate::config::PaymasterConfig;
use crate::gas_bounds::{BoundError, ChainGas};
use crate::signer_key::SignerKey;
use alloy::primitives::{Address, Bytes, U128, U256};
use tora_core::UserOperation;
use tora_core::clock::unix_now;
use tora_core::money::{ExchangeRate, ToraUnits, Wei};
use tora_core::paymaster_quote::{PaymasterData, Permit, Quote, QuoteMode, sign_quote};
use tora_core::price::{PriceError, PriceSource};

/// Who pays, as the wallet's ERC-7677 `context` asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payer {
    /// The sender pays in TORA, from an allowance or from the permit it signed.
    Sender {
        /// An EIP-2612 permit ToraPaymaster applies during validation, when the wallet signed one.
        permit: Option<Permit>,
        /// The permit's value in TORA base units, which becomes the quote's maximum charge.
        permit_value: Option<U256>,
    },
    /// A dapp's deposit in the paymaster pays.
    Sponsor {
        /// The sponsor whose deposit pays, as the policy names it.
        sponsor: Address,
    },
}

impl Payer {
    fn has_permit(&self) -> bool {
        matches!(self, Payer::Sender { permit: Some(_), .. })
    }
}

/// Why an operation got no quote.
#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    /// The oracle price could not be read or was refused.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// The operation could cost more TORA than the per-operation limit.
    #[error("operation could cost {cost}, over this paymaster's limit of {limit} per operation")]
    OverLimit {
        /// The operation's maximum cost, in TORA base units.
        cost: ToraUnits,
        /// The paymaster's limit per operation, in TORA base units.
        limit: ToraUnits,
    },
    /// The signed permit's value is below the operation's maximum cost.
    #[error(
        "the permit allows {allowed} but the operation may cost up to {cost}: sign a permit for at least that"
    )]
    PermitTooSmall {
        /// The permit's value, in TORA base units.
        allowed: ToraUnits,
        /// The operation's maximum cost, in TORA base units.
        cost: ToraUnits,
    },
    /// A fee or gas field is outside the paymaster's bounds.
    #[error(transparent)]
    Bounds(#[from] BoundError),
    /// The maximum cost overflows 256 bits.
    #[error("cost overflows: the operation's gas fields are absurd")]
    Overflow,
    /// Signing the quote failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The figures a wallet sees before it signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Costs {
    /// The marked-up rate, in TORA base units per 1e18 wei.
    pub rate: ExchangeRate,
    /// Exactly what ToraPaymaster pre-charges: `ceil(maxCost × rate)`.
    pub max_token_cost: ToraUnits,
}

/// Prices operations in TORA and signs their quotes with the paymaster's key.
pub struct Quoter<P> {
    /// The deployment's settings quotes are made under.
    pub config: PaymasterConfig,
    price: P,
    signer: SignerKey,
}

impl<P: PriceSource> Quoter<P> {
    /// A quoter for `config` that prices from `price` and signs with `signer`.
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
    /// are set here, its gas fields must be final (the signature binds them) and within the
    /// bounds for what `chain` charges now.
    pub async fn paymaster_data(
        &self,
        op: &mut UserOperation,
        payer: &Payer,
        chain: &ChainGas,
    ) -> Result<(Quote, Bytes), QuoteError> {
        self.attach_paymaster(op, payer);
        // The stub has the final data's length, which is what preVerificationGas prices.
        let shaped = UserOperation { paymaster_data: Some(self.stub_data(payer)), ..op.clone() };
        self.config.gas_bounds.check(&shaped, chain)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Markup;
    use crate::pricing::feed::rate_from_answer;
    use alloy::primitives::{I256, U128};
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use std::time::Duration;
    use tora_core::money::ONE_COIN;
    use tora_core::price::PricePoint;

    /// A feed answer (native coin per TORA) at some number of decimals, as the oracle would give.
    struct Feed {
        answer: i128,
        decimals: u8,
    }

    impl PriceSource for Feed {
        async fn price(&self) -> Result<PricePoint, PriceError> {
            let rate = rate_from_answer(I256::try_from(self.answer).unwrap(), self.decimals)?;
            Ok(PricePoint { rate, updated_at: unix_now() })
        }
    }

    fn quoter(feed: Feed, markup: &str) -> Quoter<Feed> {
        let config = PaymasterConfig {
            chain_id: 31337,
            entry_point: tora_core::ENTRY_POINT_V07,
            paymaster: Address::repeat_byte(0x0a),
            token: Address::repeat_byte(0x0b),
            gas_price_oracle: None,
            markup: Markup::new(Decimal::from_str(markup).unwrap()).unwrap(),
            quote_validity: Duration::from_secs(600),
            max_token_cost_per_op: ToraUnits(U256::from(1_000u64) * U256::from(ONE_COIN)),
            gas_bounds: crate::gas_bounds::GasBounds {
                max_priority_fee_per_gas: u128::MAX,
                max_call_gas: u64::MAX,
                max_verification_gas: u64::MAX,
                pre_verification_gas_margin_percent: 1_000_000,
                ..Default::default()
            },
            token_limits: crate::config::TokenLimits::none(),
            verification_gas: 100_000,
            verification_gas_with_permit: 150_000,
            post_op_gas: 50_000,
        };
        let key = SignerKey::from_hex("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
            .unwrap();
        Quoter::new(config, feed, key)
    }

    fn op(call_gas: u64, verification_gas: u64, pvg: u64, max_fee: u64) -> UserOperation {
        UserOperation {
            sender: Address::repeat_byte(0x5e),
            call_gas_limit: U128::from(call_gas),
            verification_gas_limit: U128::from(verification_gas),
            pre_verification_gas: U256::from(pvg),
            max_fee_per_gas: U128::from(max_fee),
            max_priority_fee_per_gas: U128::from(1u64),
            ..Default::default()
        }
    }

    /// Exact TORA for a table of gas and price inputs; each figure worked out by hand:
    /// maxCost = (call + verification + pvg + paymaster 100k + postOp 50k) × maxFee,
    /// rate = ceil(1e18 × 10^decimals / answer) then ceil(× (1 + markup)),
    /// TORA = ceil(maxCost × rate / 1e18).
    #[tokio::test]
    async fn max_token_cost_is_exact_for_a_table_of_inputs() {
        let sender = Payer::Sender { permit: None, permit_value: None };
        let cases: [(Feed, &str, UserOperation, u128, u128); 5] = [
            // 0.0002 BNB per TORA (18 decimals), 5%: rate 5,250 TORA/BNB. 400k gas × 1 gwei.
            (
                Feed { answer: 200_000_000_000_000, decimals: 18 },
                "0.05",
                op(100_000, 100_000, 50_000, 1_000_000_000),
                5_250 * ONE_COIN,
                400_000 * 1_000_000_000 * 5_250,
            ),
            // The same price from an 8-decimal feed gives the same figures.
            (
                Feed { answer: 20_000, decimals: 8 },
                "0.05",
                op(100_000, 100_000, 50_000, 1_000_000_000),
                5_250 * ONE_COIN,
                400_000 * 1_000_000_000 * 5_250,
            ),
            // 3 BNB per TORA (8 decimals), no markup: rate ceil(1e18/3) = 333...334; 400k × 7 wei
            // = 2,800,000 wei -> 2,800,000 × 333333333333333334 / 1e18 = 933,333.33... -> 933,334.
            (
                Feed { answer: 300_000_000, decimals: 8 },
                "0",
                op(100_000, 100_000, 50_000, 7),
                333_333_333_333_333_334,
                933_334,
            ),
            // The same with a 0.1% markup: 333333333333333334 × 1.001 = 333666666666666667.334, rounded
            // up to ...668; 2,800,000 wei of gas -> 934,266.67 -> 934,267.
            (
                Feed { answer: 300_000_000, decimals: 8 },
                "0.001",
                op(100_000, 100_000, 50_000, 7),
                333_666_666_666_666_668,
                934_267,
            ),
            // An exact division stays exact: 1 TORA = 1 BNB, 1 wei of gas price, 1 gas each.
            (Feed { answer: 100_000_000, decimals: 8 }, "0", op(1, 1, 1, 1), ONE_COIN, 150_003),
        ];
        for (i, (feed, markup, mut op, rate, tora)) in cases.into_iter().enumerate() {
            let quoter = quoter(feed, markup);
            quoter.attach_paymaster(&mut op, &sender);
            let costs = quoter.costs(&op).await.unwrap();
            assert_eq!(costs.rate.0, U256::from(rate), "case {i}: rate");
            assert_eq!(costs.max_token_cost.0, U256::from(tora), "case {i}: TORA");
        }
    }

    #[tokio::test]
    async fn operations_over_the_per_op_cap_are_refused() {
        let quoter = quoter(Feed { answer: 1, decimals: 18 }, "0");
        let mut op = op(1_000_000, 1_000_000, 1_000_000, 1_000_000_000_000);
        quoter.attach_paymaster(&mut op, &Payer::Sender { permit: None, permit_value: None });
        assert!(matches!(quoter.costs(&op).await, Err(QuoteError::OverLimit { .. })));
    }

    #[tokio::test]
    async fn stub_data_has_the_final_length_and_no_more_zero_bytes() {
        let quoter = quoter(Feed { answer: 200_000_000_000_000, decimals: 18 }, "0.05");
        let zeros = |b: &[u8]| b.iter().filter(|x| **x == 0).count();
        for payer in [
            Payer::Sender { permit: None, permit_value: None },
            Payer::Sender {
                permit: Some(Permit { deadline: U256::MAX, signature: [1; 65] }),
                permit_value: Some(U256::MAX),
            },
            Payer::Sponsor { sponsor: Address::repeat_byte(0xd0) },
        ] {
            let mut op = op(100_000, 100_000, 50_000, 1_000_000_000);
            let stub = quoter.stub_data(&payer);
            let chain = ChainGas { base_fee: 1_000_000_000, l1: None };
            let (_, data) = quoter.paymaster_data(&mut op, &payer, &chain).await.unwrap();
            assert_eq!(stub.len(), data.len(), "{payer:?}");
            assert!(zeros(&stub) <= zeros(&data), "{payer:?}");
        }
    }
}

//! The ToraPaymaster's `paymasterData`: a quote the paymaster service signs and the contract
//! verifies (`ToraPaymaster.getHash`), plus an optional EIP-2612 permit so that a new wallet
//! pays its first operation in TORA without a prior `approve`.
//!
//! Layout after the 52-byte `paymasterAndData` prefix (fixed offsets, so stub data for gas
//! estimation has exactly the final length):
//! `mode(1) validUntil(6) validAfter(6) payer(20) exchangeRate(32) maxTokenCost(32) signature(65)`
//! and, in token mode only, `permitDeadline(32) permitSignature(65)`.

use crate::money::{ExchangeRate, Wei};
use crate::user_operation::{UserOperation, pack_u128_pair};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::{Signature, SignerSync};
use alloy::sol_types::SolValue;

/// Length of `paymasterData` without a permit.
pub const QUOTE_DATA_LEN: usize = 162;
/// Length of `paymasterData` with a permit (token mode only).
pub const QUOTE_WITH_PERMIT_LEN: usize = QUOTE_DATA_LEN + 32 + 65;
/// `exchangeRate` is TORA base units per this many wei (1 native coin).
pub const EXCHANGE_RATE_SCALE: u128 = crate::money::ONE_COIN;

/// Who pays the operation's gas in TORA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum QuoteMode {
    /// The sender pays from its own TORA; `payer` is the token address.
    Token = 0,
    /// A dapp pays from TORA it deposited in the paymaster; `payer` is the sponsor.
    Sponsor = 1,
}

/// The signed terms: ToraPaymaster's `Quote` struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Whether the sender or a sponsor pays.
    pub mode: QuoteMode,
    /// Unix seconds after which the quote, and the operation it signs, is no longer valid
    /// (48 bits; the EntryPoint enforces it).
    pub valid_until: u64,
    /// Unix seconds before which the quote is not yet valid (48 bits).
    pub valid_after: u64,
    /// The TORA token in token mode, the sponsor in sponsor mode (see [`QuoteMode`]).
    pub payer: Address,
    /// TORA base units per 1e18 wei.
    pub exchange_rate: U256,
    /// The most TORA the operation may be charged; the contract refuses a larger `maxCost`.
    pub max_token_cost: U256,
}

/// An EIP-2612 permit of `maxTokenCost` to the paymaster, signed for the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    /// Unix seconds after which the permit can no longer be used (EIP-2612 `deadline`).
    pub deadline: U256,
    /// The permit's 65-byte signature (`r ‖ s ‖ v`), checked by TORA's `permit`.
    pub signature: [u8; 65],
}

/// Decoded `paymasterData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymasterData {
    /// The signed terms.
    pub quote: Quote,
    /// The paymaster signer's 65-byte signature (`r ‖ s ‖ v`) over [`quote_hash`], see [`sign_quote`].
    pub signature: [u8; 65],
    /// The sender's TORA permit to the paymaster, in token mode when it has no allowance yet.
    pub permit: Option<Permit>,
}

/// Why bytes are not a valid `paymasterData`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuoteDecodeError {
    /// Neither of the two valid lengths, in bytes.
    #[error("paymasterData must be {QUOTE_DATA_LEN} or {QUOTE_WITH_PERMIT_LEN} bytes, got {0}")]
    Length(usize),
    /// The mode byte is neither token (0) nor sponsor (1).
    #[error("unknown paymaster mode {0}")]
    Mode(u8),
    /// The data carries a permit but the mode is sponsor.
    #[error("a permit is only valid in token mode")]
    PermitInSponsorMode,
}

fn u48(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

impl PaymasterData {
    /// The `paymasterData` bytes, in the layout described at the top of this module.
    pub fn encode(&self) -> Bytes {
        let q = &self.quote;
        let mut out = Vec::with_capacity(QUOTE_WITH_PERMIT_LEN);
        out.push(q.mode as u8);
        out.extend_from_slice(&q.valid_until.to_be_bytes()[2..]);
        out.extend_from_slice(&q.valid_after.to_be_bytes()[2..]);
        out.extend_from_slice(q.payer.as_slice());
        out.extend_from_slice(&q.exchange_rate.to_be_bytes::<32>());
        out.extend_from_slice(&q.max_token_cost.to_be_bytes::<32>());
        out.extend_from_slice(&self.signature);
        if let Some(permit) = &self.permit {
            out.extend_from_slice(&permit.deadline.to_be_bytes::<32>());
            out.extend_from_slice(&permit.signature);
        }
        out.into()
    }

    /// Parses `paymasterData` (without the 52-byte `paymasterAndData` prefix).
    pub fn decode(data: &[u8]) -> Result<Self, QuoteDecodeError> {
        if data.len() != QUOTE_DATA_LEN && data.len() != QUOTE_WITH_PERMIT_LEN {
            return Err(QuoteDecodeError::Length(data.len()));
        }
        let mode = match data[0] {
            0 => QuoteMode::Token,
            1 => QuoteMode::Sponsor,
            other => return Err(QuoteDecodeError::Mode(other)),
        };
        let quote = Quote {
            mode,
            valid_until: u48(&data[1..7]),
            valid_after: u48(&data[7..13]),
            payer: Address::from_slice(&data[13..33]),
            exchange_rate: U256::from_be_slice(&data[33..65]),
            max_token_cost: U256::from_be_slice(&data[65..97]),
        };
        let signature = data[97..162].try_into().expect("length checked");
        let permit = if data.len() == QUOTE_WITH_PERMIT_LEN {
            if mode != QuoteMode::Token {
                return Err(QuoteDecodeError::PermitInSponsorMode);
            }
            Some(Permit {
                deadline: U256::from_be_slice(&data[162..194]),
                signature: data[194..].try_into().expect("length checked"),
            })
        } else {
            None
        };
        Ok(Self { quote, signature, permit })
    }
}

/// `ToraPaymaster.getHash`: binds every field of the operation that affects its cost, and the
/// quote to one chain and one paymaster.
pub fn quote_hash(op: &UserOperation, quote: &Quote, chain_id: u64, paymaster: Address) -> B256 {
    let op_digest = keccak256(
        (
            op.sender,
            op.nonce,
            keccak256(op.init_code()),
            keccak256(&op.call_data),
            pack_u128_pair(op.verification_gas_limit, op.call_gas_limit),
            op.paymaster_gas_limits(),
            op.pre_verification_gas,
            pack_u128_pair(op.max_priority_fee_per_gas, op.max_fee_per_gas),
        )
            .abi_encode(),
    );
    let quote_digest = keccak256(
        (
            U256::from(chain_id),
            paymaster,
            U256::from(quote.mode as u8),
            U256::from(quote.valid_until),
            U256::from(quote.valid_after),
            quote.payer,
            quote.exchange_rate,
            quote.max_token_cost,
        )
            .abi_encode(),
    );
    keccak256((op_digest, quote_digest).abi_encode())
}

/// Signs the quote as the contract checks it: EIP-191 over [`quote_hash`].
pub fn sign_quote(
    signer: &impl SignerSync,
    op: &UserOperation,
    quote: &Quote,
    chain_id: u64,
    paymaster: Address,
) -> alloy::signers::Result<[u8; 65]> {
    let hash = quote_hash(op, quote, chain_id, paymaster);
    let signature: Signature = signer.sign_message_sync(hash.as_slice())?;
    Ok(signature.as_bytes())
}

/// Token amount for a wei amount at `exchange_rate`, rounded up (see [`ExchangeRate::tora_for`]).
/// Panics on overflow: for tests and figures already known to fit.
pub fn token_cost_ceil(wei: U256, exchange_rate: U256) -> U256 {
    ExchangeRate(exchange_rate).tora_for(Wei(wei)).expect("token cost overflows 256 bits").0
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    fn data(permit: bool) -> PaymasterData {
        PaymasterData {
            quote: Quote {
                mode: QuoteMode::Token,
                valid_until: 0xAABB_CCDD_EEFF,
                valid_after: 5,
                payer: address!("5555555555555555555555555555555555555555"),
                exchange_rate: U256::from(2_000u64) * U256::from(EXCHANGE_RATE_SCALE),
                max_token_cost: U256::from(123_456_789u64),
            },
            signature: [7; 65],
            permit: permit.then(|| Permit { deadline: U256::from(99), signature: [9; 65] }),
        }
    }

    #[test]
    fn encode_has_fixed_offsets_and_decodes_back() {
        for permit in [false, true] {
            let bytes = data(permit).encode();
            assert_eq!(bytes.len(), if permit { QUOTE_WITH_PERMIT_LEN } else { QUOTE_DATA_LEN });
            assert_eq!(&bytes[1..7], &[0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]);
            assert_eq!(bytes[96], 0x15, "maxTokenCost ends at 97: 123456789 = 0x075bcd15");
            assert_eq!(PaymasterData::decode(&bytes).unwrap(), data(permit));
        }
    }

    #[test]
    fn decode_rejects_bad_lengths_modes_and_sponsor_permits() {
        assert_eq!(PaymasterData::decode(&[0; 161]), Err(QuoteDecodeError::Length(161)));
        let mut bytes = data(false).encode().to_vec();
        bytes[0] = 2;
        assert_eq!(PaymasterData::decode(&bytes), Err(QuoteDecodeError::Mode(2)));
        let mut sponsor = data(true);
        sponsor.quote.mode = QuoteMode::Sponsor;
        assert_eq!(PaymasterData::decode(&sponsor.encode()), Err(QuoteDecodeError::PermitInSponsorMode));
    }

    #[test]
    fn token_cost_rounds_up_only_when_inexact() {
        let rate = U256::from(3u64) * U256::from(EXCHANGE_RATE_SCALE) / U256::from(2u64); // 1.5
        assert_eq!(token_cost_ceil(U256::from(2u64), rate), U256::from(3u64));
        assert_eq!(token_cost_ceil(U256::from(3u64), rate), U256::from(5u64)); // 4.5 -> 5
        assert_eq!(token_cost_ceil(U256::ZERO, rate), U256::ZERO);
        assert_eq!(token_cost_ceil(U256::from(1u64), U256::from(1u64)), U256::from(1u64));
    }
}

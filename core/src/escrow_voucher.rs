//! Cumulative payment vouchers for AI calls: EIP-712 typed data that the payer's wallet signs
//! (ECDSA or ERC-1271) and `InferenceEscrow.redeem` pays out at most once per amount.

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

alloy::sol! {
    /// `InferenceEscrow.Voucher`: the provider may take up to `cumulativeAmount` in total.
    #[derive(Debug, PartialEq, Eq)]
    struct Voucher {
        address payer;
        address provider;
        uint256 cumulativeAmount;
    }
}

/// The escrow's EIP-712 domain on `chain_id`.
pub fn escrow_domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: "ToraInferenceEscrow",
        version: "1",
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

impl Voucher {
    /// A voucher letting `provider` take up to `cumulative_amount` TORA base units from `payer` in total.
    pub fn new(payer: Address, provider: Address, cumulative_amount: U256) -> Self {
        Self { payer, provider, cumulativeAmount: cumulative_amount }
    }

    /// The digest the payer signs (`InferenceEscrow.voucherDigest`).
    pub fn digest(&self, chain_id: u64, escrow: Address) -> B256 {
        self.eip712_signing_hash(&escrow_domain(chain_id, escrow))
    }
}

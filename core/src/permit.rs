//! EIP-2612 permits for TORA: what a wallet signs so the paymaster can pull TORA without a
//! prior `approve` transaction.

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{SolStruct, eip712_domain};

alloy::sol! {
    /// EIP-2612's `Permit` struct.
    #[derive(Debug, PartialEq, Eq)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// `name` in TORA's EIP-712 domain (`ERC20Permit("Tensora")`).
pub const TORA_PERMIT_NAME: &str = "Tensora";

impl Permit {
    /// The digest the owner signs for the TORA token at `token` on `chain_id`.
    pub fn tora_digest(&self, chain_id: u64, token: Address) -> B256 {
        let domain = eip712_domain! {
            name: TORA_PERMIT_NAME,
            version: "1",
            chain_id: chain_id,
            verifying_contract: token,
        };
        self.eip712_signing_hash(&domain)
    }
}

/// Shorthand for a permit of `value` from `owner` to `spender`.
pub fn permit(owner: Address, spender: Address, value: U256, nonce: U256, deadline: U256) -> Permit {
    Permit { owner, spender, value, nonce, deadline }
}

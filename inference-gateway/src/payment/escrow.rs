//! What the gateway reads from `InferenceEscrow` and the payer's wallet before serving a call:
//! the deposit, what this provider already redeemed, and whether the voucher's signature is
//! one the escrow will accept (the same rule as OpenZeppelin's `SignatureChecker`).

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolCall;
use tora_core::contracts::InferenceEscrow;

use super::voucher::SignedVoucher;

alloy::sol! {
    /// EIP-1271: a contract account's signature check.
    #[sol(rpc)]
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("chain: {0}")]
pub struct ChainError(pub String);

fn chain_err(e: impl std::fmt::Display) -> ChainError {
    ChainError(e.to_string())
}

/// A payer's escrow position towards this provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscrowAccount {
    /// `balanceOf(payer)`: deposited and not yet paid out to any provider.
    pub balance: U256,
    /// `redeemed(payer, provider)`: cumulative amount this provider was already paid.
    pub redeemed: U256,
}

impl EscrowAccount {
    /// The largest cumulative amount a redemption could pay in full now: `redeem` pays
    /// `cumulative - redeemed` and needs the balance to cover it.
    pub fn covers_up_to(&self) -> U256 {
        self.balance.saturating_add(self.redeemed)
    }
}

/// Read-only view of the escrow for one provider.
#[derive(Clone)]
pub struct Escrow {
    rpc: DynProvider,
    chain_id: u64,
    escrow: Address,
    provider: Address,
}

impl Escrow {
    pub fn new(rpc: DynProvider, chain_id: u64, escrow: Address, provider: Address) -> Self {
        Self { rpc, chain_id, escrow, provider }
    }

    /// The gateway's own address: the `provider` of every voucher it accepts.
    pub fn provider(&self) -> Address {
        self.provider
    }

    pub fn address(&self) -> Address {
        self.escrow
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The digest the payer signs for `voucher`.
    pub fn digest(&self, voucher: &SignedVoucher) -> B256 {
        voucher.voucher(self.provider).digest(self.chain_id, self.escrow)
    }

    pub async fn account(&self, payer: Address) -> Result<EscrowAccount, ChainError> {
        let escrow = InferenceEscrow::new(self.escrow, &self.rpc);
        let balance = escrow.balanceOf(payer);
        let redeemed = escrow.redeemed(payer, self.provider);
        let (balance, redeemed) = read_twice(|| async { tokio::try_join!(balance.call(), redeemed.call()) })
            .await
            .map_err(chain_err)?;
        Ok(EscrowAccount { balance, redeemed })
    }

    /// Whether `redeem` would accept the voucher's signature: ECDSA by the payer itself, or
    /// the payer contract's ERC-1271 `isValidSignature`. An error only when the chain cannot
    /// be asked; a reverting or malformed answer is an invalid signature.
    pub async fn signature_is_valid(&self, voucher: &SignedVoucher) -> Result<bool, ChainError> {
        let digest = self.digest(voucher);
        let recovered = Signature::try_from(voucher.signature.as_ref())
            .ok()
            .and_then(|s| s.recover_address_from_prehash(&digest).ok());
        if recovered == Some(voucher.payer) {
            return Ok(true);
        }
        let code =
            read_twice(|| async { self.rpc.get_code_at(voucher.payer).await }).await.map_err(chain_err)?;
        if code.is_empty() {
            return Ok(false);
        }
        let wallet = IERC1271::new(voucher.payer, &self.rpc);
        let check = wallet.isValidSignature(digest, voucher.signature.clone());
        match read_twice(|| async { check.call().await }).await {
            // EIP-1271's magic value is the function's own selector, 0x1626ba7e.
            Ok(magic) => Ok(magic.0 == IERC1271::isValidSignatureCall::SELECTOR),
            Err(e) if e.as_revert_data().is_some() => Ok(false),
            Err(alloy::contract::Error::TransportError(e)) => Err(chain_err(e)),
            Err(_) => Ok(false),
        }
    }
}

/// Runs a chain read, and once more if it fails: a pooled HTTP connection that the node closed
/// while idle fails the first request sent on it ("error sending request"), and a read is safe
/// to repeat, so a call is not refused for it.
async fn read_twice<T, E, F, Fut>(mut read: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match read().await {
        Ok(value) => Ok(value),
        Err(_) => read().await,
    }
}

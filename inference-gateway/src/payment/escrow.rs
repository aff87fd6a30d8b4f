//! What the gateway reads from `InferenceEscrow` before serving a call: the payer's channel to
//! this provider (its balance, what was redeemed, whether a withdrawal is pending), and whether
//! the voucher's signature is one the escrow will accept.

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::providers::DynProvider;
use tora_core::contracts::InferenceEscrow;

use super::voucher::SignedVoucher;

/// Reading the escrow over RPC failed, with the node's or alloy's message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("chain: {0}")]
pub struct ChainError(pub String);

fn chain_err(e: impl std::fmt::Display) -> ChainError {
    ChainError(e.to_string())
}

/// A payer's channel to this provider in the escrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscrowAccount {
    /// `balanceOf(payer, provider)`: deposited for this provider and not yet paid out.
    pub balance: U256,
    /// `redeemed(payer, provider)`: cumulative amount this provider was already paid.
    pub redeemed: U256,
    /// `withdrawableAt(payer, provider) != 0`: the payer has asked for its balance back; the
    /// provider serves nothing more and redeems before the notice runs out.
    pub withdrawal_requested: bool,
}

impl EscrowAccount {
    /// The largest cumulative amount a redemption could pay in full now: `redeem` pays
    /// `cumulative - redeemed` and needs the balance to cover it.
    pub fn covers_up_to(&self) -> U256 {
        self.balance.saturating_add(self.redeemed)
    }
}

/// Half the order of secp256k1: OpenZeppelin's ECDSA refuses a larger `s` (the same signature's
/// malleable twin).
const HALF_ORDER: U256 =
    alloy::primitives::uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// The signer of `signature` over `digest` by OpenZeppelin's `ECDSA.tryRecover`, which the
/// escrow uses: 65 bytes, `v` 27 or 28, `s` in the lower half. alloy's recovery also takes
/// `v` 0/1 or EIP-155 values and normalises a high `s`, which the escrow would refuse.
pub fn strict_ecdsa_signer(signature: &[u8], digest: &B256) -> Option<Address> {
    let [rs @ .., v] = <&[u8; 65]>::try_from(signature).ok()?;
    let (r, s) = (U256::from_be_slice(&rs[..32]), U256::from_be_slice(&rs[32..]));
    let parity = match v {
        27 => false,
        28 => true,
        _ => return None,
    };
    if s > HALF_ORDER {
        return None;
    }
    let signer = Signature::new(r, s, parity).recover_address_from_prehash(digest).ok()?;
    (signer != Address::ZERO).then_some(signer)
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
    /// A view of the `InferenceEscrow` at `escrow` on chain `chain_id`, for `provider`.
    pub fn new(rpc: DynProvider, chain_id: u64, escrow: Address, provider: Address) -> Self {
        Self { rpc, chain_id, escrow, provider }
    }

    /// The gateway's own address: the `provider` of every voucher it accepts.
    pub fn provider(&self) -> Address {
        self.provider
    }

    /// The `InferenceEscrow` contract's address, part of every voucher's EIP-712 domain.
    pub fn address(&self) -> Address {
        self.escrow
    }

    /// The chain id of the escrow, part of every voucher's EIP-712 domain.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The digest the payer signs for `voucher`.
    pub fn digest(&self, voucher: &SignedVoucher) -> B256 {
        voucher.voucher(self.provider).digest(self.chain_id, self.escrow)
    }

    /// `payer`'s channel to this provider: balance, redeemed, and whether a withdrawal is pending.
    pub async fn account(&self, payer: Address) -> Result<EscrowAccount, ChainError> {
        let escrow = InferenceEscrow::new(self.escrow, &self.rpc);
        let balance = escrow.balanceOf(payer, self.provider);
        let redeemed = escrow.redeemed(payer, self.provider);
        let withdrawal = escrow.withdrawableAt(payer, self.provider);
        let (balance, redeemed, withdrawable_at) =
            read_twice(|| async { tokio::try_join!(balance.call(), redeemed.call(), withdrawal.call()) })
                .await
                .map_err(chain_err)?;
        Ok(EscrowAccount { balance, redeemed, withdrawal_requested: !withdrawable_at.is_zero() })
    }

    /// Whether `redeem` would accept the voucher's signature now. The escrow's own rule: the
    /// strict ECDSA of [`strict_ecdsa_signer`] here, and otherwise (a contract wallet's
    /// ERC-1271, under the escrow's gas cap) the escrow's `isValidVoucherSignature` itself, so
    /// that what is served and what is redeemable never differ. An error only when the chain
    /// cannot be asked.
    pub async fn signature_is_valid(&self, voucher: &SignedVoucher) -> Result<bool, ChainError> {
        if strict_ecdsa_signer(&voucher.signature, &self.digest(voucher)) == Some(voucher.payer) {
            return Ok(true);
        }
        let escrow = InferenceEscrow::new(self.escrow, &self.rpc);
        let v = voucher.voucher(self.provider);
        let typed = InferenceEscrow::Voucher {
            payer: v.payer,
            provider: v.provider,
            cumulativeAmount: v.cumulativeAmount,
        };
        let check = escrow.isValidVoucherSignature(typed, voucher.signature.clone());
        read_twice(|| async { check.call().await }).await.map_err(chain_err)
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    fn signed(digest: &B256) -> (PrivateKeySigner, Signature) {
        let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x11)).unwrap();
        let sig = key.sign_hash_sync(digest).unwrap();
        (key, sig)
    }

    fn encode(r: U256, s: U256, v: u8) -> Vec<u8> {
        [&r.to_be_bytes::<32>()[..], &s.to_be_bytes::<32>()[..], &[v]].concat()
    }

    #[test]
    fn only_what_openzeppelins_ecdsa_recovers_is_a_signature() {
        let digest = B256::repeat_byte(0x42);
        let (key, sig) = signed(&digest);
        let v = 27 + u8::from(sig.v());
        assert_eq!(strict_ecdsa_signer(&encode(sig.r(), sig.s(), v), &digest), Some(key.address()));
        // v = 0/1: alloy recovers the same address; the escrow does not.
        let raw = encode(sig.r(), sig.s(), v - 27);
        assert_eq!(
            Signature::try_from(&raw[..]).unwrap().recover_address_from_prehash(&digest).ok(),
            Some(key.address())
        );
        assert_eq!(strict_ecdsa_signer(&raw, &digest), None);
        // The high-s twin (parity flipped) verifies for secp256k1 and alloy, not for the escrow.
        let n = HALF_ORDER * U256::from(2) + U256::from(1);
        let twin = encode(sig.r(), n - sig.s(), 27 + u8::from(!sig.v()));
        assert_eq!(strict_ecdsa_signer(&twin, &digest), None);
        // Lengths other than 65 (EIP-2098 compact signatures among them).
        assert_eq!(strict_ecdsa_signer(&encode(sig.r(), sig.s(), v)[..64], &digest), None);
        assert_eq!(strict_ecdsa_signer(&[], &digest), None);
        // r = 0 recovers nothing.
        assert_eq!(strict_ecdsa_signer(&encode(U256::ZERO, sig.s(), v), &digest), None);
    }
}

//! Setup: the deployer sends the new wallet its TORA, and no BNB.

use super::stack::Stack;
use super::tora;
use tora_devnet::confirm;

/// Whole TORA the deployer sends the new wallet.
const WALLET_TORA: u64 = 100;

impl Stack {
    pub(super) async fn fund_wallet(&self) -> anyhow::Result<()> {
        let w = &self.wallet;
        println!("\nSetup: a new ToraAccount {} (owner {}, salt {})", w.address, w.owner.address(), w.salt);
        println!("     not deployed yet; the deployer sends it {WALLET_TORA} TORA, and it gets no BNB");
        let (tora_before, bnb_before) = (self.tora_of(w.address).await?, self.bnb_of(w.address).await?);
        let amount = tora(WALLET_TORA);
        let pending = self.tora().transfer(w.address, amount).send().await?;
        let receipt = confirm(&self.chain, "send TORA to the wallet", pending).await?;
        println!("     TORA.transfer: tx {}", receipt.transaction_hash);
        self.check_wallet_tora(tora_before, tora_before + amount).await?;
        self.check_wallet_bnb(bnb_before).await
    }
}

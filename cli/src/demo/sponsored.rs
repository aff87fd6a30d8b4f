//! Step 1: a dapp's sponsorship policy pays for the wallet's first operation, which deploys the
//! wallet and sends a friend some TORA.

use super::stack::Stack;
use super::wallet::gas_charge;
use super::{check, tora};
use crate::paymaster::DEVNET_DAPP;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use anyhow::{bail, ensure};
use reqwest::StatusCode;
use tora_core::clock::unix_now;
use tora_core::contracts::TORA;
use tora_core::money::ToraUnits;
use tora_core::paymaster_quote::QuoteMode;
use tora_core::rpc_api::paymaster::PaymasterContext;
use tora_core::sponsorship::{Budget, MicroTora, ResetInterval, SponsorshipPolicy};
use tora_devnet::{SmartWallet, confirm};

/// Whole TORA the sponsored first operation sends to [`FRIEND`].
const GIFT_TORA: u64 = 1;
/// Who receives the gift: any address will do.
const FRIEND: Address = Address::repeat_byte(0xf1);
/// The sponsor's deposit in ToraPaymaster is topped up below this many whole TORA...
const SPONSOR_FLOOR_TORA: u64 = 1_000;
/// ... by this many.
const SPONSOR_TOP_UP_TORA: u64 = 10_000;
/// The policy the demo puts (again on every run: a put replaces it).
const POLICY_ID: &str = "tora-demo";
/// Whole TORA the policy may spend a day, over all wallets...
const POLICY_DAILY_TORA: u64 = 10_000;
/// ... and per wallet.
const POLICY_PER_WALLET_TORA: u64 = 100;

impl Stack {
    async fn ensure_sponsor_deposit(&self, sponsor: Address) -> anyhow::Result<()> {
        let balance = self.tora_paymaster().sponsorBalance(sponsor).call().await?;
        if balance < tora(SPONSOR_FLOOR_TORA) {
            let (paymaster, amount) = (self.deployment.contracts.paymaster, tora(SPONSOR_TOP_UP_TORA));
            let pending = self.tora().approve(paymaster, amount).send().await?;
            confirm(&self.chain, "approve the sponsor's deposit", pending).await?;
            let pending = self.tora_paymaster().depositForSponsor(sponsor, amount).send().await?;
            let receipt = confirm(&self.chain, "deposit for the sponsor", pending).await?;
            println!(
                "     the sponsor deposits {} in ToraPaymaster: tx {}",
                ToraUnits(amount),
                receipt.transaction_hash
            );
        }
        Ok(())
    }

    async fn put_policy(&self, sponsor: Address) -> anyhow::Result<()> {
        let policy = SponsorshipPolicy {
            id: POLICY_ID.into(),
            name: "Tensora demo".into(),
            icon: None,
            dapp: DEVNET_DAPP.into(),
            sponsor,
            budget: Budget {
                global: Some(MicroTora::from_tora_floor(ToraUnits(tora(POLICY_DAILY_TORA)))),
                per_user: Some(MicroTora::from_tora_floor(ToraUnits(tora(POLICY_PER_WALLET_TORA)))),
                ..Budget::default()
            },
            reset: ResetInterval::Daily,
            // The dapp pays for TORA transfers only.
            allowed_targets: vec![self.deployment.contracts.tora],
            allowed_selectors: vec![TORA::transferCall::SELECTOR.into()],
            valid_after: 0,
            valid_until: unix_now() + 365 * 86_400,
        };
        let url = format!("{}/admin/policies", self.admin_url);
        let response = self.http.post(&url).bearer_auth(&self.admin_key).json(&policy).send().await?;
        let status = response.status();
        if status != StatusCode::CREATED {
            bail!("POST {url} answered {status}: {}", response.text().await.unwrap_or_default());
        }
        println!(
            "     POST /admin/policies ({status}): policy {POLICY_ID:?} of dapp {DEVNET_DAPP:?}, paid by sponsor {sponsor}: TORA.transfer only, {POLICY_DAILY_TORA} TORA a day, {POLICY_PER_WALLET_TORA} per wallet"
        );
        Ok(())
    }

    pub(super) async fn sponsored_first_operation(&self) -> anyhow::Result<()> {
        println!(
            "\n1/3  A dapp sponsors the wallet's first operation: it deploys the wallet and sends {GIFT_TORA} TORA to {FRIEND}"
        );
        let sponsor = self.deployer()?;
        self.ensure_sponsor_deposit(sponsor).await?;
        self.put_policy(sponsor).await?;
        let gift = tora(GIFT_TORA);
        let transfer = TORA::transferCall { to: FRIEND, value: gift }.abi_encode();
        let call = SmartWallet::execute(self.deployment.contracts.tora, U256::ZERO, transfer.into());
        let mut op = self.operation(true, call).await?;
        let w = self.wallet.address;
        let sponsor_before = self.tora_paymaster().sponsorBalance(sponsor).call().await?;
        let (wallet_before, friend_before) = (self.tora_of(w).await?, self.tora_of(FRIEND).await?);
        let bnb_before = self.bnb_of(w).await?;

        let context =
            PaymasterContext { sponsorship_policy_id: Some(POLICY_ID.into()), ..Default::default() };
        let stub = self.stub_and_estimate(&self.dapp, &mut op, &context).await?;
        if let Some(shown) = stub.sponsor {
            println!("     the wallet would show the user: sponsored by {:?}", shown.name);
        }
        self.finish(&self.dapp, &mut op, &context).await?;
        let receipt = self.send(&op).await?;
        let charge = gas_charge(&receipt, QuoteMode::Sponsor, sponsor, "the sponsor")?;
        println!(
            "     ToraPaymaster charged the sponsor {} ({} base units) and returned {} of what it reserved",
            ToraUnits(charge.charge),
            charge.charge,
            charge.refund
        );
        ensure!(!self.chain.get_code_at(w).await?.is_empty(), "no wallet deployed at {w}");
        let sponsor_after = self.tora_paymaster().sponsorBalance(sponsor).call().await?;
        check(
            "sponsor's deposit in ToraPaymaster",
            sponsor_before,
            sponsor_after,
            sponsor_before - charge.charge,
        )?;
        self.check_wallet_tora(wallet_before, wallet_before - gift).await?;
        check("friend TORA", friend_before, self.tora_of(FRIEND).await?, friend_before + gift)?;
        self.check_wallet_bnb(bnb_before).await?;
        println!(
            "  => step 1 ok: wallet deployed by its first operation in tx {}, gas paid by the dapp's sponsor",
            receipt.receipt.transaction_hash
        );
        Ok(())
    }
}

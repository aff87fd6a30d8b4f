//! The inference gateway as a paying client sees it: its terms (prices, and whom its vouchers
//! name), and calls paid with the wallet's cumulative vouchers.

use super::stack::Stack;
use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail, ensure};
use reqwest::StatusCode;
use serde_json::Value;
use tora_core::escrow_voucher::Voucher;
use tora_inference_gateway::api::{MODEL_ID, TEXT_MODEL_ID};
use tora_inference_gateway::payment::voucher::decimal;
use tora_inference_gateway::payment::{SignedVoucher, VOUCHER_HEADER};

/// The gateway's answer headers: this call's exact price, and everything charged so far.
const CHARGED_HEADER: &str = "x-tora-charged";
const CUMULATIVE_HEADER: &str = "x-tora-cumulative-amount";

/// What the gateway charges and whom its vouchers name (its `GET /v1/pricing`).
pub(super) struct GatewayTerms {
    pub(super) provider: Address,
    /// TORA base units per MiniLM token.
    pub(super) embedding_price: U256,
    /// TORA base units per SmolLM2 token, prompt and generated alike.
    pub(super) text_price: U256,
}

/// A call the gateway served for a voucher.
pub(super) struct Paid {
    /// Its exact price, in TORA base units.
    pub(super) charged: U256,
    /// Everything the wallet was charged so far, in TORA base units: what the provider may claim.
    pub(super) owed: U256,
    /// The voucher that paid for it.
    pub(super) voucher: SignedVoucher,
    pub(super) body: Value,
}

impl Stack {
    pub(super) async fn gateway_terms(&self) -> anyhow::Result<GatewayTerms> {
        let url = format!("{}/v1/pricing", self.gateway_url);
        let pricing: Value = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}: is the gateway up?"))?
            .error_for_status()?
            .json()
            .await?;
        let address = |field: &str| -> anyhow::Result<Address> {
            let text = pricing[field].as_str().with_context(|| format!("no {field} in {pricing}"))?;
            Ok(text.parse()?)
        };
        let provider = address("provider")?;
        let escrow = address("escrow")?;
        ensure!(
            escrow == self.deployment.contracts.inference_escrow,
            "the gateway's vouchers are for the escrow at {escrow}, not this deployment's"
        );
        let price = |model: &str| {
            pricing["data"]
                .as_array()
                .and_then(|models| models.iter().find(|m| m["model"] == model))
                .and_then(|m| decimal::parse(m["price_per_token"].as_str()?))
                .with_context(|| format!("the gateway does not serve {model} (GET {url})"))
        };
        let terms =
            GatewayTerms { provider, embedding_price: price(MODEL_ID)?, text_price: price(TEXT_MODEL_ID)? };
        let redeemer = PrivateKeySigner::from_bytes(&self.keys.inference_provider)?.address();
        ensure!(
            provider == redeemer,
            "the gateway's provider is {provider}, not devKeys.inferenceProvider ({redeemer}), whose key the demo redeems with"
        );
        Ok(terms)
    }

    /// A voucher letting `provider` take up to `cumulative` from the wallet in all, signed by the
    /// owner for the wallet (ToraAccount's ERC-1271).
    fn voucher(&self, provider: Address, cumulative: U256) -> SignedVoucher {
        let c = &self.deployment.contracts;
        let digest = Voucher::new(self.wallet.address, provider, cumulative)
            .digest(self.deployment.chain_id, c.inference_escrow);
        SignedVoucher {
            payer: self.wallet.address,
            cumulative_amount: cumulative,
            signature: Bytes::from(self.wallet.sign_digest(digest).to_vec()),
        }
    }

    /// A paid call as a client makes it: unpaid first, so that the 402 names the price, then
    /// again with a voucher for what the wallet owes so far (`owed`) plus that price.
    pub(super) async fn paid_call(
        &self,
        path: &str,
        body: &Value,
        owed: U256,
        provider: Address,
    ) -> anyhow::Result<Paid> {
        let url = format!("{}{path}", self.gateway_url);
        let unpaid = self.http.post(&url).json(body).send().await.with_context(|| format!("POST {url}"))?;
        let status = unpaid.status();
        let refusal: Value = unpaid.json().await.with_context(|| format!("POST {url}: answer not JSON"))?;
        ensure!(
            status == StatusCode::PAYMENT_REQUIRED,
            "POST {path} without a voucher answered {status}: {refusal}"
        );
        let amount = |name: &str| refusal["error"][name].as_str().and_then(decimal::parse);
        let due = amount("amount_due").with_context(|| format!("a 402 without amount_due: {refusal}"))?;
        let cumulative = amount("cumulative_amount_expected").unwrap_or(owed + due);
        println!(
            "     POST {path}: 402, it costs up to {due}; the wallet signs a voucher for {cumulative} in all"
        );
        let voucher = self.voucher(provider, cumulative);
        let answer = self
            .http
            .post(&url)
            .header(VOUCHER_HEADER, serde_json::to_string(&voucher)?)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = answer.status();
        let header = |name: &str| {
            let value = answer.headers().get(name).and_then(|v| v.to_str().ok()).and_then(decimal::parse);
            value.with_context(|| format!("POST {path} answered {status} without {name}"))
        };
        if !status.is_success() {
            bail!("POST {path} with a voucher for {cumulative} answered {status}: {}", answer.text().await?);
        }
        let (charged, owed) = (header(CHARGED_HEADER)?, header(CUMULATIVE_HEADER)?);
        Ok(Paid { charged, owed, voucher, body: answer.json().await? })
    }
}

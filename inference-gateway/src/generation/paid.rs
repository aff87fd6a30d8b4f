//! One paid text generation, from its hold to its charge.
//!
//! A completion's length is unknown upfront, so the voucher must make room for prompt +
//! max_tokens at the price per token, and that much is held while it runs. When it ends (at
//! max_tokens, a stop sequence, the end of the reply, or when nobody listens any more) the
//! payer is charged exactly prompt + generated tokens, never more than the hold, and the rest
//! of the room carries over to its next call. A stream that fails is charged what was
//! generated until then (the client has it); a whole answer that fails is charged nothing.

use std::sync::Arc;

use tokio::sync::mpsc;
use tora_core::money::ToraUnits;

use super::stop::{Finish, TextAssembler};
use crate::models::QueueError;
use crate::models::llama::Sampling;
use crate::models::llama::tokenizer::GgufTokenizer;
use crate::models::llama::worker::{Generated, TEXT_MODEL_ID, TextModel};
use crate::payment::{
    Cashier, Charge, PaymentError, PricePerToken, Reservation, SignedVoucher, VoucherStore,
};

/// What to generate, checked against the model: a non-empty prompt that leaves room for
/// `max_tokens` in the context.
pub(crate) struct Job {
    /// The prompt's token ids.
    pub(crate) prompt: Vec<u32>,
    /// Most tokens to generate; what the hold is sized for.
    pub(crate) max_tokens: usize,
    /// How each token is picked.
    pub(crate) sampling: Sampling,
    /// Texts that end the answer where they appear, and are not part of it.
    pub(crate) stops: Vec<String>,
}

/// Why a paid generation ended without a charged answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GenerationError {
    /// The price overflowed, the voucher does not pay for the worst case, or the charge could
    /// not be recorded.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The text model's queue is full.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The model or its tokenizer failed while generating.
    #[error(transparent)]
    Model(#[from] crate::error::Error),
}

/// A generation run to its end and charged.
pub(crate) struct Completion {
    /// The whole answer, without the stop sequence that ended it.
    pub(crate) text: String,
    /// The end of `text` that was held back from the stream (it could have begun a stop
    /// sequence, or ended mid-character) and is released only now.
    pub(crate) tail: String,
    /// Why the answer ended.
    pub(crate) finish: Finish,
    /// Tokens of the prompt.
    pub(crate) prompt_tokens: usize,
    /// Tokens the model generated, the one that ended the answer included: what is metered.
    pub(crate) generated: usize,
    /// What the payer was charged for prompt + generated tokens.
    pub(crate) charge: Charge,
}

/// A generation let in and running, its worst-case price held.
pub(crate) struct PaidGeneration {
    tokenizer: Arc<GgufTokenizer>,
    per_token: PricePerToken,
    tokens: mpsc::Receiver<Generated>,
    text: TextAssembler,
    prompt_tokens: usize,
    reservation: Reservation,
}

fn price(per_token: PricePerToken, tokens: usize) -> Result<ToraUnits, PaymentError> {
    per_token.price(tokens as u64).ok_or(PaymentError::Overflow)
}

impl PaidGeneration {
    /// Takes a place in `model`'s queue, holds the worst case of `job` (prompt + max_tokens at
    /// `per_token`) on `voucher` through `cashier`, and starts generating.
    pub(crate) async fn start<S: VoucherStore>(
        cashier: &Cashier<S>,
        model: &TextModel,
        per_token: PricePerToken,
        voucher: Option<SignedVoucher>,
        job: Job,
    ) -> Result<Self, GenerationError> {
        let prompt_tokens = job.prompt.len();
        let most = price(per_token, prompt_tokens + job.max_tokens)?;
        let slot = model.reserve()?;
        let reservation = cashier.authorize(voucher, most).await?;
        Ok(Self {
            tokenizer: model.tokenizer.clone(),
            per_token,
            tokens: model.start(slot, job.prompt, job.max_tokens, job.sampling),
            text: TextAssembler::new(job.stops),
            prompt_tokens,
            reservation,
        })
    }

    /// The worst-case price held until the generation is charged.
    pub(crate) fn held(&self) -> ToraUnits {
        self.reservation.held()
    }

    /// Generates the whole answer, then charges it; a failure is charged nothing.
    pub(crate) async fn whole<S: VoucherStore>(
        self,
        cashier: &Cashier<S>,
    ) -> Result<Completion, GenerationError> {
        self.run(cashier, false, |_| true).await
    }

    /// Generates, handing each piece of final text to `emit` (which returns false when nobody
    /// listens any more, which ends the generation), then charges what ran, even on failure.
    pub(crate) async fn stream<S: VoucherStore>(
        self,
        cashier: &Cashier<S>,
        emit: impl FnMut(&str) -> bool,
    ) -> Result<Completion, GenerationError> {
        self.run(cashier, true, emit).await
    }

    /// Generates to the end (or until `emit` says nobody listens), then settles the hold at
    /// the exact price of prompt + generated tokens. A failed generation is charged what was
    /// `streamed` out before it failed, and nothing when the answer was to come whole.
    async fn run<S: VoucherStore>(
        mut self,
        cashier: &Cashier<S>,
        streamed: bool,
        emit: impl FnMut(&str) -> bool,
    ) -> Result<Completion, GenerationError> {
        let failure = match collect(&self.tokenizer, &mut self.tokens, &mut self.text, emit).await {
            Ok(()) => None,
            Err(e) if !streamed => {
                cashier.release(self.reservation).await;
                return Err(e);
            }
            Err(e) => Some(e),
        };
        let tokens = self.prompt_tokens + self.text.generated();
        // Never above the hold, which the store enforces as well.
        let held = self.reservation.held();
        let exact = price(self.per_token, tokens).unwrap_or(held).min(held);
        let charge = cashier.settle(self.reservation, exact).await;
        if let Ok(charge) = &charge {
            crate::payment::metrics::charged(TEXT_MODEL_ID, tokens as u64, charge.price);
        }
        if let Some(e) = failure {
            if let Err(unrecorded) = &charge {
                tracing::warn!(error = %unrecorded, "a failed stream's charge was not recorded");
            }
            return Err(e);
        }
        let charge = charge?;
        let tail = self.text.finish_length();
        Ok(Completion {
            text: self.text.text().to_owned(),
            tail,
            // Set by finish_length when no stop ended the answer.
            finish: self.text.finish.unwrap_or(Finish::Length),
            prompt_tokens: self.prompt_tokens,
            generated: self.text.generated(),
            charge,
        })
    }
}

/// Feeds generated tokens into `text` until the model is done or a stop is found, handing
/// each piece of final text to `emit` (which returns false when nobody listens any more).
async fn collect(
    tokenizer: &GgufTokenizer,
    tokens: &mut mpsc::Receiver<Generated>,
    text: &mut TextAssembler,
    mut emit: impl FnMut(&str) -> bool,
) -> Result<(), GenerationError> {
    while let Some(item) = tokens.recv().await {
        match item {
            Generated::Token(t) => {
                let delta = text.push(tokenizer, t)?;
                if !emit(&delta) || text.finish.is_some() {
                    // Dropping the receiver stops the generation after this token.
                    return Ok(());
                }
            }
            Generated::Done(result) => return Ok(result?),
        }
    }
    Ok(())
}

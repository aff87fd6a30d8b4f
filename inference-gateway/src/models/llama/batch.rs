//! Continuous batching: generations share forward passes. Each pass admits waiting
//! sequences into free KV-cache slots (their prompt is a pass of its own), then runs one
//! decode step for every active sequence together, so the weights are read once per step
//! for all of them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use crate::error::{Error, Result};

use super::{Decoder, MAX_CONTEXT, Sampler, SeqStep};

/// One generation to run: picks up to `max_tokens` tokens after `prompt` with `sampler`.
pub struct Sequence {
    /// Prompt token ids, run as one pass when the sequence gets a slot.
    pub prompt: Vec<u32>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// How each next token is picked.
    pub sampler: Sampler,
    /// Gets each token picked; false ends the sequence (an end token, a reader gone).
    pub on_token: Box<dyn FnMut(u32) -> bool + Send>,
    /// Gets the outcome, exactly once, when the sequence ends for any reason.
    pub on_done: Box<dyn FnOnce(Result<()>) + Send>,
}

/// A sequence holding a slot: the token it will run next.
struct Active {
    seq: Sequence,
    slot: usize,
    next: u32,
    made: usize,
}

impl Active {
    /// Hands `token` on; the sequence back when it goes on, `None` once it has ended.
    fn take(mut self, token: u32) -> Option<Self> {
        self.made += 1;
        self.next = token;
        if (self.seq.on_token)(token) && self.made < self.seq.max_tokens {
            Some(self)
        } else {
            (self.seq.on_done)(Ok(()));
            None
        }
    }
}

/// Runs the sequences that arrive on `jobs` on `decoder`, up to its slot count at once, until
/// `jobs` is closed and every sequence has ended. `passes` follows the decoder's count.
pub fn run_batches(decoder: &mut dyn Decoder, jobs: &Receiver<Sequence>, passes: &AtomicU64) {
    let mut waiting = VecDeque::new();
    let mut active: Vec<Active> = Vec::new();
    loop {
        if active.is_empty() && waiting.is_empty() {
            match jobs.recv() {
                Ok(seq) => waiting.push_back(seq),
                Err(_) => return,
            }
        }
        waiting.extend(jobs.try_iter());
        while let Some(slot) = free_slot(decoder.slots(), &active) {
            let Some(seq) = waiting.pop_front() else { break };
            active.extend(admit(decoder, seq, slot, passes));
        }
        if active.is_empty() {
            continue;
        }
        // Copied out, so the steps do not borrow the sequences whose samplers pick.
        let next: Vec<(usize, u32)> = active.iter().map(|a| (a.slot, a.next)).collect();
        let steps: Vec<SeqStep<'_>> =
            next.iter().map(|(slot, id)| SeqStep { slot: *slot, ids: std::slice::from_ref(id) }).collect();
        let mut samplers: Vec<&mut Sampler> = active.iter_mut().map(|a| &mut a.seq.sampler).collect();
        let tokens = pick(decoder, &steps, &mut samplers, passes);
        match tokens {
            Ok(tokens) => active = active.into_iter().zip(tokens).filter_map(|(a, t)| a.take(t)).collect(),
            Err(e) => {
                // The error is the whole pass's: every sequence in it ends with it.
                let why = e.to_string();
                for a in active.drain(..) {
                    (a.seq.on_done)(Err(Error::Gpu(why.clone())));
                }
            }
        }
    }
}

fn free_slot(slots: usize, active: &[Active]) -> Option<usize> {
    (0..slots).find(|s| active.iter().all(|a| a.slot != *s))
}

/// Runs `seq`'s prompt into `slot` and hands on the first token; the sequence when it goes on.
fn admit(decoder: &mut dyn Decoder, mut seq: Sequence, slot: usize, passes: &AtomicU64) -> Option<Active> {
    if seq.max_tokens == 0 {
        (seq.on_done)(Ok(()));
        return None;
    }
    decoder.reset_slot(slot);
    let step = [SeqStep { slot, ids: &seq.prompt }];
    match pick(decoder, &step, &mut [&mut seq.sampler], passes) {
        Ok(tokens) => match tokens.first() {
            Some(&token) => {
                // Every token but the last runs at a position of its own: a sequence ends at
                // the context's end on its own, rather than fail a pass that others share.
                seq.max_tokens = seq.max_tokens.min(MAX_CONTEXT + 1 - seq.prompt.len());
                Active { seq, slot, next: 0, made: 0 }.take(token)
            }
            None => {
                (seq.on_done)(Err(Error::Gpu("a forward pass picked no token".into())));
                None
            }
        },
        Err(e) => {
            (seq.on_done)(Err(e));
            None
        }
    }
}

/// One forward pass of `steps`, then a token for each with its own sampler: the argmax on the
/// device (4 bytes read back per sequence) when every sampler is greedy. `passes` is updated
/// before any token is handed on, so a reader that sees `Done` sees the pass counted.
fn pick(
    decoder: &mut dyn Decoder,
    steps: &[SeqStep<'_>],
    samplers: &mut [&mut Sampler],
    passes: &AtomicU64,
) -> Result<Vec<u32>> {
    let picked = if samplers.iter().all(|s| s.is_greedy()) {
        decoder.forward_greedy(steps)
    } else {
        decoder
            .forward_logits(steps)
            .map(|logits| logits.iter().zip(samplers.iter_mut()).map(|(l, s)| s.sample(l)).collect())
    };
    passes.store(decoder.passes(), Ordering::Relaxed);
    picked
}

//! `POST /v1/completions` and `POST /v1/chat/completions`: validate, tokenize, run a paid
//! generation (`crate::generation`: the worst case held, then the exact price charged), answer
//! whole or as server-sent events.
//!
//! A streamed answer is charged when the stream ends; a client that leaves pays for what was
//! generated until then. The headers `x-tora-charged` and `x-tora-cumulative-amount` carry
//! the charge of a whole answer; a stream announces the hold in `x-tora-held` and carries the
//! charge in its last chunk (`tora_charge`), next to `usage`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::embeddings::{charge_headers, decimal_header, voucher};
use super::json::ApiJson;
use super::{ApiError, Gateway};
use crate::generation::{Job, PaidGeneration};
use crate::models::llama::worker::{MAX_COMPLETION_TOKENS, TEXT_MODEL_ID, TextModel};
use crate::models::llama::{ChatMessage, Sampling};
use crate::payment::{Charge, PricePerToken, VoucherStore};

/// What the text routes share: the embeddings gateway (its cashier and voucher store, so both
/// models draw on one cumulative voucher per payer) and the text model.
pub struct TextState<S> {
    /// The embeddings gateway, whose cashier and voucher store the text routes charge through.
    pub gateway: Arc<Gateway<S>>,
    /// The text model that generates the completions.
    pub model: Arc<TextModel>,
    /// What a token of the text model costs (prompt and generated alike).
    pub price: PricePerToken,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// The fields both endpoints share.
#[derive(Deserialize)]
pub(crate) struct Options {
    model: String,
    max_tokens: Option<usize>,
    /// The chat API's newer name for max_tokens.
    max_completion_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    stream: bool,
    stop: Option<OneOrMany>,
    /// A prompt that leaves no room for max_tokens in the context: refused when false (400
    /// `context_length_exceeded`); when true, the oldest input is dropped to fit (the first
    /// tokens of a completion prompt, whole messages after the system turn of a chat).
    #[serde(default)]
    truncate: bool,
}

#[derive(Deserialize)]
pub(crate) struct CompletionRequest {
    prompt: OneOrMany,
    #[serde(flatten)]
    options: Options,
}

#[derive(Deserialize)]
pub(crate) struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(flatten)]
    options: Options,
}

/// OpenAI's default when max_tokens is absent (completions API).
const DEFAULT_MAX_TOKENS: usize = 16;

/// A request checked and ready to run: what to generate, and how to answer.
struct Checked {
    job: Job,
    stream: bool,
}

impl Options {
    fn max_tokens(&self) -> usize {
        self.max_completion_tokens.or(self.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS)
    }

    /// The prompt tokens that fit the context besides max_tokens, when the request asks to
    /// truncate; None when it does not.
    fn truncate_to(&self, model: &TextModel) -> Option<usize> {
        self.truncate.then(|| model.max_context().saturating_sub(self.max_tokens()))
    }

    fn check(self, model: &TextModel, prompt: Vec<u32>) -> Result<Checked, ApiError> {
        if self.model != TEXT_MODEL_ID {
            return Err(ApiError::ModelNotFound(self.model));
        }
        let max_tokens = self.max_tokens();
        if max_tokens == 0 || max_tokens > MAX_COMPLETION_TOKENS {
            return Err(ApiError::invalid(
                format!("max_tokens must be between 1 and {MAX_COMPLETION_TOKENS}"),
                Some("max_tokens"),
            ));
        }
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid("temperature must be between 0 and 2", Some("temperature")));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid("top_p must be in (0, 1]", Some("top_p")));
        }
        let stops = self.stop.map(OneOrMany::into_vec).unwrap_or_default();
        if stops.len() > 4 || stops.iter().any(String::is_empty) {
            return Err(ApiError::invalid("stop must be up to 4 non-empty strings", Some("stop")));
        }
        if prompt.is_empty() {
            return Err(ApiError::invalid("the prompt is empty", Some("prompt")));
        }
        if prompt.len() + max_tokens > model.max_context() {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "the prompt ({} tokens) plus max_tokens ({max_tokens}) exceed the {}-token context",
                    prompt.len(),
                    model.max_context()
                ),
                param: Some("max_tokens"),
                code: Some("context_length_exceeded"),
            });
        }
        // Without a seed each call draws differently; with one, the same request repeats.
        let seed = self.seed.unwrap_or_else(|| tora_core::clock::unix_nanos() as u64);
        Ok(Checked {
            job: Job { prompt, max_tokens, sampling: Sampling { temperature, top_p, seed }, stops },
            stream: self.stream,
        })
    }
}

fn encode(model: &TextModel, text: &str) -> Result<Vec<u32>, ApiError> {
    model.tokenizer.encode(text).map_err(|e| ApiError::Internal(e.to_string()))
}

pub(crate) async fn completion<S: VoucherStore>(
    State(state): State<Arc<TextState<S>>>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let prompts = request.prompt.into_vec();
    let [prompt] = prompts.as_slice() else {
        return Err(ApiError::invalid("prompt must be one string", Some("prompt")));
    };
    let mut ids = encode(&state.model, prompt)?;
    if let Some(room) = request.options.truncate_to(&state.model) {
        // The end of a prompt is what the completion continues: drop its beginning.
        ids.drain(..ids.len().saturating_sub(room));
    }
    let checked = request.options.check(&state.model, ids)?;
    run(state, &headers, checked, Kind::Completion).await
}

pub(crate) async fn chat<S: VoucherStore>(
    State(state): State<Arc<TextState<S>>>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid("messages must not be empty", Some("messages")));
    }
    if let Some(m) =
        request.messages.iter().find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        return Err(ApiError::invalid(format!("unknown role {:?}", m.role), Some("messages")));
    }
    let mut messages = request.messages;
    let render = |messages: &[ChatMessage]| {
        state
            .model
            .chat
            .render(&state.model.tokenizer, messages)
            .map_err(|e| ApiError::Internal(e.to_string()))
    };
    let mut ids = render(&messages)?;
    if let Some(room) = request.options.truncate_to(&state.model) {
        // The oldest turns go first; the system turn and the last message stay (a last message
        // that alone is too long is refused below).
        while ids.len() > room
            && let Some(oldest) = messages[..messages.len() - 1].iter().position(|m| m.role != "system")
        {
            messages.remove(oldest);
            ids = render(&messages)?;
        }
    }
    let checked = request.options.check(&state.model, ids)?;
    run(state, &headers, checked, Kind::Chat).await
}

#[derive(Clone, Copy)]
enum Kind {
    Completion,
    Chat,
}

impl Kind {
    fn object(self, stream: bool) -> &'static str {
        match (self, stream) {
            (Self::Completion, _) => "text_completion",
            (Self::Chat, false) => "chat.completion",
            (Self::Chat, true) => "chat.completion.chunk",
        }
    }

    /// One choice: the whole text, or a streamed delta.
    fn choice<'a>(self, text: &'a str, finish: Option<&'static str>, stream: bool) -> Choice<'a> {
        let message = |role| Message { role, content: text };
        let body = match (self, stream) {
            (Self::Completion, _) => ChoiceBody::Text { text, logprobs: None },
            (Self::Chat, false) => ChoiceBody::Message { message: message(Some("assistant")) },
            (Self::Chat, true) => ChoiceBody::Delta { delta: message(None) },
        };
        Choice { index: 0, body, finish_reason: finish }
    }
}

/// An OpenAI completion or chat completion, whole or as one streamed chunk.
#[derive(Serialize)]
struct CompletionResponse<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'static str,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    /// What the answer was charged (a stream's last chunk only).
    #[serde(skip_serializing_if = "Option::is_none")]
    tora_charge: Option<ChargeBody>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    #[serde(flatten)]
    body: ChoiceBody<'a>,
    finish_reason: Option<&'static str>,
}

/// A completion's text, a chat reply's message, or a streamed chat delta.
#[derive(Serialize)]
#[serde(untagged)]
enum ChoiceBody<'a> {
    Text { text: &'a str, logprobs: Option<()> },
    Message { message: Message<'a> },
    Delta { delta: Message<'a> },
}

#[derive(Serialize)]
struct Message<'a> {
    /// Only the first delta of a stream and a whole reply say who speaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    content: &'a str,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
}

/// The charge in a stream's last chunk: decimal strings, like the headers.
#[derive(Serialize)]
struct ChargeBody {
    charged: String,
    cumulative_amount: String,
}

impl From<&Charge> for ChargeBody {
    fn from(charge: &Charge) -> Self {
        Self { charged: charge.price.0.to_string(), cumulative_amount: charge.cumulative_amount.to_string() }
    }
}

fn usage(prompt: usize, completion: usize) -> Usage {
    Usage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

fn response_id() -> String {
    format!("cmpl-{:x}", tora_core::clock::unix_nanos())
}

fn created() -> u64 {
    tora_core::clock::unix_now()
}

async fn run<S: VoucherStore>(
    state: Arc<TextState<S>>,
    headers: &HeaderMap,
    Checked { job, stream: streamed }: Checked,
    kind: Kind,
) -> Result<Response, ApiError> {
    let voucher = voucher(headers)?;
    let generation =
        PaidGeneration::start(&state.gateway.cashier, &state.model, state.price, voucher, job).await?;
    let (id, created) = (response_id(), created());

    if !streamed {
        // In a task of its own, so that a client that leaves mid-call still pays for what ran.
        let done = tokio::spawn(async move { generation.whole(&state.gateway.cashier).await })
            .await
            .map_err(|e| ApiError::Internal(format!("the generation task failed: {e}")))??;
        let mut headers = charge_headers(&done.charge);
        headers.insert("x-tora-used", decimal_header(done.charge.price.0));
        let body = CompletionResponse {
            id: &id,
            object: kind.object(false),
            created,
            model: TEXT_MODEL_ID,
            choices: [kind.choice(&done.text, Some(done.finish.as_str()), false)],
            usage: Some(usage(done.prompt_tokens, done.generated)),
            tora_charge: None,
        };
        return Ok((headers, Json(body)).into_response());
    }

    // Streaming: the worst case is held before the first byte (the headers say how much);
    // the exact charge comes in the last chunk, with usage.
    let mut headers = HeaderMap::new();
    headers.insert("x-tora-held", decimal_header(generation.held().0));
    // Room for every event a generation can make, so sending never waits on a slow reader.
    let (events, stream) = mpsc::channel::<Event>(MAX_COMPLETION_TOKENS + 4);
    tokio::spawn(async move {
        let chunk = |choice: Choice<'_>, extra: Option<(Usage, ChargeBody)>| {
            let (usage, tora_charge) = extra.unzip();
            let body = CompletionResponse {
                id: &id,
                object: kind.object(true),
                created,
                model: TEXT_MODEL_ID,
                choices: [choice],
                usage,
                tora_charge,
            };
            Event::default().data(serde_json::to_string(&body).unwrap_or_default())
        };
        if matches!(kind, Kind::Chat) {
            let first = Choice {
                index: 0,
                body: ChoiceBody::Delta { delta: Message { role: Some("assistant"), content: "" } },
                finish_reason: None,
            };
            let _ = events.send(chunk(first, None)).await;
        }
        let done = generation
            .stream(&state.gateway.cashier, |delta| {
                delta.is_empty() || events.try_send(chunk(kind.choice(delta, None, true), None)).is_ok()
            })
            .await;
        let done = match done {
            Ok(done) => done,
            Err(e) => {
                let message = ApiError::from(e).to_string();
                let error = json!({ "error": { "message": message, "type": "server_error" } });
                let _ = events.send(Event::default().data(error.to_string())).await;
                return;
            }
        };
        let finish = Some(done.finish.as_str());
        let extra = (usage(done.prompt_tokens, done.generated), ChargeBody::from(&done.charge));
        let _ = events.send(chunk(kind.choice(&done.tail, finish, true), Some(extra))).await;
        let _ = events.send(Event::default().data("[DONE]")).await;
    });
    Ok((headers, Sse::new(EventStream(stream))).into_response())
}

/// The server-sent events as the stream axum's `Sse` wants.
struct EventStream(mpsc::Receiver<Event>);

impl futures_core::Stream for EventStream {
    type Item = Result<Event, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

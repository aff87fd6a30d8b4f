//! `POST /v1/embeddings`: validate, meter, take a queue place, check the voucher and hold the
//! price, embed, charge it, answer. The order puts every free refusal before any chain read and
//! every chain read before any compute.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::json::ApiJson;
use super::{ApiError, Gateway};
use crate::models::bert::embedder::MAX_BATCH;
use crate::payment::{Charge, PaymentError, SignedVoucher, VOUCHER_HEADER, VoucherStore};

/// The one model served, under the name sentence-transformers gives it.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

/// How `/v1/embeddings` encodes each vector, as the request's `encoding_format` asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// A JSON array of numbers (the default).
    #[default]
    Float,
    /// Little-endian f32s, base64: what the OpenAI SDKs ask for by default.
    Base64,
}

#[derive(Deserialize)]
pub(crate) struct EmbeddingsRequest {
    model: String,
    input: Input,
    #[serde(default)]
    encoding_format: EncodingFormat,
    /// Cut texts over the model's limit instead of refusing them (not an OpenAI field).
    #[serde(default)]
    truncate: bool,
    dimensions: Option<usize>,
}

impl EmbeddingsRequest {
    /// The texts, once the request asks for something this gateway serves.
    fn texts(self, dim: usize) -> Result<Vec<String>, ApiError> {
        if self.model != MODEL_ID {
            return Err(ApiError::ModelNotFound(self.model));
        }
        if self.dimensions.is_some_and(|d| d != dim) {
            return Err(ApiError::invalid(format!("{MODEL_ID} has {dim} dimensions"), Some("dimensions")));
        }
        let texts = match self.input {
            Input::One(text) => vec![text],
            Input::Many(texts) => texts,
        };
        if texts.is_empty() || texts.iter().any(String::is_empty) {
            return Err(ApiError::invalid(
                "input must be a non-empty string or array of them",
                Some("input"),
            ));
        }
        if texts.len() > MAX_BATCH {
            return Err(ApiError::invalid(format!("at most {MAX_BATCH} inputs per request"), Some("input")));
        }
        Ok(texts)
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

impl Vector {
    fn encode(values: Vec<f32>, format: EncodingFormat) -> Self {
        match format {
            EncodingFormat::Float => Self::Float(values),
            EncodingFormat::Base64 => {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                Self::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }
}

#[derive(Serialize)]
struct Item {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct EmbeddingsResponse {
    object: &'static str,
    data: Vec<Item>,
    model: &'static str,
    usage: Usage,
}

pub(super) fn voucher(headers: &HeaderMap) -> Result<Option<SignedVoucher>, ApiError> {
    headers
        .get(VOUCHER_HEADER)
        .map(|value| SignedVoucher::from_header(value.as_bytes()).map_err(PaymentError::Malformed))
        .transpose()
        .map_err(ApiError::from)
}

pub(crate) async fn create<S: VoucherStore>(
    State(gateway): State<Arc<Gateway<S>>>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    let format = request.encoding_format;
    let truncate = request.truncate;
    let texts = request.texts(gateway.dim)?;
    let voucher = voucher(&headers)?;
    let (texts, metered) = gateway.meter.tokens(texts, truncate).await?;
    let tokens: u64 = metered.iter().map(|&t| t as u64).sum();
    let price = gateway.cashier.price(tokens)?;

    let slot = gateway.queue.reserve()?;
    let reservation = gateway.cashier.authorize(voucher, price).await?;
    let embeddings = match slot.embed(texts).await {
        // Never charge for a count the model disagrees with.
        Ok(e) if e.tokens != metered => {
            Err(ApiError::Internal(format!("metered {metered:?} tokens but the model ran {:?}", e.tokens)))
        }
        other => other.map_err(ApiError::from),
    };
    let embeddings = match embeddings {
        Ok(e) => e,
        Err(e) => {
            gateway.cashier.release(reservation).await;
            return Err(e);
        }
    };
    // The price is exact before the call: what was held is what is charged.
    let charge = gateway.cashier.settle(reservation, price).await?;
    crate::payment::metrics::charged(MODEL_ID, tokens, charge.price);

    let data = embeddings
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| Item { object: "embedding", index, embedding: Vector::encode(v, format) })
        .collect();
    let body = EmbeddingsResponse {
        object: "list",
        data,
        model: MODEL_ID,
        usage: Usage { prompt_tokens: tokens, total_tokens: tokens },
    };
    Ok((charge_headers(&charge), Json(body)).into_response())
}

/// What was charged: this call's exact price and everything the payer was charged so far, for
/// clients that keep their own account.
pub(super) fn charge_headers(charge: &Charge) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-tora-charged", decimal_header(charge.price.0));
    headers.insert("x-tora-cumulative-amount", decimal_header(charge.cumulative_amount));
    headers
}

/// An amount as a header: decimal, like every amount the API shows.
pub(super) fn decimal_header(amount: alloy::primitives::U256) -> HeaderValue {
    HeaderValue::from_str(&amount.to_string()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

//! Every refusal as the OpenAI APIs shape it, `{"error": {"message", "type", "param", "code"}}`,
//! so the SDKs raise their usual exceptions; a 402 adds the amounts to sign for.

use alloy::primitives::U256;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tora_core::money::ToraUnits;

use crate::generation::GenerationError;
use crate::metering::MeterError;
use crate::models::QueueError;
use crate::payment::PaymentError;

/// Every way an API call fails, each with its HTTP status and OpenAI error `type` and `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or out of bounds (400).
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, as the client is told it.
        message: String,
        /// The request field at fault (OpenAI's `param`).
        param: Option<&'static str>,
        /// OpenAI's machine-readable `code`, e.g. `context_length_exceeded`.
        code: Option<&'static str>,
    },
    /// Refused with this status and message before a handler ran: unknown route, wrong method, bad body.
    #[error("{0}")]
    Rejected(StatusCode, String),
    /// The request names a model this gateway does not serve (404).
    #[error("the model `{0}` does not exist")]
    ModelNotFound(String),
    /// Metering the input failed: a text over the token limit (400) or the tokenizer itself (500).
    #[error(transparent)]
    Meter(#[from] MeterError),
    /// The voucher is missing, malformed or does not pay for the call (400, 402, 403), or it could
    /// not be checked (503).
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The model's queue is full (429), its worker stopped (503), or the model failed (500).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The request ran past the HTTP timeout, which it carries (408).
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    /// A fault on the gateway's side (500), with what went wrong.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 `invalid_request_error` about `param`, without a code.
    pub fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self::InvalidRequest { message: message.into(), param, code: None }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::Meter(MeterError::TooLong { .. }) => StatusCode::BAD_REQUEST,
            Self::Rejected(status, _) => *status,
            Self::ModelNotFound(_) => StatusCode::NOT_FOUND,
            Self::Payment(PaymentError::Malformed(_)) => StatusCode::BAD_REQUEST,
            Self::Payment(PaymentError::Chain(_) | PaymentError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Payment(PaymentError::Overflow) => StatusCode::BAD_REQUEST,
            // No voucher pays for these until the payer acts (cancels, or fixes its wallet).
            Self::Payment(PaymentError::WithdrawalRequested { .. } | PaymentError::Suspended { .. }) => {
                StatusCode::FORBIDDEN
            }
            Self::Payment(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Queue(QueueError::Full(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Queue(QueueError::Stopped) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Meter(MeterError::Tokenizer(_)) | Self::Queue(QueueError::Model(_)) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// OpenAI's `type`, then `param` and `code`.
    fn kind(&self) -> (&'static str, Option<&'static str>, Option<&'static str>) {
        match self {
            Self::InvalidRequest { param, code, .. } => ("invalid_request_error", *param, *code),
            Self::Rejected(..) => ("invalid_request_error", None, None),
            Self::ModelNotFound(_) => ("invalid_request_error", Some("model"), Some("model_not_found")),
            Self::Meter(MeterError::TooLong { .. }) => {
                ("invalid_request_error", Some("input"), Some("context_length_exceeded"))
            }
            Self::Payment(PaymentError::Malformed(_)) => {
                ("invalid_request_error", Some("X-Tora-Voucher"), Some("invalid_voucher"))
            }
            Self::Payment(PaymentError::InvalidSignature { .. }) => {
                ("payment_required", Some("X-Tora-Voucher"), Some("invalid_voucher_signature"))
            }
            Self::Payment(PaymentError::InsufficientDeposit { .. }) => {
                ("payment_required", Some("X-Tora-Voucher"), Some("insufficient_deposit"))
            }
            Self::Payment(PaymentError::Missing { .. } | PaymentError::Underpaid { .. }) => {
                ("payment_required", Some("X-Tora-Voucher"), Some("voucher_required"))
            }
            Self::Payment(PaymentError::WithdrawalRequested { .. }) => {
                ("permission_error", None, Some("withdrawal_requested"))
            }
            Self::Payment(PaymentError::Suspended { .. }) => {
                ("permission_error", None, Some("payer_suspended"))
            }
            Self::Queue(QueueError::Full(_)) => ("rate_limit_error", None, Some("queue_full")),
            Self::Timeout(_) => ("timeout_error", None, None),
            _ if self.status().is_server_error() => ("server_error", None, None),
            _ => ("invalid_request_error", None, None),
        }
    }
}

impl From<GenerationError> for ApiError {
    fn from(e: GenerationError) -> Self {
        match e {
            GenerationError::Payment(e) => Self::Payment(e),
            GenerationError::Queue(e) => Self::Queue(e),
            GenerationError::Model(e) => Self::Internal(e.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Body {
    error: Detail,
}

#[derive(Serialize)]
struct Detail {
    message: String,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
    /// This call's price in TORA base units (402 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_due: Option<String>,
    /// The least cumulative amount a voucher must carry to pay for this call (402 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    cumulative_amount_expected: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let (kind, param, code) = self.kind();
        let amounts = match &self {
            Self::Payment(e) => e.amounts(),
            _ => None,
        };
        let decimal = |v: U256| v.to_string();
        let detail = Detail {
            message: self.to_string(),
            kind,
            param,
            code,
            amount_due: amounts.map(|(due, _): (ToraUnits, _)| decimal(due.0)),
            cumulative_amount_expected: amounts.and_then(|(_, expected)| expected.map(decimal)),
        };
        (status, Json(Body { error: detail })).into_response()
    }
}

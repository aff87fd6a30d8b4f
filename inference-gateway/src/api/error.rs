//! Every refusal as the OpenAI APIs shape it, `{"error": {"message", "type", "param", "code"}}`,
//! so the SDKs raise their usual exceptions; a 402 adds the amounts to sign for.

use alloy::primitives::U256;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tora_core::money::ToraUnits;

use crate::metering::MeterError;
use crate::models::QueueError;
use crate::payment::PaymentError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest { message: String, param: Option<&'static str>, code: Option<&'static str> },
    #[error("{0}")]
    Rejected(StatusCode, String),
    #[error("the model `{0}` does not exist")]
    ModelNotFound(String),
    #[error(transparent)]
    Meter(#[from] MeterError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
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

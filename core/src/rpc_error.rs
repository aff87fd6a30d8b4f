//! The one JSON-RPC error type of every service, with the ERC-4337 / ERC-7562 codes mapped in
//! exactly this place.

use serde::Serialize;
use serde_json::Value;

/// JSON-RPC 2.0 codes plus the ERC-4337 bundler and ERC-7677 paymaster ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum ErrorCode {
    /// The request body is not valid JSON.
    ParseError = -32700,
    /// The JSON is not a valid JSON-RPC 2.0 request (or the batch is empty or too large).
    InvalidRequest = -32600,
    /// The service has no method of that name.
    MethodNotFound = -32601,
    /// Also ERC-4337's "invalid UserOperation struct/fields".
    InvalidParams = -32602,
    /// A failure inside the service (node, store), not the caller's fault.
    Internal = -32603,
    /// Rejected by the EntryPoint's simulation or the account (an `AAxx` reason).
    RejectedByEntryPointOrAccount = -32500,
    /// Rejected by the paymaster's `validatePaymasterUserOp`, or refused by the paymaster service.
    RejectedByPaymaster = -32501,
    /// ERC-7562 opcode or storage rule broken.
    BannedOpcode = -32502,
    /// validUntil / validAfter outside the accepted window.
    OutOfTimeRange = -32503,
    /// An entity is throttled or banned by reputation.
    ThrottledOrBanned = -32504,
    /// An entity's stake or unstake delay is below the chain's minimum (ERC-7562).
    StakeTooLow = -32505,
    /// The account names a signature aggregator the bundler does not support.
    UnsupportedAggregator = -32506,
    /// The account's (or the paymaster's) signature check failed.
    InvalidSignature = -32507,
    /// The paymaster's EntryPoint deposit cannot cover all its pending operations.
    PaymasterDepositTooLow = -32508,
    /// The operation's execution reverts (estimation).
    ExecutionReverted = -32521,
    /// Too many requests for this API key (EIP-1474 "limit exceeded").
    LimitExceeded = -32005,
}

impl ErrorCode {
    /// The numeric code as it goes on the wire.
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// An error as it goes on the wire: `{ "code", "message", "data"? }`.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize)]
#[error("{message} ({})", code.code())]
pub struct RpcError {
    /// The JSON-RPC error code, serialised as its number.
    #[serde(serialize_with = "serialize_code")]
    pub code: ErrorCode,
    /// A human-readable reason.
    pub message: String,
    /// Structured details for the caller (e.g. a revert reason); omitted when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

fn serialize_code<S: serde::Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(code.code())
}

impl RpcError {
    /// An error with `code` and `message` and no data.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// The same error carrying `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// An [`ErrorCode::InvalidParams`] (-32602) error.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }

    /// An [`ErrorCode::Internal`] (-32603) error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_numeric_code_and_omits_empty_data() {
        let err = RpcError::new(ErrorCode::ThrottledOrBanned, "paymaster is throttled");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({ "code": -32504, "message": "paymaster is throttled" })
        );
        let with = RpcError::invalid_params("bad").with_data(serde_json::json!({ "field": "nonce" }));
        assert_eq!(serde_json::to_value(&with).unwrap()["data"]["field"], "nonce");
    }

    #[test]
    fn erc4337_codes_match_the_spec() {
        let codes = [
            (ErrorCode::InvalidParams, -32602),
            (ErrorCode::RejectedByEntryPointOrAccount, -32500),
            (ErrorCode::RejectedByPaymaster, -32501),
            (ErrorCode::BannedOpcode, -32502),
            (ErrorCode::OutOfTimeRange, -32503),
            (ErrorCode::ThrottledOrBanned, -32504),
            (ErrorCode::StakeTooLow, -32505),
            (ErrorCode::UnsupportedAggregator, -32506),
            (ErrorCode::InvalidSignature, -32507),
            (ErrorCode::PaymasterDepositTooLow, -32508),
            (ErrorCode::ExecutionReverted, -32521),
        ];
        for (code, expected) in codes {
            assert_eq!(code.code(), expected, "{code:?}");
        }
    }
}

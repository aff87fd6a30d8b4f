//! The one JSON-RPC error type of every service, with the ERC-4337 / ERC-7562 codes mapped in
//! exactly this place.

use serde::Serialize;
use serde_json::Value;

/// JSON-RPC 2.0 codes plus the ERC-4337 bundler and ERC-7677 paymaster ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum ErrorCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    /// Also ERC-4337's "invalid UserOperation struct/fields".
    InvalidParams = -32602,
    Internal = -32603,
    /// Rejected by the EntryPoint's simulation or the account (an `AAxx` reason).
    RejectedByEntryPointOrAccount = -32500,
    RejectedByPaymaster = -32501,
    /// ERC-7562 opcode or storage rule broken.
    BannedOpcode = -32502,
    /// validUntil / validAfter outside the accepted window.
    OutOfTimeRange = -32503,
    /// An entity is throttled or banned by reputation.
    ThrottledOrBanned = -32504,
    StakeTooLow = -32505,
    UnsupportedAggregator = -32506,
    InvalidSignature = -32507,
    PaymasterDepositTooLow = -32508,
    /// The operation's execution reverts (estimation).
    ExecutionReverted = -32521,
    /// Too many requests for this API key (EIP-1474 "limit exceeded").
    LimitExceeded = -32005,
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// An error as it goes on the wire: `{ "code", "message", "data"? }`.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize)]
#[error("{message} ({})", code.code())]
pub struct RpcError {
    #[serde(serialize_with = "serialize_code")]
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

fn serialize_code<S: serde::Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(code.code())
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }

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

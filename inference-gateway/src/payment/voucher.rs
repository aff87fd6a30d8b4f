//! A voucher as a client sends it: the payer, the new cumulative amount and the payer's
//! signature over the EIP-712 digest (the provider is the gateway's own address).

use alloy::primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};
use tora_core::escrow_voucher::Voucher;

/// The request header carrying [`SignedVoucher`] as JSON.
pub const VOUCHER_HEADER: &str = "x-tora-voucher";

/// `{"payer": "0x…", "cumulativeAmount": "<decimal TORA base units>", "signature": "0x…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedVoucher {
    /// The account that signed and pays: an EOA, or a contract wallet checked by ERC-1271.
    pub payer: Address,
    /// Everything the payer owes this provider so far, not this call's price.
    #[serde(with = "decimal")]
    pub cumulative_amount: U256,
    /// The payer's signature over the voucher's EIP-712 digest.
    pub signature: Bytes,
}

impl SignedVoucher {
    /// Parses the header's JSON.
    pub fn from_header(value: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(value).map_err(|e| format!("{VOUCHER_HEADER} is not a voucher: {e}"))
    }

    /// The EIP-712 struct the payer signed, for `provider`.
    pub fn voucher(&self, provider: Address) -> Voucher {
        Voucher::new(self.payer, provider, self.cumulative_amount)
    }
}

/// Amounts as decimal strings: JSON numbers lose precision past 2^53 in most clients, and hex
/// invites mistakes in what people read and type.
pub mod decimal {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `value` as a decimal string.
    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Reads a decimal string, refusing anything [`parse`] refuses.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a decimal amount")))
    }

    /// Digits only (no sign, no 0x, no exponent), at most 2^256 - 1.
    pub fn parse(text: &str) -> Option<U256> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        U256::from_str_radix(text, 10).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_takes_decimal_amounts_only() {
        let json = r#"{"payer":"0x00000000000000000000000000000000000000aa","cumulativeAmount":"18000000000000000042","signature":"0x0102"}"#;
        let v = SignedVoucher::from_header(json.as_bytes()).unwrap();
        assert_eq!(v.cumulative_amount, U256::from(18_000_000_000_000_000_042u128));
        assert_eq!(v.signature.as_ref(), &[1, 2]);
        assert_eq!(serde_json::to_string(&v).unwrap(), json, "stored exactly as received");

        for bad in [
            "\"0x10\"",
            "\"-1\"",
            "\"1e3\"",
            "\"\"",
            "12",
            "\"1157920892373161954235709850086879078532699846656405640394575840079131296399360\"",
        ] {
            let json = format!(
                r#"{{"payer":"0x00000000000000000000000000000000000000aa","cumulativeAmount":{bad},"signature":"0x"}}"#
            );
            assert!(SignedVoucher::from_header(json.as_bytes()).is_err(), "{bad} accepted");
        }
        assert!(SignedVoucher::from_header(b"not json").is_err());
    }
}

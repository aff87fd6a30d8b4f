//! The ERC-4337 v0.7 user operation: the unpacked JSON-RPC form wallets send, its packed
//! on-chain form, and the `userOpHash` exactly as `EntryPoint.getUserOpHash` computes it.

use alloy::primitives::{Address, B256, Bytes, U128, U256, address, keccak256};
use alloy::sol_types::SolValue;
use serde::{Deserialize, Serialize};

pub use crate::contracts::EntryPoint::PackedUserOperation;

/// EntryPoint v0.7, at the same address on every chain.
pub const ENTRY_POINT_V07: Address = address!("0000000071727De22E5E9d8BAf0edAc6f37da032");

/// Length of the fixed `paymasterAndData` prefix: paymaster, verification and postOp gas limits.
pub const PAYMASTER_DATA_OFFSET: usize = 20 + 16 + 16;

/// A v0.7 user operation as `eth_sendUserOperation` carries it (ERC-4337 "RPC" form).
///
/// Gas fields are `U128` because the EntryPoint packs them into 128-bit halves: anything larger
/// is an invalid field (-32602), never a silent truncation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOperation {
    /// The smart account that executes the operation.
    pub sender: Address,
    /// The account's EntryPoint nonce: 192-bit key, 64-bit sequence.
    pub nonce: U256,
    /// Factory that deploys the account in this operation; `None` if it already exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory: Option<Address>,
    /// Calldata for the factory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory_data: Option<Bytes>,
    /// What the EntryPoint calls the account with in the execution phase.
    pub call_data: Bytes,
    /// Gas limit of the execution call.
    pub call_gas_limit: U128,
    /// Gas limit of account creation and `validateUserOp`.
    pub verification_gas_limit: U128,
    /// Gas paid to the bundler outside the gas limits (calldata, overhead, L1 data fee).
    pub pre_verification_gas: U256,
    /// Most wei per gas the operation pays (EIP-1559 max fee).
    pub max_fee_per_gas: U128,
    /// Most wei per gas it tips above the base fee (EIP-1559 priority fee).
    pub max_priority_fee_per_gas: U128,
    /// Paymaster that pays the gas; `None` if the account pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster: Option<Address>,
    /// Gas limit of `validatePaymasterUserOp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster_verification_gas_limit: Option<U128>,
    /// Gas limit of the paymaster's `postOp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster_post_op_gas_limit: Option<U128>,
    /// The paymaster's own data (for ToraPaymaster, a signed quote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster_data: Option<Bytes>,
    /// The account's signature over the user operation hash, as its `validateUserOp` checks it.
    pub signature: Bytes,
}

/// The fields of the v0.7 RPC form, in the ERC's order.
pub const RPC_FIELDS: [&str; 15] = [
    "sender",
    "nonce",
    "factory",
    "factoryData",
    "callData",
    "callGasLimit",
    "verificationGasLimit",
    "preVerificationGas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "paymaster",
    "paymasterVerificationGasLimit",
    "paymasterPostOpGasLimit",
    "paymasterData",
    "signature",
];

impl UserOperation {
    /// The strict RPC form that eth_sendUserOperation takes: an object of the v0.7 fields only
    /// (a field of another version, such as `eip7702Auth`, would be silently dropped from what
    /// is signed and bundled), each a `0x`-prefixed hex string or null when optional. The error
    /// names the field.
    pub fn from_rpc(value: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(fields) = &value else {
            return Err("a user operation must be a JSON object".to_owned());
        };
        if let Some(unknown) = fields.keys().find(|k| !RPC_FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "unknown user operation field {unknown} (EntryPoint v0.7 has {})",
                RPC_FIELDS.join(", ")
            ));
        }
        if let Some(why) = crate::strict_hex::first_non_hex_field(fields) {
            return Err(why);
        }
        serde_json::from_value(value).map_err(|e| format!("invalid user operation: {e}"))
    }

    /// [`UserOperation::from_rpc`] of an operation that may leave out `defaults`' fields (or
    /// give them as null), each read as its default: an operation before its gas is estimated.
    pub fn from_rpc_with_defaults<'a>(
        mut value: serde_json::Value,
        defaults: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        if let serde_json::Value::Object(fields) = &mut value {
            for (name, default) in defaults {
                let field = fields.entry(name).or_insert(serde_json::Value::Null);
                if field.is_null() {
                    *field = serde_json::Value::String(default.to_owned());
                }
            }
        }
        Self::from_rpc(value)
    }
}

/// Why a packed operation could not be unpacked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnpackError {
    /// `initCode` is too short to hold a factory address; its length in bytes.
    #[error("initCode must be empty or at least 20 bytes, got {0}")]
    InitCodeTooShort(usize),
    /// `paymasterAndData` is too short for its fixed prefix; its length in bytes.
    #[error("paymasterAndData must be empty or at least 52 bytes, got {0}")]
    PaymasterAndDataTooShort(usize),
}

/// Two 128-bit values in one word, high half first, as `UserOperationLib` packs gas fields.
pub fn pack_u128_pair(high: U128, low: U128) -> B256 {
    B256::from((U256::from(high) << 128) | U256::from(low))
}

/// The inverse of [`pack_u128_pair`].
pub fn unpack_u128_pair(word: B256) -> (U128, U128) {
    let value = U256::from_be_bytes(word.0);
    let mask = (U256::from(1) << 128) - U256::from(1);
    (U128::from(value >> 128), U128::from(value & mask))
}

impl UserOperation {
    /// `factory ++ factoryData`, empty when the account already exists.
    pub fn init_code(&self) -> Bytes {
        match self.factory {
            Some(factory) => {
                let data = self.factory_data.as_ref().map_or(&[][..], |d| &d[..]);
                [factory.as_slice(), data].concat().into()
            }
            None => Bytes::new(),
        }
    }

    /// The 32 bytes at `paymasterAndData[20..52]`: verification and postOp gas limits.
    pub fn paymaster_gas_limits(&self) -> B256 {
        pack_u128_pair(
            self.paymaster_verification_gas_limit.unwrap_or_default(),
            self.paymaster_post_op_gas_limit.unwrap_or_default(),
        )
    }

    /// `paymaster ++ verificationGasLimit ++ postOpGasLimit ++ paymasterData`, or empty.
    pub fn paymaster_and_data(&self) -> Bytes {
        match self.paymaster {
            Some(paymaster) => {
                let data = self.paymaster_data.as_ref().map_or(&[][..], |d| &d[..]);
                let limits = self.paymaster_gas_limits();
                [paymaster.as_slice(), &limits[..], data].concat().into()
            }
            None => Bytes::new(),
        }
    }

    /// The on-chain form `handleOps` takes.
    pub fn pack(&self) -> PackedUserOperation {
        PackedUserOperation {
            sender: self.sender,
            nonce: self.nonce,
            initCode: self.init_code(),
            callData: self.call_data.clone(),
            accountGasLimits: pack_u128_pair(self.verification_gas_limit, self.call_gas_limit),
            preVerificationGas: self.pre_verification_gas,
            gasFees: pack_u128_pair(self.max_priority_fee_per_gas, self.max_fee_per_gas),
            paymasterAndData: self.paymaster_and_data(),
            signature: self.signature.clone(),
        }
    }

    /// The inverse of [`UserOperation::pack`].
    pub fn unpack(packed: &PackedUserOperation) -> Result<Self, UnpackError> {
        let (factory, factory_data) = match packed.initCode.len() {
            0 => (None, None),
            n if n < 20 => return Err(UnpackError::InitCodeTooShort(n)),
            _ => (
                Some(Address::from_slice(&packed.initCode[..20])),
                Some(Bytes::copy_from_slice(&packed.initCode[20..])),
            ),
        };
        let pm = &packed.paymasterAndData;
        let (paymaster, pm_verification, pm_post_op, paymaster_data) = match pm.len() {
            0 => (None, None, None, None),
            n if n < PAYMASTER_DATA_OFFSET => {
                return Err(UnpackError::PaymasterAndDataTooShort(n));
            }
            _ => {
                let (verification, post_op) =
                    unpack_u128_pair(B256::from_slice(&pm[20..PAYMASTER_DATA_OFFSET]));
                (
                    Some(Address::from_slice(&pm[..20])),
                    Some(verification),
                    Some(post_op),
                    Some(Bytes::copy_from_slice(&pm[PAYMASTER_DATA_OFFSET..])),
                )
            }
        };
        let (verification_gas_limit, call_gas_limit) = unpack_u128_pair(packed.accountGasLimits);
        let (max_priority_fee_per_gas, max_fee_per_gas) = unpack_u128_pair(packed.gasFees);
        Ok(Self {
            sender: packed.sender,
            nonce: packed.nonce,
            factory,
            factory_data,
            call_data: packed.callData.clone(),
            call_gas_limit,
            verification_gas_limit,
            pre_verification_gas: packed.preVerificationGas,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            paymaster,
            paymaster_verification_gas_limit: pm_verification,
            paymaster_post_op_gas_limit: pm_post_op,
            paymaster_data,
            signature: packed.signature.clone(),
        })
    }

    /// `userOpHash` as `EntryPoint.getUserOpHash` computes it on `chain_id`.
    pub fn hash(&self, entry_point: Address, chain_id: u64) -> B256 {
        user_op_hash(&self.pack(), entry_point, chain_id)
    }

    /// The most the operation can cost in wei: every gas limit at `maxFeePerGas`. This is the
    /// `requiredPrefund` (`maxCost`) the EntryPoint passes to the account or paymaster.
    pub fn max_cost_wei(&self) -> U256 {
        let gas = U256::from(self.verification_gas_limit)
            + U256::from(self.call_gas_limit)
            + U256::from(self.paymaster_verification_gas_limit.unwrap_or_default())
            + U256::from(self.paymaster_post_op_gas_limit.unwrap_or_default())
            + self.pre_verification_gas;
        gas * U256::from(self.max_fee_per_gas)
    }
}

/// `userOpHash` of a packed operation: it covers every field but the signature, the EntryPoint
/// and the chain, so a signature cannot be replayed across either.
pub fn user_op_hash(op: &PackedUserOperation, entry_point: Address, chain_id: u64) -> B256 {
    let fields = (
        op.sender,
        op.nonce,
        keccak256(&op.initCode),
        keccak256(&op.callData),
        op.accountGasLimits,
        op.preVerificationGas,
        op.gasFees,
        keccak256(&op.paymasterAndData),
    );
    let packed_hash = keccak256(fields.abi_encode());
    keccak256((packed_hash, entry_point, U256::from(chain_id)).abi_encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::bytes;

    fn sample() -> UserOperation {
        UserOperation {
            sender: address!("1111111111111111111111111111111111111111"),
            nonce: U256::from(7),
            factory: Some(address!("2222222222222222222222222222222222222222")),
            factory_data: Some(bytes!("abcd")),
            call_data: bytes!("b61d27f6"),
            call_gas_limit: U128::from(100_000),
            verification_gas_limit: U128::from(200_000),
            pre_verification_gas: U256::from(50_000),
            max_fee_per_gas: U128::from(3_000_000_000u64),
            max_priority_fee_per_gas: U128::from(1_000_000_000u64),
            paymaster: Some(address!("3333333333333333333333333333333333333333")),
            paymaster_verification_gas_limit: Some(U128::from(60_000)),
            paymaster_post_op_gas_limit: Some(U128::from(40_000)),
            paymaster_data: Some(bytes!("01020304")),
            signature: bytes!("ff"),
        }
    }

    #[test]
    fn pack_puts_high_half_first() {
        let packed = sample().pack();
        let (verification, call) = unpack_u128_pair(packed.accountGasLimits);
        assert_eq!(verification, U128::from(200_000));
        assert_eq!(call, U128::from(100_000));
        assert_eq!(&packed.accountGasLimits[16..], &U128::from(100_000).to_be_bytes::<16>());
        assert_eq!(packed.paymasterAndData.len(), 52 + 4);
        assert_eq!(packed.initCode.len(), 22);
    }

    #[test]
    fn unpack_inverts_pack() {
        let op = sample();
        assert_eq!(UserOperation::unpack(&op.pack()).unwrap(), op);
        let bare = UserOperation {
            factory: None,
            factory_data: None,
            paymaster: None,
            paymaster_verification_gas_limit: None,
            paymaster_post_op_gas_limit: None,
            paymaster_data: None,
            ..op
        };
        assert_eq!(UserOperation::unpack(&bare.pack()).unwrap(), bare);
    }

    #[test]
    fn unpack_rejects_truncated_prefixes() {
        let mut packed = sample().pack();
        packed.initCode = bytes!("0102");
        assert_eq!(UserOperation::unpack(&packed), Err(UnpackError::InitCodeTooShort(2)));
        let mut packed = sample().pack();
        packed.paymasterAndData = Bytes::copy_from_slice(&[0u8; 30]);
        assert_eq!(UserOperation::unpack(&packed), Err(UnpackError::PaymasterAndDataTooShort(30)));
    }

    #[test]
    fn json_rejects_gas_over_uint128() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["callGasLimit"] = serde_json::json!(format!("{:#x}", U256::MAX));
        assert!(serde_json::from_value::<UserOperation>(json).is_err());
    }

    #[test]
    fn json_round_trips_in_camel_case_hex() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["callGasLimit"], "0x186a0");
        assert_eq!(json["paymasterPostOpGasLimit"], "0x9c40");
        assert_eq!(serde_json::from_value::<UserOperation>(json).unwrap(), sample());
    }

    #[test]
    fn the_strict_rpc_form_names_the_field_it_refuses() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(UserOperation::from_rpc(json.clone()).unwrap(), sample());
        let mut unknown = json.clone();
        unknown["eip7702Auth"] = serde_json::json!({ "address": "0x01" });
        assert!(
            UserOperation::from_rpc(unknown)
                .unwrap_err()
                .starts_with("unknown user operation field eip7702Auth")
        );
        let mut bare = json.clone();
        bare["sender"] = serde_json::json!("1111111111111111111111111111111111111111");
        assert_eq!(UserOperation::from_rpc(bare).unwrap_err(), "sender must be 0x-prefixed hex");
        let mut number = json;
        number["nonce"] = serde_json::json!(7);
        assert_eq!(UserOperation::from_rpc(number).unwrap_err(), "nonce must be a 0x-prefixed hex string");
        assert!(UserOperation::from_rpc(serde_json::json!([1])).is_err());
    }

    #[test]
    fn max_cost_counts_every_gas_limit() {
        // (200k + 100k + 60k + 40k + 50k) * 3 gwei
        assert_eq!(sample().max_cost_wei(), U256::from(450_000u64 * 3_000_000_000u64));
    }
}

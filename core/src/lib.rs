//! Types every Tensora service shares: the ERC-4337 v0.7 user operation and its hash, contract
//! bindings generated from the committed artifacts, chain specs, the deployment file, paymaster
//! quotes, escrow vouchers and the JSON-RPC error codes. No I/O beyond reading small files.

pub mod chain_spec;
pub mod clock;
pub mod contracts;
pub mod deployment;
pub mod escrow_voucher;
pub mod l1_fee;
pub mod money;
pub mod node_client;
pub mod paymaster_quote;
pub mod permit;
pub mod pre_verification_gas;
pub mod price;
pub mod rpc_api;
pub mod rpc_error;
pub mod sponsorship;
pub mod strict_hex;
pub mod user_operation;

pub use chain_spec::ChainSpec;
pub use deployment::Deployment;
pub use rpc_error::{ErrorCode, RpcError};
pub use user_operation::{ENTRY_POINT_V07, UserOperation};

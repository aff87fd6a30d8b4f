//! ERC-4337 v0.7 bundler: JSON-RPC, ERC-7562 validation in revm, mempool, bundle builder.

//! ERC-7677 TORA paymaster service: oracle pricing, signed quotes, dapp sponsorship.

//! Bindings for `contracts/test/`: contracts that break ERC-7562 rules on purpose, so the
//! bundler's tests can show each rule refusing them, and payers that try to make a provider
//! serve calls it cannot redeem.

// Generated code: `sol!` turns every ABI function, event and error into types with no doc
// comments (the artifacts carry none), and Solidity functions take as many arguments as they do.
#![allow(missing_docs, clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    RuleHelper,
    "../contracts/test/artifacts/RuleHelper.json"
);

alloy::sol!(
    #[sol(rpc)]
    RuleBreakingAccount,
    "../contracts/test/artifacts/RuleBreakingAccount.json"
);

alloy::sol!(
    #[sol(rpc)]
    UnstakedPaymaster,
    "../contracts/test/artifacts/UnstakedPaymaster.json"
);

alloy::sol!(
    #[sol(rpc)]
    DoubleCreateFactory,
    "../contracts/test/artifacts/DoubleCreateFactory.json"
);

alloy::sol!(
    #[sol(rpc)]
    FickleWallet,
    "../contracts/test/artifacts/FickleWallet.json"
);

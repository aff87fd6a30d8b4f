//! Bindings for `contracts/test/`: contracts that break ERC-7562 rules on purpose, so the
//! bundler's tests can show each rule refusing them.

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

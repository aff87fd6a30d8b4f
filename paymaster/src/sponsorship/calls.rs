//! What a sponsored operation calls: the targets and selectors inside a SimpleAccount-style
//! `execute` / `executeBatch`, checked against a policy's allow-lists.

use alloy::primitives::{Address, FixedBytes};
use alloy::sol_types::SolCall;
use tora_core::contracts::SimpleAccount;
use tora_core::sponsorship::SponsorshipPolicy;

/// One call the wallet will make: a target and the selector it calls (`None` for a plain
/// value transfer or empty data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalletCall {
    /// The contract or account called.
    pub target: Address,
    /// The first four bytes of the call's data, when it has that many.
    pub selector: Option<FixedBytes<4>>,
}

/// Why a sponsored operation's calls are outside a policy's allow-lists.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallsError {
    /// callData is not `execute`/`executeBatch`, so its calls cannot be checked.
    #[error("callData is not an execute or executeBatch call, which this policy requires")]
    Unrecognised,
    /// A call's target is not on the policy's target list.
    #[error("the policy does not allow calling {0}")]
    Target(Address),
    /// A call's function is not on the policy's selector list.
    #[error("the policy does not allow function {selector:?} on {target}")]
    Selector {
        /// The call's target.
        target: Address,
        /// Its selector (`None` for a plain value transfer or data under four bytes).
        selector: Option<FixedBytes<4>>,
    },
}

fn selector_of(data: &[u8]) -> Option<FixedBytes<4>> {
    data.get(..4).map(FixedBytes::from_slice)
}

/// The calls inside `callData`, or `None` when it is not `execute`/`executeBatch`.
pub fn wallet_calls(call_data: &[u8]) -> Option<Vec<WalletCall>> {
    if let Ok(call) = SimpleAccount::executeCall::abi_decode(call_data) {
        return Some(vec![WalletCall { target: call.dest, selector: selector_of(&call.func) }]);
    }
    let batch = SimpleAccount::executeBatchCall::abi_decode(call_data).ok()?;
    Some(
        batch
            .dest
            .iter()
            .enumerate()
            .map(|(i, target)| WalletCall {
                target: *target,
                selector: batch.func.get(i).and_then(|f| selector_of(f)),
            })
            .collect(),
    )
}

/// Whether the policy's allow-lists admit every call in `call_data`.
pub fn check_calls(policy: &SponsorshipPolicy, call_data: &[u8]) -> Result<(), CallsError> {
    if policy.allowed_targets.is_empty() && policy.allowed_selectors.is_empty() {
        return Ok(());
    }
    let calls = wallet_calls(call_data).ok_or(CallsError::Unrecognised)?;
    for call in calls {
        if !policy.allowed_targets.is_empty() && !policy.allowed_targets.contains(&call.target) {
            return Err(CallsError::Target(call.target));
        }
        let allowed = call.selector.is_some_and(|s| policy.allowed_selectors.contains(&s));
        if !policy.allowed_selectors.is_empty() && !allowed {
            return Err(CallsError::Selector { target: call.target, selector: call.selector });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, U256};
    use tora_core::sponsorship::{Budget, ResetInterval};

    fn policy(targets: Vec<Address>, selectors: Vec<FixedBytes<4>>) -> SponsorshipPolicy {
        SponsorshipPolicy {
            id: "p".into(),
            name: "game".into(),
            icon: None,
            dapp: "dapp".into(),
            sponsor: Address::ZERO,
            budget: Budget::default(),
            reset: ResetInterval::Never,
            allowed_targets: targets,
            allowed_selectors: selectors,
            valid_after: 0,
            valid_until: u64::MAX,
        }
    }

    fn execute(target: Address, data: &[u8]) -> Vec<u8> {
        SimpleAccount::executeCall { dest: target, value: U256::ZERO, func: Bytes::copy_from_slice(data) }
            .abi_encode()
    }

    #[test]
    fn allow_lists_apply_to_every_call_in_a_batch() {
        let game = Address::repeat_byte(1);
        let other = Address::repeat_byte(2);
        let play = FixedBytes::from([0xaa, 0xbb, 0xcc, 0xdd]);
        let p = policy(vec![game], vec![play]);
        assert_eq!(check_calls(&p, &execute(game, &[0xaa, 0xbb, 0xcc, 0xdd, 1])), Ok(()));
        assert_eq!(
            check_calls(&p, &execute(other, &[0xaa, 0xbb, 0xcc, 0xdd])),
            Err(CallsError::Target(other))
        );
        assert!(matches!(check_calls(&p, &execute(game, &[1, 2, 3, 4])), Err(CallsError::Selector { .. })));
        assert!(matches!(
            check_calls(&p, &execute(game, &[])),
            Err(CallsError::Selector { selector: None, .. })
        ));
        let batch = SimpleAccount::executeBatchCall {
            dest: vec![game, other],
            value: vec![],
            func: vec![Bytes::from(vec![0xaa, 0xbb, 0xcc, 0xdd]), Bytes::from(vec![0xaa, 0xbb, 0xcc, 0xdd])],
        }
        .abi_encode();
        assert_eq!(check_calls(&p, &batch), Err(CallsError::Target(other)));
        assert_eq!(check_calls(&p, &[0xde, 0xad]), Err(CallsError::Unrecognised));
        assert_eq!(check_calls(&policy(vec![], vec![]), &[0xde, 0xad]), Ok(()), "no lists: anything");
    }
}

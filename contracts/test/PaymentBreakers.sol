// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Test-only payers that try to make an inference provider serve calls it cannot redeem. Never
// deploy these anywhere but a devnet.

/// An ERC-1271 wallet whose answer its owner can change after the fact: it accepts any
/// signature while honest, none once it turns, and burns all the gas it gets when greedy.
contract FickleWallet {
    enum Mood {
        Honest,
        Refusing,
        Greedy
    }

    Mood public mood;

    function setMood(Mood mood_) external {
        mood = mood_;
    }

    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        if (mood == Mood.Greedy) {
            uint256 i;
            while (gasleft() > 0) {
                i++;
            }
        }
        return mood == Mood.Honest ? this.isValidSignature.selector : bytes4(0xffffffff);
    }

    /// Lets the wallet approve the escrow for its TORA.
    function call(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory out) = target.call(data);
        require(ok, "call failed");
        return out;
    }
}

// SPDX-License-Identifier: GPL-3.0
pragma solidity ^0.8.23;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {SimpleAccount} from "@account-abstraction/contracts/samples/SimpleAccount.sol";

/// @title ToraAccount
/// @notice SimpleAccount (EntryPoint v0.7) plus ERC-1271, so the wallet can sign TORA permits
///         and inference vouchers with its owner key.
contract ToraAccount is SimpleAccount, IERC1271 {
    constructor(IEntryPoint anEntryPoint) SimpleAccount(anEntryPoint) {}

    /// @notice ERC-1271: valid iff `signature` is the owner's raw ECDSA signature over `hash`
    ///         (no EIP-191 prefix: callers pass EIP-712 digests). Never reverts.
    /// @return 0x1626ba7e when valid, 0xffffffff otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        // Checking err too: a malformed signature recovers to address(0), which is the owner of the
        // uninitialized implementation.
        if (err == ECDSA.RecoverError.NoError && recovered == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}

/// @title ToraAccountFactory
/// @notice CREATE2 factory of ERC1967 proxies to one ToraAccount implementation
///         (same shape as the v0.7 SimpleAccountFactory, so initCode stays familiar).
contract ToraAccountFactory is Ownable {
    /// @notice Implementation shared by every proxy.
    ToraAccount public immutable accountImplementation;
    IEntryPoint public immutable entryPoint;

    constructor(IEntryPoint _entryPoint, address initialOwner) Ownable(initialOwner) {
        entryPoint = _entryPoint;
        accountImplementation = new ToraAccount(_entryPoint);
    }

    /// @notice Stakes the factory in the EntryPoint. ERC-7562 (STO-022) lets a new wallet's first
    ///         operation touch storage associated with it in other contracts (its TORA balance, a
    ///         permit) only when the factory is staked: that is how a wallet pays its first op in TORA.
    function addStake(uint32 unstakeDelaySec) external payable onlyOwner {
        entryPoint.addStake{value: msg.value}(unstakeDelaySec);
    }

    function unlockStake() external onlyOwner {
        entryPoint.unlockStake();
    }

    function withdrawStake(address payable to) external onlyOwner {
        entryPoint.withdrawStake(to);
    }

    /// @notice Deploys the account for (owner, salt), or returns it if it already exists, so that
    ///         EntryPoint.getSenderAddress works before and after deployment.
    function createAccount(address owner, uint256 salt) public returns (ToraAccount ret) {
        address addr = getAddress(owner, salt);
        if (addr.code.length > 0) return ToraAccount(payable(addr));
        ret = ToraAccount(
            payable(
                new ERC1967Proxy{salt: bytes32(salt)}(
                    address(accountImplementation), abi.encodeCall(SimpleAccount.initialize, (owner))
                )
            )
        );
    }

    /// @notice Counterfactual address createAccount(owner, salt) deploys to.
    function getAddress(address owner, uint256 salt) public view returns (address) {
        return Create2.computeAddress(
            bytes32(salt),
            keccak256(
                abi.encodePacked(
                    type(ERC1967Proxy).creationCode,
                    abi.encode(address(accountImplementation), abi.encodeCall(SimpleAccount.initialize, (owner)))
                )
            )
        );
    }
}

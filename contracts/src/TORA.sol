// SPDX-License-Identifier: MIT
pragma solidity ^0.8.23;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title Tensora (TORA)
/// @notice 18-decimal ERC-20 with EIP-2612 permit that also accepts ERC-1271 signatures,
///         so smart wallets (which have no private key of their own) can permit the paymaster.
contract TORA is ERC20, ERC20Permit, Ownable {
    // OZ keeps its copy private, so the standard EIP-2612 typehash is restated here.
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /// @param initialOwner Account allowed to mint.
    constructor(address initialOwner) ERC20("Tensora", "TORA") ERC20Permit("Tensora") Ownable(initialOwner) {}

    /// @notice Mints `amount` base units to `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice EIP-2612 permit; `owner` may be an EOA (ECDSA) or a contract (ERC-1271 over the EIP-712 digest,
    ///         signature passed to it as abi.encodePacked(r, s, v)). `deadline == type(uint256).max` never expires.
    function permit(
        address owner,
        address spender,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) public override {
        // ERC-7562 (OP-011) bans TIMESTAMP while a user operation validates, and permits carried in
        // paymasterData are applied there: the maximal deadline means "no expiry" and skips the clock.
        // The nonce still makes every permit single-use.
        if (deadline != type(uint256).max && block.timestamp > deadline) revert ERC2612ExpiredSignature(deadline);

        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, _useNonce(owner), deadline));
        bytes32 digest = _hashTypedDataV4(structHash);

        if (!SignatureChecker.isValidSignatureNow(owner, digest, abi.encodePacked(r, s, v))) {
            // Report the ECDSA-recovered address (zero when unrecoverable), as OZ does.
            (address recovered,,) = ECDSA.tryRecover(digest, v, r, s);
            revert ERC2612InvalidSigner(recovered, owner);
        }

        _approve(owner, spender, value);
    }
}

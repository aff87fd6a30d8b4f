// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Test-only contracts that break (or carefully keep) ERC-7562 validation rules, so the
// bundler's validator can be checked against each rule on a real chain. Never deploy these
// anywhere but a devnet.

import "@account-abstraction/contracts/interfaces/IAccount.sol";
import "@account-abstraction/contracts/interfaces/IPaymaster.sol";
import "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";

/// A plain contract for rule breakers to touch: storage, transient storage, ETH.
contract RuleHelper {
    uint256 public value = 7;
    /// Storage associated with each address (ERC-7562 "associated storage").
    mapping(address => uint256) public credit;

    function writeTransient() external {
        assembly {
            tstore(0, 1)
        }
    }

    receive() external payable {}
}

/// An account whose `validateUserOp` does what the first byte of the signature asks, so one
/// deployment covers every account-side rule. It checks no signature: tests only.
contract RuleBreakingAccount is IAccount {
    uint8 public constant GOOD = 0;
    uint8 public constant TIMESTAMP = 1;
    uint8 public constant GASPRICE = 2;
    uint8 public constant BLOCKHASH = 3;
    uint8 public constant FOREIGN_STORAGE = 4;
    uint8 public constant CODELESS_CALL = 5;
    uint8 public constant VALUE_CALL = 6;
    uint8 public constant FOREIGN_TSTORE = 7;
    uint8 public constant OWN_TRANSIENT = 8;
    uint8 public constant BALANCE = 9;
    uint8 public constant BAD_SIGNATURE = 10;
    uint8 public constant EXPIRED = 11;
    uint8 public constant GAS_READ = 12;
    uint8 public constant INNER_OUT_OF_GAS = 13;
    uint8 public constant ENTRY_POINT_READ = 14;
    uint8 public constant NON_PRECOMPILE = 15;
    uint8 public constant DELEGATECALL_ENTRY_POINT = 16;
    uint8 public constant P256_VERIFY = 17;
    uint8 public constant VALID_AFTER = 18;

    address public immutable entryPoint;
    RuleHelper public immutable helper;
    uint256 public seen;

    constructor(address entryPoint_, RuleHelper helper_) {
        entryPoint = entryPoint_;
        helper = helper_;
    }

    function validateUserOp(PackedUserOperation calldata userOp, bytes32, uint256 missingAccountFunds)
        external
        returns (uint256 validationData)
    {
        require(msg.sender == entryPoint, "not from EntryPoint");
        uint8 mode = userOp.signature.length > 0 ? uint8(userOp.signature[0]) : GOOD;
        // Own storage is always allowed (STO-010).
        seen += 1;
        if (mode == TIMESTAMP) {
            if (block.timestamp == 0) revert("never");
        } else if (mode == GASPRICE) {
            if (tx.gasprice == 12345) revert("never");
        } else if (mode == BLOCKHASH) {
            if (blockhash(0) == bytes32(uint256(1))) revert("never");
        } else if (mode == FOREIGN_STORAGE) {
            if (helper.value() == 12345) revert("never");
        } else if (mode == CODELESS_CALL) {
            (bool ok,) = address(0xDEaD0000000000000000000000000000000000aA).call("");
            require(ok, "call failed");
        } else if (mode == VALUE_CALL) {
            (bool ok,) = payable(address(helper)).call{value: 1}("");
            require(ok, "value call failed");
        } else if (mode == FOREIGN_TSTORE) {
            helper.writeTransient();
        } else if (mode == OWN_TRANSIENT) {
            uint256 v;
            assembly {
                tstore(1, 42)
                v := tload(1)
            }
            require(v == 42, "tload");
        } else if (mode == BALANCE) {
            if (address(helper).balance == 12345) revert("never");
        } else if (mode == BAD_SIGNATURE) {
            validationData = 1;
        } else if (mode == EXPIRED) {
            // validUntil = 1 (bits 160..207): expired long ago.
            validationData = uint256(1) << 160;
        } else if (mode == GAS_READ) {
            if (gasleft() == 12345) revert("never");
        } else if (mode == INNER_OUT_OF_GAS) {
            // The helper's frame halts out of gas; the account carries on (OP-020 still forbids it).
            (bool ok,) = address(helper).call{gas: 50}(abi.encodeCall(RuleHelper.writeTransient, ()));
            (ok);
        } else if (mode == ENTRY_POINT_READ) {
            (bool ok,) = entryPoint.staticcall(abi.encodeWithSignature("balanceOf(address)", address(this)));
            require(ok, "balanceOf failed");
        } else if (mode == NON_PRECOMPILE) {
            // 0x12 is in the precompile range but is none on any chain we run (OP-062 allows
            // 0x01..0x11 and, where live, P256VERIFY at 0x100).
            (bool ok,) = address(0x12).staticcall{gas: 5000}("");
            (ok);
        } else if (mode == DELEGATECALL_ENTRY_POINT) {
            // The EntryPoint's code run in the account's own context: OP-054 whatever it does.
            (bool ok,) = entryPoint.delegatecall(abi.encodeWithSignature("getNonce(address,uint192)", address(this), 0));
            require(ok, "delegatecall failed");
        } else if (mode == P256_VERIFY) {
            // RIP-7212: signature[1:] is the 160-byte input (hash, r, s, x, y); 1 when valid.
            (bool ok, bytes memory out) = address(0x100).staticcall(userOp.signature[1:]);
            require(ok && out.length == 32 && abi.decode(out, (uint256)) == 1, "P256 signature invalid");
        } else if (mode == VALID_AFTER) {
            // validAfter (bits 208..255) from signature[1:7].
            validationData = uint256(uint48(bytes6(userOp.signature[1:7]))) << 208;
        }
        if (missingAccountFunds > 0) {
            (bool paid,) = payable(msg.sender).call{value: missingAccountFunds}("");
            (paid);
        }
    }

    receive() external payable {}
}

/// A paymaster that never stakes. Mode 0 validates without storage; mode 1 reads its own
/// storage, which ERC-7562 allows only to staked paymasters (STO-031); mode 2 reads the
/// sender's `credit` in the RuleHelper at paymasterData[1:21] (associated storage, STO-021/022);
/// mode 3 returns a context (EREP-050).
contract UnstakedPaymaster is IPaymaster {
    address public immutable entryPoint;
    uint256 public counter = 1;

    constructor(address entryPoint_) {
        entryPoint = entryPoint_;
    }

    function validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32, uint256)
        external
        view
        returns (bytes memory context, uint256 validationData)
    {
        require(msg.sender == entryPoint, "not from EntryPoint");
        bytes calldata data = userOp.paymasterAndData[52:];
        if (data.length > 0 && uint8(data[0]) == 1 && counter == 12345) revert("never");
        if (data.length >= 21 && uint8(data[0]) == 2) {
            RuleHelper helper = RuleHelper(payable(address(bytes20(data[1:21]))));
            if (helper.credit(userOp.sender) == 12345) revert("never");
        }
        if (data.length > 0 && uint8(data[0]) == 3) return ("a context", 0);
        return ("", 0);
    }

    function postOp(PostOpMode, bytes calldata, uint256, uint256) external {}

    function deposit() external payable {
        (bool ok,) = entryPoint.call{value: msg.value}(abi.encodeWithSignature("depositTo(address)", address(this)));
        require(ok, "deposit failed");
    }
}

/// A factory that CREATE2s a helper before the account: two CREATE2s in the deployment phase
/// (OP-031 allows exactly one).
contract DoubleCreateFactory {
    address public immutable entryPoint;

    constructor(address entryPoint_) {
        entryPoint = entryPoint_;
    }

    function createAccount(bytes32 salt) external returns (address) {
        RuleHelper helper = new RuleHelper{salt: salt}();
        return address(new RuleBreakingAccount{salt: salt}(entryPoint, helper));
    }

    function getAddress(bytes32 salt) external view returns (address) {
        address helper = _create2Address(salt, keccak256(type(RuleHelper).creationCode));
        bytes32 codeHash =
            keccak256(abi.encodePacked(type(RuleBreakingAccount).creationCode, abi.encode(entryPoint, helper)));
        return _create2Address(salt, codeHash);
    }

    function _create2Address(bytes32 salt, bytes32 codeHash) internal view returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, codeHash)))));
    }
}

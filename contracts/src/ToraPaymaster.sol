// SPDX-License-Identifier: GPL-3.0
pragma solidity ^0.8.23;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {BasePaymaster} from "@account-abstraction/contracts/core/BasePaymaster.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {UserOperationLib} from "@account-abstraction/contracts/core/UserOperationLib.sol";
import {_packValidationData} from "@account-abstraction/contracts/core/Helpers.sol";

/// @title ToraPaymaster
/// @notice EntryPoint v0.7 paymaster whose gas is paid in TORA at an exchange rate quoted and signed
///         off-chain, either by the UserOp sender (MODE_TOKEN) or from a sponsor's prepaid TORA
///         balance (MODE_SPONSOR). The worst case is charged in validation and the unused part
///         refunded in postOp, so postOp never depends on the sender still holding TORA.
///
/// paymasterData (paymasterAndData[52:]):
///   [0] mode | [1:7] validUntil | [7:13] validAfter | [13:33] payer | [33:65] exchangeRate
///   | [65:97] maxTokenCost | [97:162] quote signature (r,s,v)
///   | MODE_TOKEN only, optional: [162:194] permitDeadline | [194:259] permit signature (r,s,v)
contract ToraPaymaster is BasePaymaster {
    using SafeERC20 for IERC20;
    using UserOperationLib for PackedUserOperation;

    /// @notice Terms the signer agreed to for one UserOp.
    struct Quote {
        uint8 mode;
        uint48 validUntil;
        uint48 validAfter;
        address payer; // the token in MODE_TOKEN, the sponsor in MODE_SPONSOR
        uint256 exchangeRate; // TORA base units per 1e18 wei of gas cost
        uint256 maxTokenCost;
    }

    uint8 public constant MODE_TOKEN = 0;
    uint8 public constant MODE_SPONSOR = 1;
    /// @notice Gas the EntryPoint spends around postOp that actualGasCost does not include.
    uint256 public constant POSTOP_OVERHEAD_GAS = 10_000;

    uint256 private constant QUOTE_DATA_LENGTH = 162;
    uint256 private constant PERMIT_DATA_LENGTH = 259;

    /// @notice The only token gas is charged in.
    IERC20 public immutable token;
    /// @notice Key that signs quotes.
    address public signer;
    /// @notice TORA each sponsor has prepaid for the UserOps it sponsors.
    mapping(address sponsor => uint256) public sponsorBalance;
    /// @notice Sum of sponsorBalance, i.e. the TORA here that is not the owner's.
    uint256 public totalSponsorBalance;

    /// @notice How long a sponsor waits between asking to withdraw and withdrawing. Longer than any
    ///         quote the service signs, and the service signs no sponsored quote while a request is
    ///         pending: every operation already in a mempool lands or expires before the balance
    ///         behind it can leave, so a sponsor cannot make them all fail in a bundle at once.
    uint256 public constant SPONSOR_WITHDRAWAL_DELAY = 1 hours;

    /// @notice A sponsor's pending withdrawal: how much, and from when it may be taken.
    struct WithdrawalRequest {
        uint256 amount;
        uint256 readyAt;
    }

    mapping(address sponsor => WithdrawalRequest) public sponsorWithdrawal;

    event SignerChanged(address indexed oldSigner, address indexed newSigner);
    event SponsorDeposited(address indexed sponsor, address indexed from, uint256 amount);
    event SponsorWithdrawalRequested(address indexed sponsor, uint256 amount, uint256 readyAt);
    event SponsorWithdrawalCancelled(address indexed sponsor);
    event SponsorWithdrawn(address indexed sponsor, address indexed to, uint256 amount);
    event TokenWithdrawn(address indexed to, uint256 amount);
    event GasChargedInToken(
        bytes32 indexed userOpHash,
        address indexed sender,
        address indexed payer,
        uint8 mode,
        uint256 charge,
        uint256 refund,
        uint256 exchangeRate
    );

    error InvalidPaymasterData();
    error QuoteExceeded(uint256 tokenCharge, uint256 maxTokenCost);
    error UnsupportedToken(address token);
    error SponsorBalanceTooLow(address sponsor, uint256 balance, uint256 required);
    error InsufficientFreeBalance(uint256 available, uint256 requested);
    error NoWithdrawalRequested(address sponsor);
    error WithdrawalNotReady(uint256 readyAt, uint256 now);

    /// @dev The deployer becomes the owner (BasePaymaster).
    constructor(IEntryPoint entryPoint_, IERC20 token_, address signer_) BasePaymaster(entryPoint_) {
        token = token_;
        signer = signer_;
        emit SignerChanged(address(0), signer_);
    }

    /// @notice Replaces the quote signer.
    function setSigner(address newSigner) external onlyOwner {
        emit SignerChanged(signer, newSigner);
        signer = newSigner;
    }

    /// @notice Adds `amount` TORA (taken from the caller) to `sponsor`'s balance.
    function depositForSponsor(address sponsor, uint256 amount) external {
        sponsorBalance[sponsor] += amount;
        totalSponsorBalance += amount;
        emit SponsorDeposited(sponsor, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Asks to withdraw `amount` of the caller's sponsor balance after SPONSOR_WITHDRAWAL_DELAY;
    ///         replaces (and restarts the delay of) any earlier request.
    function requestSponsorWithdrawal(uint256 amount) external {
        uint256 balance = sponsorBalance[msg.sender];
        if (balance < amount) revert SponsorBalanceTooLow(msg.sender, balance, amount);
        uint256 readyAt = block.timestamp + SPONSOR_WITHDRAWAL_DELAY;
        sponsorWithdrawal[msg.sender] = WithdrawalRequest(amount, readyAt);
        emit SponsorWithdrawalRequested(msg.sender, amount, readyAt);
    }

    /// @notice Drops the caller's pending withdrawal, so the service sponsors again.
    function cancelSponsorWithdrawal() external {
        if (sponsorWithdrawal[msg.sender].readyAt == 0) revert NoWithdrawalRequested(msg.sender);
        delete sponsorWithdrawal[msg.sender];
        emit SponsorWithdrawalCancelled(msg.sender);
    }

    /// @notice Sends the requested amount of the caller's sponsor balance to `to` once the delay has
    ///         passed: all of it, or what is left when operations spent some meanwhile.
    function withdrawSponsorBalance(address to) external {
        WithdrawalRequest memory request = sponsorWithdrawal[msg.sender];
        if (request.readyAt == 0) revert NoWithdrawalRequested(msg.sender);
        if (block.timestamp < request.readyAt) revert WithdrawalNotReady(request.readyAt, block.timestamp);
        delete sponsorWithdrawal[msg.sender];
        uint256 amount = Math.min(request.amount, sponsorBalance[msg.sender]);
        sponsorBalance[msg.sender] -= amount;
        totalSponsorBalance -= amount;
        emit SponsorWithdrawn(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @notice Owner takes collected TORA; sponsors' balances are off limits.
    function withdrawToken(address to, uint256 amount) external onlyOwner {
        uint256 held = token.balanceOf(address(this));
        uint256 free = held > totalSponsorBalance ? held - totalSponsorBalance : 0;
        if (amount > free) revert InsufficientFreeBalance(free, amount);
        emit TokenWithdrawn(to, amount);
        token.safeTransfer(to, amount);
    }

    /// @notice Hash the signer signs (after the EIP-191 prefix) to approve `quote` for `userOp`.
    /// @dev Covers every UserOp field except the signature and paymasterData (which holds this
    ///      signature), but includes both paymaster gas limits since they bound the charge.
    function getHash(PackedUserOperation calldata userOp, Quote calldata quote) public view returns (bytes32) {
        return _getHash(userOp, quote);
    }

    function _getHash(PackedUserOperation calldata userOp, Quote memory quote) internal view returns (bytes32) {
        bytes32 opDigest = keccak256(
            abi.encode(
                userOp.sender,
                userOp.nonce,
                keccak256(userOp.initCode),
                keccak256(userOp.callData),
                userOp.accountGasLimits,
                bytes32(userOp.paymasterAndData[PAYMASTER_VALIDATION_GAS_OFFSET:PAYMASTER_DATA_OFFSET]),
                userOp.preVerificationGas,
                userOp.gasFees
            )
        );
        bytes32 quoteDigest = keccak256(
            abi.encode(
                block.chainid,
                address(this),
                quote.mode,
                quote.validUntil,
                quote.validAfter,
                quote.payer,
                quote.exchangeRate,
                quote.maxTokenCost
            )
        );
        return keccak256(abi.encode(opDigest, quoteDigest));
    }

    /// @dev Reverts InvalidPaymasterData on a bad length or mode. A 259-byte (permit) layout is MODE_TOKEN only.
    function _parseQuote(bytes calldata data) internal pure returns (Quote memory q) {
        if (data.length != QUOTE_DATA_LENGTH && data.length != PERMIT_DATA_LENGTH) revert InvalidPaymasterData();
        q.mode = uint8(data[0]);
        if (q.mode > MODE_SPONSOR || (q.mode == MODE_SPONSOR && data.length != QUOTE_DATA_LENGTH)) {
            revert InvalidPaymasterData();
        }
        q.validUntil = uint48(bytes6(data[1:7]));
        q.validAfter = uint48(bytes6(data[7:13]));
        q.payer = address(bytes20(data[13:33]));
        q.exchangeRate = uint256(bytes32(data[33:65]));
        q.maxTokenCost = uint256(bytes32(data[65:97]));
    }

    function _validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, uint256 maxCost)
        internal
        override
        returns (bytes memory context, uint256 validationData)
    {
        bytes calldata data = userOp.paymasterAndData[PAYMASTER_DATA_OFFSET:];
        Quote memory q = _parseQuote(data);

        // Like VerifyingPaymaster: a bad signature is reported, not reverted, so simulation shows SIG_VALIDATION_FAILED.
        bytes32 ethHash = MessageHashUtils.toEthSignedMessageHash(_getHash(userOp, q));
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(ethHash, data[97:162]);
        if (err != ECDSA.RecoverError.NoError || recovered != signer) {
            return ("", _packValidationData(true, q.validUntil, q.validAfter));
        }

        uint256 tokenCharge = Math.mulDiv(maxCost, q.exchangeRate, 1e18, Math.Rounding.Ceil);
        if (tokenCharge > q.maxTokenCost) revert QuoteExceeded(tokenCharge, q.maxTokenCost);

        if (q.mode == MODE_TOKEN) {
            if (q.payer != address(token)) revert UnsupportedToken(q.payer);
            if (data.length == PERMIT_DATA_LENGTH) _tryPermit(userOp.sender, q.maxTokenCost, data[162:]);
            token.safeTransferFrom(userOp.sender, address(this), tokenCharge);
        } else {
            uint256 balance = sponsorBalance[q.payer];
            if (balance < tokenCharge) revert SponsorBalanceTooLow(q.payer, balance, tokenCharge);
            // Reserve the worst case now; postOp returns the unused part.
            sponsorBalance[q.payer] = balance - tokenCharge;
            totalSponsorBalance -= tokenCharge;
        }

        // v0.7's actualGasCost excludes postOp's own gas and the 10% penalty on unused
        // callGasLimit + postOpGasLimit; this bounds both, so we never recover less than our deposit spends.
        uint256 extraGas = userOp.unpackPostOpGasLimit() + userOp.unpackCallGasLimit() / 10 + POSTOP_OVERHEAD_GAS;
        context = abi.encode(userOpHash, q.mode, q.payer, userOp.sender, q.exchangeRate, tokenCharge, extraGas);
        validationData = _packValidationData(false, q.validUntil, q.validAfter);
    }

    /// @dev A permit that was front-run (nonce used) or is otherwise invalid must not block the op:
    ///      the transferFrom that follows decides whether the allowance is there.
    function _tryPermit(address owner, uint256 value, bytes calldata p) internal {
        uint256 deadline = uint256(bytes32(p[0:32]));
        bytes32 r = bytes32(p[32:64]);
        bytes32 s = bytes32(p[64:96]);
        uint8 v = uint8(p[96]);
        try IERC20Permit(address(token)).permit(owner, address(this), value, deadline, v, r, s) {} catch {}
    }

    /// @dev Never reverts on anything the user controls: the pre-charge is already held here, so
    ///      the refund only moves the paymaster's own TORA (and sponsor accounting is internal).
    function _postOp(PostOpMode, bytes calldata context, uint256 actualGasCost, uint256 actualUserOpFeePerGas)
        internal
        override
    {
        (
            bytes32 userOpHash,
            uint8 mode,
            address payer,
            address sender,
            uint256 exchangeRate,
            uint256 preCharge,
            uint256 extraGas
        ) = abi.decode(context, (bytes32, uint8, address, address, uint256, uint256, uint256));

        // Cannot overflow: the EntryPoint caps every gas field and fee at uint120 (AA94).
        uint256 charge = _finalCharge(actualGasCost + extraGas * actualUserOpFeePerGas, exchangeRate, preCharge);
        uint256 refund = preCharge - charge;
        if (refund > 0) {
            if (mode == MODE_TOKEN) {
                // Low-level so a failing transfer can never revert postOp.
                (bool ok,) = address(token).call(abi.encodeCall(IERC20.transfer, (sender, refund)));
                ok; // a failed refund stays with the paymaster rather than blocking the op
            } else {
                sponsorBalance[payer] += refund;
                totalSponsorBalance += refund;
            }
        }
        emit GasChargedInToken(userOpHash, sender, payer, mode, charge, refund, exchangeRate);
    }

    /// @dev min(ceil(chargeWei * rate / 1e18), preCharge), minus the revert mulDiv has when the
    ///      result does not fit in 256 bits.
    function _finalCharge(uint256 chargeWei, uint256 rate, uint256 preCharge) internal pure returns (uint256) {
        // Past this bound the result is within `rate` of 2^256 or beyond (absurd amounts only a bad
        // quote could produce); the cap the sender agreed to is then the charge.
        if (rate > 1e18 && chargeWei > (type(uint256).max / rate) * 1e18) return preCharge;
        return Math.min(Math.mulDiv(chargeWei, rate, 1e18, Math.Rounding.Ceil), preCharge);
    }
}

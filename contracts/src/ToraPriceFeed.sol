// SPDX-License-Identifier: MIT
pragma solidity ^0.8.23;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @notice Chainlink AggregatorV3Interface, restated so we need no Chainlink dependency.
interface AggregatorV3Interface {
    function decimals() external view returns (uint8);

    function description() external view returns (string memory);

    function version() external view returns (uint256);

    function getRoundData(uint80 _roundId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @title ToraPriceFeed
/// @notice Push-based feed of the price of 1 TORA in BNB, scaled by 10^decimals.
///         Chainlink-shaped so off-chain readers can treat it like any aggregator.
contract ToraPriceFeed is AggregatorV3Interface, Ownable {
    struct Round {
        int256 answer;
        uint256 updatedAt; // also startedAt: each round is opened and answered in one transaction
    }

    uint8 private immutable _decimals;
    string private _description;
    address private _updater;
    uint80 private _latestRound;
    mapping(uint80 => Round) private _rounds;

    /// @notice Same signature as Chainlink's event, so existing indexers understand it.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event UpdaterChanged(address indexed previousUpdater, address indexed newUpdater);

    error NoDataPresent();
    error NotUpdater(address caller);

    /// @param decimals_ Scale of answers (answer = price * 10^decimals_).
    /// @param description_ Human-readable pair, e.g. "TORA / BNB".
    /// @param initialOwner May replace the updater.
    /// @param updater_ May push answers.
    constructor(uint8 decimals_, string memory description_, address initialOwner, address updater_)
        Ownable(initialOwner)
    {
        _decimals = decimals_;
        _description = description_;
        _updater = updater_;
        emit UpdaterChanged(address(0), updater_);
    }

    /// @inheritdoc AggregatorV3Interface
    function decimals() external view returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external view returns (string memory) {
        return _description;
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 1;
    }

    /// @notice Address allowed to call updateAnswer.
    function updater() external view returns (address) {
        return _updater;
    }

    /// @inheritdoc AggregatorV3Interface
    /// @dev Reverts NoDataPresent for round 0 or rounds not yet written.
    function getRoundData(uint80 _roundId)
        public
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        Round memory r = _rounds[_roundId];
        // updatedAt is a block timestamp, never 0 for a written round.
        if (r.updatedAt == 0) revert NoDataPresent();
        return (_roundId, r.answer, r.updatedAt, r.updatedAt, _roundId);
    }

    /// @inheritdoc AggregatorV3Interface
    /// @dev Reverts NoDataPresent before the first answer.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(_latestRound);
    }

    /// @notice Publishes a new answer as round latest+1 (the first round is 1).
    function updateAnswer(int256 answer) external {
        if (msg.sender != _updater) revert NotUpdater(msg.sender);
        uint80 roundId = _latestRound + 1;
        _latestRound = roundId;
        _rounds[roundId] = Round(answer, block.timestamp);
        emit AnswerUpdated(answer, roundId, block.timestamp);
    }

    /// @notice Replaces the updater.
    function setUpdater(address newUpdater) external onlyOwner {
        emit UpdaterChanged(_updater, newUpdater);
        _updater = newUpdater;
    }
}

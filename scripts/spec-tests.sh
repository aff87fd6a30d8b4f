#!/usr/bin/env bash
# The ERC-4337 bundler compatibility suite (eth-infinitism bundler-spec-tests, releases/v0.7,
# tests/single) against `tora bundler` on a fresh anvil. Fails unless every test the suite does
# not skip passes.
#
# The suite and its offline harness come from ../shared/bundler-spec-tests (read-only there, so
# it is copied out). Its tools (npm packages, a Python venv, the solc-js compile cache) are kept
# in $SPEC_WORK_DIR between runs; the setup is a no-op once they are there.
#
# Env: SPEC_WORK_DIR (default ~/.cache/tora/spec-tests)  TESTS / extra args: passed to pytest
#      TORA_BIN (default: built here with cargo)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

shared=${SPEC_SHARED:-$root/../shared/bundler-spec-tests}
[ -d "$shared/suite" ] || { echo "spec-tests: no suite at $shared" >&2; exit 1; }
work=${SPEC_WORK_DIR:-$HOME/.cache/tora/spec-tests}
mkdir -p "$work"
export WORK_DIR=$work/tools
mkdir -p "$WORK_DIR"

# A fresh copy of the suite each run: it writes into its own folder.
run=$(mktemp -d)
cp -r "$shared/suite" "$run/suite"
# The harness' setup fills the suite's @account-abstraction folder and builds spec/openrpc.json
# inside the suite, so it runs on every fresh copy; the tools it installs stay in $WORK_DIR.
"$shared/harness/setup.sh" "$run/suite" > "$run/setup.log" 2>&1 || { cat "$run/setup.log"; rm -rf "$run"; exit 1; }

# Ports that nothing else here uses (the harness' anvil port is fixed by ANVIL_PORT).
anvil_port=${SPEC_ANVIL_PORT:-18545}
bundler_port=${SPEC_BUNDLER_PORT:-14337}
export ANVIL_PORT=$anvil_port RUN_DIR=$run/anvil
bundler_pid=""
anvil_pid=""
keep_run=""
cleanup() {
  [ -n "$bundler_pid" ] && kill "$bundler_pid" 2>/dev/null && wait "$bundler_pid" 2>/dev/null
  [ -n "$anvil_pid" ] && kill -- -"$anvil_pid" 2>/dev/null
  # A failed run keeps its logs for reading.
  [ -n "$keep_run" ] || rm -rf "$run"
  true
}
trap cleanup EXIT
"$shared/harness/start-anvil.sh"
anvil_pid=$(cat "$RUN_DIR/anvil.pid")

if [ -z "${TORA_BIN:-}" ]; then
  cargo build --quiet --bin tora
  TORA_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/tora
fi

# The settings the suite needs: debug_bundler_* on, manual bundling, a signer that is not anvil's
# account #0 (the suite deploys from it), stake minimums the suite's entities meet (they stake
# 1 ETH for 2 s), and the v0.7-era ERC-7562 that had lifted EREP-050 (its
# "EREP-050-regression" case expects an unstaked paymaster's context to be accepted; the
# current text, and our default, refuse it).
"$TORA_BIN" bundler --chain dev \
  --node-url "http://127.0.0.1:$anvil_port" --node-ws-url "ws://127.0.0.1:$anvil_port" \
  --bundler-listen "127.0.0.1:$bundler_port" \
  --bundler-key 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d \
  --debug-api --manual-bundling \
  --min-stake-wei 1000000000000000000 --min-unstake-delay 2 --allow-unstaked-paymaster-context \
  > "$run/bundler.log" 2>&1 &
bundler_pid=$!
for _ in $(seq 100); do
  curl -s -m 1 -X POST -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
    "http://127.0.0.1:$bundler_port/" | grep -q result && break
  kill -0 "$bundler_pid" 2>/dev/null || { cat "$run/bundler.log"; keep_run=1; exit 1; }
  sleep 0.2
done

status=0
BUNDLER_URL="http://127.0.0.1:$bundler_port/" NODE_URL="http://127.0.0.1:$anvil_port/" OUT_DIR=$run/out \
  "$shared/harness/run-suite.sh" "$run/suite" "$@" || status=$?
summary=$run/out/summary.txt
[ -f "$summary" ] && cat "$summary"
# pytest exits 0 only when no test failed or errored; skips are the suite's own.
if [ "$status" -ne 0 ]; then
  keep_run=1
  echo "spec-tests: FAILED (pytest exit $status); bundler log: $run/bundler.log, pytest log: $run/out/pytest.log" >&2
  exit 1
fi
echo "spec-tests: passed"

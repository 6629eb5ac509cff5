#!/usr/bin/env bash
# Set up (idempotent), install Debian's chromium for the end-to-end test if missing, lint, and
# run the whole test suite on the CPU. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure_chromium.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RECSYS_REQUIRE_E2E=1
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

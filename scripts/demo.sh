#!/usr/bin/env bash
# Set up (idempotent) and start the Streamlit demo. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py --browser.gatherUsageStats false "$@"

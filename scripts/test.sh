#!/usr/bin/env bash
# Set up (idempotent), install Debian's chromium for the end-to-end test if missing, lint, and
# run the whole test suite on the CPU. Extra arguments go to pytest.
#
# The tests marked milvus_server then run against a private Milvus server that only they can
# reach (scripts/milvus_server.sh run: installed from PyPI on first use, started in a network
# namespace with only loopback, stopped afterwards whatever happened). Where no such server can
# be installed or started, they are skipped with a line saying why; in CI (CI=true) that fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure_chromium.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RECSYS_REQUIRE_E2E=1
.venv/bin/ruff check .

status=0
.venv/bin/python -m pytest -m "not milvus_server" "$@" || status=$?

reason_file=$(mktemp)
trap 'rm -f "$reason_file"' EXIT
milvus=0
if [[ $# -gt 0 ]]; then # no server for a selection without its tests (pytest: 5, none collected)
    .venv/bin/python -m pytest --collect-only -q "$@" -m milvus_server >/dev/null || milvus=$?
fi
if [[ $milvus == 0 ]]; then
    MILVUS_REASON_FILE=$reason_file bash scripts/milvus_server.sh run \
        .venv/bin/python -m pytest "$@" -m milvus_server || milvus=$?
fi
case $milvus in
0 | 5) ;;
75)
    if [[ ${CI:-} == true ]]; then
        echo "error: the Milvus server tests could not run in CI: $(cat "$reason_file")" >&2
        status=1
    else
        echo "Milvus server tests skipped: $(cat "$reason_file")"
    fi
    ;;
*) if [[ $status == 0 ]]; then status=$milvus; fi ;;
esac
exit "$status"

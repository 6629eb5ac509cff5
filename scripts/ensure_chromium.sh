#!/usr/bin/env bash
# Install Debian's chromium for the end-to-end browser test when it is missing. Works as root
# (apt-get directly) and as a user with sudo; a user with neither gets a message saying what to
# run. RECSYS_CHROMIUM names the browser (a command or a path; default: chromium).
set -euo pipefail
browser=${RECSYS_CHROMIUM:-chromium}
command -v "$browser" >/dev/null 2>&1 && exit 0
echo "test: installing Debian's chromium for the end-to-end test"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "test: chromium is missing, and without root or sudo it cannot be installed here;" \
         "run 'apt-get install chromium' as root, or set RECSYS_CHROMIUM to a Chromium binary" >&2
    exit 1
  fi
  as_root=(sudo)
fi
# `env` carries DEBIAN_FRONTEND through sudo, and is a real command when nothing precedes it.
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
if ! command -v "$browser" >/dev/null 2>&1; then
  echo "test: apt-get installed chromium but '$browser' is still not on PATH" >&2
  exit 1
fi

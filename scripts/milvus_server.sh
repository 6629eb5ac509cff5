#!/usr/bin/env bash
# A local Milvus standalone server for recsys vector stores, from PyPI (no Docker needed).
#
#   bash scripts/milvus_server.sh start    # install on first use (~60 MB), start, wait until it answers
#   bash scripts/milvus_server.sh status
#   bash scripts/milvus_server.sh stop
#
# then point the product at it:  open_store("http://127.0.0.1:19530?collection=my_catalogue", ...)
#
# The PyPI package `milvus` (2.3.5, "Milvus Lite" of the 2.3 series) ships the real Milvus
# standalone binary (embedded etcd and local storage). It lives in its own virtual environment
# under $MILVUS_HOME (default ~/.cache/recsys/milvus) with its data; MILVUS_PORT (default 19530)
# is the client port. Clients connect on 127.0.0.1; note that Milvus 2.3 binds its ports on all
# interfaces, so firewall the port on a shared host. Start and stop are idempotent.
set -euo pipefail

MILVUS_HOME=${MILVUS_HOME:-$HOME/.cache/recsys/milvus}
MILVUS_PORT=${MILVUS_PORT:-19530}
MILVUS_VERSION=2.3.5
VENV=$MILVUS_HOME/venv
PIDFILE=$MILVUS_HOME/server.pid
LOG=$MILVUS_HOME/server.log

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$MILVUS_PORT") 2>/dev/null; }
running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

install() {
    if [[ -x $VENV/bin/milvus-server ]]; then return; fi
    echo "installing milvus==$MILVUS_VERSION into $VENV"
    mkdir -p "$MILVUS_HOME"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q "milvus==$MILVUS_VERSION"
}

start() {
    if running && answers; then
        echo "milvus already running on 127.0.0.1:$MILVUS_PORT (pid $(cat "$PIDFILE"))"
        return
    fi
    if answers; then
        echo "port $MILVUS_PORT is taken by another process; set MILVUS_PORT" >&2
        exit 1
    fi
    install
    mkdir -p "$MILVUS_HOME/data"
    # its own session, so that stop can end the wrapper and the server binary it starts together
    setsid "$VENV/bin/milvus-server" --data "$MILVUS_HOME/data" --proxy-port "$MILVUS_PORT" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 180); do
        if answers; then
            echo "milvus $MILVUS_VERSION running on 127.0.0.1:$MILVUS_PORT (pid $(cat "$PIDFILE"), log $LOG)"
            return
        fi
        if ! running; then break; fi
        sleep 1
    done
    echo "milvus did not start; the end of $LOG:" >&2
    tail -n 20 "$LOG" >&2 || true
    stop >/dev/null
    exit 1
}

stop() {
    if running; then
        local pid
        pid=$(cat "$PIDFILE")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        echo "milvus stopped"
    else
        echo "milvus is not running"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    if running && answers; then echo "running on 127.0.0.1:$MILVUS_PORT (pid $(cat "$PIDFILE"))"; else echo "not running"; exit 3; fi
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac

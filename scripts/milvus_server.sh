#!/usr/bin/env bash
# A local Milvus standalone server for recsys vector stores, from PyPI (no Docker needed).
#
#   bash scripts/milvus_server.sh start      # install on first use, start, wait until it answers
#   bash scripts/milvus_server.sh status
#   bash scripts/milvus_server.sh stop
#   bash scripts/milvus_server.sh run CMD... # a private server that only CMD can reach (tests, CI)
#
# then point the product at it:  open_store("http://127.0.0.1:19530?collection=my_catalogue", ...)
#
# The PyPI package `milvus` (2.3.5) ships the real Milvus standalone binary (embedded etcd and
# local storage). It lives in its own virtual environment under $MILVUS_HOME (default
# ~/.cache/recsys/milvus) with its data; MILVUS_PORT (default 19530) is the client port.
#
# Milvus 2.3 binds its ports (client, gRPC of every component, metrics) on ALL interfaces and has
# no setting to change that (its `*.ip` settings only choose the address it advertises). So:
# - `start` serves on the host's network: firewall port 19530 and its neighbours on a shared host;
# - `run` installs (this needs the package registry), then enters a new network namespace that
#   has only loopback (`unshare --net`; `--map-root-user` as well when not root), starts a fresh,
#   empty server there, runs CMD in the same namespace with RECSYS_TEST_MILVUS_URI set, stops the
#   server whatever CMD did, and exits with CMD's status. Nothing outside the namespace can reach
#   that server. Exit status 75 means no server could be started and CMD did not run; the reason
#   goes to stderr and, when MILVUS_REASON_FILE is set, into that file.
# Start and stop are idempotent.
set -euo pipefail

MILVUS_HOME=${MILVUS_HOME:-$HOME/.cache/recsys/milvus}
MILVUS_PORT=${MILVUS_PORT:-19530}
MILVUS_VERSION=2.3.5
VENV=$MILVUS_HOME/venv
PIDFILE=$MILVUS_HOME/server.pid
LOG=$MILVUS_HOME/server.log
UNAVAILABLE=75
START_SECONDS=${MILVUS_START_SECONDS:-120}
# Milvus' components; each has an `ip` setting (the address it advertises to the others).
COMPONENTS=(rootCoord proxy queryCoord queryNode indexCoord indexNode dataCoord dataNode)

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$MILVUS_PORT") 2>/dev/null; }
running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# The server's own readiness check (every component up), on its metrics port.
healthy() {
    (
        exec 3<>/dev/tcp/127.0.0.1/9091 || exit 1
        printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
        reply=$(timeout 2 cat <&3)
        [[ $reply == *OK* ]]
    ) 2>/dev/null
}

unavailable() {
    echo "milvus: $*" >&2
    if [[ -n ${MILVUS_REASON_FILE:-} ]]; then echo "$*" >"$MILVUS_REASON_FILE"; fi
    exit $UNAVAILABLE
}

install() {
    if [[ -x $VENV/bin/milvus-server ]]; then return; fi
    echo "installing milvus==$MILVUS_VERSION into $VENV"
    mkdir -p "$MILVUS_HOME"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV" && "$VENV/bin/python" -m pip install -q "milvus==$MILVUS_VERSION" || {
        rm -rf "$VENV"
        return 1
    }
}

# Wait until the server started as process group $1 answers; 1 if it died or took too long.
wait_for() {
    local pid=$1 ready=$2
    for _ in $(seq 1 "$START_SECONDS"); do
        if $ready; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 1
    done
    return 1
}

# End process group $1 (the wrapper and the server binary it starts): TERM, then KILL after 30 s.
end_group() {
    local pid=$1
    if [[ -z $pid ]]; then return 0; fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 60); do # until the server binary, not only the wrapper, has shut down
        kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
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
    if wait_for "$(cat "$PIDFILE")" answers; then
        echo "milvus $MILVUS_VERSION running on 127.0.0.1:$MILVUS_PORT (pid $(cat "$PIDFILE"), log $LOG)"
        return
    fi
    echo "milvus did not start; the end of $LOG:" >&2
    tail -n 20 "$LOG" >&2 || true
    stop >/dev/null
    exit 1
}

stop() {
    if running; then
        end_group "$(cat "$PIDFILE")"
        echo "milvus stopped"
    else
        echo "milvus is not running"
    fi
    rm -f "$PIDFILE"
}

run() {
    if [[ $# -eq 0 ]]; then
        echo "usage: $0 run CMD [ARG...]" >&2
        exit 2
    fi
    command -v unshare >/dev/null || unavailable "unshare (util-linux) is not installed"
    command -v ip >/dev/null || unavailable "ip (iproute2) is not installed"
    local ns=(unshare --net)
    if [[ $(id -u) != 0 ]]; then ns+=(--map-root-user); fi
    local why
    if ! why=$("${ns[@]}" true 2>&1); then
        unavailable "cannot create a private network namespace with '${ns[*]}': ${why:-no reason given}"
    fi
    install || unavailable "could not install milvus==$MILVUS_VERSION from the package registry"
    # One private server at a time: they share $MILVUS_HOME/private (the unpacked binary).
    exec 9>"$MILVUS_HOME/private.lock"
    flock 9
    "${ns[@]}" bash "$0" _private "$@"
}

# Inside the private namespace (see run): a fresh server, CMD, and the server stopped on any exit.
private() {
    ip link set lo up || unavailable "cannot bring up loopback in the private network namespace"
    local data=$MILVUS_HOME/private args=()
    rm -rf "$data/data" "$data/logs" "$data/configs" # an empty server; bin/ (the unpacked binary) is kept
    mkdir -p "$data"
    for c in "${COMPONENTS[@]}"; do args+=(--extra-config "$c.ip=127.0.0.1"); done
    # Test timings only, no change in behaviour: a strong read waits for the server's next time
    # tick (every 200 ms by default), and freshly indexed segments are served after the query
    # coordinator's next target update (every 10 s by default; a setting the template lacks, so
    # given through the environment).
    args+=(--extra-config proxy.timeTickInterval=50)
    local t0=$SECONDS
    SERVER=""
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'end_group "$SERVER"' EXIT
    QUERYCOORD_UPDATENEXTTARGETINTERVAL=1 setsid "$VENV/bin/milvus-server" --data "$data" --proxy-port "$MILVUS_PORT" "${args[@]}" >"$data/server.log" 2>&1 &
    SERVER=$!
    if ! wait_for "$SERVER" healthy || ! answers; then
        tail -n 20 "$data/server.log" >&2 || true
        unavailable "the Milvus server did not become ready within $START_SECONDS s (log $data/server.log)"
    fi
    echo "milvus $MILVUS_VERSION ready in a private network namespace (loopback only) after $((SECONDS - t0)) s"
    local status=0
    RECSYS_TEST_MILVUS_URI="http://127.0.0.1:$MILVUS_PORT" "$@" || status=$?
    exit "$status"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    if running && answers; then
        echo "running on 127.0.0.1:$MILVUS_PORT (pid $(cat "$PIDFILE"))"
    else
        echo "not running"
        exit 3
    fi
    ;;
run)
    shift
    run "$@"
    ;;
_private)
    shift
    private "$@"
    ;;
*)
    echo "usage: $0 start|stop|status|run CMD..." >&2
    exit 2
    ;;
esac

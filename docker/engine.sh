#!/bin/sh
# Start a Docker engine for `make docker-check` when none answers, and stop
# only the one this script started.
#   docker/engine.sh start STATEDIR   start dockerd if `docker info` fails;
#                                     STATEDIR/dockerd.pid marks ours
#   docker/engine.sh stop STATEDIR    stop it again if we started it
# The engine is Debian's docker.io (scripts/install-deps.sh docker), run as
# root with --storage-driver=vfs (${FERRY_DOCKERD_STORAGE}), which works
# where overlayfs does not; its log is STATEDIR/dockerd.log.
set -eu
cmd=${1:?usage: engine.sh start|stop STATEDIR}
state=${2:?usage: engine.sh start|stop STATEDIR}
docker=${DOCKER:-docker}
mkdir -p "$state"
pidfile=$state/dockerd.pid

case $cmd in
start)
    if $docker info >/dev/null 2>&1; then
        echo "engine: a Docker engine is running; using it"
        exit 0
    fi
    command -v dockerd >/dev/null 2>&1 || {
        echo "engine: no Docker engine and no dockerd (sh scripts/install-deps.sh docker)" >&2
        exit 69
    }
    [ "$(id -u)" = 0 ] || { echo "engine: dockerd needs root" >&2; exit 77; }
    start=$(date +%s)
    # setsid: the engine outlives this script, not its caller's signals
    setsid dockerd --storage-driver="${FERRY_DOCKERD_STORAGE:-vfs}" \
        >"$state/dockerd.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    deadline=$(( start + 60 ))
    until $docker info >/dev/null 2>&1; do
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            rm -f "$pidfile"
            tail -n 20 "$state/dockerd.log" >&2
            echo "engine: dockerd exited" >&2
            exit 1
        fi
        [ "$(date +%s)" -lt "$deadline" ] || {
            echo "engine: dockerd did not answer in 60s (see $state/dockerd.log)" >&2
            exit 1
        }
        sleep 0.2
    done
    echo "engine: started dockerd (pid $(cat "$pidfile")) in $(( $(date +%s) - start ))s"
    ;;
stop)
    [ -f "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    kill -TERM "$pid" 2>/dev/null || exit 0
    # dockerd stops its containers first (10 s each at most)
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        echo "engine: dockerd $pid did not stop in 30s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "engine: stopped dockerd $pid"
    ;;
*) echo "usage: engine.sh start|stop STATEDIR" >&2; exit 64 ;;
esac

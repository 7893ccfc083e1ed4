#!/bin/sh
# Build the images and run ferry in containers: what `make docker-check`,
# `make docker-smoke` and the `docker` suite of scripts/check.sh run.
#
#   docker/run.sh check [SUITE...]   engine, base image, every image, the three
#                                    compose profiles (flows), then
#                                    scripts/check.sh SUITE... (default: check,
#                                    i.e. make check) in the check container
#                                    against the broker containers
#   docker/run.sh smoke              engine, base image, runtime (and local
#                                    RabbitMQ) images, the zmq and amqp flows
#   docker/run.sh images             engine, base image, every image
#   docker/run.sh flows PROFILE...   the flows of amqp, kafka, zmq (images built)
#   docker/run.sh suite [SUITE...]   the test suite only (images built)
#   docker/run.sh clean              remove the images and the build cache
#
# The engine: a running one is used; otherwise docker/engine.sh starts
# dockerd (root, --storage-driver=vfs) and stops it at the end. The base:
# docker/local-base.sh makes debian:12-slim with debootstrap when it can be
# neither found nor pulled. The brokers: the hub images of compose.yml when
# they can be pulled, else docker/compose.local.yml's (FERRY_DOCKER_LOCAL=1
# forces the local ones, 0 the hub ones). Every run is its own compose project
# (ferry-dc-PID: containers, network and volumes, removed at the end) and
# publishes no fixed host port. Timings go to stdout as "docker: ... NNs".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"
what=${1:-check}
[ $# -eq 0 ] || shift

# Debian's docker.io client (scripts/install-deps.sh docker) talks to its own
# engine; another client earlier on PATH may need plugins it lacks (buildx).
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER
if command -v docker-compose >/dev/null 2>&1; then
    compose_cmd=docker-compose
else
    compose_cmd="$DOCKER compose"
fi
export DOCKER_BUILDKIT=1
# vfs copies a whole image to create a container: the check image takes
# minutes on a busy machine, longer than compose v1's default 60 s
export COMPOSE_HTTP_TIMEOUT=${COMPOSE_HTTP_TIMEOUT:-900}
state=${FERRY_DOCKER_STATE:-$top/build/docker}
mkdir -p "$state"
project=${FERRY_DOCKER_PROJECT:-ferry-dc-$$}
# loopback, port chosen by the engine: nothing fixed is taken on the host
export FERRY_DOCKER_PORT_AMQP=127.0.0.1: FERRY_DOCKER_PORT_AMQP_UI=127.0.0.1: \
    FERRY_DOCKER_PORT_KAFKA=127.0.0.1:
scale=${FERRY_TEST_TIMEOUT_SCALE:-1}

now() { date +%s; }
t0=$(now)
say() { echo "docker: $*"; }
took() { say "$1 took $(( $(now) - $2 ))s"; }

engine_started=""
cleanup() {
    rc=$?
    trap - EXIT INT TERM
    if [ -n "${compose_files:-}" ]; then
        compose down -v --remove-orphans >"$state/down.log" 2>&1 || cat "$state/down.log" >&2
    fi
    if [ -n "$engine_started" ]; then
        sh "$here/engine.sh" stop "$state" || true
    fi
    took "$what (total)" "$t0"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

engine() {
    out=$(sh "$here/engine.sh" start "$state") || exit $?
    echo "$out"
    case $out in *"started dockerd"*) engine_started=1 ;; esac
}

# Which brokers: the hub images, or compose.local.yml's.
pick_brokers() {
    compose_files="-f $here/compose.yml"
    case ${FERRY_DOCKER_LOCAL:-auto} in
    1) local=1 ;;
    0) local=0 ;;
    *)
        local=0
        for img in rabbitmq:3-management apache/kafka:3.7.1; do
            $DOCKER image inspect "$img" >/dev/null 2>&1 && continue
            if ! timeout 300 $DOCKER pull -q "$img" >/dev/null 2>&1; then
                local=1
                break
            fi
        done
        ;;
    esac
    if [ "$local" = 1 ]; then
        compose_files="$compose_files -f $here/compose.local.yml"
        say "brokers: built locally (docker/compose.local.yml)"
    else
        say "brokers: rabbitmq:3-management and apache/kafka:3.7.1"
    fi
}

compose() {
    # shellcheck disable=SC2086
    $compose_cmd -p "$project" $compose_files \
        --profile amqp --profile kafka --profile zmq --profile check "$@"
}

build() {  # build TARGET TAG
    s=$(now)
    if ! $DOCKER build --progress=plain -f docker/Dockerfile --target "$1" -t "$2" . \
            >"$state/build-$1.log" 2>&1; then
        tail -n 60 "$state/build-$1.log" >&2
        say "image $2 (stage $1) FAILED to build; log: $state/build-$1.log" >&2
        exit 1
    fi
    took "image $2 (stage $1)" "$s"
}

images() {  # images all|smoke
    s=$(now)
    sh "$here/local-base.sh" debian:12-slim
    took "base image debian:12-slim" "$s"
    build build ferry-build:latest
    build runtime ferry:latest
    [ "$local" = 0 ] || build rabbitmq-local ferry-rabbitmq:local
    if [ "$1" = all ]; then
        build check ferry-check:latest
        [ "$local" = 0 ] || build kafka-mock ferry-kafka-mock:local
    fi
    # superseded layers of earlier builds
    $DOCKER image prune -f >/dev/null
}

# Poll until CMD prints a number >= N, for at most SECONDS (times the scale).
wait_count() {  # wait_count N SECONDS CMD...
    n=$1 limit=$(( $2 * scale ))
    shift 2
    end=$(( $(now) + limit ))
    while :; do
        got=$("$@" 2>/dev/null) || got=0
        [ "${got:-0}" -lt "$n" ] || return 0
        [ "$(now)" -lt "$end" ] || { say "only ${got:-0} of $n after ${limit}s" >&2; return 1; }
        sleep 1
    done
}

lines() {  # lines SERVICE GLOB: lines in the files GLOB inside SERVICE
    compose exec -T "$1" sh -c "cat $2 2>/dev/null | wc -l"
}

flows() {  # flows PROFILE: logs and download events through one profile
    p=$1
    s=$(now)
    out=$state/flows-$p
    rm -rf "$out"
    mkdir -p "$out"
    say "flows $p: up"
    compose up -d --no-build "$p-aggregator" "$p-validator" "$p-producer" "$p-events" \
        $([ "$p" != zmq ] || echo zmq-valid-sink zmq-rejected-sink) >"$out/up.log" 2>&1 || {
        cat "$out/up.log" >&2
        compose logs --no-color >&2 || true
        return 1
    }
    for svc in "$p-producer" "$p-events"; do
        rc=$($DOCKER wait "$(compose ps -q "$svc")")
        [ "$rc" = 0 ] || {
            compose logs --no-color "$svc" >&2
            say "flows $p: $svc exited $rc" >&2
            return 1
        }
    done
    ok=1
    # the runtime image: the unprivileged user, and a HEALTHCHECK that
    # finds the running aggregator healthy (GET /health)
    agg=$(compose ps -q "$p-aggregator")
    uid=$(compose exec -T "$p-aggregator" id -u) || uid=
    [ "$uid" = 10001 ] || { say "flows $p: the aggregator runs as uid '$uid', not ferry (10001)" >&2; ok=0; }
    health() { [ "$($DOCKER inspect -f '{{.State.Health.Status}}' "$agg")" = healthy ] && echo 1; }
    wait_count 1 60 health || { say "flows $p: the aggregator's HEALTHCHECK never passed" >&2; ok=0; }
    wait_count 1000 120 lines "$p-aggregator" '/data/aggregated*.txt' || ok=0
    compose exec -T "$p-aggregator" sh -c 'cat /data/aggregated*.txt' >"$out/logs.txt" || ok=0
    if [ "$p" = zmq ]; then
        both() {
            a=$(lines zmq-valid-sink /data/events.valid.txt) || return 1
            b=$(lines zmq-valid-sink /data/events.rejected.txt) || return 1
            echo $((a + b))
        }
        wait_count 200 120 both || ok=0
        compose exec -T zmq-valid-sink cat /data/events.valid.txt >"$out/valid.txt" || ok=0
        compose exec -T zmq-valid-sink cat /data/events.rejected.txt >"$out/rejected.txt" || ok=0
    else
        # RabbitMQ queues and Kafka topics keep the validator's outputs: drain
        # them with one more aggregator each (in the producer's container
        # settings: its config, network and broker address), records with
        # headers, until 10 s pass without a message.
        for d in valid rejected; do
            compose run --rm -T --no-deps --entrypoint sh "$p-producer" -c \
                '[ ! -s /kafka/bootstrap ] || export FERRY_KAFKA_BROKERS=$(cat /kafka/bootstrap)
                 exec ferry-aggregator "$@"' collect \
                --destination "events.$d" --group "collect-$d" --id-field event_id \
                --format record --set aggregator.dedup=false --idle-exit "$(( 10 * scale ))s" --output - \
                >"$out/$d.txt" 2>"$out/collect-$d.log" || { cat "$out/collect-$d.log" >&2; ok=0; }
        done
    fi
    compose logs --no-color "$p-aggregator" "$p-validator" >"$out/services.log" 2>&1 || true
    if [ "$ok" = 1 ] && /usr/bin/python3 "$here/check-flows.py" --logs "$out/logs.txt" \
            --expect-logs 1000 --valid "$out/valid.txt" --rejected "$out/rejected.txt" \
            --expect-events 200; then
        took "flows $p" "$s"
    else
        tail -n 40 "$out/services.log" >&2
        say "flows $p FAILED (files in $out)" >&2
        return 1
    fi
    compose rm -fsv >/dev/null 2>&1 || true
}

suite() {  # suite SUITE...: scripts/check.sh in the check container
    s=$(now)
    say "suite: scripts/check.sh $* in the check container"
    # (called with ||, so set -e does not stop here: every status by hand)
    if ! compose run --rm -T -e FERRY_TEST_TIMEOUT_SCALE="$scale" \
            -e FERRY_TEST_VOLUME="${FERRY_TEST_VOLUME:-}" check sh scripts/check.sh "$@"; then
        say "suite ($*) FAILED after $(( $(now) - s ))s" >&2
        return 1
    fi
    took "suite ($*)" "$s"
}

case $what in
check)
    engine
    pick_brokers
    images all
    failed=""
    for p in amqp kafka zmq; do flows $p || failed="$failed flows-$p"; done
    suite "${@:-check}" || failed="$failed suite"
    [ -z "$failed" ] || { say "FAILED:$failed" >&2; exit 1; }
    ;;
smoke)
    engine
    pick_brokers
    images smoke
    failed=""
    for p in zmq amqp; do flows $p || failed="$failed flows-$p"; done
    [ -z "$failed" ] || { say "FAILED:$failed" >&2; exit 1; }
    ;;
images) engine; pick_brokers; images all ;;
flows)
    pick_brokers
    failed=""
    for p in ${*:-amqp kafka zmq}; do flows "$p" || failed="$failed flows-$p"; done
    [ -z "$failed" ] || { say "FAILED:$failed" >&2; exit 1; }
    ;;
suite) pick_brokers; suite "${@:-check}" || exit 1 ;;
clean)
    engine
    for img in ferry:latest ferry-build:latest ferry-check:latest ferry-kafka-mock:local \
            ferry-rabbitmq:local; do
        $DOCKER image rm "$img" >/dev/null 2>&1 || true
    done
    $DOCKER builder prune -af >/dev/null
    $DOCKER image prune -f >/dev/null
    ;;
*) echo "usage: docker/run.sh check [SUITE...]|smoke|images|flows PROFILE...|suite [SUITE...]|clean" >&2; exit 64 ;;
esac

#!/bin/sh
# Install what ferry needs on Debian 12 (run as root).
#   scripts/install-deps.sh build   compiler, autotools, client libraries
#   scripts/install-deps.sh test    the above plus brokers and peers the tests use,
#                                   and clang-format (make format-check)
#   scripts/install-deps.sh bench   the build set plus what make bench and make bench-check
#                                   use: valgrind, gnuplot, the Python clients, syslog-ng
#   scripts/install-deps.sh docker  Docker engine (Debian's docker.io), docker-compose (v1)
#                                   and debootstrap: make docker-check, the docker suite
#   scripts/install-deps.sh all     all of the above plus clang (make fuzz)
set -eu
what=${1:-build}
BUILD="build-essential autoconf automake libtool pkg-config libltdl-dev
  libzmq3-dev librabbitmq-dev librdkafka-dev libcjson-dev libinih-dev libpcre2-dev
  libmicrohttpd-dev check
  libmosquitto-dev libpq-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libcurl4-openssl-dev"
TEST="rabbitmq-server kcat amqp-tools python3 python3-pika python3-zmq
  python3-confluent-kafka python3-prometheus-client python3-yaml json-schema-test-suite
  curl util-linux procps iproute2 valgrind openssl clang-format
  mosquitto postgresql python3-psycopg2 prometheus prometheus-alertmanager python3-aiosmtpd
  python3-grpcio python3-protobuf python3-grpc-tools"
# make fuzz (libFuzzer)
EXTRA="clang libclang-rt-14-dev"
# make bench (plots, the Python producers, syslog-ng as a peer) and make
# bench-check (callgrind); the brokers come from TEST
BENCH="valgrind gnuplot-nox python3 python3-pika python3-zmq python3-confluent-kafka
  rabbitmq-server syslog-ng-core syslog-ng-mod-rdkafka syslog-ng-mod-amqp"
# make docker-check: the engine, compose v1 (v2 is not packaged), debootstrap
# for the base image when no registry answers (docker/local-base.sh)
DOCKER="docker.io docker-compose debootstrap iptables python3"
case $what in
    build) pkgs=$BUILD ;;
    test) pkgs="$BUILD $TEST" ;;
    bench) pkgs="$BUILD $BENCH" ;;
    docker) pkgs=$DOCKER ;;
    all) pkgs="$BUILD $TEST $EXTRA $BENCH $DOCKER" ;;
    *) echo "usage: $0 build|test|bench|docker|all" >&2; exit 64 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: everything for '$what' is installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing:$missing; run as root (or: sudo $0 $what)" >&2
    exit 77
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# the postinst scripts of rabbitmq-server, postgresql, prometheus,
# mosquitto, syslog-ng and docker.io would start system servers; tests run
# their own (docker/engine.sh starts dockerd with the vfs storage driver)
if echo "$missing" | grep -qE 'rabbitmq-server|postgresql|prometheus|mosquitto( |$)|syslog-ng-core|docker\.io' && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing

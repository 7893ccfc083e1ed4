#!/bin/sh
# Install what ferry needs on Debian 12 (run as root).
#   scripts/install-deps.sh build   compiler, autotools, client libraries
#   scripts/install-deps.sh test    the above plus brokers and peers the tests use,
#                                   and clang-format (make format-check)
#   scripts/install-deps.sh all     the above plus clang (make fuzz) and gnuplot (make bench)
set -eu
what=${1:-build}
BUILD="build-essential autoconf automake libtool pkg-config libltdl-dev
  libzmq3-dev librabbitmq-dev librdkafka-dev libcjson-dev libinih-dev libpcre2-dev
  libmicrohttpd-dev check libpq-dev"
TEST="rabbitmq-server kcat amqp-tools python3 python3-pika python3-zmq
  python3-confluent-kafka python3-prometheus-client python3-yaml json-schema-test-suite
  curl util-linux procps iproute2 valgrind openssl
  postgresql python3-psycopg2 prometheus prometheus-alertmanager python3-aiosmtpd
  clang-format"
# make fuzz (libFuzzer) and make bench (plots)
EXTRA="clang libclang-rt-14-dev gnuplot-nox"
case $what in
    build) pkgs=$BUILD ;;
    test) pkgs="$BUILD $TEST" ;;
    all) pkgs="$BUILD $TEST $EXTRA" ;;
    *) echo "usage: $0 build|test|all" >&2; exit 64 ;;
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
# rabbitmq-server's, postgresql's and prometheus' postinst would start
# system servers; tests run their own
if echo "$missing" | grep -Eq 'rabbitmq-server|postgresql|prometheus' && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing

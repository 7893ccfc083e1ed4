#!/bin/sh
# Run every test: install the test dependencies (brokers included), build,
# and run make check across all transports. The tests start and stop their
# own private RabbitMQ node and Kafka mock cluster. Set
# FERRY_REQUIRE_ALL_TRANSPORTS=1 to turn any skipped transport into a failure.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh test
sh scripts/build.sh
cd build
make -j2 check || { cat test-suite.log; exit 1; }

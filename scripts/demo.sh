#!/bin/sh
# First run: install the build dependencies, build ferry, and move log lines
# producer -> aggregator over ZeroMQ (no broker needed).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh build
sh scripts/build.sh
cd build
out=$(mktemp -d)
# the zmq transport and the file sink, from the build tree (not installed)
export FERRY_PLUGIN_PATH="$PWD/plugins/zmq:$PWD/plugins/sinks/file"
./ferry-aggregator --output "$out/aggregated_logs.txt" --count 3 &
agg=$!
./ferry-producer --service demo "Log Entry 1: This is a sample log." \
    "Log Entry 2: Another log entry." "Log Entry 3: The last one."
wait $agg
echo "--- $out/aggregated_logs.txt"
cat "$out/aggregated_logs.txt"

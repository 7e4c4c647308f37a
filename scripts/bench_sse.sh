#!/usr/bin/env bash
# SSE benchmark (issue 16): 1,000 concurrent server-sent event streams with 10 ms between events against a release
# build of hotroute; prints event lateness against the schedule (p50/p90/p99/max), the server's memory per open
# stream, and the CPU time of the server and of the client per event. Extra arguments go to the client
# (examples/sse_bench.rs), e.g. `--streams 500 --events 600`. HOTROUTE_BIN names another build to measure (e.g. an
# older commit's); it must be a release build for the figures to mean much. PIN=1 gives each side a core of its
# own, as a server and its clients on two machines: the server under `taskset -c 0`, the client (one thread) under
# `taskset -c 1`. FLOOR=1 measures the floor instead (examples/sse_floor.rs: the least a tokio server does for the
# same stream), with the same client; `--server-threads 1` gives either server a current-thread runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --profile release --bin hotroute --example sse_bench --example sse_floor
bin="$(realpath "${HOTROUTE_BIN:-$target_dir/release/hotroute}")"
pin=()
client=()
if [ "${FLOOR:-0}" = 1 ]; then
    bin="$(realpath "$target_dir/release/examples/sse_floor")"
    client=(--floor)
fi
if [ "${PIN:-0}" = 1 ]; then
    pin=(taskset -c 1)
    client+=(--threads 1 --server-cpus 0)
fi
exec "${pin[@]}" "$target_dir/release/examples/sse_bench" --bin "$bin" --streams 1000 --events 300 --interval-ms 10 \
    "${client[@]}" "$@"

#!/usr/bin/env bash
# SSE benchmark (issue 16): 1,000 concurrent server-sent event streams with 10 ms between events against a release
# build of hotroute; prints event lateness against the schedule (p50/p90/p99/max) and the server's memory per open
# stream. Extra arguments go to the client (examples/sse_bench.rs), e.g. `--streams 500 --events 600`. HOTROUTE_BIN
# names another build to measure (e.g. an older commit's); it must be a release build for the figures to mean much.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --profile release --bin hotroute --example sse_bench
bin="${HOTROUTE_BIN:-$target_dir/release/hotroute}"
exec "$target_dir/release/examples/sse_bench" --bin "$bin" --streams 1000 --events 300 --interval-ms 10 "$@"

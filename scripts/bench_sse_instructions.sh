#!/usr/bin/env bash
# User-space instructions per SSE event (issue 16), counted by valgrind's callgrind: deterministic enough to decide a
# change of a few percent that wall-clock runs on a shared machine cannot. It counts no kernel work (the `send` of
# each event is most of a server's CPU; see BENCHMARKS.md).
#
#   scripts/bench_sse_instructions.sh NAME hotroute BIN   # BIN --threads 1
#   scripts/bench_sse_instructions.sh NAME floor          # examples/sse_floor.rs --threads 1
#   scripts/bench_sse_instructions.sh NAME hyperfloor     # examples/hyper_sse_floor.rs --threads 1
#
# The server runs under callgrind twice, for STREAMS (default 10) streams of SHORT_EVENTS (100) and then of
# LONG_EVENTS (300) events every 10 ms (the client is examples/sse_bench.rs); the difference of the two totals over
# the events in between leaves out what does not grow with the events (start-up, connections, request heads,
# shutdown). Under callgrind the server runs tens of times slower, so with many streams it falls behind and the
# count moves with how many events each wake-up finds due (about +-4% at 10 streams); STREAMS=2 LONG_EVENTS=600 is
# steadier.
set -euo pipefail
NAME=$1; KIND=$2; shift 2
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
# NO_BUILD=1 skips building the client and the floors (already built, e.g. while the source is being edited).
[ -n "${NO_BUILD:-}" ] || cargo build --quiet --profile release --example sse_bench --example sse_floor --example hyper_sse_floor
OUT=${KEEP:-$(mktemp -d)}; mkdir -p "$OUT"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$OUT"' EXIT
floor=()
case $KIND in
  hotroute) BIN=$(realpath "$1") ;;
  floor) BIN=$(realpath "$target_dir/release/examples/sse_floor"); floor=(--floor) ;;
  hyperfloor) BIN=$(realpath "$target_dir/release/examples/hyper_sse_floor"); floor=(--floor) ;;
  *) echo "unknown kind $KIND (hotroute, floor or hyperfloor)" >&2; exit 2 ;;
esac
STREAMS=${STREAMS:-10}
total() {
    cat > "$OUT/wrap" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1" "$BIN" "\$@" 2>"$OUT/valgrind.$1.err"
WRAP
    chmod +x "$OUT/wrap"
    "$target_dir/release/examples/sse_bench" --bin "$OUT/wrap" "${floor[@]}" --server-threads 1 --streams "$STREAMS" \
        --events "$1" --interval-ms 10 >"$OUT/bench.$1.txt"
    grep -q "(0 streams ended short)" "$OUT/bench.$1.txt" || { cat "$OUT/bench.$1.txt" >&2; exit 1; }
    callgrind_annotate "$OUT/cg.$1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'
}
SHORT=$(total "${SHORT_EVENTS:-100}")
LONG=$(total "${LONG_EVENTS:-300}")
echo "$NAME: $(( (LONG - SHORT) / (STREAMS * (${LONG_EVENTS:-300} - ${SHORT_EVENTS:-100})) )) instructions per event (user space; $STREAMS streams, totals $SHORT and $LONG)"

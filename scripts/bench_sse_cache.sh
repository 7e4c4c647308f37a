#!/usr/bin/env bash
# Data cache misses per SSE event (issue 16), simulated by valgrind's cachegrind: with many connections a wake finds
# its connection's state cold, so each cache line it touches is a miss, which instructions alone do not count.
#
#   scripts/bench_sse_cache.sh NAME hotroute BIN   # BIN --threads 1
#   scripts/bench_sse_cache.sh NAME hyperfloor     # examples/hyper_sse_floor.rs --threads 1
#   scripts/bench_sse_cache.sh NAME floor          # examples/sse_floor.rs --threads 1
#
# NO_BUILD=1 skips building the client and the floors (already built, e.g. while the source is being edited).
#
# Runs the server under cachegrind twice, STREAMS (default 1000) streams of SHORT_EVENTS (10) and then LONG_EVENTS
# (30) events every INTERVAL_MS (500: under valgrind the server is tens of times slower, and must keep up), and
# prints the difference of the totals per event in between: instructions (Ir), first-level instruction misses
# (I1mr), data read and write misses (D1mr, D1mw) and last-level data misses (DLmr, DLmw). The simulated caches:
# 32 KiB 8-way L1s and a last level of LL (default 1 MiB, 16-way: 1,000 connections do not fit, as on a machine
# whose L3 other processes share). KEEP=DIR keeps the outputs (cg_annotate DIR/cg.30 for the per-function
# figures).
set -euo pipefail
NAME=$1; KIND=$2; shift 2
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
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
STREAMS=${STREAMS:-1000}
INTERVAL_MS=${INTERVAL_MS:-500}
SHORT_EVENTS=${SHORT_EVENTS:-10}
LONG_EVENTS=${LONG_EVENTS:-30}
LL=${LL:-1048576,16,64}
# The totals of one run: "Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw" (cachegrind's order with --cache-sim=yes).
total() {
    cat > "$OUT/wrap" <<WRAP
#!/bin/sh
exec valgrind --tool=cachegrind --cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=$LL \
    --cachegrind-out-file="$OUT/cg.$1" "$BIN" "\$@" 2>"$OUT/valgrind.$1.err"
WRAP
    chmod +x "$OUT/wrap"
    "$target_dir/release/examples/sse_bench" --bin "$OUT/wrap" "${floor[@]}" --server-threads 1 --streams "$STREAMS" \
        --events "$1" --interval-ms "$INTERVAL_MS" >"$OUT/bench.$1.txt"
    grep -q "(0 streams ended short)" "$OUT/bench.$1.txt" || { cat "$OUT/bench.$1.txt" >&2; exit 1; }
    sed -n 's/^summary: //p' "$OUT/cg.$1"
}
read -r -a short <<<"$(total "$SHORT_EVENTS")"
read -r -a long <<<"$(total "$LONG_EVENTS")"
events=$(( STREAMS * (LONG_EVENTS - SHORT_EVENTS) ))
names=(Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw)
line="$NAME per event ($STREAMS streams, $events events, LL $LL):"
for i in "${!names[@]}"; do
    line+=" ${names[$i]} $(awk -v a="${long[$i]}" -v b="${short[$i]}" -v n="$events" 'BEGIN { printf "%.1f", (a - b) / n }')"
done
echo "$line"

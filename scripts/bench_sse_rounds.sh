#!/usr/bin/env bash
# Alternated rounds of the SSE benchmark (issue 16): each round runs every server once, in turn, under the same
# client (examples/sse_bench.rs), holding the machine's bench lock for each run when BENCH_LOCK names one. Servers:
# `floor` (examples/sse_floor.rs, the least a tokio server does), `hyper` (examples/hyper_sse_floor.rs, the least a
# hyper 1 server does; FLOORS=floor leaves it out) and each hotroute binary given as NAME=PATH.
# ROUNDS (default 3); MODE: `default` (unpinned, each server with its default runtime), `threads1` (unpinned, each
# server with a current-thread runtime), `pin` (server on CPU 0, client on CPU 1, one thread each). Extra arguments
# go to the client. Prints one summary line per run, then the raw lines.
#
#   scripts/bench_sse_rounds.sh OLD=/path/to/main/release/hotroute NEW=target/release/hotroute
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --profile release --bin hotroute --example sse_bench --example sse_floor --example hyper_sse_floor
client="$target_dir/release/examples/sse_bench"
read -r -a servers <<<"${FLOORS:-floor hyper}"
declare -A bins=([floor]="$(realpath "$target_dir/release/examples/sse_floor")"
                 [hyper]="$(realpath "$target_dir/release/examples/hyper_sse_floor")")
extra=()
for arg in "$@"; do
    case "$arg" in
        *=*) servers+=("${arg%%=*}"); bins[${arg%%=*}]="$(realpath "${arg#*=}")" ;;
        *) extra+=("$arg") ;;
    esac
done
lock=()
if [ -n "${BENCH_LOCK:-}" ]; then lock=(flock "$BENCH_LOCK"); fi
pin=()
mode=()
case "${MODE:-default}" in
    default) ;;
    threads1) mode=(--server-threads 1) ;;
    pin) pin=(taskset -c 1); mode=(--threads 1 --server-cpus 0) ;;
    *) echo "MODE is default, threads1 or pin" >&2; exit 2 ;;
esac
for round in $(seq 1 "${ROUNDS:-3}"); do
    for name in "${servers[@]}"; do
        floor=()
        # Both floors take the floor's arguments (no route file).
        if [ "$name" = floor ] || [ "$name" = hyper ]; then floor=(--floor); fi
        out="$("${lock[@]}" "${pin[@]}" "$client" --bin "${bins[$name]}" --streams 1000 --events 300 --interval-ms 10 \
            "${floor[@]}" "${mode[@]}" "${extra[@]}")"
        load="$(cut -d' ' -f1 /proc/loadavg)"
        all_in="$(sed -n 's/.* events in \([0-9.]*\) s.*/\1/p' <<<"$out")"
        p99="$(sed -n 's/^lateness vs the server.s schedule.* p99 \([-0-9.]*\) .*/\1/p' <<<"$out")"
        p99_fixed="$(sed -n 's/^lateness vs the fixed schedule.* p99 \([-0-9.]*\) .*/\1/p' <<<"$out")"
        kib="$(sed -n 's/.*: \([0-9.]*\) KiB per stream/\1/p' <<<"$out")"
        # hotroute's own count of when events left it (not the floor's: it has no metrics).
        left="$(sed -n 's/^leaving the server.*<= 5 ms \([0-9.]*%\).*; p99 \(.*\)$/, left the server within 5 ms: \1, p99 \2/p' <<<"$out")"
        faults="$(sed -n 's/^server minor page faults: .*(\([0-9.]*\) per event)/\1/p' <<<"$out")"
        cpu="$(sed -n 's/.*% of a core (\([0-9.]*\) us per event), client \([0-9]*\)% (\([0-9.]*\) us per event).*/\1 \3/p' <<<"$out")"
        printf 'round %s %-6s mode %-8s load %s: p99 vs server schedule %s ms (fixed %s), all in %s s, server %s us/event, client %s us/event, %s KiB/stream, %s page faults/event%s\n' \
            "$round" "$name" "${MODE:-default}" "$load" "$p99" "$p99_fixed" "$all_in" "${cpu% *}" "${cpu#* }" "$kib" "$faults" "$left"
        echo "$out" | sed 's/^/    /' >&2
    done
done

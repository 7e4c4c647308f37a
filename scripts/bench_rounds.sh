#!/bin/bash
# usage: [H2=1] scripts/bench_rounds.sh N "label pid url" ... > out.txt; then python3 scripts/bench_summarize.py out.txt nginx
# Alternates a 3 s load over running servers, N rounds, and prints per run: round, label, req/s and the server's
# task-clock in ms (perf stat -p PID). The load is wrk -t1 -c50 (HTTP/1.1), or with H2=1 h2load -t1 -c50 -m10
# (HTTP/2 with prior knowledge).
N=$1; shift
SPECS=("$@")
for r in $(seq "$N"); do
  for spec in "${SPECS[@]}"; do
    read -r L P U <<< "$spec"
    perf stat -e task-clock -p "$P" -o "${TMPDIR:-/tmp}/bench_rounds.$L.txt" -- sleep 3 &
    sleep 0.05
    if [ -n "${H2:-}" ]; then
      R=$(h2load -t1 -c50 -m10 -D3 "$U" 2>/dev/null | awk '/^finished in/{print $4}')
    else
      R=$(wrk -t1 -c50 -d3 "$U" | awk '/Requests\/sec/{print $2}')
    fi
    wait
    C=$(awk '/task-clock/{gsub(",","",$1); print $1}' "${TMPDIR:-/tmp}/bench_rounds.$L.txt")
    echo "$r $L $R $C"
  done
done

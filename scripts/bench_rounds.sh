#!/bin/bash
# usage: scripts/bench_rounds.sh N "label pid url" ... > out.txt; then python3 scripts/bench_summarize.py out.txt nginx
# Alternates wrk -t1 -c50 (3 s) over running servers, N rounds; prints label, req/s and the server's task-clock (ms).
N=$1; shift
SPECS=("$@")
for r in $(seq $N); do
  for spec in "${SPECS[@]}"; do
    read -r L P U <<< "$spec"
    perf stat -e task-clock -p $P -o ${TMPDIR:-/tmp}/bench_rounds.$L.txt -- sleep 3 &
    sleep 0.05
    R=$(wrk -t1 -c50 -d3 $U | awk '/Requests\/sec/{print $2}')
    wait
    C=$(awk '/task-clock/{gsub(",","",$1); print $1}' ${TMPDIR:-/tmp}/bench_rounds.$L.txt)
    echo "$r $L $R $C"
  done
done

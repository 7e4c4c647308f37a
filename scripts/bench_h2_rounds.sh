#!/bin/bash
# usage: scripts/bench_h2_rounds.sh N "label pid url" ... > out.txt; then python3 scripts/bench_summarize.py out.txt nginx
# Alternates h2load -t1 -c50 -m10 (3 s, HTTP/2 with prior knowledge) over running servers, N rounds.
N=$1; shift
SPECS=("$@")
for r in $(seq $N); do
  for spec in "${SPECS[@]}"; do
    read -r L P U <<< "$spec"
    perf stat -e task-clock -p $P -o ${TMPDIR:-/tmp}/bench_rounds.$L.txt -- sleep 3 &
    sleep 0.05
    R=$(h2load -t1 -c50 -m10 -D3 $U 2>/dev/null | awk '/^finished in/{print $4}')
    wait
    C=$(awk '/task-clock/{gsub(",","",$1); print $1}' ${TMPDIR:-/tmp}/bench_rounds.$L.txt)
    echo "$r $L $R $C"
  done
done

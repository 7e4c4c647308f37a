#!/bin/bash
# User-space instructions per request, counted by valgrind's callgrind: deterministic, so it shows a change of a few
# percent that wall-clock runs on this shared machine cannot (BENCHMARKS.md, issue 20). It counts no kernel work.
#
#   scripts/bench_instructions.sh NAME hotroute BIN     # BIN --threads 1 serving routes.toml's /hello
#                                                       # (ROUTES=FILE: that file's /hello instead)
#   scripts/bench_instructions.sh NAME floor BIN [FLAGS] # target/release/examples/hyper_floor [--auto --timer --graceful]
#   scripts/bench_instructions.sh NAME nginx            # nginx, one process (master_process off), return 200
#   scripts/bench_instructions.sh NAME proxy BIN        # BIN --threads 1 with `[server] proxy` to an nginx `return 200`
#   scripts/bench_instructions.sh NAME proxyfloor BIN   # target/release/examples/proxy_floor to the same upstream
#
# 2,000 warm-up requests, then 20,000 counted (h2load --h1 -c 10). Needs valgrind and h2load (nghttp2-client).
set -euo pipefail
NAME=$1; KIND=$2; shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d)
UPSTREAM=
trap '[ -n "$UPSTREAM" ] && kill "$UPSTREAM" 2>/dev/null; rm -rf "$OUT"' EXIT
PORT=$((19000 + RANDOM % 900))
case $KIND in
  proxy|proxyfloor)
    # The upstream (not counted: it runs outside valgrind): one nginx process answering `Hello World`.
    UP=$((PORT + 1000))
    cat > "$OUT/up.conf" <<CONF
worker_processes 1; master_process off; daemon off; user root; pid $OUT/up.pid; error_log $OUT/up-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $OUT/ub; proxy_temp_path $OUT/up; fastcgi_temp_path $OUT/uf; uwsgi_temp_path $OUT/uu; scgi_temp_path $OUT/us;
  server { listen 127.0.0.1:$UP; location / { default_type "text/plain; charset=utf-8"; return 200 "Hello World"; } } }
CONF
    nginx -c "$OUT/up.conf" & UPSTREAM=$!
    printf '[server]\nproxy = "http://127.0.0.1:%s"\n' "$UP" > "$OUT/proxy.toml" ;;
esac
case $KIND in
  hotroute) CMD=("$1" --threads 1 -p "$PORT" --no-watch "${ROUTES:-$ROOT/routes.toml}") ;;
  floor) BIN=$1; shift; CMD=("$BIN" "$@" --port "$PORT") ;;
  proxy) CMD=("$1" --threads 1 -p "$PORT" --no-watch "$OUT/proxy.toml") ;;
  proxyfloor) CMD=("$1" --port "$PORT" --upstream "127.0.0.1:$UP") ;;
  nginx)
    cat > "$OUT/nginx.conf" <<CONF
worker_processes 1; master_process off; daemon off; user root; pid $OUT/nginx.pid; error_log $OUT/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $OUT/b; proxy_temp_path $OUT/p; fastcgi_temp_path $OUT/f; uwsgi_temp_path $OUT/u; scgi_temp_path $OUT/s;
  server { listen 127.0.0.1:$PORT; location = /hello { default_type "text/plain; charset=utf-8"; return 200 "Hello World"; } } }
CONF
    CMD=(nginx -c "$OUT/nginx.conf") ;;
  *) echo "unknown kind $KIND (hotroute, floor, nginx, proxy or proxyfloor)" >&2; exit 2 ;;
esac
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "${CMD[@]}" >/dev/null 2>"$OUT/valgrind.err" &
VP=$!
for _ in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$PORT/hello" && break; sleep 0.2; done
h2load --h1 -n 2000 -c 10 "http://127.0.0.1:$PORT/hello" >/dev/null
callgrind_control -z "$VP" >/dev/null 2>&1
h2load --h1 -n 20000 -c 10 "http://127.0.0.1:$PORT/hello" | grep -q "20000 succeeded"
callgrind_control -d "$VP" >/dev/null 2>&1
sleep 1
kill "$VP" 2>/dev/null; wait "$VP" 2>/dev/null || true
TOTAL=$(callgrind_annotate "$OUT/cg.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "$NAME: $((TOTAL / 20000)) instructions per request (user space)"

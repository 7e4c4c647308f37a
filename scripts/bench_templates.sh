#!/usr/bin/env bash
# Templated routes, two release builds in alternation: `scripts/bench_templates.sh OLD_BIN NEW_BIN [ROUNDS]`.
# For each round and build: wrk on /hello (static), /users/7 (a light template, rendered in place) and /heavy/7 (a
# loop, rendered on a render thread); prints req/s and the server's CPU (user + system) per request in µs, the
# steadier figure on a shared machine. Needs wrk (scripts/bench-http.sh installs it). Loopback only.
set -euo pipefail
old="$1" new="$2" rounds="${3:-3}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/routes.toml" <<'TOML'
[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/users/{id}"
template = true
body = "Hello {{ path.id }}"

[[route]]
path = "/heavy/{id}"
template = true
body = "{% for i in range(3) %}{{ path.id }}{% endfor %}"
TOML
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for round in $(seq "$rounds"); do
  for name in old new; do
    if [ "$name" = old ]; then bin="$old"; else bin="$new"; fi
    (cd "$dir" && exec "$bin" routes.toml --port "$port" --no-watch --log-level warn) &
    pid=$!
    sleep 0.5
    for path in /hello /users/7 /heavy/7; do
      c0=$(cpu $pid)
      out=$(wrk -t1 -c50 -d4s "http://127.0.0.1:$port$path" 2>/dev/null)
      c1=$(cpu $pid)
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      us=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v t="$tick" 'BEGIN {printf "%.2f", (b-a)/t*1e6/n}')
      echo "round $round $name $path req/s=$rps cpu_us_per_req=$us"
    done
    kill $pid
    wait $pid 2>/dev/null || true
  done
done

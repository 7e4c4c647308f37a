#!/usr/bin/env bash
# A longer soak against slow-HTTP attacks, outside CI: slowhttptest (Debian package) runs slow headers (slowloris),
# slow body (R-U-Dead-Yet) and slow read against a release build of hotroute on 127.0.0.1, while this script checks
# that a normal request still answers after each run. Loopback only; every run is bounded by -l.
#
#   scripts/soak.sh [SECONDS_PER_ATTACK] [CONNECTIONS]     (defaults: 60 s, 1000 connections)
#
# slowhttptest reports "service available: NO" when its probe request times out; hotroute should stay available.
# Its HTML/CSV statistics go to target/soak/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
conns=${2:-1000}

if ! command -v slowhttptest >/dev/null; then
    echo "installing slowhttptest (Debian package)" >&2
    apt-get install -y slowhttptest >/dev/null
fi
ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet
out=target/soak
mkdir -p "$out"
cat >"$out/routes.toml" <<'EOF'
[server]
header_read_timeout = "5s"
body_timeout = "10s"
write_timeout = "10s"

[[route]]
path = "/"
method = ["GET", "POST"]
body = "soak"

[[route]]
path = "/big"
file = "big.bin"
EOF
head -c $((4 * 1024 * 1024)) /dev/zero >"$out/big.bin"

target/release/hotroute "$out/routes.toml" --port 0 --no-watch --log-level error >"$out/stdout" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^listening on ' "$out/stdout" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$out/stdout")
[ -n "$url" ] || { echo "hotroute did not start" >&2; exit 1; }
echo "hotroute $pid at $url; $seconds s per attack, $conns connections"

check() {
    local body
    body=$(curl -s --max-time 2 "$url/") || true
    if [ "$body" = "soak" ]; then
        echo "  after $1: a normal request still answers; rss $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
    else
        echo "  after $1: NO ANSWER to a normal request" >&2
        exit 1
    fi
}

failed=0
run() {
    local name=$1
    shift
    echo "== $name"
    if ! slowhttptest "$@" -c "$conns" -r 200 -l "$seconds" -p 3 -g -o "$out/$name" >"$out/$name.log" 2>&1; then
        echo "  slowhttptest exited with an error, see $out/$name.log" >&2
    fi
    if grep -q "service available:.*NO" "$out/$name.log"; then
        echo "  slowhttptest saw the service unavailable at some point, see $out/$name.html" >&2
        failed=1
    fi
    check "$name"
}

run slow-headers -H -i 10 -u "$url/"
run slow-body -B -i 10 -s 100000 -u "$url/"
run slow-read -X -k 3 -n 5 -w 1 -y 64 -z 32 -u "$url/big"
exit "$failed"

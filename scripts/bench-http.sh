#!/usr/bin/env bash
# HTTP benchmark: hotroute vs nginx vs the seed's Go server (and, with --peers, WireMock and Mockoon CLI).
# Installs wrk, nginx-light and golang-go with apt-get if they are missing, builds hotroute in release mode, then runs
# scripts/bench_http.py. Options: --duration S, --rounds N, --connections N, --peers, --markdown FILE; --observe
# (or --only-observe) adds /hello with the access log and the trace on; --baseline-bin BIN compares another build.
# `scripts/bench-http.sh --summary [--duration S --rounds N --no-peers --markdown FILE]` runs every row of
# BENCHMARKS.md's summary in one go instead (scripts/bench_summary.py: peers, startup, reload, HTTP/2, proxy, HTTPS,
# resources).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v go >/dev/null || need+=(golang-go)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || echo "could not install ${need[*]}; those peers are skipped" >&2
fi
if [[ " $* " == *" --peers "* || ( " $* " == *" --summary "* && " $* " != *" --no-peers "* ) ]] && ! command -v java >/dev/null; then
  apt-get install -y -qq openjdk-17-jre-headless >/dev/null || true
fi
cargo build --release --quiet
if [ "${1:-}" = --summary ]; then
  shift
  exec python3 scripts/bench_summary.py "$@"
fi
exec python3 scripts/bench_http.py "$@"

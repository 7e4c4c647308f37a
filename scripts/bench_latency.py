#!/usr/bin/env python3
"""Latency at the same offered load: hotroute `--threads 1` against nginx (one worker), `/hello`, HTTP/1.1.

    python3 scripts/bench_latency.py [--rates 20000,40000] [--duration 5] [--rounds 3] [--connections 50]

wrk's closed loop (each connection sends its next request when the last answer arrives) makes latency follow
throughput: a server that answers fewer requests a second shows a higher p99 for that reason alone. This asks the
other question, how long a request waits when both servers get the same requests: h2load `--h1 --rps` sends each
connection's requests at a fixed rate (connections x rps = the rate offered), logs every request's time
(`--log-file`), and the p50/p99/p99.9 come from those logs. Servers alternate round by round; the table gives the
median of the rounds. Needs h2load (nghttp2-client) and nginx (nginx-light). Loopback only; it stops what it starts.
"""

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_http", ROOT / "scripts" / "bench_http.py")
bh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bh)


def run(url, rate, seconds, connections, log):
    """One h2load run at `rate` requests a second; (p50, p99, p99.9) in ms and the requests answered."""
    per_client = max(1, rate // connections)
    Path(log).unlink(missing_ok=True)  # h2load appends to its log
    out = subprocess.run(["h2load", "--h1", "-t1", f"-c{connections}", f"--rps={per_client}", f"-D{seconds}",
                          f"--log-file={log}", url], capture_output=True, text=True).stdout
    times = []
    for line in Path(log).read_text().splitlines():
        parts = line.split()
        # start time (µs since the run began), status, time to the whole answer (µs)
        if len(parts) == 3 and parts[1] == "200":
            times.append(int(parts[2]) / 1000)
    if not times:
        print(out, file=sys.stderr)
        return None
    times.sort()

    def q(p):
        return times[min(len(times) - 1, int(p * len(times)))]

    return q(0.50), q(0.99), q(0.999), len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="20000,40000", help="offered requests per second, comma-separated")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hotroute-latency-"))
    servers = []
    try:
        servers.append(bh.start_hotroute("hotroute `--threads 1`", ROOT / "routes.toml", "/hello"))
        ngx = bh.start_nginx(tmp)
        if ngx is None:
            sys.exit("nginx is missing: apt-get install nginx-light")
        servers.append(ngx)
        rates = [int(r) for r in args.rates.split(",")]
        res = {(s.name, r): [] for s in servers for r in rates}
        for rnd in range(args.rounds):
            for rate in rates:
                for s in servers:
                    got = run(s.url, rate, args.duration, args.connections, tmp / "h2load.log")
                    if got:
                        res[(s.name, rate)].append(got)
                        print(f"round {rnd + 1} {rate}/s {s.name}: p50 {got[0]:.2f} p99 {got[1]:.2f} p99.9 "
                              f"{got[2]:.2f} ms ({got[3]} requests)", file=sys.stderr)
    finally:
        for s in servers:
            s.stop()
        subprocess.run(["rm", "-rf", str(tmp)])
    print(f"h2load --h1 -t1 -c{args.connections} --rps (fixed rate per connection), {args.duration} s, "
          f"{args.rounds} alternating rounds, median of rounds\n")
    print("| offered req/s | server | p50 ms | p99 ms | p99.9 ms | p99 rounds | answered/s |")
    print("| ---: | --- | ---: | ---: | ---: | --- | ---: |")
    for rate in rates:
        for s in servers:
            runs = res[(s.name, rate)]
            if not runs:
                continue
            med = [statistics.median(r[i] for r in runs) for i in range(3)]
            rounds = " / ".join(f"{r[1]:.2f}" for r in runs)
            answered = statistics.median(r[3] for r in runs) / args.duration
            print(f"| {rate:,} | {s.name} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {rounds} | {answered:,.0f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Replicas sharing state through Redis (issue 19), measured with wrk on loopback:

1. a sequence route with its counter in Redis against the same route in process (goal: at least 0.3x);
2. a plain route with `[server] state` set against without, and against the build from main (`--main BIN`);
3. requests per second of 1, 2 and 3 replicas behind nginx (round robin), on the sequence route and a plain one;

and the Redis commands each request costs (INFO commandstats before and after). Starts its own redis-server and
nginx on free ports in a temporary folder and stops everything at the end.

    scripts/bench_replicas.py --bin target/release/hotroute --main /path/to/main/hotroute [--seconds 5] [--rounds 3]

`--baseline OLD` also runs the sequence rows (in process and through Redis) on an older build OLD, alternated with
this one in every round, and prints the per-round ratios and their medians (OLD writes under its own key prefix);
the Redis rows then give Redis's own CPU per request too. `--no-nginx` leaves out part 3.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROUTES = """
[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/seq"
sequence = [{ body = "one" }, { body = "two" }, { body = "three" }, { body = "four" }, { body = "five" }]
repeat = "cycle"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def cpu_seconds(pids):
    """User and system CPU time of processes `pids` so far, in seconds (from /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url, seconds, connections=32, pids=(), also=()):
    """Requests per second, and the CPU microseconds `pids` spent per request (robust on a busy machine); with
    `also`, the CPU microseconds per request of those processes as a third value."""
    cpu, cpu_also = cpu_seconds(pids), cpu_seconds(also)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    cpu, cpu_also = cpu_seconds(pids) - cpu, cpu_seconds(also) - cpu_also
    served = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} error answers\n{out}")
    if also:
        return rps, cpu * 1e6 / max(served, 1), cpu_also * 1e6 / max(served, 1)
    return rps, cpu * 1e6 / max(served, 1)


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def commands(port):
    """Total calls per command, from INFO commandstats."""
    stats = {}
    for m in re.finditer(r"cmdstat_(\w+):calls=(\d+)", redis_cli(port, "INFO", "commandstats")):
        stats[m.group(1)] = int(m.group(2))
    return stats


class Proc:
    def __init__(self, args, cwd, port=None):
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.port = port

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def hotroute(binary, tmp, name, server=""):
    folder = tmp / name
    folder.mkdir()
    (folder / "routes.toml").write_text(f"[server]\n{server}\n{ROUTES}")
    p = Proc([binary, "routes.toml", "--port", "0", "--no-watch", "--threads", "1", "--log-level", "error"], folder)
    line = p.proc.stdout.readline().decode()
    p.port = int(line.rsplit(":", 1)[1])
    return p


def nginx(tmp, ports):
    port = free_port()
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in ports)
    conf = tmp / f"nginx-{port}.conf"
    conf.write_text(f"""
daemon off; master_process off; worker_processes 1; pid {tmp}/nginx-{port}.pid; error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f; uwsgi_temp_path {tmp}/u;
  scgi_temp_path {tmp}/s;
  upstream replicas {{
{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header Host 127.0.0.1; }}
  }}
}}
""")
    p = Proc(["nginx", "-c", str(conf), "-p", str(tmp)], tmp, port)
    assert wait_port(port), (tmp / "nginx-error.log").read_text()
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/hotroute")
    ap.add_argument("--main", help="the build from main, for the plain-route before/after")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", help="an older build whose sequence rows run alternated with this one's")
    ap.add_argument("--no-nginx", action="store_true", help="leave out the replicas behind nginx")
    args = ap.parse_args()
    for tool in ("wrk", "redis-server", "redis-cli", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install -y wrk redis-server nginx-light")
    results, cpu, redis_cpu = {}, {}, {}

    def measure(name, url, procs, redis=None):
        got = wrk(url, args.seconds, pids=[p.proc.pid for p in procs], also=[redis.proc.pid] if redis else ())
        results.setdefault(name, []).append(got[0])
        cpu.setdefault(name, []).append(got[1])
        if redis:
            redis_cpu.setdefault(name, []).append(got[2])

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        rport = free_port()
        redis = Proc(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--dir", str(tmp)], tmp, rport)
        assert wait_port(rport)
        # A generous timeout: on a loaded shared machine a Redis round trip can pass the 500 ms default, and a 503
        # would count as an error here.
        state = f'state = "redis://127.0.0.1:{rport}/0"\nstate_timeout = "5s"'
        procs = [redis]
        try:
            local = hotroute(args.bin, tmp, "local")
            shared = hotroute(args.bin, tmp, "shared", state)
            procs += [local, shared]
            old = None
            if args.main:
                old = hotroute(args.main, tmp, "main")
                procs.append(old)
            base_local = base_shared = None
            if args.baseline:
                base_local = hotroute(args.baseline, tmp, "baseline-local")
                base_shared = hotroute(args.baseline, tmp, "baseline-shared", f'{state}\nstate_prefix = "baseline"')
                procs += [base_local, base_shared]
            replicas, balancers = [shared], []
            if not args.no_nginx:
                replicas += [hotroute(args.bin, tmp, f"replica{i}", state) for i in (2, 3)]
                procs += replicas[1:]
                balancers = [nginx(tmp, [r.port for r in replicas[:n]]) for n in (1, 2, 3)]
                procs += balancers

            # Redis commands per request (INFO commandstats around a short run; the journal's XADDs are batched).
            for path in ("/seq", "/hello"):
                before = commands(rport)
                out = subprocess.run(["wrk", "-t1", "-c1", "-d1s", f"http://127.0.0.1:{shared.port}{path}"],
                                     capture_output=True, text=True, check=True).stdout
                time.sleep(0.5)  # lets the journal writer flush its last batch
                after = commands(rport)
                served = int(re.search(r"(\d+) requests in", out).group(1))
                diff = {k: round((after[k] - before.get(k, 0)) / served, 3) for k in after if after[k] != before.get(k, 0)}
                results[f"commands {path}"] = diff

            for _ in range(args.rounds):
                # CPU per request: of hotroute alone, and (for the Redis rows) of hotroute and Redis together.
                measure("sequence, in process", f"http://127.0.0.1:{local.port}/seq", [local])
                measure("sequence, Redis", f"http://127.0.0.1:{shared.port}/seq", [shared], redis)
                if base_local:
                    measure("baseline: sequence, in process", f"http://127.0.0.1:{base_local.port}/seq", [base_local])
                    measure("baseline: sequence, Redis", f"http://127.0.0.1:{base_shared.port}/seq", [base_shared],
                            redis)
                measure("plain, no state", f"http://127.0.0.1:{local.port}/hello", [local])
                measure("plain, state set", f"http://127.0.0.1:{shared.port}/hello", [shared])
                if old:
                    measure("plain, main (no state)", f"http://127.0.0.1:{old.port}/hello", [old])
                for n, lb in zip((1, 2, 3), balancers):
                    used = [lb, redis, *replicas[:n]]
                    measure(f"nginx + {n} replica(s), sequence", f"http://127.0.0.1:{lb.port}/seq", used)
                    measure(f"nginx + {n} replica(s), plain", f"http://127.0.0.1:{lb.port}/hello", used)
        finally:
            for p in reversed(procs):
                p.stop()

    print(f"wrk -t1 -c32 -d{args.seconds}s, median of {args.rounds} rounds, hotroute --threads 1, loopback")
    for name, value in results.items():
        if name.startswith("commands"):
            continue
        extra = f"  Redis {statistics.median(redis_cpu[name]):.1f} CPU us/req" if name in redis_cpu else ""
        print(f"  {name:34} {statistics.median(value):>8.0f} req/s  {statistics.median(cpu[name]):>6.1f} CPU us/req"
              f"  (rounds: {', '.join(f'{v:.0f}' for v in value)}){extra}")
    ratio = statistics.median(results["sequence, Redis"]) / statistics.median(results["sequence, in process"])
    print(f"  sequence through Redis / in process: {ratio:.2f}x (goal >= 0.3x)")

    def per_round(a, b):
        return [x / y for x, y in zip(results[a], results[b])]

    rounds = per_round("sequence, Redis", "sequence, in process")
    print(f"  per-round ratios, Redis / in process: {', '.join(f'{r:.2f}' for r in rounds)}; "
          f"median {statistics.median(rounds):.2f}x")
    if "baseline: sequence, Redis" in results:
        old = per_round("baseline: sequence, Redis", "baseline: sequence, in process")
        print(f"  baseline per-round ratios, Redis / in process: {', '.join(f'{r:.2f}' for r in old)}; "
              f"median {statistics.median(old):.2f}x")
        new_old = per_round("sequence, Redis", "baseline: sequence, Redis")
        print(f"  sequence through Redis, this build / baseline, per round: {', '.join(f'{r:.2f}' for r in new_old)}; "
              f"median {statistics.median(new_old):.2f}x")
    plain = statistics.median(results["plain, state set"]) / statistics.median(results["plain, no state"])
    print(f"  plain route with state set / without: {plain:.2f}x")
    for name, value in results.items():
        if name.startswith("commands"):
            print(f"  Redis {name}, per request: {value}")


if __name__ == "__main__":
    main()

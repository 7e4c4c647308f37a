#!/usr/bin/env python3
"""Proxy and HTTPS benchmark: hotroute against nginx, driven by wrk, loopback only.

1. Proxy: hotroute `[server] proxy` and nginx `proxy_pass` (keep-alive upstream pool) in front of the same upstream (an
   nginx worker answering `Hello World`).
2. HTTPS keep-alive: hotroute `[server] tls` and nginx `listen ssl` with the same certificate (ECDSA P-256, made here
   with openssl), `/hello` over kept-alive connections.
3. HTTPS new handshakes: the same, with `Connection: close` on every request (a full handshake per request).

Each server gets one worker (hotroute `--threads 1`, nginx `worker_processes 1`); they are measured in alternation
(A B A B ...) so that a noisy neighbour slows both alike, and the table gives the median of the rounds and the ratio.

    scripts/bench_proxy.py [--bin target/release/hotroute] [--rounds 3] [--duration 5] [--connections 32]
                           [--baseline OLD_BIN] [--floor FLOOR_BIN] [--proxy-only]

`--baseline` measures a second hotroute binary (e.g. one built from `main`) in the same alternation for the proxy row,
so that a change is compared with what it replaces in the same run; `--floor` measures the proxy floor
(`cargo build --profile release --example proxy_floor`: the least a hyper 1 proxy does) in the same alternation too,
so that the run says how far hyper itself is from nginx; `--proxy-only` skips the HTTPS rows.

Each server's CPU time per request (user + system, from /proc/PID/stat around each wrk run; nginx: its worker) is
printed with the requests per second: it moves far less than throughput when the machine is shared.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def nginx(tmp, name, server_block, extra_http=""):
    """Starts an nginx with one worker and `server_block`; returns the process."""
    conf = tmp / f"{name}.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
user root;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/{name}-body;
  proxy_temp_path {tmp}/{name}-proxy;
  fastcgi_temp_path {tmp}/{name}-fcgi;
  uwsgi_temp_path {tmp}/{name}-uwsgi;
  scgi_temp_path {tmp}/{name}-scgi;
  keepalive_requests 1000000;
  {extra_http}
  {server_block}
}}
""")
    return subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hotroute(bin_path, routes):
    proc = subprocess.Popen([str(bin_path), str(routes), "--port", "0", "--threads", "1", "--no-watch",
                             "--log-level", "error"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    m = re.match(r"listening on (https?://\S+)", first)
    if not m:
        proc.kill()
        raise RuntimeError(f"hotroute: unexpected first line {first!r}")
    return proc, m.group(1)


def cpu_ticks(pid):
    """User and system CPU time of `pid` and its children's processes (an nginx master's worker), in clock ticks."""
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    user = system = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return user, system


def wrk(url, duration, connections, close=False, pid=None):
    """Requests per second, and the CPU µs per request of `pid` (the server measured) when given, as (total, user,
    system)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", url]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    before = cpu_ticks(pid) if pid else (0, 0)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    after = cpu_ticks(pid) if pid else (0, 0)
    user, system = after[0] - before[0], after[1] - before[1]
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  {url}: {errors.group(1)} non-2xx answers", file=sys.stderr)
    requests = int(n.group(1)) if n else 0
    per = 1e6 / os.sysconf("SC_CLK_TCK") / requests if requests and pid else float("nan")
    return (float(m.group(1)) if m else 0.0), ((user + system) * per, user * per, system * per)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def compare(name, a, b, args, close=False, base=None, pids=None, floor=None):
    """Measures URLs `a` (hotroute), `b` (nginx) and `base` (the baseline hotroute, if any) in alternation; returns
    table rows; `floor` is the proxy floor's URL, measured the same way. `pids` (same keys) names the processes whose
    CPU time per request is measured too."""
    pids = pids or {}
    runs = {"a": [], "b": [], "base": [], "floor": []}
    cpu = {"a": [], "b": [], "base": [], "floor": []}
    split = {"a": [], "b": [], "base": [], "floor": []}
    for _ in range(args.rounds):
        for key, url in (("a", a), ("b", b), ("base", base), ("floor", floor)):
            if url:
                rps, us = wrk(url, args.duration, args.connections, close, pids.get(key))
                runs[key].append(rps)
                cpu[key].append(round(us[0], 1))
                split[key].append(us[1:])
    if pids:
        ratios = [x / y for x, y in zip(runs["a"], runs["b"]) if y]
        print(f"{name}: per-round hotroute/nginx {[round(r, 2) for r in ratios]}", file=sys.stderr)
        if base:
            ratios = [x / y for x, y in zip(runs["a"], runs["base"]) if y]
            print(f"{name}: per-round hotroute/baseline {[round(r, 2) for r in ratios]}", file=sys.stderr)
            ratios = [x / y for x, y in zip(runs["base"], runs["b"]) if y]
            print(f"{name}: per-round baseline/nginx {[round(r, 2) for r in ratios]}", file=sys.stderr)
        if floor:
            ratios = [x / y for x, y in zip(runs["floor"], runs["b"]) if y]
            print(f"{name}: per-round floor/nginx {[round(r, 2) for r in ratios]}", file=sys.stderr)
            ratios = [x / y for x, y in zip(runs["a"], runs["floor"]) if y]
            print(f"{name}: per-round hotroute/floor {[round(r, 2) for r in ratios]}", file=sys.stderr)
        print(f"{name}: CPU µs per request (median; rounds): " + ", ".join(
            f"{k} {statistics.median(v):.1f} {v}" for k, v in cpu.items() if v), file=sys.stderr)
        # The kernel's part (two sockets' syscalls, wake-ups) and the process's own part move differently.
        print(f"{name}: user / system µs per request (medians): " + ", ".join(
            f"{k} {statistics.median(u for u, _ in v):.1f} / {statistics.median(s for _, s in v):.1f}"
            for k, v in split.items() if v), file=sys.stderr)
    ha, nb = statistics.median(runs["a"]), statistics.median(runs["b"])
    ratio = ha / nb if nb else float("nan")
    print(f"{name}: hotroute {ha:.0f} req/s, nginx {nb:.0f} req/s, ratio {ratio:.2f} (rounds {runs})", file=sys.stderr)
    rows = [f"| {name} | {ha:,.0f} | {nb:,.0f} | {ratio:.2f}x |"]
    if base:
        hb = statistics.median(runs["base"])
        ratio = hb / nb if nb else float("nan")
        print(f"{name} (baseline): hotroute {hb:.0f} req/s, ratio {ratio:.2f}", file=sys.stderr)
        rows.append(f"| {name}, baseline binary | {hb:,.0f} | {nb:,.0f} | {ratio:.2f}x |")
    if floor:
        hf = statistics.median(runs["floor"])
        ratio = hf / nb if nb else float("nan")
        print(f"{name} (floor): {hf:.0f} req/s, ratio {ratio:.2f}", file=sys.stderr)
        rows.append(f"| {name}, hyper floor (examples/proxy_floor.rs) | {hf:,.0f} | {nb:,.0f} | {ratio:.2f}x |")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=str(ROOT / "target" / "release" / "hotroute"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--baseline", help="another hotroute binary to measure in the same run (proxy row)")
    p.add_argument("--floor", help="the proxy_floor example's binary, measured in the same run (proxy row)")
    p.add_argument("--proxy-only", action="store_true", help="skip the HTTPS rows")
    args = p.parse_args()
    procs = []
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        try:
            up = free_port()
            procs.append(nginx(tmp, "upstream", f"""server {{ listen 127.0.0.1:{up};
                location / {{ default_type "text/plain; charset=utf-8"; return 200 "Hello World"; }} }}"""))
            np_port = free_port()
            procs.append(nginx(tmp, "proxy", f"""server {{ listen 127.0.0.1:{np_port};
                location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""",
                               extra_http=f"upstream up {{ server 127.0.0.1:{up}; keepalive 64; }}"))
            routes = tmp / "proxy.toml"
            routes.write_text(f'[server]\nproxy = "http://127.0.0.1:{up}"\n')
            hp, hp_url = hotroute(args.bin, routes)
            procs.append(hp)
            base_url = None
            if args.baseline:
                hb, base_url = hotroute(args.baseline, routes)
                procs.append(hb)
                base_url += "/hello"
            floor_url = None
            if args.floor:
                fp = subprocess.Popen([args.floor, "--port", "0", "--upstream", f"127.0.0.1:{up}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                procs.append(fp)
                m = re.match(r"listening on (http://\S+)", fp.stdout.readline())
                if not m:
                    raise RuntimeError("proxy_floor: no `listening on` line")
                floor_url = m.group(1) + "/hello"
            for port in (up, np_port):
                assert wait_port(port), f"nginx on {port} did not start"
            pids = {"a": hp.pid, "b": procs[1].pid}
            if args.baseline:
                pids["base"] = hb.pid
            if args.floor:
                pids["floor"] = fp.pid
            rows += compare("proxy to the same upstream (keep-alive)", hp_url + "/hello",
                            f"http://127.0.0.1:{np_port}/hello", args, base=base_url, pids=pids, floor=floor_url)
            if args.proxy_only:
                return print_rows(rows)

            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(tmp / "key.pem"),
                            "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
            tls_routes = tmp / "tls.toml"
            tls_routes.write_text('[server]\ntls = { cert = "cert.pem", key = "key.pem" }\n\n[[route]]\n'
                                  'path = "/hello"\nbody = "Hello World"\n')
            ht, ht_url = hotroute(args.bin, tls_routes)
            procs.append(ht)
            ns_port = free_port()
            procs.append(nginx(tmp, "tls", f"""server {{ listen 127.0.0.1:{ns_port} ssl;
                ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;
                ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;
                location = /hello {{ default_type "text/plain; charset=utf-8"; return 200 "Hello World"; }} }}"""))
            assert wait_port(ns_port), "nginx (TLS) did not start"
            rows += compare("HTTPS keep-alive", ht_url + "/hello", f"https://127.0.0.1:{ns_port}/hello", args)
            rows += compare("HTTPS new handshake per request", ht_url + "/hello",
                            f"https://127.0.0.1:{ns_port}/hello", args, close=True)
        finally:
            for proc in procs:
                stop(proc)
    print_rows(rows)


def print_rows(rows):
    print("| what | hotroute (req/s) | nginx (req/s) | hotroute / nginx |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Every benchmark row of issue 20 in one run, on one machine, one after the other, with a one-screen summary.

    python3 scripts/bench_summary.py [--duration 5] [--rounds 3] [--no-peers] [--markdown summary.md]

What it runs, in this order (each part alternates its servers round by round, so a noisy neighbour slows them alike):
1. `scripts/bench_http.py --peers`: `/hello` on hotroute (`--threads 1` and a worker per core), nginx (one worker),
   the seed's Go server, WireMock and Mockoon CLI, plus hotroute's templated, `match` and 10,000-route rows;
   req/s, p50/p99 (wrk `--latency`), server CPU per request, RSS after the load.
2. Startup (spawn to the first `200` on `/hello`, median of 3) of each server, and reload (a saved change to the
   first request that gets the new answer, median of 10): hotroute's file watch (a truncate-then-write save, as
   `cat new > routes.toml` does), nginx's `SIGHUP`, WireMock's mapping files with `POST /__admin/mappings/reset`.
   The Go seed has no reload (recompile and restart), nor has Mockoon CLI (restart).
3. HTTP/2: `h2load -t1 -c50 -m10` (h2c, prior knowledge) against hotroute `--threads 1` and nginx `http2`.
4. `scripts/bench_proxy.py`: the proxy against nginx `proxy_pass`, HTTPS kept alive and HTTPS new handshakes.
5. `scripts/bench_http.py --resources`: a resource's GET and POST and a scenario route against `/hello`.

It needs wrk, h2load (nghttp2-client), nginx-light, golang-go, openssl, and for the peers npx and java
(`scripts/bench-http.sh` installs the first ones). Loopback only; everything it starts it stops.
"""

import argparse
import importlib.util
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_http", ROOT / "scripts" / "bench_http.py")
bh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bh)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


def get(url, timeout=1.0):
    """The body of a GET, or None on any failure (refused, timeout, non-200)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode() if r.status == 200 else None
    except Exception:
        return None


def wait_body(url, want=None, timeout=120.0):
    """Polls `url` until it answers 200 (with body `want`, if given); returns the seconds it took, or None."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        body = get(url, timeout=0.5)
        if body is not None and (want is None or body == want):
            return time.perf_counter() - t0
        time.sleep(0.001)
    return None


def kill_tree(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()


# --- 2. startup and reload -------------------------------------------------------------------------------------------


def startup_hotroute(bin_path, tmp):
    routes = tmp / "startup.toml"
    routes.write_text('[[route]]\npath = "/hello"\nbody = "Hello World"\n')
    port = bh.free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(bin_path), str(routes), "--port", str(port), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    took = wait_body(f"http://127.0.0.1:{port}/hello", timeout=20)
    took = None if took is None else time.perf_counter() - t0
    kill_tree(proc)
    return took


def nginx_conf(tmp, port, body, name="reload", http2=False):
    """Writes an nginx config with one worker answering `body` on /hello at `port` (h2c with `http2`)."""
    conf = tmp / f"{name}-nginx.conf"
    listen = f"127.0.0.1:{port}" + (" http2" if http2 else "")
    conf.write_text(f"""
worker_processes 1;
daemon off;
user root;
pid {tmp}/{name}-nginx.pid;
error_log {tmp}/{name}-nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/{name}-body; proxy_temp_path {tmp}/{name}-proxy; fastcgi_temp_path {tmp}/{name}-fcgi;
  uwsgi_temp_path {tmp}/{name}-uwsgi; scgi_temp_path {tmp}/{name}-scgi;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  server {{
    listen {listen};
    location = /hello {{ default_type "text/plain; charset=utf-8"; return 200 "{body}"; }}
  }}
}}
""")
    return conf


def startup_nginx(tmp):
    port = bh.free_port()
    conf = nginx_conf(tmp, port, "Hello World")
    t0 = time.perf_counter()
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    took = wait_body(f"http://127.0.0.1:{port}/hello", timeout=20)
    took = None if took is None else time.perf_counter() - t0
    kill_tree(proc)
    return took


def startup_go(tmp):
    """The seed's Go server: built once by bench_http's starter, then spawned and timed (not its build)."""
    s = bh.start_go_seed(tmp)
    if s is None:
        return None
    s.stop()
    binary = tmp / "seed" / "seed"
    times = []
    for _ in range(3):
        time.sleep(0.2)
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(binary)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        took = wait_body("http://127.0.0.1:3000/hello", timeout=20)
        times.append(None if took is None else time.perf_counter() - t0)
        kill_tree(proc)
    return med(times)


def startup_peer(starter, tmp):
    """WireMock or Mockoon through bench_http's starters (npx, cached after the first): spawn to the first 200."""
    t0 = time.perf_counter()
    s = starter(tmp)
    if s is None:
        return None
    took = wait_body(s.url, timeout=120)
    took = None if took is None else time.perf_counter() - t0
    s.stop()
    kill_tree(s.proc)
    return took


def time_saves(url, saves, save, stop, first="v0"):
    """Once `url` answers `first` (if given), saves `saves` changes (`save(i)` makes the answer `v{i}`; False: it
    failed), each 0.2 s after the last was served; then `stop()`, whatever happened. Returns the seconds from each
    save to the first request that got its answer."""
    out = []
    try:
        if first is not None:
            wait_body(url, first, timeout=20)
        for i in range(1, saves + 1):
            time.sleep(0.2)
            t0 = time.perf_counter()
            if save(i) is False:
                continue
            if wait_body(url, f"v{i}", timeout=10) is not None:
                out.append(time.perf_counter() - t0)
    finally:
        stop()
    return out


def reload_hotroute(bin_path, tmp, saves):
    routes = tmp / "reload.toml"
    text = '[[route]]\npath = "/hello"\nbody = "{}"\n'
    routes.write_text(text.format("v0"))
    proc = subprocess.Popen([str(bin_path), str(routes), "--port", "0", "--threads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    url = re.match(r"listening on (http://\S+)", proc.stdout.readline()).group(1) + "/hello"
    def save(i):
        # The way `cat new > routes.toml` saves: truncate, then write.
        routes.write_text(text.format(f"v{i}"))

    return time_saves(url, saves, save, lambda: kill_tree(proc))


def reload_nginx(tmp, saves):
    port = bh.free_port()
    conf = nginx_conf(tmp, port, "v0")
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def save(i):
        nginx_conf(tmp, port, f"v{i}")
        proc.send_signal(signal.SIGHUP)

    return time_saves(f"http://127.0.0.1:{port}/hello", saves, save, lambda: kill_tree(proc))


def reload_wiremock(tmp, saves):
    s = bh.start_wiremock(tmp)
    if s is None:
        return []
    mapping = tmp / "wiremock" / "mappings" / "0.json"
    admin = s.url.replace("/hello", "/__admin/mappings/reset")

    def save(i):
        mapping.write_text('{"request":{"method":"GET","url":"/hello"},"response":{"status":200,"body":"v%d"}}' % i)
        try:
            urllib.request.urlopen(urllib.request.Request(admin, method="POST", data=b""), timeout=10).read()
        except Exception as e:
            log(f"WireMock reset failed: {e}")
            return False

    def stop():
        s.stop()
        kill_tree(s.proc)

    # WireMock starts with its own body: no "v0" to wait for.
    return time_saves(s.url, saves, save, stop, first=None)


# --- 3. HTTP/2 -------------------------------------------------------------------------------------------------------


def h2_rounds(bin_path, tmp, rounds, duration):
    port = bh.free_port()
    conf = nginx_conf(tmp, port, "Hello World", name="h2", http2=True)
    ngx = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    bh.wait_port(port)
    time.sleep(0.2)
    ngx_pids = [ngx.pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(ngx.pid)], capture_output=True,
                                                           text=True).stdout.split()]
    hr = bh.start_hotroute("hotroute", ROOT / "routes.toml", "/hello", bin=bin_path)
    servers = [("hotroute `--threads 1`", hr.url, hr.pids), ("nginx (1 worker, h2c)", f"http://127.0.0.1:{port}/hello",
                                                             ngx_pids)]
    runs = {name: [] for name, _, _ in servers}
    try:
        for r in range(rounds):
            for name, url, pids in servers:
                before = bh.cpu_seconds(pids)
                out = subprocess.run(["h2load", "-t1", "-c50", "-m10", f"-D{duration}", url], capture_output=True,
                                     text=True).stdout
                after = bh.cpu_seconds(pids)
                m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
                done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
                rps = float(m.group(1)) if m else 0.0
                n = int(done.group(2)) if done else 0
                cpu = (after - before) * 1e6 / n if n and before is not None and after is not None else None
                runs[name].append((rps, cpu))
                log(f"h2 round {r + 1}: {name} {rps:,.0f} req/s, cpu {cpu and round(cpu, 2)} us/req")
    finally:
        hr.stop()
        kill_tree(ngx)
    return runs


# --- the run ---------------------------------------------------------------------------------------------------------


def run_script(args_list, label):
    log(f"{label}: {' '.join(args_list)}")
    out = subprocess.run([sys.executable, *args_list], cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(out.stderr[-4000:])
    if out.returncode != 0:
        log(f"{label} failed (exit {out.returncode})")
    return out.stdout


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ms(v):
    return "—" if v is None else f"{v * 1000:.0f} ms" if v >= 0.1 else f"{v * 1000:.1f} ms"


def parse_table(text):
    """Rows of bench_http.py's markdown table by server name: [req/s, p50, p99, cpu]."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[1].replace(",", "").replace(".", "").isdigit():
            rows[cells[0]] = cells[1:5]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true", help="skip WireMock and Mockoon (slow to start)")
    ap.add_argument("--markdown", help="also write the result to this file")
    args = ap.parse_args()
    # The build under test is bench_http.py's: CARGO_TARGET_DIR's release build, else the repository's.
    bin_path = bh.BIN.resolve()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    started, load0 = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="hotroute-summary-"))
    dur, rounds = str(args.duration), str(args.rounds)

    # 1. /hello against every peer.
    http = run_script(["scripts/bench_http.py", "--duration", dur, "--rounds", rounds]
                      + ([] if args.no_peers else ["--peers"]), "1/5 /hello")
    # 2. startup and reload.
    log("2/5 startup and reload")
    startup = {"hotroute": med([startup_hotroute(bin_path, tmp) for _ in range(3)]),
               "nginx": med([startup_nginx(tmp) for _ in range(3)])}
    go = tmp / "go"
    go.mkdir()
    startup["Go"] = startup_go(go)
    reload = {"hotroute": reload_hotroute(bin_path, tmp, 10), "nginx": reload_nginx(tmp, 10)}
    if not args.no_peers:
        for name, starter in (("WireMock", bh.start_wiremock), ("Mockoon", bh.start_mockoon)):
            times = []
            for i in range(3):
                sub = tmp / f"{name}-{i}"
                sub.mkdir()
                times.append(startup_peer(starter, sub))
            startup[name] = med(times)
        sub = tmp / "wm-reload"
        sub.mkdir()
        reload["WireMock"] = reload_wiremock(sub, 10)
    log(f"startup {startup}; reload medians { {k: med(v) for k, v in reload.items()} }")
    # 3. HTTP/2.
    log("3/5 HTTP/2")
    h2 = h2_rounds(bin_path, tmp, args.rounds + 2, args.duration)
    # 4. proxy and HTTPS; 5. resources and scenarios.
    proxy = run_script(["scripts/bench_proxy.py", "--bin", str(bin_path), "--rounds", rounds, "--duration", dur],
                       "4/5 proxy and HTTPS")
    resources = run_script(["scripts/bench_http.py", "--resources", "--duration", dur, "--rounds", rounds],
                           "5/5 resources")
    load1 = loadavg()

    rows = parse_table(http)
    rss = {}
    for m in re.finditer(r"^- (.+?) RSS after load: ([\d.]+) MB", http, re.M):
        rss[m.group(1)] = m.group(2) + " MB"
    m = re.search(r"hotroute RSS: idle ([\d.]+) MB, after .*? ([\d.]+) MB", http)
    if m:
        rss["hotroute /hello"] = f"{m.group(2)} MB"
    nginx_rps = float(rows["nginx (1 worker)"][0].replace(",", "")) if "nginx (1 worker)" in rows else None
    who = [("hotroute `--threads 1`", "hotroute /hello", "hotroute"),
           ("hotroute, a worker per core (default)", "hotroute /hello, a thread per core", None),
           ("nginx 1 worker", "nginx (1 worker)", "nginx"), ("Go `net/http` (the seed)", "Go net/http (seed)", "Go"),
           ("WireMock (npm `wiremock`)", "WireMock", "WireMock"), ("Mockoon CLI", "Mockoon CLI", "Mockoon")]
    out = [f"`python3 scripts/bench_summary.py --duration {dur} --rounds {rounds}` at `{commit.strip()}`, {started}, "
           f"load average {load0} at the start and {load1} at the end.", "",
           "| server | req/s | vs nginx | p99 ms | CPU µs/req | RSS after load | startup | reload |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, key, short in who:
        if key not in rows:
            continue
        rps, _p50, p99, cpu = rows[key]
        ratio = f"{float(rps.replace(',', '')) / nginx_rps:.2f}x" if nginx_rps else "—"
        rel = med(reload.get(short, [])) if short else None
        rel_s = ms(rel) if rel is not None else ("recompile, restart" if short == "Go" else
                                                 "restart" if short == "Mockoon" else "—")
        out.append(f"| {label} | {rps} | {ratio} | {p99} | {cpu} | {rss.get(key, '—')} | "
                   f"{ms(startup.get(short)) if short else '—'} | {rel_s} |")
    out += ["", "HTTP/2 (h2load `-t1 -c50 -m10`, h2c):", "",
            "| server | req/s (median) | per-round ratio to nginx | CPU µs/req |", "| --- | ---: | --- | ---: |"]
    names = list(h2)
    ngx_runs = h2[names[1]]
    for name in names:
        ratios = [a[0] / b[0] for a, b in zip(h2[name], ngx_runs) if b[0]]
        out.append(f"| {name} | {med([r[0] for r in h2[name]]):,.0f} | "
                   f"{' '.join(f'{r:.2f}' for r in ratios)} (median {med(ratios):.2f}x) | "
                   f"{(med([r[1] for r in h2[name]]) or 0):.2f} |")
    out += ["", "Reload times (each save to the first request that got the new answer), ms: " + "; ".join(
        f"{k} " + " ".join(f"{v * 1000:.0f}" for v in vals) for k, vals in reload.items()), "",
            "## /hello and the peers (`scripts/bench_http.py`)", "", http.strip(), "",
            "## Proxy and HTTPS (`scripts/bench_proxy.py`)", "", proxy.strip(), "",
            "## Resources and scenarios (`scripts/bench_http.py --resources`)", "", resources.strip(), ""]
    text = "\n".join(out)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()

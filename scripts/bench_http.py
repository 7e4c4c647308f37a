#!/usr/bin/env python3
"""HTTP benchmark: hotroute against nginx and the seed's Go server on the same routes, driven by wrk.

Servers are measured in alternation (A B C A B C ...) so that a noisy neighbour slows them all alike; the table
reports the median of the rounds and ratios within this one run. Run it through scripts/bench-http.sh, which installs
wrk, nginx-light and golang-go first.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "go-http-request-journey.md"
# The build under test: CARGO_TARGET_DIR's when it is set (a worktree's own target dir), else the repository's.
BIN = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release" / "hotroute"


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


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Server:
    """A server process under test, with the URL wrk hits."""

    def __init__(self, name, proc, url, pids=None):
        self.name, self.proc, self.url = name, proc, url
        self.pids = pids or [proc.pid]
        self.runs = []

    def rss_mb(self):
        vals = [rss_kb(p) for p in self.pids]
        vals = [v for v in vals if v is not None]
        return sum(vals) / 1024 if vals else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# Worker threads for hotroute, set from --threads (default 1: the same CPU budget as nginx's one worker).
THREADS = ["--threads", "1"]


def start_hotroute(name, routes, path, extra=(), bin=BIN, all_cores=False):
    threads = [] if all_cores else THREADS
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(bin), str(routes), "--port", "0", *threads, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    startup_ms = (time.perf_counter() - t0) * 1000
    m = re.match(r"listening on (http://\S+)", first)
    if not m:
        proc.kill()
        raise RuntimeError(f"{name}: unexpected first line {first!r}")
    s = Server(name, proc, m.group(1) + path)
    s.startup_ms = startup_ms
    return s


def start_nginx(tmp):
    if not shutil.which("nginx"):
        return None
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/ngx-body;
  proxy_temp_path {tmp}/ngx-proxy;
  fastcgi_temp_path {tmp}/ngx-fcgi;
  uwsgi_temp_path {tmp}/ngx-uwsgi;
  scgi_temp_path {tmp}/ngx-scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = /hello {{ default_type "text/plain; charset=utf-8"; return 200 "Hello World"; }}
    location = /about {{ default_type "text/plain; charset=utf-8"; return 200 "I am Habib. I am a YouTuber. I am a Software Engineer."; }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        proc.kill()
        return None
    time.sleep(0.2)
    worker_pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    return Server("nginx (1 worker)", proc, f"http://127.0.0.1:{port}/hello", [proc.pid] + [int(p) for p in worker_pids])


def start_go_seed(tmp):
    """Builds the Go program from the seed note's code block, as written (it listens on :3000)."""
    if not shutil.which("go") or not SEED.exists():
        return None
    blocks = re.findall(r"```go\n(.*?)```", SEED.read_text(), re.S)
    code = next((b for b in blocks if "ListenAndServe" in b), None)
    if code is None:
        return None
    src = tmp / "seed"
    src.mkdir()
    (src / "main.go").write_text(code)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOCACHE=str(tmp / "gocache"), GOPATH=str(tmp / "gopath"))
    subprocess.run(["go", "mod", "init", "seed"], cwd=src, env=env, capture_output=True)
    build = subprocess.run(["go", "build", "-o", "seed", "."], cwd=src, env=env, capture_output=True, text=True)
    if build.returncode != 0:
        print("go build failed, skipping the seed:", build.stderr, file=sys.stderr)
        return None
    if wait_port(3000, timeout=0.3):
        print("port 3000 is taken, skipping the Go seed (it listens on :3000)", file=sys.stderr)
        return None
    proc = subprocess.Popen([str(src / "seed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(3000):
        proc.kill()
        return None
    return Server("Go net/http (seed)", proc, "http://127.0.0.1:3000/hello")


def start_wiremock(tmp):
    if not shutil.which("npx") or not shutil.which("java"):
        return None
    port = free_port()
    root = tmp / "wiremock"
    (root / "mappings").mkdir(parents=True)
    for i, (p, b) in enumerate([("/hello", "Hello World"),
                                ("/about", "I am Habib. I am a YouTuber. I am a Software Engineer.")]):
        (root / "mappings" / f"{i}.json").write_text(
            '{"request":{"method":"GET","url":"%s"},"response":{"status":200,"body":"%s"}}' % (p, b))
    # Only flags WireMock knows: an unknown one makes its option parser die with MissingResourceException (that,
    # not the JDK or the locale, is why it "failed on OpenJDK 17" before).
    proc = subprocess.Popen(["npx", "--yes", "wiremock", "--port", str(port), "--root-dir", str(root),
                             "--no-request-journal"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if not wait_port(port, timeout=120):
        os.killpg(proc.pid, signal.SIGKILL)
        return None
    s = Server("WireMock", proc, f"http://127.0.0.1:{port}/hello")
    s.pids = java_pids(proc.pid)
    return s


def start_mockoon(tmp):
    if not shutil.which("npx"):
        return None
    port = free_port()
    env_file = tmp / "mockoon.json"
    env_file.write_text("""{"uuid":"b","lastMigration":32,"name":"bench","endpointPrefix":"","latency":0,"port":%d,
"hostname":"127.0.0.1","folders":[],"routes":[
{"uuid":"r1","type":"http","documentation":"","method":"get","endpoint":"hello","responses":[{"uuid":"x1","body":"Hello World",
"latency":0,"statusCode":200,"label":"","headers":[],"bodyType":"INLINE","filePath":"","databucketID":"","sendFileAsBody":false,
"rules":[],"rulesOperator":"OR","disableTemplating":true,"fallbackTo404":false,"default":true,"crudKey":"id","callbacks":[]}],
"responseMode":null,"streamingMode":null,"streamingInterval":0}],
"rootChildren":[{"type":"route","uuid":"r1"}],"proxyMode":false,"proxyHost":"","proxyRemovePrefix":false,"tlsOptions":
{"enabled":false,"type":"CERT","pfxPath":"","certPath":"","keyPath":"","caPath":"","passphrase":""},"cors":false,"headers":[],
"proxyReqHeaders":[],"proxyResHeaders":[],"data":[],"callbacks":[]}""" % port)
    proc = subprocess.Popen(["npx", "--yes", "@mockoon/cli", "start", "--data", str(env_file), "--disable-log-to-file"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if not wait_port(port, timeout=120):
        os.killpg(proc.pid, signal.SIGKILL)
        return None
    s = Server("Mockoon CLI", proc, f"http://127.0.0.1:{port}/hello")
    s.pids = java_pids(proc.pid)
    return s


def java_pids(root_pid):
    """The process tree under root_pid (npx starts the real server as a child)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    children = {}
    for line in out:
        parts = line.split()
        if len(parts) == 2:
            children.setdefault(int(parts[1]), []).append(int(parts[0]))
    seen, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    return seen


def wrk(url, seconds, connections, extra=()):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
                         capture_output=True, text=True).stdout
    return parse_wrk(out)


def write_10k(path):
    lines = []
    for i in range(10_000):
        lines.append(f'[[route]]\npath = "/api/v1/resource{i}/{{id}}/items"\nbody = "resource {i}"\n')
    path.write_text("\n".join(lines))


EXTRAS = """
[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/users/{id}"
template = true
body = "Hello {{ path.id }}"

[[route]]
path = "/search"
body = "page two"
[route.match]
query = { page = "2" }
headers = { authorization = "Bearer good" }

[[route]]
path = "/search"
body = "fallback"
"""


def write_resources(tmp):
    """The route file of --resources: a static route, a 10,000-item resource (its data in a file) and a scenario
    route, all on one server. Each route's Lua script is written beside it."""
    items = ",\n".join(f'  {{"id": {i}, "name": "user {i}", "role": "{"admin" if i % 10 == 0 else "user"}"}}'
                        for i in range(1, 10_001))
    (tmp / "users.json").write_text(f"[\n{items}\n]\n")
    # max_items: a POST run adds an item per request and the resource is reset before each one (see run_wrk).
    (tmp / "resources.toml").write_text("""
[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/todo"
scenario = "todo"
state = "started"
body = "Hello World"

[[resource]]
path = "/users"
data = "users.json"
max_items = 10000000
""")
    # Every run drives wrk through a Lua `request` function, /hello too: a script costs wrk time (and wrk shares the
    # machine with the server), so the ratios compare like with like.
    lua = {
        "hello": 'request = function() return wrk.format("GET", "/hello") end\n',
        "todo": 'request = function() return wrk.format("GET", "/todo") end\n',
        "get": 'math.randomseed(15)\n'
               'request = function() return wrk.format("GET", "/users/" .. math.random(1, 10000)) end\n',
        "post": 'local body = \'{"name":"Ada","role":"admin"}\'\n'
                'local headers = { ["Content-Type"] = "application/json" }\n'
                'request = function() return wrk.format("POST", "/users", headers, body) end\n',
    }
    for name, text in lua.items():
        (tmp / f"{name}.lua").write_text(text)


# (label, Lua script, whether the resource is reset to its start data before each run)
RESOURCE_RUNS = [("/hello", "hello", False), ("GET /users/{id}", "get", False), ("POST /users", "post", True),
                 ("scenario route", "todo", False)]


def start_resource_servers(tmp, label, bin):
    """One server (one build) with the --resources routes, and a Server entry per route, sharing its process."""
    first = start_hotroute(f"{label} /hello", tmp / "resources.toml", "/hello", bin=bin)
    base = first.url[: -len("/hello")]
    out = []
    for name, script, reset in RESOURCE_RUNS:
        s = first if name == "/hello" else Server(f"{label} {name}", first.proc, base + "/hello")
        s.lua, s.reset, s.base, s.kind = str(tmp / f"{script}.lua"), reset, base, name
        s.hello_name = first.name
        out.append(s)
    return out


def reset_resources(base):
    """POST /__admin/reset: the resource back to its 10,000 start items (an admin write needs the header)."""
    import urllib.request
    req = urllib.request.Request(base + "/__admin/reset", method="POST", data=b"",
                                 headers={"X-Hotroute": "1", "Host": "127.0.0.1"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    ap.add_argument("--peers", action="store_true", help="also WireMock and Mockoon CLI (npm; slow to start)")
    ap.add_argument("--only-hotroute", action="store_true", help="skip nginx and Go")
    ap.add_argument("--observe", action="store_true",
                    help="also hotroute /hello with --log-requests, --log-format json and --trace (stderr to /dev/null)")
    ap.add_argument("--only-observe", action="store_true",
                    help="only hotroute /hello and the --observe scenarios (implies --observe)")
    ap.add_argument("--baseline-bin", help="also hotroute /hello served by this other build, e.g. an older commit")
    ap.add_argument("--threads", default="1",
                    help="hotroute worker threads (default 1, like nginx's one worker; 'all' for one per core)")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--resources", action="store_true",
                    help="only issue 15's figures: /hello, GET /users/{id} and POST /users on a 10,000-item "
                         "[[resource]], and a scenario route, on one server (and on --baseline-bin's build too)")
    args = ap.parse_args()

    global THREADS
    THREADS = [] if args.threads == "all" else ["--threads", args.threads]
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: run `cargo build --release` first (scripts/bench-http.sh does)")
    tmp = Path(tempfile.mkdtemp(prefix="hotroute-bench-"))
    write_10k(tmp / "routes-10k.toml")
    (tmp / "extras.toml").write_text(EXTRAS)
    extras_ok = subprocess.run([str(BIN), "check", str(tmp / "extras.toml")], capture_output=True).returncode == 0

    servers, notes = [], []
    if args.resources:
        try:
            write_resources(tmp)
            servers += start_resource_servers(tmp, "this build", BIN)
            if args.baseline_bin:
                servers += start_resource_servers(tmp, "baseline", Path(args.baseline_bin))
            for r in range(args.rounds):
                for s in servers:
                    if s.reset:
                        reset_resources(s.base)
                    res = run_wrk(s, args.duration, args.connections)
                    s.runs.append(res)
                    print(f"round {r + 1}: {s.name:34} {res['rps']:>10.0f} req/s  cpu {fmt(res['cpu_us'])} us/req"
                          + (f"  NON-2XX {res['errors']}" if res["errors"] else ""), file=sys.stderr)
        finally:
            for s in servers:
                s.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        table = resource_report(servers, args)
        print(table)
        if args.markdown:
            Path(args.markdown).write_text(table)
        return
    try:
        static = start_hotroute("hotroute /hello", ROOT / "routes.toml", "/hello")
        notes.append(f"hotroute startup to `listening` (2 routes): {static.startup_ms:.1f} ms")
        idle_rss = static.rss_mb()
        servers.append(static)
        if THREADS and not args.only_observe:
            servers.append(start_hotroute("hotroute /hello, a thread per core", ROOT / "routes.toml", "/hello",
                                          all_cores=True))
        if args.baseline_bin:
            servers.append(start_hotroute("hotroute /hello, baseline build", ROOT / "routes.toml", "/hello",
                                          bin=Path(args.baseline_bin)))
        if args.observe or args.only_observe:
            for label, flags in (("--log-requests", ["--log-requests"]), ("--log-format json", ["--log-format", "json"]),
                                 ("--trace", ["--trace"])):
                servers.append(start_hotroute(f"hotroute /hello {label}", ROOT / "routes.toml", "/hello", flags))
        if not args.only_hotroute and not args.only_observe:
            for starter in (start_nginx, start_go_seed):
                s = starter(tmp)
                if s:
                    servers.append(s)
                else:
                    notes.append(f"{starter.__name__[6:]}: not available, skipped")
        big = None if args.only_observe else start_hotroute(
            "hotroute 10k routes, deep route", tmp / "routes-10k.toml", "/api/v1/resource9999/42/items")
        if big:
            notes.append(f"hotroute startup to `listening` (10,000 routes): {big.startup_ms:.1f} ms")
            servers.append(big)
        if extras_ok and not args.only_observe:
            ex = start_hotroute("hotroute templated route", tmp / "extras.toml", "/users/7")
            servers.append(ex)
            servers.append(Server("hotroute match route", ex.proc, ex.url.replace("/users/7", "/search?page=2")))
            servers[-1].wrk_headers = True
        else:
            notes.append("templated and match routes: this build does not support them, skipped")
        if args.peers:
            for starter in (start_wiremock, start_mockoon):
                s = starter(tmp)
                if s:
                    # Warm the JVM / Node JIT before measuring.
                    wrk(s.url, 5, args.connections)
                    servers.append(s)
                else:
                    notes.append(f"{starter.__name__[6:]}: could not be started, skipped")

        for r in range(args.rounds):
            for s in servers:
                res = run_wrk(s, args.duration, args.connections)
                s.runs.append(res)
                cpu = f"  cpu {res['cpu_us']:.2f} us/req" if res["cpu_us"] else ""
                print(f"round {r + 1}: {s.name:34} {res['rps']:>10.0f} req/s  p50 {res['p50']} ms  p99 {res['p99']} ms{cpu}"
                      + (f"  NON-2XX {res['errors']}" if res["errors"] else ""), file=sys.stderr)
        loaded_rss = static.rss_mb()
        notes.append(f"hotroute RSS: idle {idle_rss:.1f} MB, after {args.rounds}x{args.duration}s of load {loaded_rss:.1f} MB")
        for s in servers:
            if s.name.startswith(("nginx", "Go", "WireMock", "Mockoon")):
                rss = s.rss_mb()
                if rss:
                    notes.append(f"{s.name} RSS after load: {rss:.1f} MB")
    finally:
        for s in servers:
            s.stop()
            if s.name in ("WireMock", "Mockoon CLI"):
                try:
                    os.killpg(s.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)

    table = report(servers, args, notes)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)


def cpu_seconds(pids):
    """User + system CPU time used so far by these processes (from /proc; None where it is not available)."""
    total = 0
    try:
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(s, seconds, connections):
    """One wrk run, plus the server's CPU time per request: steadier than req/s on a shared, noisy machine."""
    before = cpu_seconds(s.pids)
    # A header flag, not a Lua script: a script slows wrk itself, which shares the machine with the server.
    extra = ("-H", "Authorization: Bearer good") if getattr(s, "wrk_headers", False) else ()
    if getattr(s, "lua", None):
        extra = ("-s", s.lua)
    res = wrk(s.url, seconds, connections, extra)
    after = cpu_seconds(s.pids)
    res["cpu_us"] = (after - before) * 1e6 / res["requests"] if before is not None and after is not None and res["requests"] else None
    return res


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "errors": int(errors.group(1)) if errors else 0,
            "requests": int(requests.group(1)) if requests else 0}


def report(servers, args, notes):
    def med(s, k):
        vals = [r[k] for r in s.runs if r[k] is not None]
        return statistics.median(vals) if vals else None
    by = {s.name: s for s in servers}
    base = by.get("hotroute /hello")
    lines = [f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds, median of rounds",
             "", "| server | req/s | p50 ms | p99 ms | server CPU µs/req | vs hotroute /hello |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for s in servers:
        rps = med(s, "rps")
        ratio = rps / med(base, "rps") if base else float("nan")
        lines.append(f"| {s.name} | {rps:,.0f} | {fmt(med(s, 'p50'))} | {fmt(med(s, 'p99'))} | {fmt(med(s, 'cpu_us'))} "
                     f"| {ratio:.2f}x |")
    lines += ["", "Goals (ratios in this run):"]
    def goal(label, num, den, target, higher=True):
        if num is None or den is None:
            return
        r = num / den
        ok = r >= target if higher else r <= target
        lines.append(f"- {label}: {r:.2f}x (goal {'>=' if higher else '<='} {target}x) {'MET' if ok else 'MISSED'}")
    hr = med(base, "rps")
    if "nginx (1 worker)" in by:
        goal("hotroute /hello vs nginx", hr, med(by["nginx (1 worker)"], "rps"), 1.0)
        goal("hotroute p99 vs nginx p99", med(base, "p99"), med(by["nginx (1 worker)"], "p99"), 1.0, higher=False)
    if "Go net/http (seed)" in by:
        goal("hotroute /hello vs Go seed", hr, med(by["Go net/http (seed)"], "rps"), 1.6)
    if "hotroute 10k routes, deep route" in by:
        goal("10k routes deep route vs 2-route /hello", med(by["hotroute 10k routes, deep route"], "rps"), hr, 0.95)
    if "hotroute templated route" in by:
        goal("templated route vs static", med(by["hotroute templated route"], "rps"), hr, 0.7)
    if "hotroute match route" in by:
        goal("match route vs static", med(by["hotroute match route"], "rps"), hr, 0.8)
    if "hotroute /hello, baseline build" in by:
        goal("this build vs the baseline build (/hello)", hr, med(by["hotroute /hello, baseline build"], "rps"), 0.97)
    for label in ("--log-requests", "--log-format json", "--trace"):
        if f"hotroute /hello {label}" in by:
            s = by[f"hotroute /hello {label}"]
            line = f"- /hello with {label} (stderr to /dev/null) vs without: {med(s, 'rps') / hr:.2f}x req/s"
            if med(s, "cpu_us") and med(base, "cpu_us"):
                line += f", {med(s, 'cpu_us') - med(base, 'cpu_us'):+.2f} µs of server CPU per request"
            lines.append(line)
    if "hotroute /hello, baseline build" in by and med(base, "cpu_us") and med(by["hotroute /hello, baseline build"], "cpu_us"):
        d = med(base, "cpu_us") - med(by["hotroute /hello, baseline build"], "cpu_us")
        lines.append(f"- this build vs the baseline build: {d:+.2f} µs of server CPU per request")
    lines += ["", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def resource_report(servers, args):
    """--resources: each route's req/s as a ratio to /hello on the same server in the same round (the median of
    those per-round ratios), and the server's CPU per request."""
    by = {s.name: s for s in servers}
    goals = {"GET /users/{id}": 0.8, "POST /users": 0.5, "scenario route": 0.9}
    lines = [f"wrk -t1 -c{args.connections} -d{args.duration}s (a Lua `request` per route), {args.rounds} "
             "alternating rounds, hotroute --threads 1; ratio = median over rounds of (route req/s / /hello req/s "
             "on the same server in that round); CPU ratio = the same with /hello's server CPU per request over the "
             "route's (less sensitive to the machine's noise)", "",
             "| build | route | req/s (median) | server CPU µs/req (median) | vs /hello | CPU ratio | goal |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for s in servers:
        hello = by[s.hello_name]
        ratios = [a["rps"] / b["rps"] for a, b in zip(s.runs, hello.runs) if b["rps"]]
        cpu = [r["cpu_us"] for r in s.runs if r["cpu_us"] is not None]
        ratio = statistics.median(ratios) if ratios else float("nan")
        cpu_ratios = [b["cpu_us"] / a["cpu_us"] for a, b in zip(s.runs, hello.runs) if a["cpu_us"] and b["cpu_us"]]
        cpu_ratio = f"{statistics.median(cpu_ratios):.2f}x" if cpu_ratios else "-"
        goal = goals.get(s.kind)
        verdict = "" if goal is None else f">= {goal}x, {'met' if ratio >= goal else 'MISSED'}"
        errors = sum(r["errors"] for r in s.runs)
        label = s.kind + (f" ({errors} non-2xx)" if errors else "")
        lines.append(f"| {s.name.split(' ')[0] if s.name.startswith('baseline') else 'this build'} | {label} | "
                     f"{statistics.median(r['rps'] for r in s.runs):,.0f} | "
                     f"{fmt(statistics.median(cpu) if cpu else None)} | {ratio:.2f}x | {cpu_ratio} | {verdict} |")
    if any(s.name.startswith("baseline") for s in servers):
        lines += ["", "This build against the baseline, same route (median of per-round req/s ratios; CPU µs/req "
                  "difference of medians):"]
        for s in servers:
            if s.name.startswith("this build"):
                b = by.get("baseline" + s.name[len("this build"):])
                if b:
                    rr = statistics.median(x["rps"] / y["rps"] for x, y in zip(s.runs, b.runs) if y["rps"])
                    cs = [r["cpu_us"] for r in s.runs if r["cpu_us"]]
                    cb = [r["cpu_us"] for r in b.runs if r["cpu_us"]]
                    d = f", {statistics.median(cs) - statistics.median(cb):+.2f} µs CPU/req" if cs and cb else ""
                    lines.append(f"- {s.kind}: {rr:.2f}x req/s{d}")
    lines.append("")
    return "\n".join(lines)


def fmt(v):
    return "-" if v is None else f"{v:.2f}"


if __name__ == "__main__":
    main()

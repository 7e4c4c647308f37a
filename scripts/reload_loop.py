#!/usr/bin/env python3
"""Issue 12: a normal client's latency while 4 clients loop POST /__admin/reload on a 20,000-route file.

Usage: scripts/reload_loop.py PATH/TO/hotroute   (loopback only; stops by itself)
"""
import os, socket, subprocess, sys, tempfile, threading, time, statistics, http.client
BIN = sys.argv[1]
d = tempfile.mkdtemp()
routes = "[[route]]\npath = \"/hello\"\nbody = \"Hello World\"\n\n" + "".join(f"[[route]]\npath = \"/r{i}/{{id}}\"\nbody = \"r{i}\"\n\n" for i in range(20000))
open(os.path.join(d, "routes.toml"), "w").write(routes)
p = subprocess.Popen([BIN, "routes.toml", "--port", "0", "--no-watch", "--log-level", "error"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
line = p.stdout.readline().decode()
host, port = line.strip().rsplit("//", 1)[1].rsplit(":", 1)
port = int(port)
def latency(seconds):
    # Time-bounded, not count-bounded: on a build where each request waits for a reload, 20,000 requests take hours.
    out = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter(); c.request("GET", "/hello", headers={"Host": "localhost"}); c.getresponse().read(); out.append((time.perf_counter() - t) * 1000)
    return out
quiet = latency(2)
stop = False
counts = [0]
def loop():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop:
        try:
            c.request("POST", "/__admin/reload", headers={"Host": "localhost", "X-Hotroute": "1"}); c.getresponse().read(); counts[0] += 1
        except OSError:
            return  # the server was stopped at the end
ts = [threading.Thread(target=loop, daemon=True) for _ in range(4)]
[t.start() for t in ts]
time.sleep(1)
loaded = latency(10)
stop = True
p.terminate(); p.wait()
print(f"quiet: median {statistics.median(quiet):.2f} ms p99 {sorted(quiet)[int(len(quiet)*0.99)]:.2f} ms")
print(f"4 reload loops on 20,000 routes ({counts[0]} reload requests, {len(loaded)} GET /hello in 10 s): median {statistics.median(loaded):.2f} ms p99 {sorted(loaded)[int(len(loaded)*0.99)]:.2f} ms")

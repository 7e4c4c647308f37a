#!/usr/bin/env python3
"""The shared journal's cost on a plain route (issue 19), wall clock: /hello on OLD and NEW, each with and without
[server] state (four servers, --threads 1, one redis-server of its own on a free port, no persistence), wrk -t1 -c32
on each in turn, ROUNDS rounds; req/s, and hotroute's and Redis's CPU per request (utime + stime from /proc/PID/stat
over the run, divided by the requests wrk counted). Prints every run, the medians, and the per-round ratios of
state set / not set. Stops everything at the end. Hold the machine's bench lock around it on a shared machine.

    scripts/bench_journal.py OLD_BIN NEW_BIN SECONDS ROUNDS
"""
import os, subprocess, sys, tempfile, time, re, socket, statistics
OLD, NEW, SECS, ROUNDS = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tck = os.sysconf("SC_CLK_TCK")
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
tmp = tempfile.mkdtemp()
rport = free()
redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
time.sleep(0.5)
routes = '[[route]]\npath = "/hello"\nbody = "Hello World"\n\n[[route]]\npath = "/seq"\nsequence = [{ body = "a" }, { body = "b" }]\n'
procs = {}
for name, bin_ in (("old", OLD), ("new", NEW)):
    for st in ("nostate", "state"):
        d = os.path.join(tmp, f"{name}-{st}"); os.makedirs(d)
        server = f'[server]\nstate = "redis://127.0.0.1:{rport}/0"\nstate_prefix = "{name}"\n' if st == "state" else ""
        open(os.path.join(d, "routes.toml"), "w").write(server + routes)
        port = free()
        p = subprocess.Popen([bin_, "--threads", "1", "-p", str(port), "--no-watch", "routes.toml"], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs[(name, st)] = (p, port)
time.sleep(1.0)
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
res = {k: [] for k in procs}
try:
    for r in range(ROUNDS):
        for k in procs:
            p, port = procs[k]
            c0, r0 = cpu(p.pid), cpu(redis.pid)
            out = subprocess.run(["wrk", "-t1", "-c32", f"-d{SECS}s", f"http://127.0.0.1:{port}/hello"], capture_output=True, text=True).stdout
            c1, r1 = cpu(p.pid), cpu(redis.pid)
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            n = int(re.search(r"(\d+) requests in", out).group(1))
            res[k].append((rps, (c1 - c0) / n * 1e6, (r1 - r0) / n * 1e6))
            print(r, k, f"{rps:.0f} req/s", f"{(c1-c0)/n*1e6:.1f} us/req", f"redis {(r1-r0)/n*1e6:.2f} us/req", flush=True)
finally:
    for p, _ in procs.values(): p.kill()
    redis.kill()
print("medians:")
for k, v in res.items():
    print(k, f"{statistics.median(x[0] for x in v):.0f} req/s", f"{statistics.median(x[1] for x in v):.1f} us/req", f"redis {statistics.median(x[2] for x in v):.2f} us/req")
for name in ("old", "new"):
    ratios = [s[0] / n[0] for s, n in zip(res[(name, "state")], res[(name, "nostate")])]
    print(name, "state/nostate req/s per round:", " ".join(f"{x:.2f}" for x in ratios), "median", f"{statistics.median(ratios):.2f}")

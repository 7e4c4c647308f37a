#!/usr/bin/env python3
"""Measures what slow journal readers cost a hotroute server: RSS, and a normal client's latency meanwhile.

The attack of issue 12: fill the journal (10,000 requests of 64 KiB), then 8 clients ask for the whole journal with
bodies and never read their answers, while a normal client loops on GET /hello. Prints the server's peak RSS and
the normal client's latency percentiles. Loopback only; every step is bounded in time and the server is killed at
the end.

    scripts/admin-read-attack.py target/release/hotroute [--seconds 8] [--readers 8]
    scripts/admin-read-attack.py target/release/hotroute --h2 [--readers 6]

With `--h2` the readers are streams of one HTTP/2 connection that sets its flow-control window to 0, so the server
can send none of their answers (needs Python's `h2` package: `pip install h2`).

Run it against two builds in the same session to compare (e.g. main's and a branch's).
"""

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROUTES = """[server]
journal = 10000
max_body = "128KiB"

[[route]]
path = "/in"
method = "POST"
status = 201

[[route]]
path = "/hello"
body = "Hello World"
"""

# The heaviest read each build allows: everything on a build without pages, 1000 with bodies on one with pages.
ATTACK = "/__admin/requests?bodies=true&limit=1000000"


def rss_kib(pid):
    """(VmRSS, VmHWM) of the process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    get = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1))
    return get("VmRSS"), get("VmHWM")


def fill(port, count, size, threads=4):
    body = b"x" * size
    per = count // threads

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(per):
            conn.request("POST", "/in", body=body)
            conn.getresponse().read()
        conn.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)


def stalled_reader(port):
    """A client that asks for the journal and reads nothing: a tiny receive buffer, never read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {ATTACK} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return s


def h2_stalled_reader(port, streams):
    """One HTTP/2 connection with a stream window of 0 and `streams` journal reads on it: nothing can be sent."""
    import h2.config
    import h2.connection
    import h2.settings

    s = socket.create_connection(("127.0.0.1", port))
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    for _ in range(streams):
        sid = c.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", ATTACK), (":scheme", "http"), (":authority", f"127.0.0.1:{port}")]
        c.send_headers(sid, headers, end_stream=True)
    s.sendall(c.data_to_send())
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=float, default=8.0, help="how long the attack and the measure last")
    ap.add_argument("--readers", type=int, default=8, help="stalled readers (streams of one connection with --h2)")
    ap.add_argument("--h2", action="store_true", help="the readers are streams of one HTTP/2 connection, window 0")
    ap.add_argument("--journal", type=int, default=10000, help="[server] journal of the route file")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--body", type=int, default=64 * 1024)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "routes.toml")
        with open(path, "w") as f:
            f.write(ROUTES.replace("journal = 10000", f"journal = {args.journal}"))
        server = subprocess.Popen(
            [args.binary, path, "--port", "0", "--no-watch", "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            line = server.stdout.readline()
            port = int(line.strip().rsplit(":", 1)[1])
            t0 = time.monotonic()
            fill(port, args.requests, args.body)
            filled = time.monotonic() - t0
            rss_filled, _ = rss_kib(server.pid)

            if args.h2:
                readers = [h2_stalled_reader(port, args.readers)]
            else:
                readers = [stalled_reader(port) for _ in range(args.readers)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies, peak, refused = [], 0, 0
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                start = time.monotonic()
                conn.request("GET", "/hello")
                res = conn.getresponse()
                res.read()
                latencies.append((time.monotonic() - start) * 1000)
                peak = max(peak, rss_kib(server.pid)[0])
                time.sleep(0.005)
            # How many extra readers are turned away at once while the stalled ones hold their places.
            for _ in range(4):
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                probe.request("GET", "/__admin/requests?limit=1")
                r = probe.getresponse()
                r.read()
                refused += r.status == 503
                probe.close()
            peak = max(peak, rss_kib(server.pid)[0])
            hwm = rss_kib(server.pid)[1]
            for r in readers:
                r.close()
        finally:
            server.kill()
            server.wait(timeout=10)

    lat = sorted(latencies)
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))]
    print(f"binary: {args.binary}")
    print(f"filled {args.requests} x {args.body} B in {filled:.1f}s; RSS after fill: {rss_filled / 1024:.0f} MiB")
    print(
        f"{args.readers} stalled {'HTTP/2 streams (window 0)' if args.h2 else 'readers'} of {ATTACK}: peak RSS {peak / 1024:.0f} MiB, "
        f"{(peak - rss_filled) / 1024:.0f} MiB over the filled journal (high-water mark {hwm / 1024:.0f} MiB)"
    )
    print(
        f"normal client, {len(lat)} GET /hello: p50 {statistics.median(lat):.2f} ms, p99 {pct(99):.2f} ms, "
        f"max {lat[-1]:.2f} ms"
    )
    print(f"extra readers refused with 503 while the stalled ones wait: {refused} of 4")


if __name__ == "__main__":
    sys.exit(main())

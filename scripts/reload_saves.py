#!/usr/bin/env python3
"""Hot reload under truncate-then-write saves, against a hotroute binary.

    scripts/reload_saves.py BIN [--saves 100] [--gap-ms 30]

Loopback only and bounded (a fixed number of saves, every request with a timeout). A client loops on a route that
every version of the file has, while the route file is saved --saves times, --gap-ms apart, the way
`cat new.toml > routes.toml` does it: truncate, then write (in two parts, 5 ms apart). Prints how many looping
requests did not get 200, and how many generation bumps served something other than the body just saved.
"""

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time


def routes(body):
    return f'[[route]]\npath = "/x"\nbody = "{body}"\n\n[[route]]\npath = "/other"\nbody = "other"\n'


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("--saves", type=int, default=100)
    p.add_argument("--gap-ms", type=float, default=30)
    a = p.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = f"{tmp.name}/routes.toml"
    with open(path, "w") as f:
        f.write(routes("v0"))
    server = subprocess.Popen([a.bin, path, "--port", "0", "--log-level", "error"], stdout=subprocess.PIPE)
    port = int(server.stdout.readline().decode().rsplit(":", 1)[1])
    stop = threading.Event()
    counts = {"total": 0, "bad": 0}

    def loop():
        while not stop.is_set():
            status, _ = get(port, "/other")
            counts["total"] += 1
            if status != 200:
                counts["bad"] += 1

    looping = threading.Thread(target=loop)
    looping.start()
    wrong = 0
    try:
        for i in range(1, a.saves + 1):
            text = routes(f"v{i}").encode()
            cut = text.index(b'"v') + 2
            gen0 = json.loads(get(port, "/__admin/health")[1])["generation"]
            with open(path, "wb", buffering=0) as f:
                time.sleep(0.003)
                f.write(text[:cut])
                time.sleep(0.005)
                f.write(text[cut:])
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if json.loads(get(port, "/__admin/health")[1])["generation"] > gen0:
                    if get(port, "/x") != (200, f"v{i}"):
                        wrong += 1
                    break
                time.sleep(0.002)
            time.sleep(a.gap_ms / 1000)
    finally:
        stop.set()
        looping.join()
        server.kill()
        server.wait()
    print(
        f"{a.bin.rsplit('/', 1)[-1]}: {a.saves} saves: {counts['bad']} of {counts['total']} looping requests not 200; "
        f"{wrong} generation bumps did not serve the body just saved"
    )


if __name__ == "__main__":
    sys.exit(main())

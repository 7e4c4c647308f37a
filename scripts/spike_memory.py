#!/usr/bin/env python3
"""Resident memory of a hotroute binary during and after a spike of large request bodies.

    scripts/spike_memory.py BIN [--clients 1000] [--body-mib 1] [--after 6] [--env NAME=VALUE ...]

Every client connects, sends a POST whose Content-Length is --body-mib MiB and all of its body but the last byte (so
the server holds it, up to its body budget), and waits until all clients have done so; then they all close. Prints
the resident memory (VmRSS) before, at the peak, and each second for --after seconds after the clients left. It
shows whether memory freed after a spike goes back to the system (main.rs: mimalloc's purge delay and the periodic
collection), and what it costs the steady state is measured by `scripts/bench_proxy.py`. Loopback only.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bin")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--body-mib", type=int, default=1)
    parser.add_argument("--after", type=int, default=6, help="seconds to watch after the clients left")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server's environment")
    args = parser.parse_args()

    env = dict(os.environ)
    for pair in args.env:
        name, _, value = pair.partition("=")
        env[name] = value
    with tempfile.TemporaryDirectory() as tmp:
        routes = os.path.join(tmp, "routes.toml")
        with open(routes, "w") as f:
            # The body limit above the bodies sent; the budget (max_body_buffers) stays the default.
            f.write(f'[server]\nmax_body = "{args.body_mib * 2}MiB"\nmax_connections = {args.clients + 100}\n\n')
            f.write('[[route]]\nmethod = "POST"\npath = "/upload"\nbody = "ok"\n')
        server = subprocess.Popen(
            [args.bin, "-p", "0", "--no-watch", routes], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        try:
            line = server.stdout.readline().decode()
            port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
            time.sleep(0.3)
            before = rss_kib(server.pid)
            size = args.body_mib * 1024 * 1024
            head = f"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: {size}\r\n\r\n".encode()
            chunk = b"x" * 65536
            socks = []
            peak = before
            for _ in range(args.clients):
                s = socket.create_connection(("127.0.0.1", port))
                s.setblocking(True)
                s.sendall(head)
                left = size - 1
                try:
                    s.settimeout(2)
                    while left > 0:
                        n = s.send(chunk[: min(left, len(chunk))])
                        left -= n
                except (socket.timeout, OSError):
                    # The server stopped reading (its body budget is full): this client waits like the rest.
                    pass
                socks.append(s)
                peak = max(peak, rss_kib(server.pid))
            time.sleep(1)
            peak = max(peak, rss_kib(server.pid))
            for s in socks:
                s.close()
            samples = []
            for _ in range(args.after):
                time.sleep(1)
                samples.append(rss_kib(server.pid))
            open_fds = len(os.listdir(f"/proc/{server.pid}/fd"))
            env_text = " ".join(args.env) or "default environment"
            print(
                f"{env_text}: RSS before {before // 1024} MiB, peak {peak // 1024} MiB, after the clients left "
                + " ".join(f"{kib // 1024}" for kib in samples)
                + f" MiB (one a second); {open_fds} open files at the end"
            )
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())

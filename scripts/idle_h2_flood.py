#!/usr/bin/env python3
"""Fills hotroute's connection cap with idle HTTP/2 connections that keep sending PINGs, then times new clients.

The attack of issue 12: 4096 HTTP/2 connections (the default `max_connections`) that open no stream and send a PING
every few seconds, so that a server counting PINGs as activity never closes them. A new client then asks for /hello
20 times on fresh connections. Prints how many were answered, their latency, and how many idle connections the
server closed to make room. Loopback only; the server is killed at the end.

    scripts/idle_h2_flood.py target/release/hotroute [--connections 4096] [--ping-every 5]
"""

import argparse
import http.client
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import os
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"hotroute"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--connections", type=int, default=4096)
    ap.add_argument("--ping-every", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=20)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections * 2 + 1024), hard))

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "routes.toml")
        with open(path, "w") as f:
            f.write('[[route]]\npath = "/hello"\nbody = "Hello World"\n')
        server = subprocess.Popen(
            ["prlimit", f"--nofile={args.connections * 2 + 1024}", args.binary, path, "--port", "0", "--no-watch",
             "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
            sel = selectors.DefaultSelector()
            idle = []
            for _ in range(args.connections):
                s = socket.create_connection(("127.0.0.1", port))
                s.setblocking(False)
                s.send(PREFACE + SETTINGS + SETTINGS_ACK + PING)
                sel.register(s, selectors.EVENT_READ)
                idle.append(s)
            closed = set()

            def pump(until):
                last_ping = time.monotonic()
                while time.monotonic() < until:
                    for key, _ in sel.select(timeout=0.05):
                        try:
                            if not key.fileobj.recv(65536):
                                closed.add(key.fileobj)
                                sel.unregister(key.fileobj)
                        except OSError:
                            closed.add(key.fileobj)
                            sel.unregister(key.fileobj)
                    if time.monotonic() - last_ping > args.ping_every:
                        last_ping = time.monotonic()
                        for s in idle:
                            if s not in closed:
                                try:
                                    s.send(PING)
                                except OSError:
                                    pass

            pump(time.monotonic() + 2)
            lat, answered = [], 0
            for _ in range(args.clients):
                start = time.monotonic()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/hello")
                    answered += conn.getresponse().read() == b"Hello World"
                    conn.close()
                    lat.append((time.monotonic() - start) * 1000)
                except OSError:
                    lat.append(10_000.0)
                pump(time.monotonic() + 0.05)
            pump(time.monotonic() + 1)
        finally:
            server.kill()
            server.wait(timeout=10)
    lat.sort()
    print(f"binary: {args.binary}")
    print(f"{args.connections} idle HTTP/2 connections sending a PING every {args.ping_every:.0f} s")
    print(
        f"new clients answered: {answered} of {args.clients}; latency p50 {statistics.median(lat):.1f} ms, "
        f"max {lat[-1]:.1f} ms (10000 = no answer in 10 s)"
    )
    print(f"idle connections the server closed: {len(closed)}")


if __name__ == "__main__":
    sys.exit(main())

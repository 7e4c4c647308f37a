#!/usr/bin/env python3
"""Memory of a hotroute binary while many clients download one large file from a `dir` route at once.

    scripts/static_memory.py BIN [--clients 200] [--size-mib 100] [--kill-above-mib 2048] [--read-mib N]

Loopback only, and bounded: the file is sparse (no disk used), the server is killed if its resident memory goes over
--kill-above-mib (so an old build that reads whole files into memory cannot take the machine down), and the run
stops after --timeout seconds. Every client sends its GET, reads the head and 256 KiB, and waits until all clients
have got that far (so all downloads are in flight at once); then each reads --read-mib of the body (default: all of
it). Prints the peak resident memory (VmHWM), the peak virtual memory (VmPeak) and the most threads seen.

Compare two builds in the same run, e.g. `scripts/static_memory.py target/release/hotroute` against a build of main.
"""

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time


def status(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+)", text, re.M)}


async def download(port, first, want, ready, go):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(b"GET /files/big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:200])
    got = 0
    while got < first:
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    ready.release()
    await go.wait()
    while want is None or got < want:
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    writer.close()
    return got


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--size-mib", type=int, default=100)
    p.add_argument("--read-mib", type=int, default=None)
    p.add_argument("--kill-above-mib", type=int, default=2048)
    p.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()

    tmp = tempfile.TemporaryDirectory()
    os.mkdir(f"{tmp.name}/public")
    with open(f"{tmp.name}/public/big.bin", "wb") as f:
        f.truncate(a.size_mib << 20)
    with open(f"{tmp.name}/routes.toml", "w") as f:
        f.write('[server]\nmax_connections = 4096\n\n[[route]]\npath = "/files/{*rest}"\ndir = "public"\n')
    server = subprocess.Popen(
        [a.bin, f"{tmp.name}/routes.toml", "--port", "0", "--no-watch", "--log-level", "error"],
        stdout=subprocess.PIPE,
    )
    line = server.stdout.readline().decode()
    port = int(line.rsplit(":", 1)[1])
    peak = {"rss": 0, "threads": 0, "killed": False}

    async def watch():
        while server.poll() is None:
            s = status(server.pid)
            peak["rss"] = max(peak["rss"], s.get("VmRSS", 0))
            peak["threads"] = max(peak["threads"], s.get("Threads", 0))
            if s.get("VmRSS", 0) > a.kill_above_mib << 10:
                peak["killed"] = True
                final.update(status(server.pid))
                server.kill()
                return
            await asyncio.sleep(0.02)

    final = {}
    watcher = asyncio.create_task(watch())
    ready, go = asyncio.Semaphore(0), asyncio.Event()
    want = None if a.read_mib is None else a.read_mib << 20
    started = time.monotonic()
    tasks = [asyncio.create_task(download(port, 256 << 10, want, ready, go)) for _ in range(a.clients)]

    async def release():
        for _ in range(a.clients):
            await ready.acquire()
        go.set()

    releaser = asyncio.create_task(release())
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    releaser.cancel()
    for t in pending:
        t.cancel()
    ok = sum(1 for t in done if not t.cancelled() and t.exception() is None)
    if not final:
        final.update(status(server.pid))
    server.send_signal(signal.SIGKILL)
    server.wait()
    watcher.cancel()
    took = time.monotonic() - started
    verdict = f"KILLED at RSS over {a.kill_above_mib} MiB" if peak["killed"] else "ran to the end"
    print(
        f"{os.path.basename(a.bin)}: {a.clients} clients x {a.size_mib} MiB: {verdict}; "
        f"{ok}/{a.clients} downloads complete in {took:.1f} s; "
        f"peak RSS {final.get('VmHWM', peak['rss']) / 1024:.0f} MiB, "
        f"peak virtual {final.get('VmPeak', 0) / 1024:.0f} MiB, most threads {peak['threads']}"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""A pytest fixture that runs hotroute as a mock API: one server per test, on a free port, stopped afterwards.

Copy this file next to your tests. It needs only pytest and the hotroute binary: set HOTROUTE_BIN to its path, or
put `hotroute` on PATH (by default it uses this repository's target/debug/hotroute).
"""

import json
import os
import pathlib
import selectors
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# Loopback needs no proxy, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def hotroute_binary():
    if os.environ.get("HOTROUTE_BIN"):
        return os.environ["HOTROUTE_BIN"]
    built = REPO / "target" / "debug" / "hotroute"
    if built.exists():
        return str(built)
    found = shutil.which("hotroute")
    if found:
        return found
    pytest.fail("hotroute binary not found: run `cargo build`, or set HOTROUTE_BIN, or put hotroute on PATH")


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def text(self):
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


class Hotroute:
    """A running `hotroute --port 0` with the routes given as TOML."""

    def __init__(self, routes_toml, folder):
        folder.mkdir(parents=True, exist_ok=True)
        routes = folder / "routes.toml"
        routes.write_text(routes_toml)
        self.process = subprocess.Popen(
            [hotroute_binary(), str(routes), "--port", "0", "--log-level", "warn"],
            stdout=subprocess.PIPE,
            text=True,
        )
        # The first stdout line is `listening on http://IP:PORT`; wait for it at most 10 s.
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=10)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            pytest.fail(f"hotroute did not start (first line {line!r}); its errors are above")
        self.base_url = line.strip().removeprefix("listening on ")

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            headers.setdefault("content-type", "application/json")
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        try:
            with _OPENER.open(req, timeout=10) as res:
                return Response(res.status, res.headers, res.read())
        except urllib.error.HTTPError as err:  # 4xx and 5xx are answers too
            return Response(err.code, err.headers, err.read())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def requests(self):
        """The journal: what the server received, oldest first."""
        return self.get("/__admin/requests").json()["requests"]

    def clear(self):
        self.request("DELETE", "/__admin/requests")

    def coverage(self):
        """Routes never hit and requests no route answered."""
        return self.get("/__admin/coverage").json()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: hotroute finishes requests in flight and exits
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def hotroute(tmp_path):
    """`hotroute(toml)` starts a server with these routes; every server started is stopped after the test."""
    servers = []

    def start(routes_toml):
        server = Hotroute(routes_toml, tmp_path / f"server{len(servers)}")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

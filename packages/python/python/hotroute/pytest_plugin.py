"""The `hotroute` pytest fixture, registered through the `pytest11` entry point: installing the package is enough.

    def test_client(hotroute):
        api = hotroute('[[route]]\\npath = "/hello"\\nbody = "Hello World"\\n')   # or hotroute(file="routes.toml")
        ...
        api.verify("GET", "/hello")

Each call starts a server on a free loopback port; every server a test started is stopped when the test ends. A
server per test keeps tests independent, so the fixture works under pytest-xdist (each worker starts its own).
"""

import sys

import pytest

from hotroute import Hotroute


@pytest.fixture
def hotroute(tmp_path):
    """`hotroute(toml)` or `hotroute(file=PATH)` starts a server with these routes and returns a hotroute.Hotroute.

    A server that does not start raises hotroute.HotrouteError with the server's own error text. What the servers
    wrote on stderr is printed after the test, so that pytest shows it with a failing test.
    """
    servers = []

    def start(routes_toml=None, *, file=None):
        server = Hotroute(routes_toml, tmp_path / f"hotroute{len(servers)}", file=file)
        servers.append(server)
        return server

    yield start
    for number, server in enumerate(servers):
        server.stop()
        if server.stderr.strip():
            print(f"== stderr of hotroute server{number} ({server.base_url}):\n{server.stderr}", file=sys.stderr)

"""A pytest fixture that runs hotroute as a mock API: one server per test, on a free port, stopped afterwards.

Copy this file and hotroute.py (the helper it uses) next to your tests. They need only pytest and the hotroute
binary: set HOTROUTE_BIN to its path, or build it in this repository (`cargo build --release`; target/release, then
target/debug, under $CARGO_TARGET_DIR when set), or put `hotroute` on PATH.
"""

import sys

import pytest

from hotroute import Hotroute


@pytest.fixture
def hotroute(tmp_path):
    """`hotroute(toml)` starts a server with these routes; every server started is stopped after the test.

    A server that does not start raises hotroute.HotrouteError with the server's own error text. What the servers
    wrote on stderr is printed after the test, so that pytest shows it with a failing test.
    """
    servers = []

    def start(routes_toml):
        server = Hotroute(routes_toml, tmp_path / f"server{len(servers)}")
        servers.append(server)
        return server

    yield start
    for number, server in enumerate(servers):
        server.stop()
        if server.stderr.strip():
            print(f"== stderr of hotroute server{number} ({server.base_url}):\n{server.stderr}", file=sys.stderr)

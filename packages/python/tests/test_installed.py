"""The example suite of the Python package, run against the installed wheel (scripts/test-packages copies this file
into an empty folder, so `import hotroute` can only find the installed package).

It needs no conftest.py: the `hotroute` fixture comes from the package's pytest11 entry point."""

import pathlib
import shutil
import subprocess
import sysconfig
import urllib.request

import pytest

import hotroute as hotroute_module
from hotroute import HotrouteError, find_hotroute

USERS = """
[[route]]
path = "/users/{id}"
template = true
json = { id = "{{ path.id }}", name = "Ada" }

[[route]]
path = "/users"
method = "POST"
status = 201
"""


def test_the_package_is_the_installed_one_not_the_source_tree():
    site = pathlib.Path(sysconfig.get_path("purelib")).resolve()
    assert site in pathlib.Path(hotroute_module.__file__).resolve().parents


def test_the_binary_is_installed_into_the_environment():
    binary = pathlib.Path(find_hotroute(env={}))  # no HOTROUTE_BIN, no PATH: only the installed one
    assert binary.parent == pathlib.Path(sysconfig.get_path("scripts"))
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("hotroute ")


def test_the_fixture_serves_toml_text(hotroute):
    api = hotroute(USERS)
    assert api.url("/users/7").startswith("http://127.0.0.1:")
    # The code under test would get api.url(...); a plain urllib client stands for it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(api.url("/users/7"), timeout=10) as res:
        assert res.status == 200
        assert res.headers["content-type"] == "application/json"
    assert api.post("/users", body={"name": "Grace"}).status == 201
    api.verify("GET", "/users/7")
    api.verify("POST", "/users")
    first, second = api.requests()
    assert (first["method"], first["path"]) == ("GET", "/users/7")
    assert second["body"] == '{"name": "Grace"}'


def test_the_fixture_serves_a_file(hotroute, tmp_path):
    routes = tmp_path / "routes.toml"
    routes.write_text('[[route]]\npath = "/ping"\nbody = "pong"\n')
    api = hotroute(file=routes)
    assert api.get("/ping").text() == "pong"


def test_reset_empties_the_journal(hotroute):
    api = hotroute(USERS)
    api.get("/users/1")
    api.reset()
    assert api.requests() == []
    api.verify("GET", "/users/1", times=0)


def test_reset_starts_sequences_again(hotroute):
    api = hotroute('[[route]]\npath = "/n"\nsequence = [{ body = "one" }, { body = "two" }]\n')
    assert [api.get("/n").text(), api.get("/n").text()] == ["one", "two"]
    api.reset()
    assert api.get("/n").text() == "one"


def test_add_routes_reloads(hotroute):
    api = hotroute(USERS)
    assert api.get("/teams/1").status == 404
    api.add_routes('[[route]]\npath = "/teams/{id}"\nbody = "team"\n')
    assert api.get("/teams/1").text() == "team"
    with pytest.raises(HotrouteError, match="do not load"):
        api.add_routes("[[route]]\npath = \n")
    assert api.get("/users/1").status == 200  # the old routes keep serving


def test_verify_failure_lists_what_the_server_received(hotroute):
    api = hotroute(USERS)
    api.get("/users/1?expand=team")
    with pytest.raises(AssertionError) as failure:
        api.verify("GET", "/users/2")
    assert str(failure.value) == (
        "expected GET /users/2 1 time, got it 0 time(s); the server received:\n  GET /users/1?expand=team -> 200"
    )


def test_a_broken_route_file_fails_with_the_servers_error(hotroute):
    with pytest.raises(HotrouteError, match="did not start") as failure:
        hotroute("[[route]]\npath = 42\n")
    assert "routes.toml" in str(failure.value)


def test_the_binary_is_on_the_venv_path():
    # `pip install hotroute` is enough to run `hotroute` from the environment's bin/.
    assert shutil.which("hotroute", path=sysconfig.get_path("scripts"))


# One server for the whole session, shared by every test, each test in its own partition: the server keeps each
# test's sequences, scenarios, resource data and journal apart by the `x-test-id` header (`[server] isolate`).
SHARED = """
[server]
isolate = "header:x-test-id"

[[route]]
path = "/flaky"
sequence = [{ status = 503 }, { status = 200 }]

[[resource]]
path = "/todos"
data = [{ id = 1, title = "buy milk" }]
"""


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    server = hotroute_module.Hotroute(SHARED, tmp_path_factory.mktemp("shared"))
    yield server
    server.stop()


@pytest.fixture
def api(shared_server, request):
    view = shared_server.isolate(request.node.nodeid)
    yield view
    view.reset()


@pytest.mark.parametrize("run", [1, 2, 3])
def test_each_test_sees_the_shared_server_fresh(api, run):
    assert [api.get("/flaky").status, api.get("/flaky").status] == [503, 200]
    created = api.post("/todos", body={"title": f"run {run}"})
    assert (created.status, created.json()["id"]) == (201, 2)  # never 3: the other runs' writes are not seen
    assert [t["title"] for t in api.get("/todos").json()] == ["buy milk", f"run {run}"]
    api.verify("POST", "/todos")  # this test's journal only
    assert all(r["isolate"] == api.test_id for r in api.requests())


def test_reset_of_one_partition_leaves_the_others(shared_server):
    a, b = shared_server.isolate("a"), shared_server.isolate("b")
    assert a.get("/flaky").status == 503 and b.get("/flaky").status == 503
    a.reset()
    assert (a.get("/flaky").status, b.get("/flaky").status) == (503, 200)
    assert a.headers == {"x-test-id": "a"}
    a.reset()
    b.reset()

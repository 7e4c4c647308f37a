"""hotroute as a mock API in pytest: the `hotroute` fixture comes from conftest.py, the helper from hotroute.py."""

import os

import pytest

from hotroute import Hotroute, HotrouteError, find_hotroute

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


def test_the_mock_answers_like_the_api(hotroute):
    api = hotroute(USERS)
    res = api.get("/users/7")
    assert res.status == 200
    assert res.headers["content-type"] == "application/json"
    assert res.json() == {"id": "7", "name": "Ada"}


def test_the_journal_shows_what_the_client_sent(hotroute):
    api = hotroute(USERS)
    assert api.post("/users", body={"name": "Grace"}).status == 201
    assert api.get("/users/7?expand=team").status == 200

    first, second = api.requests()
    assert (first["method"], first["path"], first["status"]) == ("POST", "/users", 201)
    assert first["headers"]["content-type"] == "application/json"
    assert first["body"] == '{"name": "Grace"}'
    assert first["route"]["path"] == "/users"
    assert (second["path"], second["query"]) == ("/users/7", "expand=team")
    assert second["route"]["location"].endswith("routes.toml:2")


def test_coverage_flags_unexpected_calls_and_unused_routes(hotroute):
    api = hotroute(USERS)
    assert api.get("/users/1").status == 200
    assert api.get("/teams/1").status == 404
    coverage = api.coverage()
    assert not coverage["complete"]
    assert [r["path"] for r in coverage["routes_never_hit"]] == ["/users"]
    assert coverage["unmatched_requests"] == [{"method": "GET", "path": "/teams/1", "count": 1, "status": 404}]
    flagged = [r for r in api.requests() if not r["matched"]]
    assert [r["path"] for r in flagged] == ["/teams/1"]


def test_each_test_gets_its_own_server(hotroute):
    one, two = hotroute(USERS), hotroute('[[route]]\npath = "/ping"\nbody = "pong"\n')
    assert one.base_url != two.base_url
    assert two.get("/ping").text() == "pong"
    assert one.requests() == []


def test_a_post_is_recorded(hotroute):
    # The README's example, verbatim.
    api = hotroute("""
        [[route]]
        path = "/users"
        method = "POST"
        status = 201
    """)
    assert api.post("/users", body={"name": "Grace"}).status == 201
    [sent] = api.requests()
    assert sent["body"] == '{"name": "Grace"}' and sent["route"]["path"] == "/users"
    assert api.coverage()["complete"]


# The helper itself.

PING = '[[route]]\npath = "/ping"\nbody = "pong"\n'


def test_without_hotroute_bin_or_a_build_the_binary_on_path_is_used(tmp_path):
    bin_dir, empty_target = tmp_path / "bin", tmp_path / "target"
    bin_dir.mkdir()
    empty_target.mkdir()
    os.symlink(find_hotroute(), bin_dir / "hotroute")

    found = find_hotroute({"PATH": str(bin_dir), "CARGO_TARGET_DIR": str(empty_target)})
    assert found == str(bin_dir / "hotroute")

    server = Hotroute(PING, binary=found)
    try:
        assert server.get("/ping").text() == "pong"
    finally:
        server.stop()


def test_a_missing_binary_is_one_error_naming_every_place_tried(tmp_path):
    with pytest.raises(HotrouteError) as err:
        find_hotroute({"PATH": str(tmp_path), "CARGO_TARGET_DIR": str(tmp_path)})
    message = str(err.value)
    assert message.startswith("hotroute binary not found")
    assert "$HOTROUTE_BIN (not set)" in message
    assert str(tmp_path / "release" / "hotroute") in message
    assert str(tmp_path / "debug" / "hotroute") in message
    assert "on PATH" in message and "cargo build --release" in message

    with pytest.raises(HotrouteError, match="HOTROUTE_BIN is .*nope"):
        find_hotroute({"HOTROUTE_BIN": str(tmp_path / "nope")})


def test_a_bad_route_file_fails_with_the_servers_own_error(hotroute):
    with pytest.raises(HotrouteError) as err:
        hotroute('[[route]]\npath = "nope"\n')
    message = str(err.value)
    assert message.startswith("hotroute did not start: it exited with status 1; its stderr:\n")
    assert "route path `nope` does not start with `/`" in message
    assert "routes.toml:2:8" in message
    assert "above" not in message


def test_stop_ends_the_server_and_removes_its_temp_folder():
    server = Hotroute(PING)
    assert (server.folder / "routes.toml").exists()
    server.stop()
    assert not server.folder.exists()
    assert server.process.returncode == 0
    with pytest.raises(OSError):  # nobody listens there any more
        server.get("/ping")
    server.stop()  # twice is fine


TODO = """
[[route]]
path = "/todo"
scenario = "todo"
state = "started"
json = { items = ["buy milk"] }

[[route]]
path = "/todo"
method = "POST"
scenario = "todo"
next_state = "added"
status = 201

[[route]]
path = "/todo"
scenario = "todo"
state = "added"
json = { items = ["buy milk", "clean up"] }
"""


def test_a_scenario_answers_by_what_happened_before(hotroute):
    api = hotroute(TODO)
    assert len(api.get("/todo").json()["items"]) == 1
    assert api.scenario("todo") == "started"
    assert api.post("/todo").status == 201
    assert api.scenario("todo") == "added"
    assert len(api.get("/todo").json()["items"]) == 2
    api.reset()
    assert api.scenario("todo") == "started" and api.requests() == []
    api.set_scenario("todo", "added")
    assert len(api.get("/todo").json()["items"]) == 2


def test_runtime_routes_override_the_file_until_removed_or_reset(hotroute):
    api = hotroute(PING)
    [first] = api.add_routes('[[route]]\npath = "/ping"\nstatus = 503\n')
    assert api.get("/ping").status == 503
    api.remove_routes(first)
    assert api.get("/ping").text() == "pong"
    api.add_routes('[[route]]\npath = "/extra"\nbody = "x"\n')
    assert api.get("/extra").status == 200
    api.reset()
    assert api.get("/extra").status == 404
    with pytest.raises(HotrouteError, match=r"(?s)unknown field `stauts`.*runtime:3:1"):
        api.add_routes('[[route]]\npath = "/a"\nstauts = 200\n')

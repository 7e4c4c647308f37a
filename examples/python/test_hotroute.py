"""hotroute as a mock API in pytest: the `hotroute` fixture comes from conftest.py."""

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

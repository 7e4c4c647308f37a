// hotroute as a mock API in a node:test suite, with the helper in ./hotroute.mjs: start `hotroute --port 0`, read
// its address, test, stop it. Run with `node --test examples/node/hotroute.test.mjs` (Node 18+). The binary is
// $HOTROUTE_BIN, else target/release/hotroute, else target/debug/hotroute, else `hotroute` on PATH.

import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { findHotroute, startHotroute } from "./hotroute.mjs";

const ROUTES = `
[[route]]
path = "/users/{id}"
template = true
json = { id = "{{ path.id }}", name = "Ada" }

[[route]]
path = "/users"
method = "POST"
status = 201
`;

let api;
before(async () => {
  api = await startHotroute(ROUTES);
});
after(async () => {
  await api?.stop(); // `api` is unset when the server did not start: `before` has already said why
});
beforeEach(async () => {
  await fetch(api.url("/__admin/requests"), { method: "DELETE" }); // each test sees only its own requests
});

test("the mock answers like the API", async () => {
  const res = await fetch(api.url("/users/7"));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: "7", name: "Ada" });
});

test("the journal shows what the client sent", async () => {
  const created = await fetch(api.url("/users"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Grace" }),
  });
  assert.equal(created.status, 201);
  const { requests } = await (await fetch(api.url("/__admin/requests?bodies=true"))).json();
  assert.equal(requests.length, 1);
  const [sent] = requests;
  assert.equal(sent.method, "POST");
  assert.equal(sent.path, "/users");
  assert.equal(sent.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(sent.body), { name: "Grace" });
  assert.equal(sent.route.path, "/users");
});

test("unmatched requests are flagged and show in coverage", async () => {
  assert.equal((await fetch(api.url("/teams/1"))).status, 404);
  const { requests } = await (await fetch(api.url("/__admin/requests?bodies=true"))).json();
  assert.deepEqual(
    requests.map((r) => [r.path, r.matched, r.route]),
    [["/teams/1", false, null]],
  );
  const coverage = await (await fetch(api.url("/__admin/coverage"))).json();
  assert.equal(coverage.complete, false);
  assert.deepEqual(coverage.unmatched_requests, [{ method: "GET", path: "/teams/1", count: 1, status: 404 }]);
});

// The helper itself.

/** A temp folder removed after the test. */
function tempDir(t, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("without HOTROUTE_BIN or a build in target/, the binary on PATH is used", async (t) => {
  const bin = tempDir(t, "hotroute-path-");
  symlinkSync(findHotroute(), join(bin, "hotroute"));
  const emptyTarget = tempDir(t, "hotroute-target-");

  const found = findHotroute({ PATH: bin, CARGO_TARGET_DIR: emptyTarget });
  assert.equal(found, join(bin, "hotroute"));

  const server = await startHotroute('[[route]]\npath = "/ping"\nbody = "pong"\n', { bin: found });
  try {
    assert.equal(await (await fetch(server.url("/ping"))).text(), "pong");
  } finally {
    await server.stop();
  }
});

test("a missing binary is one error naming every place tried and how to build it", (t) => {
  const emptyTarget = tempDir(t, "hotroute-target-");
  assert.throws(
    () => findHotroute({ PATH: emptyTarget, CARGO_TARGET_DIR: emptyTarget }),
    (err) => {
      assert.match(err.message, /^hotroute binary not found/);
      assert.ok(err.message.includes("$HOTROUTE_BIN (not set)"), err.message);
      assert.ok(err.message.includes(join(emptyTarget, "release", "hotroute")), err.message);
      assert.ok(err.message.includes(join(emptyTarget, "debug", "hotroute")), err.message);
      assert.ok(err.message.includes("on PATH"), err.message);
      assert.ok(err.message.includes("cargo build --release"), err.message);
      return true;
    },
  );
  assert.throws(() => findHotroute({ HOTROUTE_BIN: join(emptyTarget, "nope") }), /HOTROUTE_BIN is .*nope/);
});

test("a bad route file fails with the server's own error, not a guess", async () => {
  await assert.rejects(startHotroute('[[route]]\npath = "nope"\n'), (err) => {
    assert.match(err.message, /^hotroute did not start: it exited with status 1; its stderr:\n/);
    assert.match(err.message, /route path `nope` does not start with `\/`/);
    assert.match(err.message, /routes\.toml:2:8/);
    assert.doesNotMatch(err.message, /is it built/);
    return true;
  });
});

test("stop ends the server and removes its temp folder", async () => {
  const server = await startHotroute('[[route]]\npath = "/ping"\nbody = "pong"\n');
  assert.ok(existsSync(join(server.dir, "routes.toml")));
  await server.stop();
  assert.equal(existsSync(server.dir), false);
  await assert.rejects(fetch(server.url("/ping"))); // nobody listens there any more
  await server.stop(); // twice is fine
});

test("runtime routes override the file's until removed, and reset puts the server back", async () => {
  const server = await startHotroute('[[route]]\npath = "/ping"\nbody = "pong"\n');
  try {
    const [id] = await server.addRoutes('[[route]]\npath = "/ping"\nstatus = 503\n');
    assert.equal((await fetch(server.url("/ping"))).status, 503);
    await server.removeRoutes(id);
    assert.equal(await (await fetch(server.url("/ping"))).text(), "pong");
    await server.addRoutes('[[route]]\npath = "/extra"\nbody = "x"\n');
    await server.reset();
    assert.equal((await fetch(server.url("/extra"))).status, 404);
    await assert.rejects(server.addRoutes('[[route]]\npath = "/a"\nstauts = 200\n'), /runtime:3:1/);
  } finally {
    await server.stop();
  }
});

test("a scenario answers by what happened before", async () => {
  const server = await startHotroute(`
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
`);
  try {
    const items = async () => (await (await fetch(server.url("/todo"))).json()).items.length;
    assert.equal(await items(), 1);
    assert.equal((await fetch(server.url("/todo"), { method: "POST" })).status, 201);
    assert.equal(await server.scenario("todo"), "added");
    assert.equal(await items(), 2);
    await server.reset();
    assert.equal(await server.scenario("todo"), "started");
    await server.setScenario("todo", "added");
    assert.equal(await items(), 2);
  } finally {
    await server.stop();
  }
});

// The example suite of the npm package, run in a temp project where the packed tarballs of `hotroute` and
// `@hotroute/linux-x64` are installed (scripts/test-packages): `node --test hotroute.test.mjs` there.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";

import { findHotroute, startHotroute, PLATFORM_PACKAGE } from "hotroute";

const USERS = `
[[route]]
path = "/users/{id}"
template = true
json = { id = "{{ path.id }}", name = "Ada" }

[[route]]
path = "/users"
method = "POST"
status = 201
`;

test("the binary comes from the platform package in node_modules", () => {
  const bin = realpathSync(findHotroute({})); // no HOTROUTE_BIN, no PATH
  assert.equal(PLATFORM_PACKAGE, "@hotroute/linux-x64");
  assert.ok(bin.includes(`${sep}node_modules${sep}@hotroute${sep}linux-x64${sep}bin${sep}`), bin);
});

test("node_modules/.bin/hotroute runs it", () => {
  const out = execFileSync(join("node_modules", ".bin", "hotroute"), ["--version"], { encoding: "utf8" });
  assert.match(out, /^hotroute \d+\.\d+\.\d+/);
});

test("startHotroute serves TOML text, records and verifies", async (t) => {
  const api = await startHotroute(USERS);
  t.after(() => api.stop());
  const res = await fetch(api.url("/users/7"));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: "7", name: "Ada" });
  const post = await fetch(api.url("/users"), { method: "POST", body: '{"name":"Grace"}' });
  assert.equal(post.status, 201);
  await api.verify("GET", "/users/7");
  const [first, second] = await api.requests();
  assert.equal(first.path, "/users/7");
  assert.equal(second.body, '{"name":"Grace"}');
  await api.reset();
  assert.deepEqual(await api.requests(), []);
});

test("reset starts sequences again", async (t) => {
  const api = await startHotroute('[[route]]\npath = "/n"\nsequence = [{ body = "one" }, { body = "two" }]\n');
  t.after(() => api.stop());
  const next = async () => (await fetch(api.url("/n"))).text();
  assert.deepEqual([await next(), await next()], ["one", "two"]);
  await api.reset();
  assert.equal(await next(), "one");
});

test("startHotroute serves a file and adds routes", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hotroute-example-"));
  writeFileSync(join(dir, "routes.toml"), '[[route]]\npath = "/ping"\nbody = "pong"\n');
  const api = await startHotroute(undefined, { file: join(dir, "routes.toml") });
  t.after(async () => {
    await api.stop(); // before the folder goes: the server watches it
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(await (await fetch(api.url("/ping"))).text(), "pong");
  await api.addRoutes('[[route]]\npath = "/teams/{id}"\nbody = "team"\n');
  assert.equal(await (await fetch(api.url("/teams/1"))).text(), "team");
  await assert.rejects(api.addRoutes("[[route]]\npath = \n"), /the added routes do not load/);
  assert.equal(await (await fetch(api.url("/ping"))).text(), "pong");
});

test("verify fails with what the server received", async (t) => {
  const api = await startHotroute(USERS);
  t.after(() => api.stop());
  await fetch(api.url("/users/1?expand=team"));
  await assert.rejects(api.verify("GET", "/users/2"), {
    message: "expected GET /users/2 1 time, got it 0 time(s); the server received:\n  GET /users/1?expand=team -> 200",
  });
});

test("a broken route file fails with the server's error", async () => {
  await assert.rejects(startHotroute("[[route]]\npath = 42\n"), /hotroute did not start.*routes\.toml/s);
});

// One server shared by every test of a file (or a session), each test in its own partition: the server keeps each
// test's sequences, scenarios, resource data and journal apart by the `x-test-id` header (`[server] isolate`).
const SHARED = `
[server]
isolate = "header:x-test-id"

[[route]]
path = "/flaky"
sequence = [{ status = 503 }, { status = 200 }]

[[resource]]
path = "/todos"
data = [{ id = 1, title = "buy milk" }]
`;

describe("one shared server, one partition per test", () => {
  let shared;
  before(async () => {
    shared = await startHotroute(SHARED);
  });
  after(() => shared.stop());

  for (const run of [1, 2, 3]) {
    test(`run ${run} sees the server fresh`, async (t) => {
      const api = shared.isolate(t.name);
      t.after(() => api.reset());
      assert.deepEqual([(await api.fetch("/flaky")).status, (await api.fetch("/flaky")).status], [503, 200]);
      const created = await api.fetch("/todos", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ title: `run ${run}` }),
      });
      assert.equal(created.status, 201);
      assert.equal((await created.json()).id, 2); // never 3: the other runs' writes are not seen
      await api.verify("POST", "/todos");
      assert.ok((await api.requests()).every((r) => r.isolate === t.name));
    });
  }

  test("a reset of one partition leaves the others", async () => {
    const [a, b] = [shared.isolate("a"), shared.isolate("b")];
    assert.equal((await a.fetch("/flaky")).status, 503);
    assert.equal((await b.fetch("/flaky")).status, 503);
    await a.reset();
    assert.deepEqual([(await a.fetch("/flaky")).status, (await b.fetch("/flaky")).status], [503, 200]);
    assert.deepEqual(a.headers, { "x-test-id": "a" });
  });
});

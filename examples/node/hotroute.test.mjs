// hotroute as a mock API in a node:test suite: start `hotroute --port 0`, read its address, test, stop it.
// Run with `node --test examples/node/hotroute.test.mjs` (Node 18+). Set HOTROUTE_BIN to the binary's path, or
// it uses this repository's target/debug/hotroute.

import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const BIN = process.env.HOTROUTE_BIN ?? fileURLToPath(new URL("../../target/debug/hotroute", import.meta.url));

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

/** Starts hotroute on a free port with `routes`; resolves to { url, stop }. */
export async function startHotroute(routes) {
  const dir = mkdtempSync(join(tmpdir(), "hotroute-"));
  writeFileSync(join(dir, "routes.toml"), routes);
  const child = spawn(BIN, [join(dir, "routes.toml"), "--port", "0", "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, "line").then(([line]) => line),
    once(child, "exit").then(([code]) => `exited with status ${code}`),
    once(child, "error").then(([err]) => `failed to start: ${err.message}`),
    new Promise((resolve) => setTimeout(resolve, 10_000, "no output within 10 s").unref()),
  ]);
  if (!first.startsWith("listening on ")) {
    child.kill();
    throw new Error(`hotroute did not start (${first}); is it built? (cargo build)`);
  }
  const base = first.slice("listening on ".length);
  return {
    url: (path) => base + path,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGTERM"); // hotroute finishes requests in flight and exits
        await exited;
      }
    },
  };
}

let api;
before(async () => {
  api = await startHotroute(ROUTES);
});
after(async () => {
  await api.stop();
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
  const { requests } = await (await fetch(api.url("/__admin/requests"))).json();
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
  const { requests } = await (await fetch(api.url("/__admin/requests"))).json();
  assert.deepEqual(
    requests.map((r) => [r.path, r.matched, r.route]),
    [["/teams/1", false, null]],
  );
  const coverage = await (await fetch(api.url("/__admin/coverage"))).json();
  assert.equal(coverage.complete, false);
  assert.deepEqual(coverage.unmatched_requests, [{ method: "GET", path: "/teams/1", count: 1, status: 404 }]);
});

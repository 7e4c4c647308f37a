// Server-sent events in a real headless browser: a page served by hotroute opens an `EventSource` on an `sse`
// route and receives each event as it is sent (spread over time), its name, id and data, and the reconnect with
// `Last-Event-ID` after the stream ends. Run by scripts/test-browser with dashboard.test.mjs (same set-up).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const BIN = process.env.HOTROUTE_BIN ?? join(REPO, "target/debug/hotroute");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const PATIENCE = 10_000;

const PAGE = `<!doctype html><meta charset="utf-8"><title>sse</title><script>
  window.got = [];
  const start = performance.now();
  const source = new EventSource("/events");
  for (const name of ["message", "tick"]) {
    source.addEventListener(name, (e) =>
      window.got.push({ type: e.type, data: e.data, id: e.lastEventId, t: performance.now() - start }));
  }
</script>`;

const ROUTES = `[[route]]
path = "/"
headers = { content-type = "text/html; charset=utf-8" }
body = '''${PAGE}'''

[[route]]
path = "/events"
sse = [
  { event = "tick", data = "one", id = "1", retry = 200 },
  { event = "tick", data = "two", id = "2", delay = "200ms" },
  { data = "line 1\\nline 2", id = "3", delay = "200ms" },
]
`;

let server;
let browser;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "hotroute-sse-"));
  writeFileSync(join(dir, "routes.toml"), ROUTES);
  const child = spawn(BIN, ["routes.toml", "--port", "0", "--no-watch"], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  assert.ok(line.startsWith("listening on http://"), `hotroute did not start: ${line}`);
  server = { child, dir, base: line.slice("listening on ".length) };
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: PATIENCE * 3,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});

after(async () => {
  await browser?.close();
  if (server) {
    server.child.kill("SIGTERM");
    await once(server.child, "exit");
    rmSync(server.dir, { recursive: true, force: true });
  }
});

test("EventSource receives each event as it is sent, then resumes after the last id", async () => {
  const page = await browser.newPage();
  page.setDefaultTimeout(PATIENCE);
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => window.got.length >= 3);
  const got = await page.evaluate(() => window.got);
  assert.deepEqual(
    got.slice(0, 3).map(({ type, data, id }) => ({ type, data, id })),
    [
      { type: "tick", data: "one", id: "1" },
      { type: "tick", data: "two", id: "2" },
      { type: "message", data: "line 1\nline 2", id: "3" },
    ],
  );
  // Sent at 0, 200 and 400 ms: the browser sees them over time, not in one burst at the end. Measured from the
  // first (a busy browser may hand one event late and the next at once, so not between neighbours).
  assert.ok(got[1].t - got[0].t >= 120, `"two" came ${got[1].t - got[0].t} ms after "one"`);
  assert.ok(got[2].t - got[0].t >= 300, `the third came ${got[2].t - got[0].t} ms after "one"`);
  // The stream ended; the browser reconnects (after `retry` = 200 ms) with Last-Event-ID: 3, and the stream has
  // nothing after id 3, so no event repeats.
  await page.waitForTimeout(800);
  const after = await page.evaluate(() => window.got.length);
  assert.equal(after, 3, "events repeated after the reconnect with Last-Event-ID");
  await page.close();
});

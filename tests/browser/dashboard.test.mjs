// The dashboard at /__admin/ in a real headless browser: Debian's chromium driven by playwright-core.
// Run by scripts/test-browser (which installs both); by hand: `node --test tests/browser/` after `cargo build`.
// HOTROUTE_BIN names the binary (default: this repository's target/debug/hotroute), CHROMIUM the browser
// (default /usr/bin/chromium), SCREENSHOT_DIR where the screenshots go (default target/browser/).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const BIN = process.env.HOTROUTE_BIN ?? join(REPO, "target/debug/hotroute");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? join(REPO, "target/browser");
/** The longest any single wait may take: the page polls every second, the watcher reloads within ~20 ms. */
const PATIENCE = 10_000;

const ROUTES = `[server]
headers = { x-served-by = "hotroute" }

[[route]]
path = "/hello"
body = "Hello World"

[[route]]
path = "/users/{id}"
method = ["GET", "HEAD"]
template = true
json = { id = "{{ path.id }}", name = "Ada" }

[[route]]
path = "/users"
method = "POST"
status = 201
`;

// ROUTES with a typo on line 17 (\`stauts\` for \`status\`).
const BROKEN = ROUTES.replace("status = 201", "stauts = 201");
const BROKEN_LINE = 17;

// The fix, with one more route, so that the page must show the new routes too.
const FIXED = `${ROUTES}
[[route]]
path = "/teams"
json = []
`;

let server;
let browser;
let page;
const problems = []; // console errors and uncaught exceptions of the page

/** Starts hotroute on a free port in a temp folder, as a developer would: `hotroute routes.toml`. */
async function startHotroute() {
  const dir = mkdtempSync(join(tmpdir(), "hotroute-dashboard-"));
  writeFileSync(join(dir, "routes.toml"), ROUTES);
  const child = spawn(BIN, ["routes.toml", "--port", "0"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s) => (stderr += s));
  const lines = createInterface({ input: child.stdout });
  let timer;
  const first = await Promise.race([
    once(lines, "line").then(([line]) => line),
    once(child, "exit").then(([code]) => `exited with status ${code}`),
    once(child, "error").then(([err]) => `failed to start: ${err.message}`),
    new Promise((resolve) => (timer = setTimeout(resolve, PATIENCE, `no output within ${PATIENCE} ms`))),
  ]);
  clearTimeout(timer);
  if (!first.startsWith("listening on http://")) {
    child.kill("SIGKILL");
    throw new Error(`hotroute did not start (${first}); is it built? (cargo build)\n${stderr}`);
  }
  return {
    dir,
    base: first.slice("listening on ".length),
    stderr: () => stderr,
    /** Saves the route file the way editors do: a temporary file renamed over it, so no reload sees half a file. */
    save(text) {
      const tmp = join(dir, ".routes.toml.tmp");
      writeFileSync(tmp, text);
      renameSync(tmp, join(dir, "routes.toml"));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), PATIENCE);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sends raw bytes (a request a browser or fetch would have escaped) and resolves to the whole answer. */
function rawRequest(base, bytes) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    // Written, not ended: hyper drops a connection whose client half-closes it before the answer.
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(bytes));
    let answer = "";
    socket.setEncoding("utf8").on("data", (s) => (answer += s));
    socket.setTimeout(PATIENCE, () => socket.destroy(new Error("no answer")));
    socket.on("end", () => resolve(answer)).on("error", reject);
  });
}

/** The texts of the requests listed, newest first, as the page shows them: "METHOD target STATUS route". */
function requestRows() {
  return page.$$eval("#requests details > summary", (rows) =>
    rows.map((r) => [...r.children].slice(1).map((c) => c.textContent).join(" ")),
  );
}

async function screenshot(name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`# screenshot: ${path}`);
}

before(async () => {
  server = await startHotroute();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: PATIENCE * 3,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  page.setDefaultTimeout(PATIENCE);
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`exception: ${e.message}`));
  await page.goto(`${server.base}/__admin/`);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the page's inline script and style are the ones its Content-Security-Policy allows", async () => {
  const res = await fetch(`${server.base}/__admin/`);
  const csp = res.headers.get("content-security-policy");
  const html = await res.text();
  for (const tag of ["script", "style"]) {
    const inline = html.match(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`))[1];
    const hash = createHash("sha256").update(inline, "utf8").digest("base64");
    const constant = tag === "script" ? "SCRIPT_SHA256" : "STYLE_SHA256";
    assert.ok(
      csp.includes(`'sha256-${hash}'`),
      `the page's <${tag}> changed: set ${constant} in src/dashboard.rs to "${hash}" (the CSP is: ${csp})`,
    );
  }
});

test("the page lists the active routes with their method, path and line", async () => {
  // The first poll is over once the page says `live` (it is set last).
  await page.waitForFunction(() => document.querySelector("#conn").textContent === "live");
  const rows = await page.$$eval("#routes tbody tr", (trs) =>
    trs.map((tr) => [...tr.querySelectorAll(".method, td:not(:first-child)")].map((e) => e.textContent).join(" ")),
  );
  assert.deepEqual(rows, [
    "GET /hello routes.toml:4 0",
    "GET HEAD /users/{id} routes.toml:8 0",
    "POST /users routes.toml:14 0",
  ]);
  assert.equal(await page.textContent("#generation"), "1");
  assert.equal(await page.textContent("#conn"), "live");
  assert.ok(await page.isHidden("#error-banner"));
  assert.match(await page.textContent("#requests-empty"), /No requests yet\. Try curl http:\/\/127\.0\.0\.1:\d+\/hello/);
});

test("a request made after the page opened shows up, with its status and route", async () => {
  const res = await fetch(`${server.base}/users/7?expand=teams`, { headers: { "x-trace": "abc" } });
  assert.equal(res.status, 200);
  await page.waitForFunction(() => document.querySelectorAll("#requests details").length === 1);
  assert.deepEqual(await requestRows(), ["GET /users/7?expand=teams 200 routes.toml:8"]);
  // The route's hit count follows.
  await page.waitForFunction(() => document.querySelector("#routes tbody tr:nth-child(2) td.hits").textContent === "1");
  // A click shows the headers.
  await page.click("#requests details > summary");
  const detail = await page.locator("#requests details .detail").innerText();
  assert.match(detail, /x-trace: abc/);
  await page.click("#requests details > summary"); // closed again, for the screenshot

  const missed = await fetch(`${server.base}/helo`);
  assert.equal(missed.status, 404);
  await page.waitForFunction(() => document.querySelectorAll("#requests details").length === 2);
  assert.equal((await requestRows())[0], "GET /helo 404 no route");
});

test("markup in a request's path, headers and body, or in the route file, is shown as text", async () => {
  // A request line cannot hold a raw `<` (hyper refuses it), so the path's markup is percent-encoded, and the page
  // shows it decoded in the details; headers and bodies can hold it raw.
  const path = `/%3Cscript%3Ewindow.__xss=1%3C/script%3E%3Cimg%20src=x%20onerror=window.__xss=2%3E"'`;
  const decoded = `/<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"'`;
  const header = `<img src=x onerror="window.__xss=3">`;
  const body = "<script>window.__xss=4</script>";
  const answer = await rawRequest(
    server.base,
    `POST ${path} HTTP/1.1\r\nhost: x\r\nx-evil: ${header}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
  assert.match(answer, /^HTTP\/1\.1 404/, `the server should take the request as sent:\n${answer}`);
  await page.waitForFunction(() => document.querySelectorAll("#requests details").length === 3);
  assert.equal((await requestRows())[0], `POST ${path} 404 no route`);
  await page.click("#requests details:first-child > summary");
  const detail = await page.locator("#requests details:first-child .detail").innerText();
  for (const text of [decoded, `x-evil: ${header}`, body]) assert.ok(detail.includes(text), `${text} in:\n${detail}`);
  await page.click("#requests details:first-child > summary"); // closed again, for the screenshot

  // The error banner shows the offending line of the route file, which may hold markup too.
  const generation = Number(await page.textContent("#generation"));
  server.save(ROUTES.replace("status = 201", `status = "<script>window.__xss=5</script>"`));
  await page.locator("#error-banner").waitFor({ state: "visible" });
  assert.match(await page.textContent("#error-text"), /status = "<script>window\.__xss=5<\/script>"/);
  server.save(ROUTES);
  await page.locator("#error-banner").waitFor({ state: "hidden" });
  assert.equal(await page.textContent("#generation"), String(generation + 1));

  // Nothing from the requests or the file became an element, and nothing ran.
  assert.equal(await page.locator("main script, main img, #error-banner script, #error-banner img").count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
});

test("a broken save shows a red banner with the line; the next good save clears it", async () => {
  const generation = Number(await page.textContent("#generation"));
  server.save(BROKEN);
  const banner = page.locator("#error-banner");
  await banner.waitFor({ state: "visible" });
  const title = await page.textContent("#error-title");
  assert.equal(title, `Reload failed: routes.toml line ${BROKEN_LINE}, column 1`);
  assert.match(await page.textContent("#error-message"), /unknown field `stauts`/);
  assert.equal(await page.title(), "Reload failed - hotroute");
  const report = await page.textContent("#error-text");
  assert.ok(report.includes(`routes.toml:${BROKEN_LINE}:1`) && report.includes(`${BROKEN_LINE} | stauts = 201`), report);
  assert.equal(await page.textContent("#generation"), String(generation), "the old routes keep serving");
  // The banner is red and stands out: it is the first thing under the header.
  const color = await banner.evaluate((e) => getComputedStyle(e).borderLeftColor);
  assert.equal(color, "rgb(198, 40, 40)");
  await screenshot("dashboard-error.png");

  server.save(FIXED);
  await banner.waitFor({ state: "hidden" });
  assert.equal(await page.textContent("#generation"), String(generation + 1));
  await page.waitForFunction(() => document.querySelectorAll("#routes tbody tr").length === 4);
  assert.match(await page.textContent("#reloaded"), new RegExp(`^Fixed: generation ${generation + 1} loaded at`));
  assert.equal(await page.title(), "hotroute");
  await screenshot("dashboard-fixed.png");
});

test("a proxied request carries a `proxied → URL` badge, and its details say where it went", async () => {
  // A real upstream on loopback that says who answered.
  const upstream = createServer((req, res) => res.end(`upstream saw ${req.url}`));
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  try {
    const url = `http://127.0.0.1:${upstream.address().port}`;
    const generation = Number(await page.textContent("#generation"));
    server.save(`${FIXED}\n[[route]]\npath = "/api/{*rest}"\nproxy = "${url}"\n`);
    await page.waitForFunction((g) => document.querySelector("#generation").textContent === String(g), generation + 1);
    const before = await page.locator("#requests details").count();
    const res = await fetch(`${server.base}/api/items?page=2`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "upstream saw /api/items?page=2");
    await page.waitForFunction((n) => document.querySelectorAll("#requests details").length === n, before + 1);
    const row = page.locator("#requests details:first-child");
    assert.equal(await row.locator(".proxied").textContent(), `proxied → ${url}`);
    assert.ok(await row.locator(".proxied").isVisible(), "the badge is on screen");
    assert.match((await requestRows())[0], /^GET \/api\/items\?page=2 200 routes\.toml:\d+proxied → /);
    // A mocked route's row has no badge.
    assert.equal(await page.locator("#requests details:not(:first-child) .proxied").count(), 0);
    await row.locator("summary").click();
    const detail = await row.locator(".detail").innerText();
    assert.ok(detail.includes(`PROXIED TO\n${url}`) || detail.includes(`Proxied to\n${url}`), detail);
    await row.locator("summary").click(); // closed again, for the screenshot
    await screenshot("dashboard-proxied.png");
  } finally {
    upstream.close();
  }
});

test("when the server stops, the page says it cannot reach it", async () => {
  await server.stop();
  await page.locator("#offline").waitFor({ state: "visible" });
  assert.match(await page.textContent("#offline"), /^Cannot reach hotroute at http:\/\/127\.0\.0\.1:\d+/);
  assert.equal(await page.textContent("#conn"), "offline");
  await screenshot("dashboard-offline.png");
  // The failed polls are the only errors the page logged (Chromium logs each refused fetch).
  const others = problems.filter((p) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(p));
  assert.deepEqual(others, [], "the page logged errors");
});

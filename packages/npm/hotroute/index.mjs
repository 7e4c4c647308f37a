// hotroute as a mock API from Node: start the hotroute binary installed with this package on a free port, on
// routes given as TOML text or a file, read its address, check what it received, stop it.
//
//   import { startHotroute } from "hotroute";
//   const api = await startHotroute(`[[route]]\npath = "/hello"\nbody = "Hello World"\n`);
//   const res = await fetch(api.url("/hello"));
//   await api.verify("GET", "/hello");
//   await api.stop(); // SIGTERM; the temp folder holding routes.toml is removed
//
// The binary is the first of: $HOTROUTE_BIN, the platform package (@hotroute/linux-x64, ...) that npm installed
// through optionalDependencies, then `hotroute` on PATH.

import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const EXE = process.platform === "win32" ? "hotroute.exe" : "hotroute";
/** The platform package npm picks by its `os` and `cpu` fields, e.g. @hotroute/linux-x64. */
export const PLATFORM_PACKAGE = `@hotroute/${process.platform}-${process.arch}`;
/** How long the server may take to print its `listening on` line. */
const START_TIMEOUT_MS = 10_000;
/** State-changing admin calls: the header that tells the server a script, not another site's page, sends them. */
const ADMIN_HEADERS = { "x-hotroute": "1" };

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The path of the hotroute binary: $HOTROUTE_BIN, then the platform package's, then PATH. Throws an Error listing
 * every place tried when there is none. `env` is only for tests.
 */
export function findHotroute(env = process.env) {
  if (env.HOTROUTE_BIN) {
    if (isExecutable(env.HOTROUTE_BIN)) return env.HOTROUTE_BIN;
    throw new Error(
      `HOTROUTE_BIN is ${env.HOTROUTE_BIN}, which is not an executable file: ` +
        `unset HOTROUTE_BIN to use the binary of ${PLATFORM_PACKAGE}`,
    );
  }
  let platformBinary = `${PLATFORM_PACKAGE}/bin/${EXE}`;
  try {
    platformBinary = require.resolve(`${PLATFORM_PACKAGE}/bin/${EXE}`);
    if (isExecutable(platformBinary)) return platformBinary;
  } catch {
    // not installed: npm skips an optional dependency whose os/cpu do not match, or with --no-optional
  }
  const dirs = (env.PATH ?? "").split(delimiter).filter(Boolean);
  const onPath = dirs.map((dir) => join(dir, EXE)).find(isExecutable);
  if (onPath) return onPath;
  throw new Error(
    `hotroute binary not found. Tried: $HOTROUTE_BIN (not set), ${platformBinary} (the package for ` +
      `${process.platform}-${process.arch}; is it installed? npm skips it with --omit=optional, and there is none ` +
      `for every platform), and \`${EXE}\` on PATH. Reinstall hotroute, or set HOTROUTE_BIN to a hotroute binary.`,
  );
}

/**
 * Starts hotroute on a free port with `routes` (TOML) written to routes.toml in a new temp folder, or with the
 * route file `{ file }` read where it is. Resolves to a server handle (see index.d.ts); `stop` ends the server and
 * removes the folder. Rejects with the server's own error text when it does not start (a bad route file, a
 * missing binary). Options: `bin`, the binary to run (default: findHotroute()); `file`, a route file.
 */
/** Resolves to the hits of `method path` in what `requests()` gives, or rejects listing every request received. */
async function verify(requests, method, path, { times = 1, query } = {}) {
  const received = await requests();
  const hits = received.filter(
    (r) => r.method === method.toUpperCase() && r.path === path && (query === undefined || r.query === query),
  );
  if (times === undefined ? hits.length >= 1 : hits.length === times) return hits;
  const want = times === undefined ? "at least once" : `${times} time${times === 1 ? "" : "s"}`;
  const what = `${method.toUpperCase()} ${path}${query === undefined ? "" : `?${query}`}`;
  const seen = received.map((r) => `  ${r.method} ${r.path}${r.query ? `?${r.query}` : ""} -> ${r.status}`);
  throw new Error(
    `expected ${what} ${want}, got it ${hits.length} time(s); the server received:\n` +
      (seen.length ? seen.join("\n") : "  (nothing)"),
  );
}

export async function startHotroute(routes, { bin, file } = {}) {
  if ((routes === undefined) === (file === undefined)) {
    throw new Error("startHotroute: give the routes either as TOML text or as { file: PATH } (one of the two)");
  }
  if (file !== undefined && !existsSync(file)) {
    throw new Error(`startHotroute: route file ${file} does not exist: give the path of a routes.toml`);
  }
  bin ??= findHotroute();
  const dir = mkdtempSync(join(tmpdir(), "hotroute-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const routesPath = file === undefined ? join(dir, "routes.toml") : resolve(file);
  if (file === undefined) writeFileSync(routesPath, routes);

  const child = spawn(bin, [routesPath, "--port", "0", "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  // `close` comes once the process has exited and its stdout and stderr were read to the end.
  const closed = new Promise((done) => child.once("close", done));
  // Until the server is up, keep its stderr: when it does not start, that is where the reason is.
  let stderr = "";
  const keep = (s) => (stderr += s);
  child.stderr.setEncoding("utf8").on("data", keep);

  const lines = createInterface({ input: child.stdout });
  let timer;
  const first = await new Promise((done) => {
    lines.once("line", (line) => done({ line }));
    child.once("close", (code, signal) => done({ why: `it exited with ${signal ?? `status ${code}`}` }));
    child.once("error", (err) => done({ why: `it could not be run (${bin}): ${err.message}` }));
    timer = setTimeout(done, START_TIMEOUT_MS, { why: `it printed nothing within ${START_TIMEOUT_MS} ms` });
  });
  clearTimeout(timer);

  if (!first.line?.startsWith("listening on ")) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await closed;
    }
    removeDir();
    const why = first.why ?? `its first line was ${JSON.stringify(first.line)}`;
    const output = stderr.trim() ? `; its stderr:\n${stderr.trimEnd()}` : " and wrote nothing on stderr";
    throw new Error(`hotroute did not start: ${why}${output}`);
  }

  // Up: from now on its stderr (warnings, reload errors) goes to ours as it comes, and the rest of its stdout
  // (there is none) is read and dropped so that the process can close.
  child.stderr.off("data", keep);
  if (stderr) process.stderr.write(stderr);
  child.stderr.on("data", (s) => process.stderr.write(s));
  lines.close();
  child.stdout.resume();

  const baseUrl = first.line.slice("listening on ".length);
  const admin = async (method, path, init = {}) => {
    const res = await fetch(baseUrl + path, { method, ...init, headers: { ...ADMIN_HEADERS, ...init.headers } });
    const text = await res.text();
    if (!res.ok) throw new Error(`hotroute ${method} ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text);
  };
  const requests = async () => (await admin("GET", "/__admin/requests?bodies=true&limit=1000")).requests;
  return {
    baseUrl,
    dir,
    url: (path = "") => baseUrl + path,
    requests,
    // The server's own reset: the journal, coverage, sequence positions and scenarios back to their start.
    reset: async () => {
      await admin("POST", "/__admin/reset");
    },
    addRoutes: async (toml) => {
      const before = readFileSync(routesPath, "utf8");
      writeFileSync(routesPath, `${before.trimEnd()}\n\n${toml}`);
      try {
        await admin("POST", "/__admin/reload");
      } catch (err) {
        writeFileSync(routesPath, before);
        throw new Error(`the added routes do not load: ${err.message}`);
      }
    },
    verify: (method, path, options) => verify(requests, method, path, options),
    // One test's view of a shared server whose route file sets `[server] isolate = "header:x-test-id"`: its
    // requests carry the header, so the server keeps that test's sequences, scenarios, resource data and journal
    // apart from every other test's.
    isolate: (testId, { header = "x-test-id" } = {}) => {
      const id = String(testId);
      const headers = { [header]: id };
      const query = `isolate=${encodeURIComponent(id)}`;
      const mine = async () => (await admin("GET", `/__admin/requests?bodies=true&limit=1000&${query}`)).requests;
      return {
        testId: id,
        headers,
        url: (path = "") => baseUrl + path,
        fetch: (path, init = {}) => fetch(baseUrl + path, { ...init, headers: { ...headers, ...init.headers } }),
        requests: mine,
        reset: async () => {
          await admin("POST", `/__admin/reset?${query}`);
        },
        verify: (method, path, options) => verify(mine, method, path, options),
      };
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM"); // hotroute finishes requests in flight and exits
      }
      await closed;
      removeDir();
    },
  };
}

// hotroute as a mock API from Node: start `hotroute --port 0` on routes given as TOML, read its address, stop it.
// Importing this module runs nothing; copy it next to your tests. It needs only Node 18+ and the hotroute binary.
//
//   import { startHotroute } from "./hotroute.mjs";
//   const api = await startHotroute(`[[route]]\npath = "/hello"\nbody = "Hello World"\n`);
//   const res = await fetch(api.url("/hello"));
//   await api.stop(); // SIGTERM; the temp folder holding routes.toml is removed
//
// The binary is the first of: $HOTROUTE_BIN, target/release/hotroute, target/debug/hotroute (target/ is
// $CARGO_TARGET_DIR when set, else this repository's), then `hotroute` on PATH.

import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const EXE = process.platform === "win32" ? "hotroute.exe" : "hotroute";
/** How long the server may take to print its `listening on` line. */
const START_TIMEOUT_MS = 10_000;

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The path of the hotroute binary: $HOTROUTE_BIN, then target/release, then target/debug (under $CARGO_TARGET_DIR
 * when set), then PATH. Throws an Error listing every place tried when there is none. `env` is only for tests.
 */
export function findHotroute(env = process.env) {
  if (env.HOTROUTE_BIN) {
    if (isExecutable(env.HOTROUTE_BIN)) return env.HOTROUTE_BIN;
    throw new Error(
      `HOTROUTE_BIN is ${env.HOTROUTE_BIN}, which is not an executable file: ` +
        "build hotroute (`cargo build --release`) or unset HOTROUTE_BIN to look in target/ and on PATH",
    );
  }
  const target = env.CARGO_TARGET_DIR ? resolve(env.CARGO_TARGET_DIR) : join(REPO, "target");
  const built = [join(target, "release", EXE), join(target, "debug", EXE)];
  const found = built.find(isExecutable);
  if (found) return found;
  const dirs = (env.PATH ?? "").split(delimiter).filter(Boolean);
  const onPath = dirs.map((dir) => join(dir, EXE)).find(isExecutable);
  if (onPath) return onPath;
  throw new Error(
    "hotroute binary not found. Tried: $HOTROUTE_BIN (not set), " +
      `${built.join(", ")}, and \`${EXE}\` on PATH. ` +
      "Build it with `cargo build --release` in the hotroute repository, or set HOTROUTE_BIN to its path.",
  );
}

/**
 * Starts hotroute on a free port with `routes` (TOML) written to routes.toml in a new temp folder.
 * Resolves to { url(path), baseUrl, dir, addRoutes(toml), removeRoutes(...ids), reset(), scenario(name),
 * setScenario(name, state), stop() }; `stop` ends the server and removes the folder.
 * Rejects with the server's own error text when it does not start (a bad route file, a missing binary).
 * Options: `bin`, the binary to run (default: findHotroute()).
 */
export async function startHotroute(routes, { bin = findHotroute() } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "hotroute-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  writeFileSync(join(dir, "routes.toml"), routes);

  const child = spawn(bin, [join(dir, "routes.toml"), "--port", "0", "--log-level", "warn"], {
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
  // A call that changes state says it is made on purpose (see the README's Security section).
  const admin = async (method, path, body) => {
    const res = await fetch(baseUrl + path, { method, body, headers: { "x-hotroute": "1" } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`hotroute answered ${res.status}:\n${text}`);
    return JSON.parse(text);
  };
  return {
    baseUrl,
    dir,
    url: (path) => baseUrl + path,
    /** Adds runtime routes (TOML `[[route]]` tables), tried before the file's; resolves to their ids. */
    addRoutes: async (toml) => (await admin("POST", "/__admin/routes", toml)).ids,
    /** Removes the runtime routes with these ids, or all of them when none is given. */
    removeRoutes: async (...ids) => {
      const paths = ids.length ? ids.map((id) => `/__admin/routes/${id}`) : ["/__admin/routes?origin=runtime"];
      for (const path of paths) await admin("DELETE", path);
    },
    /** Back to the start: journal, sequences, counters, scenarios, and (unless `routes: false`) runtime routes. */
    reset: async ({ routes = true } = {}) => {
      await admin("POST", `/__admin/reset${routes ? "?routes=true" : ""}`);
    },
    /** The state scenario `name` is in (every scenario starts in "started"). */
    scenario: async (name) => {
      const { scenarios } = await (await fetch(baseUrl + "/__admin/scenarios")).json();
      const found = scenarios.find((s) => s.name === name);
      if (!found) throw new Error(`no route names scenario \`${name}\``);
      return found.state;
    },
    /** Puts scenario `name` in `state` (one that its routes name). */
    setScenario: async (name, state) => {
      await admin("PUT", `/__admin/scenarios/${encodeURIComponent(name)}`, JSON.stringify({ state }));
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

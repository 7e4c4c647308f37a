#!/usr/bin/env node
// `npx hotroute ...` and `node_modules/.bin/hotroute`: runs the native binary of the platform package npm installed
// (as biome's launcher does), with the same arguments, stdio and exit status. Signals sent to this process are passed
// on, so Ctrl-C and SIGTERM still let the server finish its requests in flight.
import { spawn } from "node:child_process";

import { findHotroute } from "../index.mjs";

let bin;
try {
  bin = findHotroute();
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(1);
}
const child = spawn(bin, process.argv.slice(2), { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (err) => {
  console.error(`error: could not run ${bin}: ${err.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});

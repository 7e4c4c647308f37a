// Compiled with `tsc --noEmit --strict` where TypeScript is at hand, to check index.d.ts against real use.
import { startHotroute, type Hotroute, type Isolated, type JournalEntry } from "hotroute";

export async function example(): Promise<number> {
  const api: Hotroute = await startHotroute('[[route]]\npath = "/ping"\nbody = "pong"\n');
  const fromFile = await startHotroute(undefined, { file: "routes.toml" });
  const journal: JournalEntry[] = await api.verify("GET", "/ping", { times: 1 });
  await api.reset();
  const view: Isolated = api.isolate("test 1", { header: "x-test-id" });
  const mine: JournalEntry[] = await view.verify("GET", "/ping");
  await (await view.fetch("/ping", { method: "GET" })).text();
  await view.reset();
  void [mine, view.headers["x-test-id"], view.url("/ping")];
  await api.addRoutes("");
  await Promise.all([api.stop(), fromFile.stop()]);
  return journal.length + api.url("/ping").length;
}

// Compiled with `tsc --noEmit --strict` where TypeScript is at hand, to check index.d.ts against real use.
import { startHotroute, type Hotroute, type JournalEntry } from "hotroute";

export async function example(): Promise<number> {
  const api: Hotroute = await startHotroute('[[route]]\npath = "/ping"\nbody = "pong"\n');
  const fromFile = await startHotroute(undefined, { file: "routes.toml" });
  const journal: JournalEntry[] = await api.verify("GET", "/ping", { times: 1 });
  await api.reset();
  await api.addRoutes("");
  await Promise.all([api.stop(), fromFile.stop()]);
  return journal.length + api.url("/ping").length;
}

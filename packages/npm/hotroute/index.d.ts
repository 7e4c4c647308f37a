// Types of the `hotroute` npm package (index.mjs).

/** One request as the journal (`GET /__admin/requests`) records it. */
export interface JournalEntry {
  id: number;
  method: string;
  path: string;
  query: string;
  status: number;
  matched: boolean;
  headers: Record<string, string>;
  body?: string;
  route?: { path: string; location: string };
  [field: string]: unknown;
}

/** A running hotroute server, from startHotroute(). */
export interface Hotroute {
  /** `http://127.0.0.1:PORT`, the address from the server's `listening on` line. */
  readonly baseUrl: string;
  /** The temp folder holding routes.toml (when the routes were given as text); removed by stop(). */
  readonly dir: string;
  /** The address of `path` on this server, for the code under test. */
  url(path?: string): string;
  /** The journal: what the server received, oldest first, with bodies. */
  requests(): Promise<JournalEntry[]>;
  /** The server as if no request had come: journal, coverage, sequence positions and scenarios back to their start. */
  reset(): Promise<void>;
  /** Appends routes (TOML) to the route file and reloads; rejects with the server's error text when they do not load. */
  addRoutes(toml: string): Promise<void>;
  /**
   * Resolves to the matching requests when the server received `method path` exactly `times` times (default 1;
   * `times: undefined` means at least once); rejects with an Error listing every request it did receive.
   */
  verify(method: string, path: string, options?: { times?: number; query?: string }): Promise<JournalEntry[]>;
  /** SIGTERM (requests in flight finish), then removes the temp folder. */
  stop(): Promise<void>;
  /**
   * One test's view of a server whose route file sets `[server] isolate = "header:x-test-id"`: its requests carry
   * `header: testId`, and its journal, verify and reset are that test's only.
   */
  isolate(testId: string, options?: { header?: string }): Isolated;
}

/** One test's partition of a shared server, from Hotroute.isolate(). */
export interface Isolated {
  /** The test's id, as sent in the header. */
  readonly testId: string;
  /** The header to add to the requests of the code under test, e.g. `{ "x-test-id": "test 1" }`. */
  readonly headers: Record<string, string>;
  /** The address of `path` on the server. */
  url(path?: string): string;
  /** fetch() on the server with the test's header added. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** This test's requests, oldest first, with bodies. */
  requests(): Promise<JournalEntry[]>;
  /** This test's state (sequences, scenarios, resource data, journal) back to its start; other tests' stay. */
  reset(): Promise<void>;
  /** Like Hotroute.verify, on this test's requests. */
  verify(method: string, path: string, options?: { times?: number; query?: string }): Promise<JournalEntry[]>;
}

export interface StartOptions {
  /** The binary to run (default: findHotroute()). */
  bin?: string;
  /** A route file to serve where it is, instead of TOML text. */
  file?: string;
}

/** Starts hotroute on a free loopback port with `routes` (TOML text), or with `{ file }`. */
export function startHotroute(routes: string, options?: Omit<StartOptions, "file">): Promise<Hotroute>;
export function startHotroute(routes: undefined, options: StartOptions & { file: string }): Promise<Hotroute>;

/** The path of the hotroute binary: $HOTROUTE_BIN, the platform package's, then PATH; throws when there is none. */
export function findHotroute(env?: Record<string, string | undefined>): string;

/** The platform package this machine needs, e.g. "@hotroute/linux-x64". */
export const PLATFORM_PACKAGE: string;

/**
 * CPU profiles of Workers inside workerd, over the V8 inspector (Chrome DevTools Protocol) that
 * Miniflare opens when asked: one WebSocket per Worker (`core:user:<name>`), and also per local
 * simulation of a Cloudflare service (`d1:db`, `ratelimit:ns`), whose cost is not the proxy's in
 * production. Tells where a proxied call's CPU goes, isolate by isolate and function by function.
 */
import type { Profiler } from "node:inspector";
import { type ProfileSummary, type Resolve, resolvedProfile, summarizeProfile } from "./profile.ts";

const SAMPLING_US = 200;

interface Target {
  id: string;
  webSocketDebuggerUrl: string;
}

/** One DevTools Protocol session with one inspector target (bench/streams.ts forces GCs with it). */
export class CdpSession {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, (result: unknown) => void>();
  readonly #events = new Map<string, (params: unknown) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        method?: string;
        params?: unknown;
        result?: unknown;
        error?: { message: string };
      };
      if (message.method !== undefined) this.#events.get(message.method)?.(message.params);
      if (message.id === undefined) return;
      const resolve = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      resolve?.(message.error ? new Error(message.error.message) : message.result);
    });
  }

  static async open(url: string): Promise<CdpSession> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`cannot open ${url}`)), { once: true });
    });
    return new CdpSession(ws);
  }

  async send<T>(method: string, params: object = {}): Promise<T> {
    const id = this.#next++;
    const result = new Promise<unknown>((resolve) => this.#pending.set(id, resolve));
    this.#ws.send(JSON.stringify({ id, method, params }));
    const value = await result;
    if (value instanceof Error) throw value;
    return value as T;
  }

  /** Calls `handler` with the params of every `method` event (one handler per event). */
  on(method: string, handler: (params: unknown) => void): void {
    this.#events.set(method, handler);
  }

  close(): void {
    this.#ws.close();
  }
}

export interface IsolateProfile extends ProfileSummary {
  /** Sampled CPU of this isolate per request made while profiling, ms. */
  msPerRequest: number;
}

/**
 * Profiles every inspector target named in `targets` while `load` runs (`load` resolves with the
 * number of requests it made); a target's resolver maps its bundle back to source files. `keep`,
 * when given, is handed each raw profile, for reading in DevTools or by script.
 */
export async function profileIsolates(
  inspector: URL,
  targets: Record<string, Resolve | undefined>,
  load: () => Promise<number>,
  keep?: (id: string, profile: Profiler.Profile) => Promise<void>,
): Promise<Record<string, IsolateProfile>> {
  const ids = Object.keys(targets);
  const listUrl = new URL("/json/list", inspector.href.replace(/^ws/, "http"));
  const listed = (await (await fetch(listUrl)).json()) as Target[];
  const sessions = new Map<string, CdpSession>();
  try {
    for (const target of listed) {
      if (!ids.includes(target.id)) continue;
      const session = await CdpSession.open(target.webSocketDebuggerUrl);
      sessions.set(target.id, session);
      await session.send("Profiler.enable");
      await session.send("Profiler.setSamplingInterval", { interval: SAMPLING_US });
    }
    for (const session of sessions.values()) await session.send("Profiler.start");
    const requests = await load();
    const profiles: Record<string, IsolateProfile> = {};
    for (const [id, session] of sessions) {
      const { profile } = await session.send<{ profile: Profiler.Profile }>("Profiler.stop");
      await keep?.(id, resolvedProfile(profile, targets[id]));
      const summary = summarizeProfile(profile, SAMPLING_US, 25, targets[id]);
      profiles[id] = {
        ...summary,
        msPerRequest: requests ? Math.round((summary.sampledMs / requests) * 1000) / 1000 : 0,
      };
    }
    return profiles;
  } finally {
    for (const session of sessions.values()) session.close();
  }
}

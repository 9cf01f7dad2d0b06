/**
 * Upstream sessions for backends that issue `Mcp-Session-Id` (2025-era stateful servers).
 *
 * The proxy is stateless towards agents, but a stateful backend wants one session per client and
 * its `initialize` handshake costs two extra round trips. So the proxy keeps one upstream session
 * per (backend, agent) in a Durable Object named after that pair, which every isolate reaches, and
 * caches it in isolate memory. A session the backend has forgotten (404) is dropped and replaced.
 */
import { DurableObject } from "cloudflare:workers";

/** What resuming a session needs. */
export interface UpstreamSession {
  sessionId: string;
  protocolVersion: string;
}

export class UpstreamSessions extends DurableObject {
  /** The session in use, if any. */
  async current(): Promise<UpstreamSession | undefined> {
    return this.ctx.storage.get<UpstreamSession>("session");
  }

  /** Records a new session. */
  async replace(session: UpstreamSession): Promise<void> {
    await this.ctx.storage.put("session", session);
  }

  /** Forgets `sessionId`, unless another isolate has already put a newer one in its place. */
  async forget(sessionId: string): Promise<void> {
    const session = await this.current();
    if (session?.sessionId === sessionId) await this.ctx.storage.delete("session");
  }
}

/** The isolate's copy of each (backend, agent) session: a Durable Object hop only when cold. */
const cache = new Map<string, UpstreamSession>();

/** Reads, records and forgets the upstream session of one (backend, agent) pair. */
export function sessionStore(
  namespace: DurableObjectNamespace<UpstreamSessions>,
  backend: string,
  agent: string,
) {
  const key = `${backend}\u0000${agent}`;
  const stub = () => namespace.get(namespace.idFromName(key));
  return {
    async get(): Promise<UpstreamSession | undefined> {
      const cached = cache.get(key);
      if (cached) return cached;
      const stored = await stub().current();
      if (stored) cache.set(key, stored);
      return stored;
    },
    async set(session: UpstreamSession): Promise<void> {
      cache.set(key, session);
      await stub().replace(session);
    },
    async forget(sessionId: string): Promise<void> {
      if (cache.get(key)?.sessionId === sessionId) cache.delete(key);
      await stub().forget(sessionId);
    },
  };
}

export type SessionStore = ReturnType<typeof sessionStore>;

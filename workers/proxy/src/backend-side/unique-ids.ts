/**
 * JSON-RPC ids that stay unique on a shared upstream session.
 *
 * Every proxy request builds its own SDK client, and every client numbers its requests from 0.
 * On a stateless backend that is harmless; on a session the proxy shares between an agent's
 * requests (`state/upstream-sessions.ts`) two clients would send the same id at once, and the server
 * keys its in-flight requests and cancellations by id. So, once connected, each client's ids
 * (and progress tokens) go out with a random prefix and come back without it. It also keeps id 0
 * off the wire, which v1 SDK servers silently refuse to cancel (`if (!requestId) return`).
 *
 * A client that opens a new session is left as it is: its first id went to `initialize`, and no
 * other client shares that session until it is stored.
 */
import type { JSONRPCMessage, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

type Loose = { id?: unknown; method?: unknown; params?: Record<string, unknown> };

/** Rewrites the ids `transport` carries from now on. Call after the client has connected. */
export function uniqueIds(transport: StreamableHTTPClientTransport): void {
  const prefix = `mcpcp-${crypto.randomUUID().slice(0, 8)}-`;
  const tag = (value: unknown) => `${prefix}${String(value)}`;
  const untag = (value: unknown) => {
    if (typeof value !== "string" || !value.startsWith(prefix)) return value;
    const original = value.slice(prefix.length);
    return /^\d+$/.test(original) ? Number(original) : original;
  };

  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const m = message as Loose;
    if (m.method !== undefined && m.id !== undefined) {
      const meta = m.params?._meta as Record<string, unknown> | undefined;
      const params =
        meta?.progressToken === undefined
          ? m.params
          : { ...m.params, _meta: { ...meta, progressToken: tag(meta.progressToken) } };
      return send(
        { ...message, id: tag(m.id), ...(params ? { params } : {}) } as JSONRPCMessage,
        options,
      );
    }
    if (m.method === "notifications/cancelled" && m.params) {
      return send(
        {
          ...message,
          params: { ...m.params, requestId: tag(m.params.requestId) },
        } as JSONRPCMessage,
        options,
      );
    }
    return send(message, options);
  };

  const deliver = transport.onmessage;
  transport.onmessage = (message, ...rest) => {
    const m = message as Loose;
    let restored = message;
    if (m.method === undefined && m.id !== undefined) {
      restored = { ...message, id: untag(m.id) } as JSONRPCMessage;
    } else if (m.method === "notifications/progress" && m.params) {
      restored = {
        ...message,
        params: { ...m.params, progressToken: untag(m.params.progressToken) },
      } as JSONRPCMessage;
    }
    deliver?.(restored, ...rest);
  };
}

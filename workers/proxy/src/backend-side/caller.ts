/**
 * Who asks a backend, and how its requests get there: the calling agent's identity in the form
 * the backend trusts, the transport (service binding or network), the agent's upstream session
 * store, and the limits each call runs under.
 */
import type { AssertionSigner } from "../../../../common/assertion.ts";
import { AGENT_HEADER } from "../../../../common/identity.ts";
import type { Bindings } from "../context.ts";
import type { BackendSpec } from "../core/config.ts";
import { type SessionStore, sessionStore } from "../state/upstream-sessions.ts";

/** The side of a request context that backend calls need (`RequestContext` is one). */
export interface BackendCaller {
  agent: string;
  signer: AssertionSigner;
  bindings: Pick<Bindings, "MCP1" | "UPSTREAM_SESSIONS">;
}

/** Per-call limits: the gateway's timeout and the agent's cancellation. */
export interface CallLimits {
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Keeps work going after the agent's request has ended (`ctx.waitUntil`). When an agent
   * cancels, the client's `notifications/cancelled` to a session backend must still be delivered.
   */
  defer?: (work: Promise<unknown>) => void;
}

/** A fetch function: the global one, or a service binding's. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** How requests to `backend` travel. */
export function fetchFor(backend: BackendSpec, caller: BackendCaller): FetchLike {
  if (backend.route === "binding") {
    const binding = caller.bindings.MCP1;
    return (input, init) => binding.fetch(input, init);
  }
  return (input, init) => fetch(input, init);
}

/** Where `backend`'s upstream session for the caller is kept: networked backends only. */
export function sessionsFor(backend: BackendSpec, caller: BackendCaller): SessionStore | undefined {
  if (backend.route === "binding") return undefined;
  return sessionStore(caller.bindings.UPSTREAM_SESSIONS, backend.id, caller.agent);
}

/** Who is calling, in the form the backend trusts; the agent's own token is never among them. */
export async function identityHeaders(
  backend: BackendSpec,
  caller: BackendCaller,
): Promise<Record<string, string>> {
  if (backend.identity === "binding") return { [AGENT_HEADER]: caller.agent };
  if (backend.identity === "none") return {};
  return { authorization: `Bearer ${await caller.signer.sign(caller.agent, backend.id)}` };
}

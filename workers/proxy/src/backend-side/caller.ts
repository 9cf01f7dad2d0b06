/**
 * Who asks a backend, and how its requests get there: the calling agent's identity in the form
 * the backend trusts, the transport (service binding or network), the agent's upstream session
 * store, and the limits each call runs under.
 */
import type { AssertionSigner } from "../../../../common/assertion.ts";
import type { BattleClaims } from "../../../../common/battle-claims.ts";
import type { Bindings } from "../context.ts";
import { type Answerable, answerableKey } from "../core/agent-session.ts";
import type { BackendSpec } from "../core/config.ts";
import { type SessionStore, sessionStore } from "../state/upstream-sessions.ts";

/** The side of a request context that backend calls need (`RequestContext` is one). */
export interface BackendCaller {
  agent: string;
  /** The agent token's battle claims, which its assertions carry; absent for the gateway's own calls. */
  battleClaims?: BattleClaims;
  signer: AssertionSigner;
  bindings: Pick<Bindings, "MCP1" | "UPSTREAM_SESSIONS">;
  /**
   * What the agent can answer when a backend asks it (a 2025 session on `/mcp`,
   * `core/agent-session.ts`): the gateway's client declares exactly this to the backend.
   */
  answerable?: Answerable;
  /**
   * What a 2026-07-28 agent declared in its request's `_meta` it can answer: declared to
   * 2026-07-28 backends, whose `input_required` results then pass through to it.
   */
  inputCapabilities?: Answerable;
}

/** Per-call limits: the gateway's timeout and the agent's cancellation. */
export interface CallLimits {
  timeoutMs: number;
  /**
   * How long a call may wait once its backend has asked the agent something (sampling,
   * elicitation, roots): the wait is then the agent's, often a person's, not the backend's.
   */
  answerTimeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Keeps work going after the agent's request has ended (`ctx.waitUntil`). When an agent
   * cancels, the client's `notifications/cancelled` to a session backend must still be delivered.
   */
  defer?: (work: Promise<unknown>) => void;
}

/** A fetch function: the global one, or a service binding's. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * How requests to `backend` travel, and who they say is calling: the global fetch, or mcp1's
 * service binding; a backend that believes the proxy's assertion (mcp1, mcp2, mcp3) gets a fresh
 * one on every HTTP request (with the agent token's battle claims, for mcp1 to apply), never one reused within an exchange (a handshake, a call, its
 * cancellation): backends refuse a `jti` they have seen. This is the only place the agent's
 * identity is added to a backend request; the agent's own token is never among its headers.
 */
export function fetchFor(backend: BackendSpec, caller: BackendCaller): FetchLike {
  const send: FetchLike =
    backend.route === "binding"
      ? (input, init) => caller.bindings.MCP1.fetch(input, init)
      : (input, init) => fetch(input, init);
  if (backend.identity !== "assertion") return send;
  return async (input, init) => {
    const signed = await caller.signer.sign(caller.agent, backend.id, caller.battleClaims);
    const assertion = `Bearer ${signed}`;
    return send(input, { ...init, headers: withAuthorization(input, init?.headers, assertion) });
  };
}

/** `headers` with `authorization` set, in the form they came in (a plain object stays one). */
function withAuthorization(
  input: string | URL | Request,
  headers: HeadersInit | undefined,
  authorization: string,
): HeadersInit {
  if (headers === undefined && input instanceof Request) headers = input.headers;
  if (headers instanceof Headers || Array.isArray(headers)) {
    const copy = new Headers(headers);
    copy.set("authorization", authorization);
    return copy;
  }
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() !== "authorization") plain[name] = value;
  }
  plain.authorization = authorization;
  return plain;
}

/**
 * Where `backend`'s upstream session for the caller is kept: networked backends only. One per
 * agent and set of capabilities it can answer, since a backend learns those once, at `initialize`.
 */
export function sessionsFor(
  backend: BackendSpec,
  caller: BackendCaller,
  declared: Answerable | undefined,
): SessionStore | undefined {
  if (backend.route === "binding") return undefined;
  const key = answerableKey(declared);
  const holder = key === "" ? caller.agent : `${caller.agent}\u0000${key}`;
  return sessionStore(caller.bindings.UPSTREAM_SESSIONS, backend.id, holder);
}

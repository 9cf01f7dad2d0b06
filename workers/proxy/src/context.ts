/**
 * The request context: everything an operation needs to know about the request it serves, in one
 * object the pipeline builds once it has verified the agent. Who is calling (`identity`), the
 * configuration and bindings, the request's abort signal, `defer` for work that outlives the
 * answer, each tools/call's cancellation, and the outcomes the audit records are made of: one per
 * message of the body, and the request's own.
 *
 * It reaches the operations directly on the hot path, and through the SDK's `authInfo.extra` on
 * the SDK path, where `contextOf` is the one checked read that takes it back out.
 */
import type { AuthInfo } from "@modelcontextprotocol/server";
import type { AssertionSigner } from "../../../common/assertion.ts";
import type { BattleClaims } from "../../../common/battle-claims.ts";
import type { Answerable } from "./core/agent-session.ts";
import type { AgentIdentity } from "./core/auth.ts";
import type { GatewayConfig } from "./core/config.ts";
import type { RequestId } from "./core/envelope.ts";
import type { Decision } from "./state/audit-store.ts";

/**
 * What one message of a request did, or the request as a whole, as far as the audit record tells
 * it: which server and tool it named (as the agent asked, then as routed), what the gateway
 * decided, and how it went.
 */
export class Outcome {
  decision: Decision = "allow";
  /**
   * `ok`, `tool_error`, `rpc_error`, `backend_unavailable`, `backend_timeout`, or
   * `http_<status>`.
   */
  result = "ok";
  server: string | null = null;
  tool: string | null = null;

  /** Records which backend tool the message reached. */
  routed(server: string, tool: string): void {
    this.server = server;
    this.tool = tool;
  }

  /** Records a refusal: what the gateway decided, and what the agent got for it. */
  refused(decision: Decision, result?: string): void {
    this.decision = decision;
    if (result !== undefined) this.result = result;
  }

  /** Records how a message the gateway allowed went. */
  ended(result: string): void {
    this.result = result;
  }
}

/** One message of the request's body, and its outcome: each leaves its own audit record. */
export interface MessageRecord {
  /** An MCP method, `unknown`, or null for a message without one (`core/methods.ts`). */
  method: string | null;
  outcome: Outcome;
}

/** The bindings a request may use (a subset of the generated `Env`). */
export type Bindings = Pick<
  Env,
  "MCP1" | "UPSTREAM_SESSIONS" | "AGENT_GATE" | "AUDIT_DB" | "STREAM_LOG"
>;

export class RequestContext {
  /**
   * The request's own outcome: what holds for all its messages, such as a refusal of the whole
   * request. A message's own outcome, where it has one, comes first.
   */
  readonly outcome = new Outcome();
  /** The body's messages in order, once the envelope has been read; empty before or without. */
  readonly messages: MessageRecord[] = [];
  /** Whether the body was a batch: then each record says which message of it it is. */
  batch = false;
  /** Per request id, the outcome of the message that carries it (ids are unique, `envelope.ts`). */
  private readonly byId = new Map<string, Outcome>();
  /** Per tools/call request id: aborted when the agent sends notifications/cancelled for it. */
  private readonly cancels = new Map<RequestId, AbortSignal>();

  readonly config: GatewayConfig;
  readonly bindings: Bindings;
  readonly identity: AgentIdentity;
  /** Aborted when the agent goes away. */
  readonly signal: AbortSignal;
  /** `ctx.waitUntil`: work that must finish after the agent's request has ended. */
  readonly defer: (work: Promise<unknown>) => void;
  /**
   * What the agent can answer when a backend asks (a 2025 session on `/mcp`, opened by the
   * pipeline from its `Mcp-Session-Id`: `core/agent-session.ts`); unset for a sessionless agent.
   */
  answerable?: Answerable;
  /**
   * What a 2026-07-28 agent declared, in its request's `_meta`, that it can answer: a backend of
   * that era may then answer `input_required` (`operations/tools.ts`).
   */
  inputCapabilities?: Answerable;

  constructor(
    config: GatewayConfig,
    bindings: Bindings,
    identity: AgentIdentity,
    signal: AbortSignal,
    defer: (work: Promise<unknown>) => void,
  ) {
    this.config = config;
    this.bindings = bindings;
    this.identity = identity;
    this.signal = signal;
    this.defer = defer;
  }

  get agent(): string {
    return this.identity.agent;
  }

  get battleClaims(): BattleClaims {
    return this.identity.battleClaims;
  }

  get signer(): AssertionSigner {
    return this.config.signer;
  }

  /** Records which backend tool the request reached (the request's own outcome). */
  routed(server: string, tool: string): void {
    this.outcome.routed(server, tool);
  }

  /** Records a refusal of the whole request: what the gateway decided, what the agent got. */
  refused(decision: Decision, result?: string): void {
    this.outcome.refused(decision, result);
  }

  /** Records how the request went, as a whole. */
  ended(result: string): void {
    this.outcome.ended(result);
  }

  /** Notes a message of the body: it will leave its own record. Its outcome, to fill in. */
  noteMessage(method: string | null, id: RequestId | null): Outcome {
    const outcome = new Outcome();
    this.messages.push({ method, outcome });
    if (id !== null) this.byId.set(String(id), outcome);
    return outcome;
  }

  /**
   * The outcome of the message with request id `id`, where operations record what they did: the
   * request's own when no message carries that id.
   */
  outcomeFor(id: RequestId | undefined): Outcome {
    return (id === undefined ? undefined : this.byId.get(String(id))) ?? this.outcome;
  }

  /** Lets `notifications/cancelled` naming `id` abort that call. */
  cancellable(id: RequestId, signal: AbortSignal): void {
    this.cancels.set(id, signal);
  }

  /** The signal a tools/call with request id `id` runs under: `base`, or the agent's cancel. */
  signalFor(id: RequestId | undefined, base: AbortSignal): AbortSignal {
    const cancelled = id === undefined ? undefined : this.cancels.get(id);
    return cancelled ? AbortSignal.any([base, cancelled]) : base;
  }
}

const CONTEXT = "mcpcp.context";

/** The `authInfo` the SDK handler carries to the per-request server. */
export function authInfoFor(ctx: RequestContext): AuthInfo {
  return {
    // The agent's token never travels further than this Worker, not even into the MCP layer.
    token: "",
    clientId: ctx.agent,
    scopes: [...ctx.identity.scopes],
    expiresAt: ctx.identity.expiresAt,
    extra: { [CONTEXT]: ctx },
  };
}

/** The request context back out of the SDK's `authInfo`; throws when it is not there. */
export function contextOf(authInfo: AuthInfo | undefined): RequestContext {
  const ctx = authInfo?.extra?.[CONTEXT];
  if (!(ctx instanceof RequestContext)) {
    throw new Error("MCP request reached the gateway without a request context");
  }
  return ctx;
}

/**
 * The request context: everything an operation needs to know about the request it serves, in one
 * object the pipeline builds once it has verified the agent. Who is calling (`identity`), the
 * configuration and bindings, the request's abort signal, `defer` for work that outlives the
 * answer, each tools/call's cancellation, and the `outcome` that the audit record is made of.
 *
 * It reaches the operations directly on the hot path, and through the SDK's `authInfo.extra` on
 * the SDK path, where `contextOf` is the one checked read that takes it back out.
 */
import type { AuthInfo } from "@modelcontextprotocol/server";
import type { AssertionSigner } from "../../../common/assertion.ts";
import type { AgentIdentity } from "./core/auth.ts";
import type { GatewayConfig } from "./core/config.ts";
import type { RequestId } from "./core/envelope.ts";
import type { Decision } from "./state/audit-store.ts";

/** What the request did, as far as the audit record tells it. */
export interface Outcome {
  decision: Decision;
  /**
   * `ok`, `tool_error`, `rpc_error`, `backend_unavailable`, `backend_timeout`, or
   * `http_<status>`.
   */
  result: string;
  server: string | null;
  tool: string | null;
}

/** The bindings a request may use (a subset of the generated `Env`). */
export type Bindings = Pick<
  Env,
  "MCP1" | "UPSTREAM_SESSIONS" | "AGENT_GATE" | "AUDIT_DB" | "STREAM_LOG"
>;

export class RequestContext {
  readonly outcome: Outcome = { decision: "allow", result: "ok", server: null, tool: null };
  /** Per tools/call request id: aborted when the agent sends notifications/cancelled for it. */
  private readonly cancels = new Map<RequestId, AbortSignal>();

  readonly config: GatewayConfig;
  readonly bindings: Bindings;
  readonly identity: AgentIdentity;
  /** Aborted when the agent goes away. */
  readonly signal: AbortSignal;
  /** `ctx.waitUntil`: work that must finish after the agent's request has ended. */
  readonly defer: (work: Promise<unknown>) => void;

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

  get signer(): AssertionSigner {
    return this.config.signer;
  }

  /** Records which backend tool the request reached. */
  routed(server: string, tool: string): void {
    this.outcome.server = server;
    this.outcome.tool = tool;
  }

  /** Records a refusal: what the gateway decided, and what the agent got for it. */
  refused(decision: Decision, result?: string): void {
    this.outcome.decision = decision;
    if (result !== undefined) this.outcome.result = result;
  }

  /** Records how a request the gateway allowed went. */
  ended(result: string): void {
    this.outcome.result = result;
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

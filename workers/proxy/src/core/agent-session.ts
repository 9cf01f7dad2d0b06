/**
 * A 2025 agent's session on `/mcp`, and the questions backends ask it through the gateway.
 *
 * `/mcp` serves each request on its own (no memory between requests), so a backend's request to
 * the agent (sampling, elicitation, roots) and the agent's answer, which comes on another POST,
 * perhaps to another isolate, must carry what the gateway needs to join them:
 *
 * - The agent's session id is what it declared it can answer, sealed for that agent: issued only
 *   to an agent whose `initialize` declared one of those capabilities (any other 2025 agent stays
 *   sessionless), and sent back by its client on every request.
 * - The id of a question relayed to the agent is the backend, its upstream session, its protocol
 *   version and the backend's own request id, sealed for the agent: the answer, whichever isolate
 *   it reaches, goes to that backend's session under the backend's id, and an id that does not
 *   open for the answering agent (another agent's, a changed one) goes nowhere.
 *
 * Pure data and rules here; the sealing is `seal.ts`, the sending `backend-side/questions.ts`.
 */
import { z } from "zod";
import { isJsonObject } from "./json.ts";

/** What an agent declared it can answer, of the client capabilities a backend may ask of. */
export interface Answerable {
  sampling?: Record<string, unknown>;
  elicitation?: { form?: Record<string, unknown>; url?: Record<string, unknown> };
  roots?: { listChanged?: boolean };
}

/** The methods a backend asks an agent with, and the capability each needs. */
export const QUESTION_CAPABILITY = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
} as const satisfies Record<string, keyof Answerable>;

/** Whether `method` is one a backend asks an agent with. */
export function isQuestion(method: string): method is keyof typeof QUESTION_CAPABILITY {
  return Object.hasOwn(QUESTION_CAPABILITY, method);
}

/** Every relayed question id starts with this, so the pipeline tells the gateway's answers apart. */
export const QUESTION_PREFIX = "mcpcp-q.";

const Capability = z.record(z.string(), z.unknown());
const InitializeCapabilities = z.object({
  capabilities: z
    .object({
      sampling: Capability.optional().catch(undefined),
      elicitation: Capability.optional().catch(undefined),
      roots: Capability.optional().catch(undefined),
    })
    .catch({}),
});

/**
 * What the params of a 2025 `initialize` declare the agent can answer, or undefined when nothing
 * (then the agent gets no session). An `elicitation: {}` means form mode (2025-11-25).
 */
export function answerableOf(params: unknown): Answerable | undefined {
  const parsed = InitializeCapabilities.safeParse(params);
  if (!parsed.success) return undefined;
  const { sampling, elicitation, roots } = parsed.data.capabilities;
  const answerable: Answerable = {};
  if (sampling) answerable.sampling = {};
  if (elicitation) {
    const url = isJsonObject(elicitation.url);
    const form = isJsonObject(elicitation.form) || !url;
    answerable.elicitation = { ...(form ? { form: {} } : {}), ...(url ? { url: {} } : {}) };
  }
  if (roots) answerable.roots = roots.listChanged === true ? { listChanged: true } : {};
  return Object.keys(answerable).length > 0 ? answerable : undefined;
}

/**
 * The session's sealed text, and back. What it holds is `answerableOf`'s own output, built in a
 * fixed order, so equal sessions are equal text; coming back it is read by the same rule.
 */
export function sessionText(answerable: Answerable): string {
  return JSON.stringify({ v: 1, answerable });
}

export function sessionOf(text: string): Answerable | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isJsonObject(parsed) || parsed.v !== 1) return undefined;
    return answerableOf({ capabilities: parsed.answerable });
  } catch {
    return undefined;
  }
}

/**
 * A short stable name for what a session can answer: upstream sessions are kept per agent *and*
 * this, because a backend learns the client's capabilities once, at its `initialize`.
 */
export function answerableKey(answerable: Answerable | undefined): string {
  if (!answerable) return "";
  return [
    answerable.sampling ? "s" : "",
    answerable.elicitation?.form ? "f" : "",
    answerable.elicitation?.url ? "u" : "",
    answerable.roots ? (answerable.roots.listChanged ? "R" : "r") : "",
  ].join("");
}

/** Where the answer to a relayed question goes: what the question's id seals. */
export interface QuestionRoute {
  server: string;
  /** The backend's session the question came on (2025 backends ask only within one). */
  session: string;
  protocolVersion: string;
  /** The backend's own id for its request. */
  id: string | number;
}

const Route = z.object({
  server: z.string(),
  session: z.string(),
  protocolVersion: z.string(),
  id: z.union([z.string(), z.number()]),
});

/** The binding a question's id is sealed under: the agent, and no one server (the id names it). */
export function questionBinding(agent: string) {
  return { agent, server: "", kind: "question" } as const;
}

/** The binding an agent's session is sealed under. */
export function sessionBinding(agent: string) {
  return { agent, server: "", kind: "agent_session" } as const;
}

export function routeText(route: QuestionRoute): string {
  return JSON.stringify(route);
}

export function routeOf(text: string): QuestionRoute | undefined {
  try {
    const parsed = Route.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** An answer the agent sent: a JSON-RPC response, its id, and the rest of it as it came. */
export interface AgentAnswer {
  id: string;
  answer: { result: unknown } | { error: unknown };
}

/**
 * The answers to relayed questions in a body: its JSON-RPC responses whose id is a question id of
 * the gateway's. Undefined when the body holds anything else as well (a request, a notification,
 * a response to something else): such a body goes to the SDK whole.
 */
export function answersIn(body: unknown): AgentAnswer[] | undefined {
  const messages = Array.isArray(body) ? body : [body];
  if (messages.length === 0) return undefined;
  const answers: AgentAnswer[] = [];
  for (const message of messages) {
    if (!isJsonObject(message) || message.jsonrpc !== "2.0" || "method" in message)
      return undefined;
    const { id } = message;
    if (typeof id !== "string" || !id.startsWith(QUESTION_PREFIX)) return undefined;
    if ("result" in message === "error" in message) return undefined;
    answers.push({
      id,
      answer: "result" in message ? { result: message.result } : { error: message.error },
    });
  }
  return answers;
}

/** Whether `body`'s `params._meta` names the 2026-07-28 revision: ModernRequest's first test. */
function isModernMeta(body: unknown): boolean {
  const params = isJsonObject(body) ? body.params : undefined;
  const meta = isJsonObject(params) ? params._meta : undefined;
  return isJsonObject(meta) && meta["io.modelcontextprotocol/protocolVersion"] === "2026-07-28";
}

const ModernRequest = z.object({
  params: z.object({
    _meta: z.object({
      "io.modelcontextprotocol/protocolVersion": z.literal("2026-07-28"),
      "io.modelcontextprotocol/clientCapabilities": z.record(z.string(), z.unknown()),
    }),
  }),
});

/**
 * What a 2026-07-28 request (one message, its envelope in `_meta`) declares its client can answer,
 * of what a backend may ask for in an `input_required` result; undefined for any other body.
 */
export function inputCapabilitiesOf(body: unknown): Answerable | undefined {
  // Most bodies are not 2026-07-28 requests: a schema that fails builds its issues, which costs
  // more than the look that tells.
  if (!isModernMeta(body)) return undefined;
  const parsed = ModernRequest.safeParse(body);
  if (!parsed.success) return undefined;
  const capabilities = parsed.data.params._meta["io.modelcontextprotocol/clientCapabilities"];
  return answerableOf({ capabilities });
}

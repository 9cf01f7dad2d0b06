/**
 * The JSON-RPC envelope of an agent's request, parsed once, here, with zod: the gateway's only
 * reader of a request body. Everything downstream (scopes, admission, cancellation, listening,
 * the hot path, the audit record) takes the typed `Envelope`, never the raw JSON.
 *
 * The envelope reads only what the gateway acts on. What each message's params must look like
 * for its method is the MCP layer's to check (the SDK server validates every request it serves),
 * so a message the envelope cannot read is passed on as it is and answered there.
 */
import { LOG_LEVEL_META_KEY } from "@modelcontextprotocol/server";
import { z } from "zod";
import { methodLabel } from "./methods.ts";
import { LIMITS, shapeViolation } from "./shape.ts";

export type RequestId = string | number;

/** What an agent's `subscriptions/listen` asked to hear about (2026-07-28). */
export interface ChangeFilter {
  toolsListChanged?: boolean;
  resourcesListChanged?: boolean;
  promptsListChanged?: boolean;
}

/** One message of the body, as far as the gateway acts on it. */
export interface Message {
  method: string | undefined;
  /** The request id; null for a notification or an id of the wrong type. */
  id: RequestId | null;
  /** A `tools/call`: the tool the agent named. */
  call?: { name: string };
  /** A `notifications/cancelled`: the request it cancels. */
  cancel?: { requestId: RequestId; reason: string };
  /** A `subscriptions/listen` that asked for at least one kind of change. */
  listen?: ChangeFilter;
}

/**
 * A single request exactly as the SDK would route and serve it without complaint, which the hot
 * path may answer itself: no key the SDK would treat specially, ids and tokens of the safe types.
 */
export interface PlainRequest {
  /** The message as it arrived, for the SDK's classifier. */
  body: unknown;
  id: RequestId;
  method: "tools/call" | "tools/list";
  /** For `tools/call`: the tool's (prefixed) name and its arguments. */
  name?: string;
  arguments?: Record<string, unknown>;
  /** The agent's progress token, when it asked for progress. */
  progressToken?: RequestId;
  /** Whether `_meta` sets a log threshold (filtering the SDK server does). */
  logLevel: boolean;
  /** The request's `_meta`, as it came (the trace context in it goes on to the backend). */
  meta?: Record<string, unknown>;
}

export type Envelope =
  | {
      ok: true;
      /** What the audit record names: an MCP method, `unknown`, `batch`, or null (`methods.ts`). */
      label: string | null;
      messages: readonly Message[];
      plain?: PlainRequest;
    }
  | { ok: false; label: string | null; id: RequestId | null; violation: string };

const Id = z.union([z.string(), z.number()]);
const Params = z.record(z.string(), z.unknown());
const Loose = z.object({
  id: Id.nullable().optional().catch(null),
  method: z.string().optional().catch(undefined),
  params: Params.optional().catch(undefined),
});
const CallParams = z.object({ name: z.string() });
const CancelParams = z.object({
  requestId: Id,
  reason: z.string().optional().catch(undefined),
});
const ListenParams = z.object({
  notifications: z
    .object({
      toolsListChanged: z.boolean().optional().catch(undefined),
      resourcesListChanged: z.boolean().optional().catch(undefined),
      promptsListChanged: z.boolean().optional().catch(undefined),
    })
    .catch({}),
});

const SafeId = z.union([z.string(), z.int()]);
const Meta = z.looseObject({ progressToken: SafeId.optional() });
const PlainCall = z.strictObject({
  jsonrpc: z.literal("2.0"),
  id: SafeId,
  method: z.literal("tools/call"),
  params: z.strictObject({
    name: z.string(),
    arguments: Params.optional(),
    _meta: Meta.optional(),
  }),
});
const PlainList = z.strictObject({
  jsonrpc: z.literal("2.0"),
  id: SafeId,
  method: z.literal("tools/list"),
  params: z.strictObject({ _meta: Meta.optional() }).optional(),
});
const Plain = z.discriminatedUnion("method", [PlainCall, PlainList]);

/**
 * Parses a request body that is valid JSON. A body over the shape limits is refused whole, and so
 * is a batch in which two requests share an id.
 */
export function parseEnvelope(body: unknown): Envelope {
  if (Array.isArray(body)) {
    const violation = shapeViolation(body, LIMITS);
    if (violation) return { ok: false, label: "batch", id: null, violation };
    const messages = messagesOf(body);
    if (repeatsAnId(messages)) {
      return { ok: false, label: "batch", id: null, violation: DUPLICATE_IDS };
    }
    return { ok: true, label: "batch", messages };
  }
  // The common case first: one plain request, read by one strict schema.
  const plain = Plain.safeParse(body);
  if (plain.success) {
    const { id, method } = plain.data;
    const message: Message = { method, id };
    if (plain.data.method === "tools/call") message.call = { name: plain.data.params.name };
    if (shapeViolation(body, LIMITS) === undefined) {
      return { ok: true, label: method, messages: [message], plain: plainOf(body, plain.data) };
    }
  }
  const loose = Loose.safeParse(body);
  const label = methodLabel(loose.success ? loose.data.method : undefined);
  const violation = shapeViolation(body, LIMITS);
  if (violation) {
    return { ok: false, label, id: loose.success ? (loose.data.id ?? null) : null, violation };
  }
  return { ok: true, label, messages: [messageOf(loose)] };
}

const DUPLICATE_IDS = "the requests of a batch must have distinct ids";

/**
 * Whether two requests of a batch share an id. Answers are matched to requests by id alone
 * (JSON-RPC 2.0, section 6), so with two alike one call runs unanswered, or answered as the other.
 * Ids are compared by their text: 1 and "1" count as the same, as servers that key requests by
 * the id's text would take them.
 */
function repeatsAnId(messages: readonly Message[]): boolean {
  const seen = new Set<string>();
  for (const { method, id } of messages) {
    if (method === undefined || id === null) continue;
    const key = String(id);
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

function plainOf(body: unknown, request: z.infer<typeof Plain>): PlainRequest {
  const meta = request.params?._meta;
  const plain: PlainRequest = {
    body,
    id: request.id,
    method: request.method,
    logLevel: meta !== undefined && meta[LOG_LEVEL_META_KEY] !== undefined,
  };
  if (meta !== undefined) plain.meta = meta;
  if (meta?.progressToken !== undefined) plain.progressToken = meta.progressToken;
  if (request.method === "tools/call") {
    plain.name = request.params.name;
    if (request.params.arguments !== undefined) plain.arguments = request.params.arguments;
  }
  return plain;
}

function messageOf(parsed: ReturnType<typeof Loose.safeParse>): Message {
  if (!parsed.success) return { method: undefined, id: null };
  const { method, params } = parsed.data;
  const message: Message = { method, id: parsed.data.id ?? null };
  if (method === "tools/call") {
    const call = CallParams.safeParse(params);
    if (call.success) message.call = { name: call.data.name };
  } else if (method === "notifications/cancelled") {
    const cancel = CancelParams.safeParse(params);
    if (cancel.success) {
      message.cancel = {
        requestId: cancel.data.requestId,
        reason: cancel.data.reason ?? "no reason given",
      };
    }
  } else if (method === "subscriptions/listen") {
    const listen = ListenParams.safeParse(params);
    const asked = listen.success ? listen.data.notifications : {};
    const filter: ChangeFilter = {};
    for (const key of ["toolsListChanged", "resourcesListChanged", "promptsListChanged"] as const) {
      if (asked[key] === true) filter[key] = true;
    }
    if (Object.keys(filter).length > 0) message.listen = filter;
  }
  return message;
}

/** The messages of a body, as `parseEnvelope` reads them, whatever its shape limits say. */
export function messagesOf(body: unknown): Message[] {
  return (Array.isArray(body) ? body : [body]).map((m) => messageOf(Loose.safeParse(m)));
}

/** The `tools/call` messages of an envelope, in order. */
export function callsOf(messages: readonly Message[]): { id: RequestId | null; name: string }[] {
  return messages.flatMap((m) => (m.call ? [{ id: m.id, name: m.call.name }] : []));
}

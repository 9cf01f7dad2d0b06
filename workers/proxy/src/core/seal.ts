/**
 * Sealing: what the gateway hands an agent to give back later, bound to that agent and server.
 *
 * A backend's `Mcp-Session-Id` and a 2026-07-28 backend's `requestState` are the backend's memory,
 * held by the agent between requests. Passed on as they are, one agent could present another's
 * (a session id seen in a log, a state copied from a shared transcript) and act inside it. So the
 * gateway seals each value with AES-GCM under a key only it holds, together with the agent and
 * the server it belongs to, and opens it on the way back: a value another agent sealed, one for
 * another server, or one that was changed does not open. Any isolate opens what any other sealed.
 * `/mcp` seals two values of its own the same way: a 2025 agent's session (what it can answer),
 * and the id of a backend's question relayed to the agent (`core/agent-session.ts`).
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a sealed value is bound to. */
export interface Binding {
  agent: string;
  server: string;
  /** What the value is, so a session id cannot be passed off as a request state. */
  kind: "session" | "request_state" | "agent_session" | "question";
}

/** What the gateway answers a `requestState` that does not open for this agent and server. */
export const FOREIGN_STATE_MESSAGE =
  "Invalid params: requestState was not issued to this agent by this server";

/** The `requestState` of an `input_required` result, which the gateway seals before the agent. */
export function stateToSeal(result: Record<string, unknown>): string | undefined {
  return result.resultType === "input_required" && typeof result.requestState === "string"
    ? result.requestState
    : undefined;
}

/** The AES-GCM key sealing uses (typed by what web crypto derives, in workerd and Node alike). */
export type SealKey = Awaited<ReturnType<typeof crypto.subtle.deriveKey>>;

/** Derives the sealing key from the proxy's private signing key (a JWK's `d`), with HKDF. */
export async function sealKeyFrom(secret: string): Promise<SealKey> {
  const material = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, [
    "deriveKey",
  ]);
  return crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: encoder.encode("mcpcp"),
      info: encoder.encode("mcpcp seal v1"),
    },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

function additionalData({ agent, server, kind }: Binding): Uint8Array {
  return encoder.encode(JSON.stringify([kind, agent, server]));
}

/** `value` sealed for `binding`: URL-safe base64, so it is a valid header value and id. */
export async function seal(key: SealKey, binding: Binding, value: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: additionalData(binding) },
      key,
      encoder.encode(value),
    ),
  );
  const out = new Uint8Array(iv.length + sealed.length);
  out.set(iv);
  out.set(sealed, iv.length);
  return toBase64Url(out);
}

/** The value `sealed` holds, or undefined when it was not sealed by this gateway for `binding`. */
export async function open(
  key: SealKey,
  binding: Binding,
  sealed: string,
): Promise<string | undefined> {
  const bytes = fromBase64Url(sealed);
  if (!bytes || bytes.length < 12 + 16) return undefined;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, 12), additionalData: additionalData(binding) },
      key,
      bytes.subarray(12),
    );
    return decoder.decode(plain);
  } catch {
    return undefined;
  }
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * No length limit of its own: whatever `seal` produced must open again (a 2026-07-28 backend may
 * keep a whole conversation in its `requestState`), and a sealed value comes back inside one
 * request, which the pipeline has already bounded (a 4 MiB body, 1 MiB strings, the header limit).
 */
function fromBase64Url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

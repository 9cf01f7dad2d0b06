/**
 * How the proxy's workerd tests talk to it: tokens signed with the test key, raw JSON-RPC POSTs
 * to `exports.default` (the Worker under test), and replies read from JSON or SSE.
 */
import { exports } from "cloudflare:workers";
import { importJWK, type JWK, SignJWT } from "jose";
import { expect, inject } from "vitest";

export const ORIGIN = "http://proxy.test";
export const LEGACY_VERSION = "2025-11-25";

let key: Promise<{ signingKey: CryptoKey; kid: string }> | undefined;

function testKey() {
  key ??= (async () => {
    const jwk = JSON.parse(inject("agentPrivateJwk")) as JWK & { kid: string };
    return { signingKey: (await importJWK(jwk, "RS256")) as CryptoKey, kid: jwk.kid };
  })();
  return key;
}

/** The kid of the agent key the proxy under test trusts. */
export function testKid(): string {
  return (JSON.parse(inject("agentPrivateJwk")) as { kid: string }).kid;
}

/** A valid agent token (both scopes, 5 minutes); `claims` override any claim. */
export async function token(agent: string, claims: Record<string, unknown> = {}): Promise<string> {
  const { signingKey, kid } = await testKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sub: agent,
    iss: "https://mcpcp",
    aud: "mcpcp-server",
    iat: now,
    exp: now + 300,
    scope: "list_tools call_tools",
    ...claims,
  })
    .setProtectedHeader({ alg: "RS256", kid })
    .sign(signingKey);
}

let nextId = 1;
/** A JSON-RPC request with a fresh id. */
export function rpc(method: string, params?: object) {
  return { jsonrpc: "2.0", id: nextId++, method, ...(params ? { params } : {}) };
}

/** POSTs `body` (an object, or raw text) to the proxy's /mcp. */
export async function post(body: unknown, bearer?: string, headers: Record<string, string> = {}) {
  return postTo("/mcp", body, bearer, headers);
}

/** POSTs `body` (an object, or raw text) to `path` on the proxy, as an agent would. */
export async function postTo(
  path: string,
  body: unknown,
  bearer?: string,
  headers: Record<string, string> = {},
) {
  return exports.default.fetch(
    new Request(`${ORIGIN}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...headers,
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

/** The parts of JSON-RPC replies these tests read. */
export interface RpcReply {
  result?: {
    tools: { name: string }[];
    content: { type: string; text: string }[];
    isError?: boolean;
    structuredContent?: unknown;
    serverInfo: { name: string };
  };
  error?: { code: number; message: string; data?: unknown };
}

/** Reads a JSON-RPC reply whether the server answered with JSON or one SSE event. */
export async function message(response: Response): Promise<RpcReply> {
  const text = await response.text();
  if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
    return JSON.parse(text);
  }
  const data = text.split("\n").find((line) => line.startsWith("data: "));
  if (!data) throw new Error(`no SSE data in: ${text}`);
  return JSON.parse(data.slice(6));
}

/** The tool names `agent` is shown. */
export async function toolNames(agent: string): Promise<string[]> {
  const response = await post(rpc("tools/list"), await token(agent));
  expect(response.status).toBe(200);
  return (await message(response)).result?.tools.map((t) => t.name) ?? [];
}

/** Calls `name` as `agent` and reads the reply. */
export async function call(agent: string, name: string, args: object) {
  return message(await post(rpc("tools/call", { name, arguments: args }), await token(agent)));
}

/** A fresh RSA private key the proxy has never seen: for forging tokens under a trusted kid. */
export async function foreignRsaKey(): Promise<CryptoKey> {
  const pair = (await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  return pair.privateKey;
}

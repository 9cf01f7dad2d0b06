/**
 * How the mcp1 workerd tests reach it: the Worker's fetch handler as a browser or curl would call
 * it, or as the proxy does (a fresh assertion signed with the run's proxy key on every request),
 * inspection tokens signed with the run's test key, and battles fed over the Durable Object's RPC
 * as the tools feed them.
 */
import { env, exports } from "cloudflare:workers";
import { importJWK, type JWK, SignJWT } from "jose";
import { expect, inject } from "vitest";
import { type AssertionSigner, createAssertionSigner } from "../../../common/assertion.ts";
import type { BattleClaims } from "../../../common/battle-claims.ts";
import type { BattlePage, BattleSummary } from "../../../durable-objects/battle-types.ts";
import "./provided.ts";

export const ORIGIN = "http://mcp1.test";

let key: Promise<{ signingKey: CryptoKey; kid: string }> | undefined;

function testKey() {
  key ??= (async () => {
    const jwk = JSON.parse(inject("inspectPrivateJwk")) as JWK & { kid: string };
    return { signingKey: (await importJWK(jwk, "RS256")) as CryptoKey, kid: jwk.kid };
  })();
  return key;
}

/** A valid inspection token (5 minutes); `claims` override any claim, `header` the JOSE header. */
export async function inspectToken(
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const { signingKey, kid } = await testKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sub: "inspector",
    iss: "https://mcpcp",
    aud: "mcpcp-server",
    iat: now,
    exp: now + 300,
    scope: "inspect_battles",
    ...claims,
  })
    .setProtectedHeader({ alg: "RS256", kid, ...header })
    .sign(signingKey);
}

let signer: Promise<AssertionSigner> | undefined;

/** Signs assertions as the proxy does, with the run's proxy key (mcp1's PROXY_JWKS). */
export function proxySigner(): Promise<AssertionSigner> {
  signer ??= createAssertionSigner(JSON.parse(inject("proxySigningKey")) as JWK);
  return signer;
}

/**
 * `Authorization` as the proxy sends it to mcp1 for `agent`: a fresh assertion, good once, with
 * the agent token's battle claims when it has some.
 */
export async function proxyAuthorization(agent: string, claims?: BattleClaims): Promise<string> {
  return `Bearer ${await (await proxySigner()).sign(agent, "mcp1", claims)}`;
}

/** mcp1's fetch handler as the proxy reaches it for `agent`: a new assertion on every request. */
export function asProxy(agent: string, claims?: BattleClaims) {
  return async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    headers.set("authorization", await proxyAuthorization(agent, claims));
    return exports.default.fetch(new Request(url, { ...init, headers }));
  };
}

/** GETs `path` from mcp1, with `token` as the bearer when given. */
export function get(path: string, token?: string, headers: Record<string, string> = {}) {
  return exports.default.fetch(
    new Request(`${ORIGIN}${path}`, {
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    }),
  );
}

/** GETs a JSON API path with a fresh inspection token and returns the parsed body. */
export async function getJson<T>(path: string): Promise<T> {
  const response = await get(path, await inspectToken());
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as T;
}

/** A battle id no other test uses. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** The BattleSession holding battle `id`. */
export function session(id: string) {
  return env.BATTLE.get(env.BATTLE.idFromName(id));
}

/**
 * Appends `count` progress events to battle `id`, one after the other; `access` is the caller's
 * battle claims (an agent other than the battle's owner needs its token to bind it).
 */
export async function report(
  id: string,
  count: number,
  agent: string | null = "agent_name1",
  reportedBy = "scout",
  access?: BattleClaims,
): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const answer = await session(id).appendProgress({
      battle_id: id,
      message: `event ${i}`,
      reported_by: reportedBy,
      agent,
      ...(access ? { access } : {}),
    });
    if (!answer.ok) throw new Error(answer.error.message);
  }
}

/** Ends battle `id` with `winner`, as `agent` (the battle's owner, unless its claims say more). */
export async function end(
  id: string,
  winner: "green" | "blue" | "red" | "draw",
  agent = "agent_name1",
) {
  const answer = await session(id).reportEnd({
    battle_id: id,
    message: `${winner} wins`,
    reported_by: "umpire",
    agent,
    winner,
  });
  if (!answer.ok) throw new Error(answer.error.message);
}

/** Every battle the list API shows, following cursors to the last page. */
export async function listAll(query = ""): Promise<BattleSummary[]> {
  const battles: BattleSummary[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams(query);
    params.set("limit", "100");
    if (cursor) params.set("cursor", cursor);
    const page: BattlePage = await getJson<BattlePage>(`/api/battles?${params}`);
    battles.push(...page.battles);
    cursor = page.next_cursor;
  } while (cursor);
  return battles;
}

/** Waits until the index lists battle `id` in a state `check` accepts, and returns that entry. */
export async function indexed(
  id: string,
  check: (battle: BattleSummary) => boolean = () => true,
): Promise<BattleSummary> {
  let found: BattleSummary | undefined;
  await expect
    .poll(
      async () => {
        found = (await listAll()).find((b) => b.id === id);
        return found !== undefined && check(found);
      },
      { timeout: 5000, interval: 50 },
    )
    .toBe(true);
  return found as BattleSummary;
}

/**
 * The gateway's configuration, read from the Worker's variables and validated in one place, as
 * plain data: what the backends are and how to reach them is described here, and connected in
 * `backend-side/`.
 *
 * Every problem is reported with the name of the variable that holds it. Workers have no start
 * hook, so this runs on the first request of an isolate and the result is kept
 * (`state/gateways.ts`); the launcher runs the same checks before it starts anything
 * (`scripts/start.ts`), so a bad document fails there.
 */
import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { type AssertionSigner, createAssertionSigner } from "../../../../common/assertion.ts";
import { parseDocument } from "./documents.ts";
import { type HostRule, parseHostRules } from "./host.ts";
import { agentKeyLookup } from "./jwks.ts";
import { SERVER_ID } from "./names.ts";
import { type OAuthEnv, type OAuthSettings, readOAuthSettings } from "./oauth-settings.ts";
import {
  loadRuleCompiler,
  type ParseResult,
  type Policy,
  type PolicyDocument,
  readPolicy,
} from "./policy.ts";
import { type SealKey, sealKeyFrom } from "./seal.ts";

/** One MCP server behind the gateway. */
export interface BackendSpec {
  id: string;
  /** The server's MCP endpoint. For a service binding the host is nominal. */
  url: URL;
  /** How requests reach it: the `MCP1` service binding, or `fetch` over the network. */
  route: "binding" | "network";
  /**
   * How the backend learns the calling agent: the proxy's signed assertion, one per HTTP request
   * (mcp1 over its service binding, mcp2 and mcp3 over the network, EXTRA_BACKENDS that ask); a
   * third-party server that knows nothing of MCPCP is told nothing.
   */
  identity: "assertion" | "none";
  /** Whether, once known to serve 2026-07-28, it is asked directly (`direct.ts`); `DIRECT`. */
  direct: boolean;
}

/** A backend the proxy did not write, given in EXTRA_BACKENDS. */
const ExtraBackend = z.object({
  id: z.string(),
  url: z.string(),
  identity: z.enum(["assertion", "none"]).default("none"),
});

export interface GatewayConfig {
  issuer: string;
  audience: string;
  keys: JWTVerifyGetKey;
  /** Signs the assertions that tell networked backends who is calling. */
  signer: AssertionSigner;
  /** Seals what agents hold for the gateway: upstream session ids, request states (`core/seal.ts`). */
  sealKey: SealKey;
  /** The proxy's public assertion keys, published at /.well-known/jwks.json. */
  publicJwks: JSONWebKeySet;
  policy: Policy;
  /** The document `policy` indexes, as written: POLICY, or the served version's (`pipeline.ts`). */
  policyDocument: PolicyDocument;
  /** In stable order of id. */
  backends: ReadonlyMap<string, BackendSpec>;
  backendTimeoutMs: number;
  /**
   * How long a door waits for the agent to answer a backend's question (sampling, elicitation,
   * roots) before it gives up on the call: a person filling in a form takes longer than a backend.
   */
  agentAnswerTimeoutMs: number;
  allowedOrigins: readonly string[];
  /** Host names the gateway answers to besides the loopback names (`core/host.ts`). */
  allowedHosts: readonly HostRule[];
  /** Prefixed tool names that also get a per agent+tool rate limit. */
  rateLimitedTools: ReadonlySet<string>;
  /** tools/call requests one agent may have in flight; 0 means no cap. */
  maxConcurrentCalls: number;
  /**
   * Long-lived streams one agent may hold open (a `subscriptions/listen` stream on /mcp or at a
   * door, a door's GET stream); 0 means no cap.
   */
  maxStreams: number;
  /** Requests per minute one agent may make. */
  agentRatePerMinute: number;
  /** Calls per minute one agent may make to each of `rateLimitedTools`. */
  toolRatePerMinute: number;
  /** Whether plain tools/call and tools/list skip the SDK server (`agent-side/hot-path.ts`). */
  fastPath: boolean;
  /** Whether known 2026-07-28 backends are asked with one plain POST, not the SDK client (`direct.ts`). */
  direct: boolean;
  /** How people sign in with OAuth (`oauth/`); null while `OIDC_ISSUER` is unset. */
  oauth: OAuthSettings | null;
}

/** The variables this module reads (a subset of the generated `Env`, so tests can build one). */
export interface ConfigEnv extends OAuthEnv {
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
  AGENT_JWKS: string;
  PROXY_SIGNING_KEY: string;
  PROXY_PUBLIC_JWKS: string;
  POLICY: string;
  MCP2_URL: string;
  MCP3_URL: string;
  BACKEND_TIMEOUT_MS: string;
  AGENT_ANSWER_TIMEOUT_MS?: string;
  ALLOWED_ORIGINS?: string;
  ALLOWED_HOSTS?: string;
  RATE_LIMITED_TOOLS?: string;
  EXTRA_BACKENDS?: string;
  MAX_CONCURRENT_CALLS_PER_AGENT?: string;
  MAX_STREAMS_PER_AGENT?: string;
  AGENT_RATE_LIMIT_PER_MINUTE?: string;
  TOOL_RATE_LIMIT_PER_MINUTE?: string;
  FAST_PATH?: string;
  DIRECT?: string;
}

function parseUrl(name: string, value: string | undefined): ParseResult<URL> {
  if (!value) return { ok: false, error: `${name} is not set` };
  try {
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
    return { ok: true, value: url };
  } catch {
    return { ok: false, error: `${name} is not an http(s) URL: ${value}` };
  }
}

// The proxy's own keys: a private Ed25519 JWK to sign with, and the public keys it publishes.
const PublicOkpKey = z
  .object({
    kty: z.literal("OKP"),
    crv: z.literal("Ed25519"),
    x: z.string().min(1),
    kid: z.string().min(1),
  })
  .loose()
  .refine((k) => !("d" in k), { message: "holds private key material" });
const ProxyJwks = z.object({ keys: z.array(PublicOkpKey).min(1) });

async function proxyKeys(
  env: ConfigEnv,
): Promise<ParseResult<{ signer: AssertionSigner; sealKey: SealKey; publicJwks: JSONWebKeySet }>> {
  if (!env.PROXY_SIGNING_KEY) {
    return { ok: false, error: "PROXY_SIGNING_KEY is not set (run `npm run keys`)" };
  }
  let signer: AssertionSigner;
  let sealKey: SealKey;
  try {
    const jwk = JSON.parse(env.PROXY_SIGNING_KEY) as JWK;
    signer = await createAssertionSigner(jwk);
    sealKey = await sealKeyFrom(String(jwk.d));
  } catch (e) {
    return { ok: false, error: `PROXY_SIGNING_KEY is unusable: ${(e as Error).message}` };
  }
  const parsed = parseDocument("PROXY_PUBLIC_JWKS", env.PROXY_PUBLIC_JWKS, ProxyJwks);
  if (!parsed.ok) return parsed;
  const published = parsed.value;
  if (!published.keys.some((k) => k.kid === signer.kid)) {
    return {
      ok: false,
      error: `PROXY_PUBLIC_JWKS does not hold the signing key (kid ${signer.kid}): backends would refuse every call`,
    };
  }
  return { ok: true, value: { signer, sealKey, publicJwks: published as JSONWebKeySet } };
}

/**
 * Streams per agent when MAX_STREAMS_PER_AGENT is unset. An agent needs one listen stream on /mcp
 * (it hears every server) and one GET stream per door it keeps open; eight leave room for a few
 * clients under one identity, while one agent's streams, each with an upstream listen per server,
 * stay a bounded share of an isolate (README.md, "Security").
 */
export const DEFAULT_MAX_STREAMS = 8;

/** Builds the gateway configuration from bindings, or says which binding is wrong. */
export async function loadConfig(env: ConfigEnv): Promise<ParseResult<GatewayConfig>> {
  if (!env.JWT_ISSUER) return { ok: false, error: "JWT_ISSUER is not set" };
  if (!env.JWT_AUDIENCE) return { ok: false, error: "JWT_AUDIENCE is not set" };
  if (!env.AGENT_JWKS) return { ok: false, error: "AGENT_JWKS is not set (run `npm run keys`)" };
  if (!env.POLICY) return { ok: false, error: "POLICY is not set (run `npm run keys`)" };
  const agentKeys = agentKeyLookup(env.AGENT_JWKS);
  if (!agentKeys.ok) return agentKeys;
  const ownKeys = await proxyKeys(env);
  if (!ownKeys.ok) return ownKeys;

  const timeout = Number(env.BACKEND_TIMEOUT_MS);
  if (!Number.isInteger(timeout) || timeout < 100 || timeout > 600_000) {
    return {
      ok: false,
      error: `BACKEND_TIMEOUT_MS must be 100..600000 ms, got ${env.BACKEND_TIMEOUT_MS}`,
    };
  }
  const mcp2 = parseUrl("MCP2_URL", env.MCP2_URL);
  if (!mcp2.ok) return mcp2;
  const mcp3 = parseUrl("MCP3_URL", env.MCP3_URL);
  if (!mcp3.ok) return mcp3;

  const fastPath = onOff(env, "FAST_PATH");
  if (!fastPath.ok) return fastPath;
  const direct = onOff(env, "DIRECT");
  if (!direct.ok) return direct;

  const backends = new Map<string, BackendSpec>([
    [
      "mcp1",
      {
        id: "mcp1",
        url: new URL("https://mcp1.internal/mcp"),
        route: "binding",
        identity: "assertion",
        direct: direct.value,
      },
    ],
    ["mcp2", networked("mcp2", mcp2.value, "assertion", direct.value)],
    ["mcp3", networked("mcp3", mcp3.value, "assertion", direct.value)],
  ]);

  const extra = parseExtraBackends(env.EXTRA_BACKENDS, [...backends.keys()]);
  if (!extra.ok) return extra;
  for (const { id, url, identity } of extra.value) {
    backends.set(id, networked(id, url, identity, direct.value));
  }

  // The rule compiler loads only for a policy that has rules (`loadRuleCompiler`).
  const compile = env.POLICY.includes('"when"') ? await loadRuleCompiler() : undefined;
  // Read once here: the isolate seeds the store with this document and serves a version whose
  // policy is this one from this index (`state/control-cache.ts`).
  const policy = readPolicy(env.POLICY, [...backends.keys()], compile);
  if (!policy.ok) return policy;

  const allowedOrigins = csv(env.ALLOWED_ORIGINS);
  for (const origin of allowedOrigins) {
    const url = parseUrl("ALLOWED_ORIGINS", origin);
    if (!url.ok || url.value.origin !== origin) {
      return { ok: false, error: `ALLOWED_ORIGINS entry is not an origin: ${origin}` };
    }
  }

  const allowedHosts = parseHostRules(csv(env.ALLOWED_HOSTS));
  if (!allowedHosts.ok) return allowedHosts;

  const maxConcurrentCalls = intVar(env, "MAX_CONCURRENT_CALLS_PER_AGENT", 0, 0, 10_000);
  if (!maxConcurrentCalls.ok) return maxConcurrentCalls;
  const maxStreams = intVar(env, "MAX_STREAMS_PER_AGENT", DEFAULT_MAX_STREAMS, 0, 10_000);
  if (!maxStreams.ok) return maxStreams;
  const agentRate = intVar(env, "AGENT_RATE_LIMIT_PER_MINUTE", 600, 1, 1e9);
  if (!agentRate.ok) return agentRate;
  const toolRate = intVar(env, "TOOL_RATE_LIMIT_PER_MINUTE", 60, 1, 1e9);
  if (!toolRate.ok) return toolRate;
  const answerTimeout = intVar(env, "AGENT_ANSWER_TIMEOUT_MS", 300_000, 100, 3_600_000);
  if (!answerTimeout.ok) return answerTimeout;
  const oauth = readOAuthSettings(env);
  if (!oauth.ok) return oauth;

  return {
    ok: true,
    value: {
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      keys: agentKeys.value,
      signer: ownKeys.value.signer,
      sealKey: ownKeys.value.sealKey,
      publicJwks: ownKeys.value.publicJwks,
      policy: policy.value.policy,
      policyDocument: policy.value.document,
      backends,
      backendTimeoutMs: timeout,
      agentAnswerTimeoutMs: answerTimeout.value,
      allowedOrigins,
      allowedHosts: allowedHosts.value,
      rateLimitedTools: new Set(csv(env.RATE_LIMITED_TOOLS)),
      maxConcurrentCalls: maxConcurrentCalls.value,
      maxStreams: maxStreams.value,
      agentRatePerMinute: agentRate.value,
      toolRatePerMinute: toolRate.value,
      fastPath: fastPath.value,
      direct: direct.value,
      oauth: oauth.value,
    },
  };
}

/** An integer variable in `min..max`, `fallback` when unset. */
function intVar(
  env: ConfigEnv,
  name:
    | "MAX_CONCURRENT_CALLS_PER_AGENT"
    | "MAX_STREAMS_PER_AGENT"
    | "AGENT_RATE_LIMIT_PER_MINUTE"
    | "TOOL_RATE_LIMIT_PER_MINUTE"
    | "AGENT_ANSWER_TIMEOUT_MS",
  fallback: number,
  min: number,
  max: number,
): ParseResult<number> {
  const raw = env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    return { ok: false, error: `${name} must be an integer in ${min}..${max}, got ${raw}` };
  }
  return { ok: true, value };
}

/** A switch variable, "on" (the default) or "off". */
function onOff(env: ConfigEnv, name: "FAST_PATH" | "DIRECT"): ParseResult<boolean> {
  const value = env[name] ?? "on";
  if (value !== "on" && value !== "off") {
    return { ok: false, error: `${name} must be "on" or "off", got ${value}` };
  }
  return { ok: true, value: value === "on" };
}

function csv(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A backend reached over the network (its upstream sessions are kept per agent). */
function networked(
  id: string,
  url: URL,
  identity: "assertion" | "none",
  direct: boolean,
): BackendSpec {
  return { id, url, route: "network", identity, direct };
}

/** One entry of EXTRA_BACKENDS, validated. */
export interface ExtraBackendSpec {
  id: string;
  url: URL;
  identity: "assertion" | "none";
}

/**
 * Reads EXTRA_BACKENDS (a JSON array of `{id, url, identity?}`): any Streamable HTTP MCP server,
 * stateless or with sessions, fronted like the built-in ones. `taken` are the ids already in use.
 * Pure, so the launcher (`scripts/start.ts`) applies the same rules before it starts anything.
 */
export function parseExtraBackends(
  json: string | undefined,
  taken: readonly string[],
): ParseResult<ExtraBackendSpec[]> {
  if (!json?.trim()) return { ok: true, value: [] };
  const parsed = parseDocument("EXTRA_BACKENDS", json, z.array(ExtraBackend).max(32));
  if (!parsed.ok) return parsed;
  const ids = new Set(taken);
  const extras: ExtraBackendSpec[] = [];
  for (const entry of parsed.value) {
    if (!SERVER_ID.test(entry.id)) {
      return { ok: false, error: `EXTRA_BACKENDS id "${entry.id}" must match ${SERVER_ID.source}` };
    }
    if (ids.has(entry.id)) {
      return { ok: false, error: `EXTRA_BACKENDS id "${entry.id}" is already taken` };
    }
    const url = parseUrl(`EXTRA_BACKENDS[${entry.id}].url`, entry.url);
    if (!url.ok) return url;
    ids.add(entry.id);
    extras.push({ id: entry.id, url: url.value, identity: entry.identity });
  }
  return { ok: true, value: extras };
}

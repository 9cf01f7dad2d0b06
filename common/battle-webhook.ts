/**
 * The battle webhook's contract (docs/design.md, "Battle delivery"): how mcp1 delivers each battle
 * event to the battle platform's backend, and how the platform checks that a delivery is genuine.
 * mcp1's BattleSession signs (`durable-objects/battle-delivery.ts`), the platform (and the demo
 * receiver, `scripts/battle-receiver.ts`) verifies, so both halves live here.
 *
 *   POST <BATTLE_WEBHOOK_URL>/battles/<battle_id>
 *   Content-Type: application/json
 *   Idempotency-Key: <battle_id>:<seq>
 *   Mcpcp-Signature: <JWT, EdDSA>
 *   { "battle_id": …, "event": { "seq": …, … }, "winner"?: … }
 *
 * The signature is a compact JWT signed with mcp1's Ed25519 key (`kid` in its header, the public
 * half at mcp1's `/.well-known/battle-webhook-jwks.json`): `iss` mcpcp-mcp1, `aud` the configured
 * URL, `sub` the battle id, `jti` the Idempotency-Key, `sha256` the base64url SHA-256 of the body's
 * exact bytes, `iat`, and `exp` five minutes on. A JWT, rather than a detached JWS, so plain jose
 * `jwtVerify` checks key, algorithm, audience and freshness in one call; the body is bound by its
 * hash. Each attempt is signed afresh, so a retry hours later is still fresh.
 *
 * Runs in workerd (signing) and Node (verifying): jose and web crypto only.
 */
import {
  type CryptoKey,
  errors,
  importJWK,
  type JWK,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from "jose";

/** The only algorithm a delivery is signed with; verification accepts nothing else. */
export const WEBHOOK_ALG = "EdDSA";
/** `iss` of every delivery signature. */
export const WEBHOOK_ISSUER = "mcpcp-mcp1";
/** `typ` of the signature's protected header, so it cannot pass for another kind of JWT. */
export const WEBHOOK_TYP = "mcpcp-battle-event+jwt";
/** The header carrying the signature. */
export const SIGNATURE_HEADER = "Mcpcp-Signature";
/** The header carrying `<battle_id>:<seq>`. */
export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/** Where mcp1 (and the proxy, forwarding) publishes the public keys. */
export const WEBHOOK_JWKS_PATH = "/.well-known/battle-webhook-jwks.json";
/** How long a signature is good for; each attempt signs again. */
export const WEBHOOK_TTL_SECONDS = 300;
/** Clock skew a verifier should allow. */
export const WEBHOOK_SKEW_SECONDS = 60;

/** `Idempotency-Key` of the event `seq` of battle `battleId`. */
export function idempotencyKey(battleId: string, seq: number): string {
  return `${battleId}:${seq}`;
}

/** The URL one battle's events are POSTed to. */
export function deliveryUrl(base: string, battleId: string): string {
  return `${base}/battles/${encodeURIComponent(battleId)}`;
}

/** The settings a delivery needs, parsed from mcp1's variables. */
export interface WebhookConfig {
  /** `BATTLE_WEBHOOK_URL` without a trailing slash; also the signature's `aud`. */
  url: string;
  /** The private Ed25519 JWK (with `kid`) from `BATTLE_WEBHOOK_SIGNING_KEY`. */
  signingKey: JWK;
  /** First retry delay; doubles per consecutive failure (`BATTLE_WEBHOOK_BACKOFF_MS`). */
  backoffMs: number;
  /** Longest retry delay (`BATTLE_WEBHOOK_MAX_BACKOFF_MS`). */
  maxBackoffMs: number;
  /** How long one POST may take before it counts as failed (`BATTLE_WEBHOOK_TIMEOUT_MS`). */
  timeoutMs: number;
}

/** mcp1's webhook variables as strings, as wrangler hands them over. */
export interface WebhookVars {
  BATTLE_WEBHOOK_URL?: string | undefined;
  BATTLE_WEBHOOK_SIGNING_KEY?: string | undefined;
  BATTLE_WEBHOOK_BACKOFF_MS?: string | undefined;
  BATTLE_WEBHOOK_MAX_BACKOFF_MS?: string | undefined;
  BATTLE_WEBHOOK_TIMEOUT_MS?: string | undefined;
}

export const DEFAULT_BACKOFF_MS = 1000;
export const DEFAULT_MAX_BACKOFF_MS = 5 * 60_000;
export const DEFAULT_TIMEOUT_MS = 10_000;

export type WebhookConfigResult =
  | { ok: true; config: WebhookConfig | null }
  | { ok: false; error: string };

/**
 * Reads the webhook variables: `config: null` when `BATTLE_WEBHOOK_URL` is unset or empty
 * (webhooks off), else the parsed settings, or a message naming the variable that is wrong.
 */
export function parseWebhookConfig(vars: WebhookVars): WebhookConfigResult {
  const raw = vars.BATTLE_WEBHOOK_URL?.trim();
  if (!raw) return { ok: true, config: null };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, error: `BATTLE_WEBHOOK_URL is not a URL: "${raw}"` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, error: "BATTLE_WEBHOOK_URL must be an http or https URL" };
  }
  if (url.search || url.hash || url.username || url.password) {
    return {
      ok: false,
      error: "BATTLE_WEBHOOK_URL must have no query, fragment or credentials",
    };
  }
  const signingKey = parseSigningKey(vars.BATTLE_WEBHOOK_SIGNING_KEY);
  if (!signingKey.ok) return signingKey;
  const backoffMs = positiveInt(vars.BATTLE_WEBHOOK_BACKOFF_MS, DEFAULT_BACKOFF_MS);
  const maxBackoffMs = positiveInt(vars.BATTLE_WEBHOOK_MAX_BACKOFF_MS, DEFAULT_MAX_BACKOFF_MS);
  const timeoutMs = positiveInt(vars.BATTLE_WEBHOOK_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
  for (const [name, value] of [
    ["BATTLE_WEBHOOK_BACKOFF_MS", backoffMs],
    ["BATTLE_WEBHOOK_MAX_BACKOFF_MS", maxBackoffMs],
    ["BATTLE_WEBHOOK_TIMEOUT_MS", timeoutMs],
  ] as const) {
    if (value === null) return { ok: false, error: `${name} must be a positive whole number` };
  }
  return {
    ok: true,
    config: {
      url: url.href.replace(/\/+$/, ""),
      signingKey: signingKey.key,
      backoffMs: backoffMs as number,
      maxBackoffMs: Math.max(maxBackoffMs as number, backoffMs as number),
      timeoutMs: timeoutMs as number,
    },
  };
}

function positiveInt(raw: string | undefined, fallback: number): number | null {
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  return Number.isSafeInteger(value) && value > 0 ? value : null;
}

function parseSigningKey(
  raw: string | undefined,
): { ok: true; key: JWK } | { ok: false; error: string } {
  const missing =
    "BATTLE_WEBHOOK_SIGNING_KEY must be mcp1's private Ed25519 JWK with a kid (`npm run keys` writes it)";
  if (!raw?.trim()) return { ok: false, error: `BATTLE_WEBHOOK_URL is set but ${missing}` };
  let key: JWK;
  try {
    key = JSON.parse(raw) as JWK;
  } catch {
    return { ok: false, error: `${missing}; it is not JSON` };
  }
  if (key?.kty !== "OKP" || key.crv !== "Ed25519" || !key.d || !key.x || !key.kid) {
    return { ok: false, error: missing };
  }
  return { ok: true, key };
}

/** The public JWKS of a signing key: what mcp1 publishes at WEBHOOK_JWKS_PATH. */
export function publicJwks(signingKey: JWK): { keys: JWK[] } {
  const { kty, crv, x, kid } = signingKey;
  return { keys: [{ kty, crv, x, kid, alg: WEBHOOK_ALG, use: "sig" }] };
}

/** base64url SHA-256 of `body`'s bytes, the signature's `sha256` claim. */
export async function bodyHash(body: string | Uint8Array): Promise<string> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Signs deliveries with mcp1's key. */
export interface DeliverySigner {
  sign(input: { battleId: string; seq: number; body: string }): Promise<string>;
}

/** Imports the private JWK into a signer. */
export async function createDeliverySigner(config: WebhookConfig): Promise<DeliverySigner> {
  const { kid } = config.signingKey;
  const key = (await importJWK(config.signingKey, WEBHOOK_ALG)) as CryptoKey;
  return {
    async sign({ battleId, seq, body }) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ sha256: await bodyHash(body) })
        .setProtectedHeader({ alg: WEBHOOK_ALG, kid, typ: WEBHOOK_TYP })
        .setIssuer(WEBHOOK_ISSUER)
        .setAudience(config.url)
        .setSubject(battleId)
        .setJti(idempotencyKey(battleId, seq))
        .setIssuedAt(now)
        .setExpirationTime(now + WEBHOOK_TTL_SECONDS)
        .sign(key);
    },
  };
}

export type DeliveryCheck =
  | { ok: true; battleId: string; idempotencyKey: string }
  | { ok: false; reason: string };

/**
 * What a receiver checks before it believes a delivery: the signature by a published key, the
 * issuer, its own URL as audience, freshness, the body's hash, and that the signed battle and key
 * are the ones in the path and the Idempotency-Key header. Never throws for a bad delivery.
 */
export async function verifyDelivery(input: {
  /** The body's exact bytes, as received. */
  body: string | Uint8Array;
  signature: string | null | undefined;
  idempotencyKey: string | null | undefined;
  /** The battle id from the request path. */
  battleId: string;
  /** The receiver's BATTLE_WEBHOOK_URL, as mcp1 is configured with it. */
  audience: string;
  /** jose's key lookup over the published JWKS (createRemoteJWKSet or createLocalJWKSet). */
  keys: JWTVerifyGetKey;
}): Promise<DeliveryCheck> {
  if (!input.signature) return { ok: false, reason: `no ${SIGNATURE_HEADER} header` };
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(input.signature, input.keys, {
      algorithms: [WEBHOOK_ALG],
      typ: WEBHOOK_TYP,
      issuer: WEBHOOK_ISSUER,
      audience: input.audience,
      clockTolerance: WEBHOOK_SKEW_SECONDS,
      requiredClaims: ["exp", "iat", "sub", "jti", "sha256"],
    }));
  } catch (error) {
    const reason =
      error instanceof errors.JOSEError ? `${error.code}: ${error.message}` : String(error);
    return { ok: false, reason };
  }
  if (payload.sha256 !== (await bodyHash(input.body))) {
    return { ok: false, reason: "the body does not match the signed sha256" };
  }
  if (payload.sub !== input.battleId) {
    return { ok: false, reason: "the signature is for another battle than the path names" };
  }
  if (payload.jti !== input.idempotencyKey) {
    return { ok: false, reason: `the signature is for another ${IDEMPOTENCY_HEADER}` };
  }
  return { ok: true, battleId: input.battleId, idempotencyKey: payload.jti as string };
}

/**
 * The delay before retry number `failures` (1 = after the first failure): `base · 2^(failures-1)`,
 * capped at `max`, then "equal jitter" (half fixed, half random) so battles that failed together
 * do not retry together. `random` is in [0, 1).
 */
export function retryDelayMs(
  failures: number,
  base: number,
  max: number,
  random: number = Math.random(),
): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const capped = Math.min(max, base * 2 ** exponent);
  return Math.round(capped / 2 + (capped / 2) * random);
}

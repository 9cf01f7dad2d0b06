/**
 * How often one network address may start what costs the gateway storage without a token:
 * registering a client, and starting a sign-in (each writes to OAUTH_KV). Counted like an agent's
 * rate, in an AgentGate Durable Object of its own per address and kind, so it holds across
 * isolates and locations.
 */
import { admit, RATE_WINDOW_MS } from "../state/admission.ts";

/** Per address and minute. */
export const OAUTH_LIMITS = { register: 30, authorize: 60 } as const;

/** Seconds until `request`'s address may try `kind` again, or null when it may now. */
export async function overLimit(
  env: Env,
  kind: keyof typeof OAUTH_LIMITS,
  request: Request,
): Promise<number | null> {
  // Cloudflare sets CF-Connecting-IP on every request it routes; a local gateway has one address.
  const address = request.headers.get("cf-connecting-ip") ?? "local";
  // ':' keeps these gates apart from any agent's (a policy's agent names are its own).
  const rate = { limit: OAUTH_LIMITS[kind], windowMs: RATE_WINDOW_MS };
  const admitted = await admit(env.AGENT_GATE, `oauth-${kind}:${address}`, {
    rate,
    toolRate: rate,
    calls: [],
    maxInFlight: 0,
    leaseMs: 1_000,
  });
  return admitted.ok ? null : admitted.retryAfterSeconds;
}

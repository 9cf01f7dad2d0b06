/**
 * The public half of mcp1's battle-webhook key, for the battle platform to verify deliveries
 * with (common/battle-webhook.ts). Public: it needs no token, and the proxy forwards it, since
 * deployed mcp1 has no URL of its own. Webhooks off (no key configured): an empty set, 200.
 */
import {
  parseWebhookConfig,
  publicJwks,
  type WebhookVars,
} from "../../../common/battle-webhook.ts";
import { configFailure } from "./http-errors.ts";

/** `GET /.well-known/battle-webhook-jwks.json`. */
export function webhookJwksResponse(env: Env): Response {
  const vars = env as Env & WebhookVars;
  const parsed = parseWebhookConfig(vars);
  if (!parsed.ok) {
    return configFailure(parsed.error, "The battle webhook is misconfigured; see mcp1's log.");
  }
  const keys = parsed.config ? publicJwks(parsed.config.signingKey).keys : [];
  return new Response(JSON.stringify({ keys }), {
    headers: {
      "Content-Type": "application/jwk-set+json",
      // Short: a rotated key must reach verifiers soon, and they re-fetch on an unknown kid.
      "Cache-Control": "public, max-age=300",
    },
  });
}

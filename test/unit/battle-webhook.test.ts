/**
 * The battle webhook's contract in Node (common/battle-webhook.ts): what mcp1 signs, a platform
 * verifies with plain jose against the public JWKS, and nothing else passes; its settings are read
 * naming the variable that is wrong; its retry delays stay within the cap.
 */
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createDeliverySigner,
  parseWebhookConfig,
  publicJwks,
  retryDelayMs,
  verifyDelivery,
  type WebhookConfig,
} from "../../common/battle-webhook.ts";

const URL_BASE = "https://platform.example/hooks";

async function ed25519(kid: string): Promise<JWK> {
  const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { ...(await exportJWK(pair.privateKey)), kid };
}

let config: WebhookConfig;
let other: JWK;

beforeAll(async () => {
  const parsed = parseWebhookConfig({
    BATTLE_WEBHOOK_URL: `${URL_BASE}/`,
    BATTLE_WEBHOOK_SIGNING_KEY: JSON.stringify(await ed25519("k1")),
  });
  if (!parsed.ok || !parsed.config) throw new Error("config did not parse");
  config = parsed.config;
  other = await ed25519("k1");
});

async function signed(body: string, battleId = "b-1", seq = 3) {
  const signer = await createDeliverySigner(config);
  return { body, signature: await signer.sign({ battleId, seq, body }) };
}

const keys = () => createLocalJWKSet(publicJwks(config.signingKey));

describe("a delivery's signature", () => {
  it("verifies with jose against the published JWKS, naming battle and key", async () => {
    const { body, signature } = await signed('{"battle_id":"b-1","event":{"seq":3}}');
    const check = await verifyDelivery({
      body,
      signature,
      idempotencyKey: "b-1:3",
      battleId: "b-1",
      audience: URL_BASE,
      keys: keys(),
    });
    expect(check).toEqual({ ok: true, battleId: "b-1", idempotencyKey: "b-1:3" });
    expect(publicJwks(config.signingKey).keys[0]).not.toHaveProperty("d");
  });

  it("fails for a tampered body, another battle, another key, another audience or key set", async () => {
    const { body, signature } = await signed('{"battle_id":"b-1","event":{"seq":3}}');
    const base = {
      body,
      signature,
      idempotencyKey: "b-1:3",
      battleId: "b-1",
      audience: URL_BASE,
      keys: keys(),
    };
    const cases = [
      { body: body.replace("3", "4") },
      { battleId: "b-2" },
      { idempotencyKey: "b-1:4" },
      { audience: "https://elsewhere.example" },
      { keys: createLocalJWKSet(publicJwks(other)) },
      { signature: null },
      { signature: `${signature}x` },
    ];
    for (const change of cases) {
      const check = await verifyDelivery({ ...base, ...change });
      expect(check.ok, JSON.stringify(change)).toBe(false);
    }
  });
});

describe("the webhook settings", () => {
  it("are off without a URL, and name the variable that is wrong", async () => {
    expect(parseWebhookConfig({})).toEqual({ ok: true, config: null });
    expect(parseWebhookConfig({ BATTLE_WEBHOOK_URL: " " })).toEqual({ ok: true, config: null });
    const key = JSON.stringify(await ed25519("k"));
    const wrong = [
      [{ BATTLE_WEBHOOK_URL: "not a url" }, /BATTLE_WEBHOOK_URL/],
      [{ BATTLE_WEBHOOK_URL: "ftp://x" }, /BATTLE_WEBHOOK_URL/],
      [{ BATTLE_WEBHOOK_URL: "https://x/?a=1" }, /BATTLE_WEBHOOK_URL/],
      [{ BATTLE_WEBHOOK_URL: "https://x" }, /BATTLE_WEBHOOK_SIGNING_KEY/],
      [{ BATTLE_WEBHOOK_URL: "https://x", BATTLE_WEBHOOK_SIGNING_KEY: "{" }, /SIGNING_KEY/],
      [
        {
          BATTLE_WEBHOOK_URL: "https://x",
          BATTLE_WEBHOOK_SIGNING_KEY: key,
          BATTLE_WEBHOOK_BACKOFF_MS: "-1",
        },
        /BATTLE_WEBHOOK_BACKOFF_MS/,
      ],
      [
        {
          BATTLE_WEBHOOK_URL: "https://x",
          BATTLE_WEBHOOK_SIGNING_KEY: key,
          BATTLE_WEBHOOK_TIMEOUT_MS: "1.5",
        },
        /BATTLE_WEBHOOK_TIMEOUT_MS/,
      ],
    ] as const;
    for (const [vars, message] of wrong) {
      const parsed = parseWebhookConfig(vars);
      expect(parsed.ok, JSON.stringify(vars)).toBe(false);
      if (!parsed.ok) expect(parsed.error).toMatch(message);
    }
  });
});

describe("retry delays", () => {
  it("double from the base, stop at the cap, and keep at least half of each step", () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 1000, 300_000, 0.999999))).toEqual([
      1000, 2000, 4000, 8000,
    ]);
    expect(retryDelayMs(1, 1000, 300_000, 0)).toBe(500);
    expect(retryDelayMs(40, 1000, 300_000, 0.999999)).toBe(300_000);
    expect(retryDelayMs(40, 1000, 300_000, 0)).toBe(150_000);
  });
});

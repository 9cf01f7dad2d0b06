/**
 * mcp1's battle-webhook key: Ed25519, signing every event mcp1 delivers to the battle platform
 * (`common/battle-webhook.ts`). Its own key, apart from the agent-token and proxy keys, so a
 * platform that trusts deliveries trusts nothing else, and no delivery key can sign an assertion.
 *
 *   keys/battle-webhook.jwk.json   private JWK with kid, mode 0600 in the 0700 keys/:
 *                                  mcp1's BATTLE_WEBHOOK_SIGNING_KEY
 *
 * The public half is not written anywhere: mcp1 publishes it, derived from the private JWK, at
 * `/.well-known/battle-webhook-jwks.json`.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import { KEYS_DIR } from "./key-files.ts";
import { ensurePrivateDir, tightenSecretFile, writeSecret } from "./private-files.ts";

/** Where the private JWK lives inside `dir`. */
export function battleWebhookKeyPath(dir: string = KEYS_DIR): string {
  return join(dir, "battle-webhook.jwk.json");
}

/** Makes mcp1's webhook key if there is none (or `replace`), and returns the private JWK. */
export async function ensureBattleWebhookKey(
  options: { dir?: string; replace?: boolean } = {},
): Promise<JWK> {
  const path = battleWebhookKeyPath(options.dir);
  await ensurePrivateDir(dirname(path));
  await tightenSecretFile(path);
  if (!options.replace) {
    try {
      return JSON.parse(await readFile(path, "utf8")) as JWK;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(pair.publicKey), "sha256");
  const key = { ...(await exportJWK(pair.privateKey)), kid, alg: "EdDSA", use: "sig" };
  await writeSecret(path, `${JSON.stringify(key, null, 2)}\n`);
  return key;
}

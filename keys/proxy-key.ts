/**
 * The proxy's own signing key: Ed25519, used for the assertions it sends backends
 * (`common/assertion.ts`). Separate from the agent-token keys: agents' tokens are checked by the
 * proxy, the proxy's assertions are checked by the backends, and neither key can stand in for the
 * other.
 *
 *   keys/proxy-signing.jwk.json   private JWK with kid, mode 0600 in the 0700 keys/: PROXY_SIGNING_KEY
 *   keys/proxy-jwks.json          public JWKS of every live proxy key: what backends verify with
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import { KEYS_DIR } from "./key-files.ts";
import { ensurePrivateDir, tightenSecretFile, writeSecret } from "./private-files.ts";
import { writeAtomic } from "./write-atomic.ts";

export interface ProxyKeyPaths {
  signingKey: string;
  jwks: string;
}

/** The proxy key file paths inside `dir`. */
export function proxyKeyPaths(dir: string = KEYS_DIR): ProxyKeyPaths {
  return { signingKey: join(dir, "proxy-signing.jwk.json"), jwks: join(dir, "proxy-jwks.json") };
}

export interface ProxyKeys {
  /** The private JWK the proxy signs with (kid = RFC 7638 thumbprint). */
  signingKey: JWK;
  /** Public keys backends accept: the signing key's, plus retired ones still in rotation. */
  jwks: { keys: JWK[] };
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Makes the proxy's key if there is none. `rotate` makes a new one and keeps the old public key
 * in the JWKS, so assertions already in flight still verify; `retire` drops every public key but
 * the current one (the last step of a rotation).
 */
export async function ensureProxyKey(
  options: { dir?: string; rotate?: boolean; retire?: boolean } = {},
): Promise<ProxyKeys> {
  const paths = proxyKeyPaths(options.dir);
  await ensurePrivateDir(dirname(paths.signingKey));
  await tightenSecretFile(paths.signingKey);
  const existing = await readJson<JWK>(paths.signingKey);
  const published = (await readJson<{ keys: JWK[] }>(paths.jwks)) ?? { keys: [] };
  let signingKey = existing;
  if (!signingKey || options.rotate) {
    const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const kid = await calculateJwkThumbprint(publicJwk, "sha256");
    signingKey = { ...(await exportJWK(pair.privateKey)), kid, alg: "EdDSA", use: "sig" };
    await writeSecret(paths.signingKey, `${JSON.stringify(signingKey, null, 2)}\n`);
  }
  const { d: _private, ...current } = signingKey;
  const others = options.retire ? [] : published.keys.filter((k) => k.kid !== current.kid);
  const jwks = { keys: [current, ...others] };
  await writeAtomic(paths.jwks, `${JSON.stringify(jwks, null, 2)}\n`);
  return { signingKey, jwks };
}

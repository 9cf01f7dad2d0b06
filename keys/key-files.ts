/**
 * Where the agent-token keys live and how their public half is described. Shared by the generator
 * (`generate.ts`) and the token minter (`mint.ts`) so both derive the same `kid` from the same key.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type CryptoKey, calculateJwkThumbprint, exportJWK } from "jose";
import { z } from "zod";

/** The folder holding this file: the default home of the key files. */
export const KEYS_DIR = import.meta.dirname;
/** The repository root, where `policy.json` and `.dev.vars` live. */
export const REPO_ROOT = resolve(import.meta.dirname, "..");

/** The only algorithm agent tokens use (docs/design.md, "Tokens": RS256, never `none` or HS*). */
export const ALGORITHM = "RS256";

export interface KeyPaths {
  /** PKCS#8 PEM, mode 0600, never committed. */
  privateKey: string;
  /** SPKI PEM of the current key. */
  publicKey: string;
  /** Public JWKS the proxy verifies against (the current key, plus retired ones during rotation). */
  jwks: string;
}

/** The key file paths inside `dir`. */
export function keyPaths(dir: string = KEYS_DIR): KeyPaths {
  return {
    privateKey: join(dir, "private.pem"),
    publicKey: join(dir, "public.pem"),
    jwks: join(dir, "jwks.json"),
  };
}

const publicJwkSchema = z.looseObject({
  kty: z.literal("RSA"),
  n: z.string().min(1),
  e: z.string().min(1),
  kid: z.string().min(1),
  alg: z.literal(ALGORITHM).optional(),
  use: z.literal("sig").optional(),
});
/** Shape of `jwks.json`: public RSA signing keys, each named by `kid`. */
export const jwksSchema = z.object({ keys: z.array(publicJwkSchema) });

export type PublicJwk = z.infer<typeof publicJwkSchema>;
export type Jwks = z.infer<typeof jwksSchema>;

/**
 * The public JWK of `key` with `kid` = its RFC 7638 thumbprint, so a kid can never name two keys.
 * Only the public members (kty, n, e) are kept, so passing the private key is safe.
 */
export async function publicJwkOf(key: KeyObject | CryptoKey): Promise<PublicJwk> {
  const { kty, n, e } = await exportJWK(key);
  if (kty !== "RSA" || n === undefined || e === undefined) {
    throw new Error(`expected an RSA key, got ${kty ?? "an unknown key type"}`);
  }
  const kid = await calculateJwkThumbprint({ kty, n, e }, "sha256");
  return { kty: "RSA", n, e, alg: ALGORITHM, use: "sig", kid };
}

/** Reads `private.pem` from `dir`, failing with a message that says how to create it. */
export async function readPrivateKey(
  dir: string = KEYS_DIR,
): Promise<{ pem: string; key: KeyObject }> {
  const path = keyPaths(dir).privateKey;
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`${path} does not exist: run \`npm run keys\` first`);
    }
    throw error;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`${path} is not a PEM private key (${(error as Error).message})`);
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new Error(`${path} is not an RSA key: regenerate it with \`npm run keys -- --force\``);
  }
  return { pem, key };
}

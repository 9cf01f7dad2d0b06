/**
 * `npm run keys [-- --force | --rotate]`: the RS256 key pair agent tokens are signed with, the
 * public JWKS the proxy verifies them against, and `.dev.vars` for `wrangler dev` of the proxy.
 * See keys/README.md. Everything written here is git-ignored; the private key must never be
 * committed. Secrets are written 0600 in the 0700 keys/ (private-files.ts).
 */
import { createPublicKey } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { ensureBattleWebhookKey } from "./battle-webhook-key.ts";
import { runMain } from "./cli.ts";
import {
  ALGORITHM,
  type Jwks,
  jwksSchema,
  KEYS_DIR,
  type KeyPaths,
  keyPaths,
  publicJwkOf,
  REPO_ROOT,
  readPrivateKey,
} from "./key-files.ts";
import { ensurePrivateDir, tightenSecretFile, writeSecret } from "./private-files.ts";
import { ensureProxyKey } from "./proxy-key.ts";
import { writeAtomic } from "./write-atomic.ts";

export interface EnsureKeysOptions {
  /** Where the key files go; tests pass a temporary directory. */
  dir?: string;
  /** Replace the key pair; the JWKS then holds only the new key (old tokens stop verifying). */
  force?: boolean;
  /** Replace the key pair but keep the old public keys in the JWKS, so old tokens still verify. */
  rotate?: boolean;
}

export interface EnsureKeysResult {
  action: "created" | "kept" | "replaced" | "rotated";
  /** The current signing key's kid, which new tokens carry. */
  kid: string;
  paths: KeyPaths;
  jwks: Jwks;
}

/** Makes the key pair and JWKS in `dir` unless a key exists (then it is kept and the JWKS refreshed). */
export async function ensureKeys(options: EnsureKeysOptions = {}): Promise<EnsureKeysResult> {
  const dir = options.dir ?? KEYS_DIR;
  const paths = keyPaths(dir);
  // Before anything is read or written: the folder holds the private key (private-files.ts).
  await ensurePrivateDir(dir);
  const existing = await readJwks(paths.jwks);
  const hasKey = await exists(paths.privateKey);

  if (hasKey && !options.force && !options.rotate) {
    // The private key is the source of truth: rebuild its public files from it, so a lost or
    // stale public.pem/jwks.json heals, and keep any retired keys the JWKS still lists.
    const { key } = await readPrivateKey(dir);
    const current = await publicJwkOf(key);
    const jwks = { keys: [current, ...retired(existing, current.kid)] };
    await writeAtomic(paths.publicKey, pem(await exportSPKI(createPublicKey(key))));
    await writeAtomic(paths.jwks, `${JSON.stringify(jwks, null, 2)}\n`);
    await tightenSecretFile(paths.privateKey);
    return { action: "kept", kid: current.kid, paths, jwks };
  }

  const { publicKey, privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
  const current = await publicJwkOf(publicKey);
  const jwks = { keys: options.rotate ? [current, ...retired(existing, current.kid)] : [current] };
  await writeSecret(paths.privateKey, pem(await exportPKCS8(privateKey)));
  await writeAtomic(paths.publicKey, pem(await exportSPKI(publicKey)));
  await writeAtomic(paths.jwks, `${JSON.stringify(jwks, null, 2)}\n`);
  const action = !hasKey ? "created" : options.rotate ? "rotated" : "replaced";
  return { action, kid: current.kid, paths, jwks };
}

export interface DevVarsOptions {
  /** Where jwks.json is read from, and where the files themselves are written (see devVarsFiles). */
  keysDir?: string;
  policyPath?: string;
  /** Where wrangler dev reads the proxy's variables: a link to its file in `keysDir`. */
  devVarsPath?: string;
  /**
   * mcp1's `.dev.vars` (AGENT_JWKS, to verify inspection tokens; PROXY_JWKS, the proxy's public
   * assertion keys, to verify what reaches its /mcp; BATTLE_WEBHOOK_SIGNING_KEY, its private key
   * for what it delivers to the battle platform). Defaults to
   * `workers/mcp1/.dev.vars` when `devVarsPath` is the default too; a caller that redirects
   * `devVarsPath` (a test) gets no mcp1 file unless it names one here.
   */
  mcp1DevVarsPath?: string;
  /** OIDC_CLIENT_SECRET for the proxy; defaults to the environment's (empty: OAuth off). */
  oidcClientSecret?: string;
}

export interface DevVarsResult {
  /** Where the proxy's variables are read (`devVarsPath`). */
  path: string;
  /** The minified JSON written as AGENT_JWKS. */
  agentJwks: string;
  /** The minified JSON written as POLICY. */
  policy: string;
  /** Where mcp1's `.dev.vars` went, if anywhere. */
  mcp1Path?: string;
}

/** Writes `.dev.vars` (AGENT_JWKS from jwks.json, POLICY from policy.json) for `wrangler dev`. */
export async function writeDevVars(options: DevVarsOptions = {}): Promise<DevVarsResult> {
  const jwksPath = keyPaths(options.keysDir).jwks;
  const policyPath = options.policyPath ?? join(REPO_ROOT, "policy.json");
  const path = options.devVarsPath ?? join(REPO_ROOT, ".dev.vars");

  const jwks = await readJwks(jwksPath);
  if (jwks === undefined) throw new Error(`${jwksPath} does not exist: run \`npm run keys\` first`);
  const agentJwks = JSON.stringify(jwks);
  const policy = JSON.stringify(await readPolicy(policyPath));
  const proxyKeys = await ensureProxyKey({ dir: options.keysDir });
  const proxyJwks = JSON.stringify(proxyKeys.jwks);

  // The OpenID Connect client secret from the launcher's environment, empty while OAuth is off: a
  // secret, so it goes to the 0600 .dev.vars, never onto a command line; always written, since
  // wrangler dev passes a secret only when it is listed (wrangler.toml) and present.
  const oidcSecret = options.oidcClientSecret ?? process.env.OIDC_CLIENT_SECRET ?? "";
  const vars = {
    AGENT_JWKS: agentJwks,
    POLICY: policy,
    PROXY_SIGNING_KEY: JSON.stringify(proxyKeys.signingKey),
    PROXY_PUBLIC_JWKS: proxyJwks,
    OIDC_CLIENT_SECRET: oidcSecret,
  };
  // .dev.vars is dotenv: single quotes keep the JSON literal, but cannot themselves be escaped.
  for (const [name, value] of Object.entries(vars)) {
    if (value.includes("'")) throw new Error(`${name} cannot contain ' in .dev.vars`);
  }
  const text = [
    "# Generated by `npm run keys` (keys/generate.ts) from keys/*.json and policy.json.",
    "# Rewritten on every run: edit policy.json, not this file.",
    ...Object.entries(vars).map(([name, value]) => `${name}='${value}'`),
    "",
  ].join("\n");
  await writeDevVarsFile(path, text);

  const mcp1Path =
    options.mcp1DevVarsPath ??
    (options.devVarsPath === undefined
      ? join(REPO_ROOT, "workers", "mcp1", ".dev.vars")
      : undefined);
  if (mcp1Path !== undefined) {
    const webhookKey = JSON.stringify(await ensureBattleWebhookKey({ dir: options.keysDir }));
    const mcp1Text = [
      "# Generated by `npm run keys` (keys/generate.ts) from keys/jwks.json, keys/proxy-jwks.json",
      "# and keys/battle-webhook.jwk.json: mcp1 verifies inspection tokens (scope inspect_battles)",
      "# against the agent keys, every request to its /mcp against the proxy's public assertion",
      "# keys, and signs what it delivers to BATTLE_WEBHOOK_URL with its own private key.",
      "# Rewritten on every run.",
      `AGENT_JWKS='${agentJwks}'`,
      `PROXY_JWKS='${proxyJwks}'`,
      `BATTLE_WEBHOOK_SIGNING_KEY='${webhookKey}'`,
      "",
    ].join("\n");
    await writeDevVarsFile(mcp1Path, mcp1Text);
  }
  return { path, agentJwks, policy, ...(mcp1Path === undefined ? {} : { mcp1Path }) };
}

/**
 * Writes a `.dev.vars` where wrangler reads it, beside its config: a regular file, 0600 from its
 * creation on (the proxy's holds its private signing key), replacing in one rename whatever was
 * there (an older copy, or the link an earlier version put there). Its folder is the repository's
 * own, so it is not narrowed: the file's mode alone keeps other users out.
 */
async function writeDevVarsFile(path: string, text: string): Promise<void> {
  await writeAtomic(path, text, 0o600);
}

/** The JWKS at `path`, or undefined when there is none yet. */
async function readJwks(path: string): Promise<Jwks | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const parsed = jwksSchema.safeParse(parseJson(text, path));
  if (!parsed.success) {
    throw new Error(
      `${path} is not an RS256 public JWKS (${parsed.error.message}); fix or delete it`,
    );
  }
  return parsed.data;
}

// The proxy validates the policy's meaning at start; this only catches what would corrupt .dev.vars.
async function readPolicy(path: string): Promise<Record<string, unknown>> {
  const policy = parseJson(await readFile(path, "utf8"), path);
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) {
    throw new Error(`${path} must be a JSON object: agent id → { server id → "*" | [tool names] }`);
  }
  return policy as Record<string, unknown>;
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}

function retired(jwks: Jwks | undefined, currentKid: string) {
  return (jwks?.keys ?? []).filter((key) => key.kid !== currentKid);
}

// jose ends a PEM with a newline for a KeyObject but not for a CryptoKey; files should not depend on it.
function pem(text: string): string {
  return `${text.trimEnd()}\n`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

const USAGE = `usage: npm run keys [-- --force | --rotate]
  (no option)  keep the existing key pair (make one if none), refresh jwks.json and .dev.vars
  --force      replace the key pair; tokens signed with the old key stop verifying
  --rotate     replace the key pair, keeping the old public keys in jwks.json`;

async function main(args: string[]): Promise<number> {
  let values: { force?: boolean; rotate?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        force: { type: "boolean" },
        rotate: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    console.error(`keys: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.force && values.rotate) {
    console.error(`keys: --force and --rotate exclude each other\n${USAGE}`);
    return 2;
  }

  const shown = (path: string) => relative(process.cwd(), path) || path;
  const keys = await ensureKeys({ force: values.force, rotate: values.rotate });
  console.log(`${keys.action} key pair (kid ${keys.kid}):`);
  console.log(`  ${shown(keys.paths.privateKey)}  private, PKCS#8, mode 0600, never commit`);
  console.log(`  ${shown(keys.paths.publicKey)}  public, SPKI`);
  console.log(`  ${shown(keys.paths.jwks)}  public JWKS, ${keys.jwks.keys.length} key(s)`);
  const devVars = await writeDevVars();
  console.log(`wrote ${shown(devVars.path)} (AGENT_JWKS, POLICY, the proxy's keys), mode 0600`);
  if (devVars.mcp1Path) {
    console.log(
      `wrote ${shown(devVars.mcp1Path)} (AGENT_JWKS, PROXY_JWKS, BATTLE_WEBHOOK_SIGNING_KEY), mode 0600`,
    );
  }
  return 0;
}

if (import.meta.main) runMain("keys", main);

/**
 * Production keys, secrets and tokens, kept apart from the development ones in keys/.
 *
 *   node deploy/production.ts keys                  agent RS256 key + proxy Ed25519 key (kept if present)
 *   node deploy/production.ts keys --rotate         new agent key; old public key stays listed
 *   node deploy/production.ts keys --retire         list only the current agent key
 *   node deploy/production.ts keys --rotate-proxy   new proxy signing key; old public key stays listed
 *   node deploy/production.ts keys --retire-proxy   publish only the current proxy key
 *   node deploy/production.ts secrets --mcp2-url https://mcp2.example.com/mcp \
 *        --mcp3-url https://mcp3.example.com/mcp --policy policy.production.json
 *   node deploy/production.ts token --agent <id> [--scope …] [--ttl …]
 *
 * Everything lives in one directory outside the repository (default ~/.mcpcp/production, or
 * --dir), so no production key can be committed, and none is ever in the launcher's `.dev.vars`:
 *
 *   private.pem, public.pem, jwks.json         agent-token keys (keys/README.md has the layout)
 *   proxy-signing.jwk.json, proxy-jwks.json    the proxy's assertion key and its public JWKS
 *   proxy.secrets.json, mcp1.secrets.json      every secret of each Worker, mode 0600, for
 *                                              `wrangler deploy --secrets-file` and `wrangler secret bulk`
 *
 * The key code is keys/'s own (generate.ts, proxy-key.ts, mint.ts), pointed at this directory.
 * docs/deploy.md says when to run what.
 */
import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { ensureBattleWebhookKey } from "../keys/battle-webhook-key.ts";
import { runMain } from "../keys/cli.ts";
import { ensureKeys } from "../keys/generate.ts";
import { keyPaths, publicJwkOf, readPrivateKey } from "../keys/key-files.ts";
import { mintToken, parseMintArgs } from "../keys/mint.ts";
import { ensureProxyKey, proxyKeyPaths } from "../keys/proxy-key.ts";
import { writeAtomic } from "../keys/write-atomic.ts";
import { compileCondition } from "../workers/proxy/src/core/conditions.ts";
import { parsePolicy } from "../workers/proxy/src/core/policy.ts";

const REPO_ROOT = resolve(import.meta.dirname, "..");
/** Where production keys live unless --dir says otherwise. */
export const DEFAULT_DIR = join(homedir(), ".mcpcp", "production");
/** The servers a production policy may name: the three of this repository. */
const SERVERS = ["mcp1", "mcp2", "mcp3"];

const USAGE = `usage: node deploy/production.ts <command> [--dir DIR] [options]

  keys     make the production keys if missing; --rotate | --retire | --force for agent keys,
           --rotate-proxy | --retire-proxy for the proxy's assertion key
  secrets  write proxy.secrets.json and mcp1.secrets.json from the keys and:
             --mcp2-url URL, --mcp3-url URL   the tunnel's https URLs of mcp2 and mcp3
             --policy FILE                    the production policy (JSON, like policy.json)
             --server ID                      another server the policy may name (repeatable;
                                              declare it in EXTRA_BACKENDS)
           each defaults to what the last secrets run wrote
  token    mint an agent token: --agent ID [--scope S] [--ttl SECONDS] [--aud A] [--iss I]

  --dir DIR  the production directory (default ${DEFAULT_DIR}); never inside the repository`;

/** Refuses a directory inside the repository: git must never be one `add` away from the keys. */
export function productionDir(dir: string | undefined): string {
  const resolved = resolve(dir ?? DEFAULT_DIR);
  if (resolved === REPO_ROOT || resolved.startsWith(REPO_ROOT + sep)) {
    throw new Error(`${resolved} is inside the repository; keep production keys outside it`);
  }
  return resolved;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** `keys`: create, rotate or retire the agent and proxy keys in `dir`. */
export async function productionKeys(
  dir: string,
  options: {
    rotate?: boolean;
    retire?: boolean;
    force?: boolean;
    rotateProxy?: boolean;
    retireProxy?: boolean;
  } = {},
): Promise<string[]> {
  const agentModes = [options.rotate, options.retire, options.force].filter(Boolean).length;
  if (agentModes > 1) throw new Error("--rotate, --retire and --force exclude each other");
  if (options.rotateProxy && options.retireProxy) {
    throw new Error("--rotate-proxy and --retire-proxy exclude each other");
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const report: string[] = [];
  const agent = await ensureKeys({ dir, rotate: options.rotate, force: options.force });
  if (options.retire) {
    // The JWKS becomes the current key alone: tokens signed by any older key stop verifying.
    const current = await publicJwkOf((await readPrivateKey(dir)).key);
    await writeAtomic(keyPaths(dir).jwks, `${JSON.stringify({ keys: [current] }, null, 2)}\n`);
    report.push(`agent key ${current.kid} (retired the others)`);
  } else {
    report.push(`agent key ${agent.kid} (${agent.action}; JWKS lists ${agent.jwks.keys.length})`);
  }
  const hadProxyKey = await exists(proxyKeyPaths(dir).signingKey);
  const proxy = await ensureProxyKey({
    dir,
    rotate: options.rotateProxy,
    retire: options.retireProxy,
  });
  const verb = !hadProxyKey
    ? "created"
    : options.rotateProxy
      ? "rotated"
      : options.retireProxy
        ? "retired the others"
        : "kept";
  report.push(`proxy key ${proxy.signingKey.kid} (${verb}; JWKS lists ${proxy.jwks.keys.length})`);
  return report;
}

/** Loopback and private names a deployed proxy cannot reach, and dev values that must not ship. */
const LOCAL_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0|.*\.localhost)$/i;

/** Checks a backend URL for production: https, a public-looking host. */
export function backendUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${name} is not a URL: ${value}`);
  }
  if (url.protocol !== "https:") throw new Error(`${name} must be https (the tunnel's hostname)`);
  if (LOCAL_HOST.test(url.hostname)) {
    throw new Error(`${name} names ${url.hostname}, which the deployed proxy cannot reach`);
  }
  return url.href;
}

export interface SecretsOptions {
  mcp2Url?: string;
  mcp3Url?: string;
  /** Path of the policy document. */
  policy?: string;
  servers?: string[];
}

/** `secrets`: writes each Worker's secrets as one JSON object, mode 0600. */
export async function productionSecrets(
  dir: string,
  options: SecretsOptions,
): Promise<{ proxy: string; mcp1: string }> {
  const proxyPath = join(dir, "proxy.secrets.json");
  const mcp1Path = join(dir, "mcp1.secrets.json");
  const previous = (await exists(proxyPath))
    ? (JSON.parse(await readFile(proxyPath, "utf8")) as Record<string, string>)
    : {};
  const mcp2 = options.mcp2Url ?? previous.MCP2_URL;
  const mcp3 = options.mcp3Url ?? previous.MCP3_URL;
  if (!mcp2 || !mcp3) throw new Error("--mcp2-url and --mcp3-url are required the first time");
  const policyText = options.policy
    ? await readFile(options.policy, "utf8")
    : (previous.POLICY ?? "");
  if (!policyText) throw new Error("--policy is required the first time");
  const policy = parsePolicy(
    policyText,
    [...SERVERS, ...(options.servers ?? [])],
    compileCondition,
  );
  if (!policy.ok) throw new Error(policy.error);

  if (!(await exists(keyPaths(dir).privateKey))) {
    throw new Error(`no keys in ${dir}: run \`node deploy/production.ts keys\` first`);
  }
  const agentJwks = JSON.stringify(JSON.parse(await readFile(keyPaths(dir).jwks, "utf8")));
  const proxyPaths = proxyKeyPaths(dir);
  const proxyJwks = JSON.stringify(JSON.parse(await readFile(proxyPaths.jwks, "utf8")));
  const proxy = {
    AGENT_JWKS: agentJwks,
    POLICY: JSON.stringify(JSON.parse(policyText)),
    PROXY_SIGNING_KEY: JSON.stringify(JSON.parse(await readFile(proxyPaths.signingKey, "utf8"))),
    PROXY_PUBLIC_JWKS: proxyJwks,
    MCP2_URL: backendUrl("--mcp2-url", mcp2),
    MCP3_URL: backendUrl("--mcp3-url", mcp3),
  };
  await writeAtomic(proxyPath, `${JSON.stringify(proxy, null, 2)}\n`, 0o600);
  // mcp1 checks inspection tokens against the agent keys, and its /mcp against the proxy's, and
  // signs battle deliveries with its own key (made here once, kept in the 0700 folder).
  const mcp1 = {
    AGENT_JWKS: agentJwks,
    PROXY_JWKS: proxyJwks,
    BATTLE_WEBHOOK_SIGNING_KEY: JSON.stringify(await ensureBattleWebhookKey({ dir })),
  };
  await writeAtomic(mcp1Path, `${JSON.stringify(mcp1, null, 2)}\n`, 0o600);
  return { proxy: proxyPath, mcp1: mcp1Path };
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const dirArg = (list: string[]) => {
    const at = list.indexOf("--dir");
    if (at < 0) return { dir: productionDir(undefined), others: list };
    const value = list[at + 1];
    if (!value) throw new Error("--dir needs a value");
    return { dir: productionDir(value), others: [...list.slice(0, at), ...list.slice(at + 2)] };
  };
  const { dir, others } = dirArg(rest);
  const shown = (path: string) => {
    const near = relative(process.cwd(), path);
    return near && !near.startsWith("..") ? near : path;
  };

  if (command === "keys") {
    const { values } = parseArgs({
      args: others,
      options: {
        rotate: { type: "boolean" },
        retire: { type: "boolean" },
        force: { type: "boolean" },
        "rotate-proxy": { type: "boolean" },
        "retire-proxy": { type: "boolean" },
      },
    });
    const report = await productionKeys(dir, {
      rotate: values.rotate,
      retire: values.retire,
      force: values.force,
      rotateProxy: values["rotate-proxy"],
      retireProxy: values["retire-proxy"],
    });
    for (const line of report) console.log(line);
    console.log(`in ${dir}; next: node deploy/production.ts secrets …, then push them`);
    return 0;
  }
  if (command === "secrets") {
    const { values } = parseArgs({
      args: others,
      options: {
        "mcp2-url": { type: "string" },
        "mcp3-url": { type: "string" },
        policy: { type: "string" },
        server: { type: "string", multiple: true },
      },
    });
    const written = await productionSecrets(dir, {
      mcp2Url: values["mcp2-url"],
      mcp3Url: values["mcp3-url"],
      policy: values.policy,
      servers: values.server,
    });
    console.log(`wrote ${shown(written.mcp1)} and ${shown(written.proxy)} (mode 0600)`);
    console.log("first deploy, mcp1 then the proxy:");
    console.log(
      `  npx wrangler deploy -c workers/mcp1/wrangler.toml -e production --secrets-file ${shown(written.mcp1)}`,
    );
    console.log(`  npx wrangler deploy -e production --secrets-file ${shown(written.proxy)}`);
    console.log("after that, to change secrets without a code deploy:");
    console.log(
      `  npx wrangler secret bulk ${shown(written.mcp1)} -c workers/mcp1/wrangler.toml -e production`,
    );
    console.log(`  npx wrangler secret bulk ${shown(written.proxy)} -e production`);
    return 0;
  }
  if (command === "token") {
    console.log(await mintToken({ ...parseMintArgs(others), keysDir: dir }));
    return 0;
  }
  console.error(`unknown command "${command}"\n${USAGE}`);
  return 2;
}

if (import.meta.main) runMain("production", main);

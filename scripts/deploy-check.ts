/**
 * `npm run deploy:check`: proves both Workers would deploy to production, without deploying.
 *
 * 1. `wrangler deploy --dry-run -e production` for mcp1 and the proxy: the production config
 *    parses, every binding resolves, and the bundles build exactly as `wrangler deploy` builds them.
 * 2. Both bundles, with the production bindings wrangler derives from the same configs, run
 *    together in workerd (Miniflare), with throwaway keys: the proxy answers /healthz, reaches mcp1
 *    over the production service name (/battles), and an agent lists and calls mcp1's tools, which
 *    writes to a BattleSession Durable Object (so mcp1 accepted the proxy's signed assertion). A bundle that does not load, a Durable Object class
 *    that is not exported, or a service binding that names the wrong Worker fails here.
 *
 *   npm run deploy:check                           # bundles in a temporary directory, removed after
 *   npm run deploy:check -- --outdir dist/deploy   # keep them
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs, stripVTControlCharacters } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { convertV4MiniflareOptions, Miniflare, type V4WorkerOptions } from "miniflare";
import {
  type Unstable_Config,
  unstable_getMiniflareWorkerOptions,
  unstable_readConfig,
} from "wrangler";

const ROOT = resolve(import.meta.dirname, "..");
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/** The wrangler environment the checks are about. */
export const PRODUCTION = "production";

export interface WorkerTarget {
  id: "proxy" | "mcp1";
  /** Absolute path of its wrangler config. */
  config: string;
}

/** mcp1 first: the proxy's production service binding points at it. */
export const TARGETS: readonly WorkerTarget[] = [
  { id: "mcp1", config: join(ROOT, "workers", "mcp1", "wrangler.toml") },
  { id: "proxy", config: join(ROOT, "wrangler.toml") },
];

export interface DryRun {
  target: WorkerTarget;
  /** The Worker's name in that environment (wrangler's `<name>-<env>`). */
  name: string;
  /** The config as wrangler resolves it for that environment. */
  config: Unstable_Config;
  outdir: string;
  /** The bundle `wrangler deploy` would upload. */
  bundle: string;
  /** wrangler's stdout and stderr. */
  output: string;
  /** wrangler's warnings, one string each. */
  warnings: string[];
  ms: number;
}

/** Runs `wrangler deploy --dry-run --outdir <outdir> -e <env>` for one Worker. */
export async function dryRunDeploy(
  target: WorkerTarget,
  outdir: string,
  env: string = PRODUCTION,
): Promise<DryRun> {
  const began = performance.now();
  const args = [WRANGLER, "deploy", "--dry-run", "--outdir", outdir, "-c", target.config];
  args.push("-e", env);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  const code = await new Promise<number | null>((done, fail) => {
    child.once("error", fail);
    child.once("close", done);
  });
  // wrangler colours its warnings even with NO_COLOR.
  output = stripVTControlCharacters(output);
  if (code !== 0) {
    throw new Error(`wrangler deploy --dry-run failed for ${target.id} (exit ${code}):\n${output}`);
  }
  const config = unstable_readConfig({ config: target.config, env }, { hideWarnings: true });
  if (!config.name) throw new Error(`${target.config} names no Worker for env ${env}`);
  return {
    target,
    name: config.name,
    config,
    warnings: warningsIn(output),
    outdir,
    bundle: join(outdir, "index.js"),
    output,
    ms: performance.now() - began,
  };
}

const WARNING = "▲ [WARNING]";

/** wrangler's warning blocks, each joined into one line: the marker line and its indented lines. */
export function warningsIn(output: string): string[] {
  const blocks: string[][] = [];
  let current: string[] | undefined;
  for (const line of output.split("\n")) {
    if (line.startsWith(WARNING)) {
      current = [line.slice(WARNING.length).trim()];
      blocks.push(current);
    } else if (current && (line === "" || /^\s/.test(line))) {
      if (line.trim()) current.push(line.trim());
    } else {
      current = undefined;
    }
  }
  return blocks.map((block) => block.join(" "));
}

const UNRESTATED_VARS = /Please add these vars to "env\.[^"]+\.vars": (.*)$/;

/**
 * Sorts wrangler's warnings. Vars set at the top level but missing from the environment are fine
 * only when the environment requires them as secrets instead (MCP2_URL and MCP3_URL in
 * production); any other such var is a binding someone forgot to restate.
 */
export function reviewWarnings(run: DryRun) {
  const required = new Set(run.config.secrets?.required ?? []);
  const secretsNotVars: string[] = [];
  const forgotten: string[] = [];
  const other: string[] = [];
  for (const warning of run.warnings) {
    const list = UNRESTATED_VARS.exec(warning)?.[1];
    if (list === undefined) {
      other.push(warning);
      continue;
    }
    for (const name of list.split(/\s*-\s+/).filter(Boolean)) {
      (required.has(name) ? secretsNotVars : forgotten).push(name);
    }
  }
  return { secretsNotVars, forgotten, other };
}

/** Dry-runs every Worker at once, each into `<root>/<id>`. */
export function dryRunAll(root: string, env: string = PRODUCTION): Promise<DryRun[]> {
  return Promise.all(TARGETS.map((target) => dryRunDeploy(target, join(root, target.id), env)));
}

/** Keys made for one check and thrown away: never the development keys in keys/. */
async function throwawaySecrets() {
  const agent = await generateKeyPair("RS256", { extractable: true });
  const agentJwk = { ...(await exportJWK(agent.publicKey)), kid: "deploy-check", alg: "RS256" };
  const proxy = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const proxyPublic = { ...(await exportJWK(proxy.publicKey)), kid: "deploy-check-proxy" };
  const proxyPrivate = { ...(await exportJWK(proxy.privateKey)), kid: "deploy-check-proxy" };
  const agentJwks = JSON.stringify({ keys: [agentJwk] });
  const proxyJwks = JSON.stringify({ keys: [{ ...proxyPublic, alg: "EdDSA", use: "sig" }] });
  return {
    signer: agent.privateKey,
    proxy: {
      AGENT_JWKS: agentJwks,
      POLICY: JSON.stringify({ "deploy-check": { mcp1: "*" } }),
      PROXY_SIGNING_KEY: JSON.stringify({ ...proxyPrivate, alg: "EdDSA", use: "sig" }),
      PROXY_PUBLIC_JWKS: proxyJwks,
      // Never contacted: the check's policy grants mcp1 only.
      MCP2_URL: "https://mcp2.deploy-check.invalid/mcp",
      MCP3_URL: "https://mcp3.deploy-check.invalid/mcp",
    },
    // mcp1 takes an agent's call only with the proxy's assertion, as production does.
    // Its webhook key is required too; with BATTLE_WEBHOOK_URL empty it signs nothing.
    mcp1: {
      AGENT_JWKS: agentJwks,
      PROXY_JWKS: proxyJwks,
      BATTLE_WEBHOOK_SIGNING_KEY: JSON.stringify({
        ...(await exportJWK((await generateKeyPair("EdDSA", { extractable: true })).privateKey)),
        kid: "deploy-check-webhook",
      }),
    },
  };
}

const MODULE_TYPES = [
  [/\.js$/, "ESModule"],
  [/\.(txt|html|sql)$/, "Text"],
  [/\.bin$/, "Data"],
  [/\.wasm$/, "CompiledWasm"],
] as const;

/** Every module of a dry run's output: the bundle and what it imports (the proxy: its SQL schema). */
async function modulesOf(outdir: string) {
  const modules: { type: (typeof MODULE_TYPES)[number][1]; path: string }[] = [];
  const files = (await readdir(outdir)).filter((file) => file !== "index.js").sort();
  // The entry module comes first.
  for (const file of ["index.js", ...files]) {
    const type = MODULE_TYPES.find(([pattern]) => pattern.test(file))?.[1];
    if (type) modules.push({ type, path: join(outdir, file) });
  }
  return modules;
}

/**
 * Miniflare options for `run` as wrangler would run it in `env`, with `secrets` as its secrets.
 * wrangler looks for `.dev.vars` beside the config it is given: pointed at the dry run's output
 * directory, it finds the throwaway secrets there and never the development ones.
 */
async function workerOptions(
  run: DryRun,
  env: string,
  secrets: Record<string, string>,
): Promise<V4WorkerOptions> {
  const { config } = run;
  const devVars = Object.entries(secrets).map(([k, v]) => `${k}='${v}'\n`);
  await writeFile(join(run.outdir, ".dev.vars"), devVars.join(""), { mode: 0o600 });
  const elsewhere = join(run.outdir, "wrangler.toml");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(
    { ...config, userConfigPath: elsewhere, configPath: elsewhere },
    env,
  );
  const vars = Object.fromEntries(Object.entries(config.vars).map(([k, v]) => [k, String(v)]));
  const { modulesRules: _rules, ...rest } = workerOptions as V4WorkerOptions & {
    modulesRules?: unknown;
  };
  return {
    ...rest,
    name: run.name,
    modules: await modulesOf(run.outdir),
    modulesRoot: run.outdir,
    rootPath: run.outdir,
    bindings: { ...vars, ...secrets },
  } as V4WorkerOptions;
}

export interface BootReport {
  checks: string[];
  ms: number;
}

/** Boots the proxy and mcp1 bundles together in workerd and drives them as an agent would. */
export async function bootProduction(
  runs: DryRun[],
  env: string = PRODUCTION,
): Promise<BootReport> {
  const began = performance.now();
  const proxy = runs.find((r) => r.target.id === "proxy");
  const mcp1 = runs.find((r) => r.target.id === "mcp1");
  if (!proxy || !mcp1) throw new Error("bootProduction needs the proxy and mcp1 dry runs");
  const secrets = await throwawaySecrets();

  // workerd only warns about a bound Durable Object class the bundle does not export; here it fails.
  const runtimeErrors: string[] = [];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      handleStructuredLogs: ({ level, message }) => {
        if (level === "error" || /no such Durable Object class is exported/.test(message)) {
          runtimeErrors.push(message);
        }
      },
      workers: [
        await workerOptions(proxy, env, secrets.proxy),
        await workerOptions(mcp1, env, secrets.mcp1),
      ],
    }),
  );
  const checks: string[] = [];
  const check = (ok: boolean, what: string, detail: unknown) => {
    if (!ok) {
      throw new Error(`${what}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    }
    checks.push(what);
  };
  try {
    await mf.ready;
    const base = "https://deploy-check.example";
    const health = await mf.dispatchFetch(`${base}/healthz`);
    const healthBody = await health.text();
    check(health.status === 200 && healthBody.includes('"proxy"'), "proxy /healthz", healthBody);

    const page = await mf.dispatchFetch(`${base}/battles`);
    const pageBody = await page.text();
    check(
      page.status === 200 && pageBody.includes("<html"),
      `proxy /battles reaches ${mcp1.name} over the service binding`,
      `${page.status} ${pageBody.slice(0, 200)}`,
    );

    // The admin page's script is a text module of the bundle, built by the config's [build].
    const script = await mf.dispatchFetch(`${base}/admin/assets/main.js`);
    const scriptBody = await script.text();
    check(
      script.status === 200 && scriptBody.includes("/admin/policy"),
      "proxy serves the admin page's bundled script",
      `${script.status} ${scriptBody.slice(0, 200)}`,
    );

    const jwks = await mf.dispatchFetch(`${base}/.well-known/jwks.json`);
    const jwksBody = await jwks.text();
    check(
      jwks.status === 200 && jwksBody.includes("deploy-check-proxy") && !jwksBody.includes('"d"'),
      "proxy publishes its public assertion key",
      jwksBody,
    );

    const issuer = String(proxy.config.vars.JWT_ISSUER);
    const audience = String(proxy.config.vars.JWT_AUDIENCE);
    const token = await new SignJWT({ scope: "list_tools call_tools" })
      .setProtectedHeader({ alg: "RS256", kid: "deploy-check" })
      .setSubject("deploy-check")
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(secrets.signer);
    const client = new Client({ name: "mcpcp-deploy-check", version: "0.1.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
        fetch: (url, init) =>
          mf.dispatchFetch(String(url), init as never) as unknown as Promise<Response>,
      }),
    );
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      check(
        ["mcp1_echo", "mcp1_update_battle_process", "mcp1_report_on_battle_end"].every((n) =>
          names.includes(n),
        ),
        "an agent lists mcp1's tools through the proxy",
        names,
      );
      const result = await client.callTool({
        name: "mcp1_update_battle_process",
        arguments: { battle_id: "deploy-check", message: "bundle loads", reported_by: "ci" },
      });
      check(
        !result.isError,
        "an agent records a battle event (BattleSession Durable Object)",
        result.content,
      );
    } finally {
      await client.close();
    }

    // The battle page's data, read through the proxy with an inspection token (BattleIndex).
    const inspector = await new SignJWT({ scope: "inspect_battles" })
      .setProtectedHeader({ alg: "RS256", kid: "deploy-check" })
      .setSubject("inspector")
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(secrets.signer);
    const battle = await mf.dispatchFetch(`${base}/api/battles/deploy-check`, {
      headers: { authorization: `Bearer ${inspector}` },
    });
    const battleBody = await battle.text();
    check(
      battle.status === 200 && battleBody.includes("bundle loads"),
      "an inspection token reads the battle through the proxy",
      `${battle.status} ${battleBody.slice(0, 200)}`,
    );
    check(runtimeErrors.length === 0, "workerd reported no errors", runtimeErrors.join("\n"));
  } finally {
    await mf.dispose();
  }
  return { checks, ms: performance.now() - began };
}

async function main(): Promise<number> {
  // wrangler's info lines ("Using secrets defined in …") would bury the checks; warnings stay.
  process.env.WRANGLER_LOG ??= "warn";
  const { values } = parseArgs({ options: { outdir: { type: "string" } } });
  const root = values.outdir
    ? resolve(values.outdir)
    : await mkdtemp(join(tmpdir(), "mcpcp-deploy-check-"));
  await mkdir(root, { recursive: true });
  const began = performance.now();
  try {
    const runs = await dryRunAll(root);
    for (const run of runs) {
      const kib = Math.round((await stat(run.bundle)).size / 1024);
      console.log(
        `✔ ${run.target.id}: wrangler deploy --dry-run -e ${PRODUCTION} → ${run.name}, ` +
          `bundle ${kib} KiB (${Math.round(run.ms)} ms)`,
      );
      const { secretsNotVars, forgotten, other } = reviewWarnings(run);
      if (forgotten.length > 0) {
        throw new Error(
          `${relative(ROOT, run.target.config)}: [env.${PRODUCTION}.vars] lacks ` +
            `${forgotten.join(", ")} (vars are not inherited: restate them, or require them as secrets)`,
        );
      }
      if (secretsNotVars.length > 0) {
        console.log(
          `  ⚠ wrangler: top-level vars ${secretsNotVars.join(", ")} are not in ` +
            `[env.${PRODUCTION}.vars]: expected, ${PRODUCTION} requires them as secrets`,
        );
      }
      for (const warning of other) console.log(`  ⚠ wrangler: ${warning}`);
    }
    const boot = await bootProduction(runs);
    for (const line of boot.checks) console.log(`✔ ${line}`);
    console.log(
      `deploy check passed in ${((performance.now() - began) / 1000).toFixed(1)} s ` +
        `(workerd ${Math.round(boot.ms)} ms)`,
    );
    return 0;
  } catch (error) {
    console.error(`deploy check failed: ${error instanceof Error ? error.message : error}`);
    return 1;
  } finally {
    if (!values.outdir) await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  main().then((code) => {
    process.exitCode = code;
  });
}

/**
 * What ships to production: the `[env.production]` wrangler configs as wrangler resolves them,
 * the bundles `wrangler deploy --dry-run -e production` builds, the host's systemd units and tunnel
 * configuration, and the bundled Node backends. Nothing of local development may reach production
 * (no key from keys/, no `.dev.vars` value, no loopback URL), and what does ship must start.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Unstable_Config, unstable_readConfig } from "wrangler";
import { parse as parseYaml } from "yaml";
import { productionKeys, productionSecrets } from "../../deploy/production.ts";
import { type BackendName, bundleBackends } from "../../scripts/bundle-backends.ts";
import { type DryRun, dryRunAll, PRODUCTION, TARGETS } from "../../scripts/deploy-check.ts";

const ROOT = resolve(import.meta.dirname, "..", "..");
const run = promisify(execFile);

type Config = Unstable_Config;
const readConfig = (path: string, env?: string): Config =>
  unstable_readConfig({ config: path, env }, { hideWarnings: true });

const proxyPath = TARGETS.find((t) => t.id === "proxy")?.config ?? "";
const mcp1Path = TARGETS.find((t) => t.id === "mcp1")?.config ?? "";

/** Loopback URLs: what a Worker on Cloudflare's network can never reach. */
const LOOPBACK_URL = /\bhttps?:\/\/(localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0)\b/i;
/** A PEM private key with its body, not a library's "-----BEGIN PRIVATE KEY-----" constant. */
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----(\\n|\r?\n)?[A-Za-z0-9+/=]{40}/;
/** A private JWK member, in JSON or in JSON quoted inside a source map. */
const PRIVATE_JWK_MEMBER = /\\?"(d|p|q|dp|dq|qi|k)\\?"\s*:\s*\\?"[A-Za-z0-9_-]{20,}/;

/**
 * Every development secret that could leak: the values in both `.dev.vars`, each key member
 * (public or private) of every JWK in keys/, and the body lines of keys/*.pem. Empty on a fresh
 * clone before `npm run keys`; the pattern checks above still apply then.
 */
async function developmentValues(): Promise<string[]> {
  const values = new Set<string>();
  const keyMembers = (jwk: Record<string, unknown>) => {
    for (const member of ["n", "x", "d", "p", "q", "k"]) {
      const value = jwk[member];
      if (typeof value === "string" && value.length >= 20) values.add(value);
    }
  };
  const jsonValue = (text: string) => {
    try {
      const parsed = JSON.parse(text) as { keys?: Record<string, unknown>[] } & Record<
        string,
        unknown
      >;
      for (const jwk of parsed.keys ?? [parsed]) keyMembers(jwk);
    } catch {
      // Not JSON: the value itself is what must not leak.
    }
  };
  for (const file of [join(ROOT, ".dev.vars"), join(ROOT, "workers", "mcp1", ".dev.vars")]) {
    if (!existsSync(file)) continue;
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      const match = /^\s*[A-Z_][A-Z0-9_]*\s*=\s*'?(.*?)'?\s*$/.exec(line);
      const value = match?.[1];
      if (!value || line.trimStart().startsWith("#")) continue;
      values.add(value);
      jsonValue(value);
    }
  }
  const keysDir = join(ROOT, "keys");
  for (const file of await readdir(keysDir)) {
    const text = await readFile(join(keysDir, file), "utf8");
    if (file.endsWith(".json")) jsonValue(text);
    if (file.endsWith(".pem")) {
      for (const line of text.split("\n")) if (/^[A-Za-z0-9+/=]{40,}$/.test(line)) values.add(line);
    }
  }
  return [...values];
}

/** The first development value found in `text`, or undefined. */
function leakIn(text: string, secrets: readonly string[]): string | undefined {
  return secrets.find((value) => text.includes(value));
}

describe("production wrangler configs", () => {
  const proxy = readConfig(proxyPath, PRODUCTION);
  const mcp1 = readConfig(mcp1Path, PRODUCTION);
  const proxyDev = readConfig(proxyPath);
  const mcp1Dev = readConfig(mcp1Path);

  it("deploy under production names, apart from the development Workers", () => {
    expect(proxy.name).toBe("mcpcp-proxy-production");
    expect(mcp1.name).toBe("mcpcp-mcp1-production");
    expect(proxy.name).not.toBe(proxyDev.name);
    expect(mcp1.name).not.toBe(mcp1Dev.name);
  });

  it("bind the proxy's MCP1 to mcp1's production Worker", () => {
    expect(proxy.services).toEqual([{ binding: "MCP1", service: mcp1.name }]);
  });

  it("keep mcp1 reachable only through that binding", () => {
    expect(mcp1.workers_dev).toBe(false);
    expect(mcp1.preview_urls).toBe(false);
    expect(mcp1.routes ?? []).toEqual([]);
    expect(mcp1.route).toBeUndefined();
  });

  it("require every secret, the backends' tunnel URLs included", () => {
    // OIDC_CLIENT_SECRET is listed for development only because wrangler dev passes no unlisted
    // secret; production needs it only with OAuth on (docs/clients.md), and without it a
    // production gateway with OIDC_ISSUER set refuses every request naming it.
    const devRequired = (proxyDev.secrets?.required ?? []).filter(
      (s) => s !== "OIDC_CLIENT_SECRET",
    );
    expect(new Set(proxy.secrets?.required)).toEqual(
      new Set([...devRequired, "MCP2_URL", "MCP3_URL"]),
    );
    expect(mcp1.secrets?.required).toEqual(mcp1Dev.secrets?.required);
    expect(proxy.vars).not.toHaveProperty("MCP2_URL");
    expect(proxy.vars).not.toHaveProperty("MCP3_URL");
  });

  // Wrangler inherits none of these into an environment: one added at the top level and not in
  // production would be missing from the deployed Worker.
  it.each([
    ["proxy", proxyDev, proxy],
    ["mcp1", mcp1Dev, mcp1],
  ] as const)("restate every %s binding of the top level", (_name, dev, prod) => {
    const names = (config: Config) => ({
      vars: Object.keys(config.vars).filter((k) => !config.secrets?.required?.includes(k)),
      durableObjects: config.durable_objects.bindings.map((b) => `${b.name}=${b.class_name}`),
      services: (config.services ?? []).map((b) => b.binding),
      d1: config.d1_databases.map((b) => `${b.binding}:${b.migrations_dir}`),
      ratelimits: config.ratelimits.map((b) => `${b.name}:${JSON.stringify(b.simple)}`),
      assets: config.assets?.binding,
    });
    const { vars: devVars, ...devRest } = names(dev);
    const { vars: prodVars, ...prodRest } = names(prod);
    expect(prodRest).toEqual(devRest);
    // Production may require a dev var as a secret instead (MCP2_URL, MCP3_URL).
    const secrets = prod.secrets?.required ?? [];
    expect(devVars.filter((k) => !prodVars.includes(k) && !secrets.includes(k))).toEqual([]);
    // Migrations are shared, so both environments build the same Durable Object classes.
    expect(prod.migrations).toEqual(dev.migrations);
  });

  it("hold no loopback URL, development key or .dev.vars value", async () => {
    const secrets = await developmentValues();
    for (const config of [proxy, mcp1]) {
      const text = JSON.stringify({
        vars: config.vars,
        services: config.services,
        routes: config.routes,
        d1: config.d1_databases,
        durable_objects: config.durable_objects,
        assets: config.assets,
        define: config.define,
      });
      expect(text).not.toMatch(LOOPBACK_URL);
      expect(text).not.toMatch(PEM_PRIVATE_KEY);
      expect(text).not.toMatch(PRIVATE_JWK_MEMBER);
      expect(leakIn(text, secrets)).toBeUndefined();
    }
  });
});

describe("production secrets files (node deploy/production.ts secrets)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mcpcp-production-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("hold exactly the secrets each Worker requires; mcp1 gets the proxy's public keys", async () => {
    await productionKeys(dir);
    const policy = join(dir, "policy.json");
    await writeFile(policy, JSON.stringify({ research: { mcp1: "*" } }));
    const written = await productionSecrets(dir, {
      mcp2Url: "https://mcp2.example.com/mcp",
      mcp3Url: "https://mcp3.example.com/mcp",
      policy,
    });
    const proxy = JSON.parse(await readFile(written.proxy, "utf8")) as Record<string, string>;
    const mcp1 = JSON.parse(await readFile(written.mcp1, "utf8")) as Record<string, string>;
    const required = (path: string) => readConfig(path, PRODUCTION).secrets?.required ?? [];
    expect(Object.keys(proxy).sort()).toEqual([...required(proxyPath)].sort());
    expect(Object.keys(mcp1).sort()).toEqual([...required(mcp1Path)].sort());
    expect(mcp1.AGENT_JWKS).toBe(proxy.AGENT_JWKS);
    expect(mcp1.PROXY_JWKS).toBe(proxy.PROXY_PUBLIC_JWKS);
    expect(mcp1.PROXY_JWKS).not.toMatch(PRIVATE_JWK_MEMBER);
    // It runs deploy/production.ts as a child process, twice: seconds on a busy machine.
  }, 30_000);
});

describe("production bundles (wrangler deploy --dry-run -e production)", () => {
  let root: string;
  let runs: DryRun[];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "mcpcp-deploy-config-"));
    runs = await dryRunAll(root);
  }, 120_000);
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("build both Workers under their production names", () => {
    expect(runs.map((r) => r.name).sort()).toEqual([
      "mcpcp-mcp1-production",
      "mcpcp-proxy-production",
    ]);
    for (const r of runs) expect(existsSync(r.bundle)).toBe(true);
  });

  it("contain no development key, .dev.vars value or development backend URL", async () => {
    const secrets = await developmentValues();
    // The development vars that are loopback URLs (MCP2_URL, MCP3_URL) must not be baked in.
    const devUrls = Object.values(readConfig(proxyPath).vars)
      .map(String)
      .filter((v) => LOOPBACK_URL.test(v));
    expect(devUrls.length).toBeGreaterThan(0);
    for (const r of runs) {
      // Everything wrangler would upload: the bundle, its source map, the modules beside it.
      for (const file of await readdir(r.outdir)) {
        const text = await readFile(join(r.outdir, file), "utf8");
        const where = `${r.target.id}/${file}`;
        expect(text, where).not.toMatch(PEM_PRIVATE_KEY);
        expect(text, where).not.toMatch(PRIVATE_JWK_MEMBER);
        expect(leakIn(text, secrets), where).toBeUndefined();
        expect(leakIn(text, devUrls), where).toBeUndefined();
      }
    }
  });
});

describe("systemd units", () => {
  const units = ["mcpcp-mcp2.service", "mcpcp-mcp3.service"];
  const available = existsSync("/usr/bin/systemd-analyze") || existsSync("/bin/systemd-analyze");
  if (!available) {
    console.warn(
      "systemd-analyze is not installed: skipping `systemd-analyze verify` of deploy/systemd",
    );
  }

  it.skipIf(!available)("pass systemd-analyze verify", async () => {
    // verify checks that ExecStart's program exists; the host has /opt/mcpcp/bin/node, this
    // machine has the Node running the tests. Everything else is verified as written.
    const dir = await mkdtemp(join(tmpdir(), "mcpcp-units-"));
    try {
      for (const unit of units) {
        const text = await readFile(join(ROOT, "deploy", "systemd", unit), "utf8");
        expect(text).toContain("ExecStart=/opt/mcpcp/bin/node ");
        await writeFile(join(dir, unit), text.replaceAll("/opt/mcpcp/bin/node", process.execPath));
      }
      const { stdout, stderr } = await run(
        "systemd-analyze",
        ["verify", "--man=no", ...units.map((u) => join(dir, u))],
        { env: { ...process.env, SYSTEMD_LOG_COLOR: "0" } },
      );
      // Unknown keys and bad values are only warnings: any output at all fails.
      expect(`${stdout}${stderr}`.trim()).toBe("");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("run mcp2 unprivileged in the docker group, mcp3 with only setpriv's capabilities", async () => {
    const mcp2 = await readFile(join(ROOT, "deploy", "systemd", units[0] ?? ""), "utf8");
    const mcp3 = await readFile(join(ROOT, "deploy", "systemd", units[1] ?? ""), "utf8");
    expect(mcp2).toMatch(/^User=mcpcp-mcp2$/m);
    expect(mcp2).toMatch(/^SupplementaryGroups=docker$/m);
    expect(mcp2).toMatch(/^CapabilityBoundingSet=$/m);
    expect(mcp3).not.toMatch(/^User=/m);
    expect(mcp3).toMatch(/^CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_SETPCAP$/m);
    // Each of these mounts over /proc, which makes bwrap's own /proc mount fail.
    for (const off of ["ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc", "ProcSubset"]) {
      expect(mcp3).not.toMatch(new RegExp(`^${off}=`, "m"));
    }
    for (const unit of [mcp2, mcp3]) {
      expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
      expect(unit).toMatch(/^Restart=on-failure$/m);
      expect(unit).toMatch(/^Environment=HOST=127\.0\.0\.1 /m);
    }
  });
});

describe("cloudflared configuration", () => {
  it("sends each hostname to its backend on loopback, as localhost, and nothing else anywhere", async () => {
    const config = parseYaml(
      await readFile(join(ROOT, "deploy", "cloudflared", "config.yml"), "utf8"),
    ) as {
      ingress: { hostname?: string; service: string; originRequest?: Record<string, unknown> }[];
    };
    const [mcp2, mcp3, fallback, ...rest] = config.ingress;
    expect(rest).toEqual([]);
    expect(mcp2).toMatchObject({ service: "http://localhost:9005" });
    expect(mcp3).toMatchObject({ service: "http://localhost:9006" });
    for (const rule of [mcp2, mcp3]) {
      expect(rule?.hostname).toMatch(/\.example\.com$/);
      expect(rule?.originRequest?.httpHostHeader).toBe("localhost");
    }
    expect(fallback).toEqual({ service: "http_status:404" });
  });
});

describe("deploy/install-host.sh", () => {
  it("is valid bash and explains itself", async () => {
    const script = join(ROOT, "deploy", "install-host.sh");
    await run("bash", ["-n", script]);
    const { stdout } = await run("bash", [script, "--help"]);
    expect(stdout).toContain("--proxy-jwks");
  });
});

/** GET or POST with any Host header (fetch cannot set one). */
function http(
  url: string,
  options: { method?: string; host?: string; body?: string } = {},
): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  return new Promise((done, fail) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: options.method ?? "GET",
        headers: {
          host: options.host ?? target.host,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
      },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => {
          body += chunk;
        });
        res.on("end", () => done({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", fail);
    req.end(options.body);
  });
}

describe("bundled Node backends (npm run bundle:backends)", () => {
  let outdir: string;
  let files: Record<BackendName, string>;
  let proxyJwks: string;
  const children: ReturnType<typeof spawn>[] = [];

  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), "mcpcp-backend-bundles-"));
    files = await bundleBackends(outdir);
    // The host verifies a proxy it has never met: a fresh key, nothing from keys/.
    const { publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    proxyJwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "bundle-test" }] });
  }, 60_000);
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    if (outdir) await rm(outdir, { recursive: true, force: true });
  });

  it.each(["mcp2", "mcp3"] as const)(
    "%s starts from its one file, answers /healthz, trusts only a loopback Host and an assertion",
    async (name) => {
      const port = name === "mcp2" ? "MCP2_PORT" : "MCP3_PORT";
      // A clean environment and a directory with nothing of the repository: what the host has.
      const child = spawn(process.execPath, [files[name]], {
        cwd: outdir,
        env: { PATH: process.env.PATH, HOST: "127.0.0.1", [port]: "0", PROXY_JWKS: proxyJwks },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      let output = "";
      const base = await new Promise<string>((done, fail) => {
        const timer = setTimeout(
          () => fail(new Error(`${name} did not start:\n${output}`)),
          15_000,
        );
        const read = (chunk: Buffer) => {
          output += chunk;
          const url = /MCP at (http:\/\/\S+)\/mcp/.exec(output)?.[1];
          if (url) {
            clearTimeout(timer);
            done(url);
          }
        };
        child.stdout?.on("data", read);
        child.stderr?.on("data", read);
        child.once("exit", (code) => fail(new Error(`${name} exited ${code}:\n${output}`)));
      });

      const health = await http(`${base}/healthz`);
      expect(health.status).toBe(200);
      // "degraded" where this machine has no Docker engine or sandbox: the bundle still serves.
      expect(JSON.parse(health.body)).toMatchObject({ server: name });

      const initialize = JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "t", version: "1" },
        },
      });
      // What cloudflared sends without httpHostHeader: the public hostname. Refused.
      const foreign = await http(`${base}/mcp`, {
        method: "POST",
        host: `${name}.example.com`,
        body: initialize,
      });
      expect(foreign.status).toBe(403);
      // With httpHostHeader: localhost the Host passes, and the missing assertion is what fails.
      const local = await http(`${base}/mcp`, {
        method: "POST",
        host: "localhost",
        body: initialize,
      });
      expect(local.status).toBe(401);

      const exited = new Promise<number | null>((done) => child.once("exit", done));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    },
    30_000,
  );
});

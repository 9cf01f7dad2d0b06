/**
 * keys/: the generated key files, .dev.vars, and tokens as the proxy will check them (jose against
 * the public JWKS). Everything runs in a temporary directory, never on the real keys.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureKeys, writeDevVars } from "../../keys/generate.ts";
import type { Jwks } from "../../keys/key-files.ts";
import { mintToken, parseMintArgs } from "../../keys/mint.ts";
import { ensureProxyKey, proxyKeyPaths } from "../../keys/proxy-key.ts";

const EXPECTED = { issuer: "https://mcpcp", audience: "mcpcp-server", algorithms: ["RS256"] };
const SEED_POLICY = {
  agent_name1: { mcp1: "*", mcp3: "*" },
  agent_name2: { mcp2: "*", mcp3: "*" },
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "mcpcp-keys-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readJwks(): Promise<Jwks> {
  return JSON.parse(await readFile(join(dir, "jwks.json"), "utf8"));
}

async function verify(token: string, jwks: Jwks, options: JWTVerifyOptions = EXPECTED) {
  return jwtVerify(token, createLocalJWKSet(jwks), options);
}

describe("ensureKeys", () => {
  it("writes a PKCS#8 private key (0600), an SPKI public key and a public JWKS", async () => {
    const result = await ensureKeys({ dir });
    expect(result.action).toBe("created");

    const privatePem = await readFile(join(dir, "private.pem"), "utf8");
    expect(privatePem).toMatch(
      /^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n?$/,
    );
    expect((await stat(join(dir, "private.pem"))).mode & 0o777).toBe(0o600);
    const publicPem = await readFile(join(dir, "public.pem"), "utf8");
    expect(publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n?$/);

    const jwks = await readJwks();
    expect(jwks).toEqual(result.jwks);
    expect(jwks.keys).toHaveLength(1);
    const [key] = jwks.keys;
    // Exactly the public members: no d, p, q, dp, dq, qi may ever reach the JWKS.
    expect(Object.keys(key ?? {}).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
    expect(key).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig", kid: result.kid });
    expect(result.kid).toBe(await calculateJwkThumbprint({ kty: "RSA", n: key?.n, e: key?.e }));
  });

  it("keeps an existing key pair unless forced", async () => {
    const first = await ensureKeys({ dir });
    const privatePem = await readFile(join(dir, "private.pem"), "utf8");
    const again = await ensureKeys({ dir });
    expect(again.action).toBe("kept");
    expect(again.kid).toBe(first.kid);
    expect(await readFile(join(dir, "private.pem"), "utf8")).toBe(privatePem);
  });

  it("rebuilds lost public files from the private key", async () => {
    const first = await ensureKeys({ dir });
    const publicPem = await readFile(join(dir, "public.pem"), "utf8");
    await unlink(join(dir, "jwks.json"));
    await unlink(join(dir, "public.pem"));
    const healed = await ensureKeys({ dir });
    expect(healed.kid).toBe(first.kid);
    expect(await readJwks()).toEqual(first.jwks);
    expect(await readFile(join(dir, "public.pem"), "utf8")).toBe(publicPem);
  });

  it("--force replaces the key and drops the old one from the JWKS", async () => {
    const first = await ensureKeys({ dir });
    const oldToken = await mintToken({ agent: "agent_name1", keysDir: dir });
    const forced = await ensureKeys({ dir, force: true });
    expect(forced.action).toBe("replaced");
    expect(forced.kid).not.toBe(first.kid);
    expect((await readJwks()).keys.map((key) => key.kid)).toEqual([forced.kid]);
    await expect(verify(oldToken, await readJwks())).rejects.toMatchObject({
      code: "ERR_JWKS_NO_MATCHING_KEY",
    });
  });

  it("--rotate replaces the key but keeps the old public key, so old tokens still verify", async () => {
    const first = await ensureKeys({ dir });
    const oldToken = await mintToken({ agent: "agent_name1", keysDir: dir });
    const rotated = await ensureKeys({ dir, rotate: true });
    expect(rotated.action).toBe("rotated");
    const jwks = await readJwks();
    expect(jwks.keys.map((key) => key.kid)).toEqual([rotated.kid, first.kid]);

    const newToken = await mintToken({ agent: "agent_name1", keysDir: dir });
    expect(decodeProtectedHeader(newToken).kid).toBe(rotated.kid);
    expect((await verify(oldToken, jwks)).protectedHeader.kid).toBe(first.kid);
    expect((await verify(newToken, jwks)).protectedHeader.kid).toBe(rotated.kid);
  });

  it("refuses a corrupt jwks.json instead of silently replacing it", async () => {
    await ensureKeys({ dir });
    await writeFile(join(dir, "jwks.json"), '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}');
    await expect(ensureKeys({ dir })).rejects.toThrow(/jwks\.json is not an RS256 public JWKS/);
  });
});

describe("mintToken", () => {
  beforeEach(async () => {
    await ensureKeys({ dir });
  });

  it("signs RS256 with the JWKS kid and the default claims", async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await mintToken({ agent: "agent_name1", keysDir: dir });
    const jwks = await readJwks();

    const header = decodeProtectedHeader(token);
    expect(header).toEqual({ alg: "RS256", kid: jwks.keys[0]?.kid, typ: "JWT" });

    const { payload } = await verify(token, jwks);
    expect(payload).toMatchObject({
      sub: "agent_name1",
      iss: "https://mcpcp",
      aud: "mcpcp-server",
      scope: "list_tools call_tools",
    });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.nbf).toBe(payload.iat);
    expect(payload.exp).toBe((payload.iat ?? 0) + 3600);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gives every token its own jti", async () => {
    const first = await verify(await mintToken({ agent: "a", keysDir: dir }), await readJwks());
    const second = await verify(await mintToken({ agent: "a", keysDir: dir }), await readJwks());
    expect(first.payload.jti).not.toBe(second.payload.jti);
  });

  it("respects scope, ttl, audience, issuer and issue time", async () => {
    const now = Math.floor(Date.now() / 1000) - 100;
    const token = await mintToken({
      agent: "agent_name2",
      scope: ["list_tools"],
      ttlSeconds: 600,
      audience: ["other", "mcpcp-server"],
      issuer: "https://issuer.example",
      keysDir: dir,
      now,
    });
    const { payload } = await verify(token, await readJwks(), {
      ...EXPECTED,
      issuer: "https://issuer.example",
    });
    expect(payload).toMatchObject({
      sub: "agent_name2",
      scope: "list_tools",
      aud: ["other", "mcpcp-server"],
      iat: now,
      nbf: now,
      exp: now + 600,
    });
  });

  it("mints tokens the proxy must refuse when asked to (expired, wrong audience)", async () => {
    const jwks = await readJwks();
    const expired = await mintToken({ agent: "a", ttlSeconds: 60, now: 1_000_000, keysDir: dir });
    await expect(verify(expired, jwks)).rejects.toMatchObject({ code: "ERR_JWT_EXPIRED" });
    const foreign = await mintToken({ agent: "a", audience: "someone-else", keysDir: dir });
    await expect(verify(foreign, jwks)).rejects.toMatchObject({
      code: "ERR_JWT_CLAIM_VALIDATION_FAILED",
    });
  });

  it("rejects an empty agent and a non-positive ttl", async () => {
    await expect(mintToken({ agent: "", keysDir: dir })).rejects.toThrow(/agent/);
    await expect(mintToken({ agent: "a", ttlSeconds: 0, keysDir: dir })).rejects.toThrow(/ttl/);
  });

  it("says to run npm run keys when there is no private key", async () => {
    const empty = join(dir, "empty");
    await expect(mintToken({ agent: "a", keysDir: empty })).rejects.toThrow(/npm run keys/);
  });
});

describe("writeDevVars", () => {
  it("writes AGENT_JWKS, the minified POLICY and the proxy's keys as single-quoted JSON", async () => {
    const { jwks } = await ensureKeys({ dir });
    const policyPath = join(dir, "policy.json");
    await writeFile(policyPath, JSON.stringify(SEED_POLICY, null, 2));
    const devVarsPath = join(dir, ".dev.vars");

    await writeDevVars({ keysDir: dir, policyPath, devVarsPath });

    const vars = Object.fromEntries(
      [...(await readFile(devVarsPath, "utf8")).matchAll(/^([A-Z_]+)='(.*)'$/gm)].map((m) => [
        m[1],
        m[2],
      ]),
    );
    expect(Object.keys(vars)).toEqual([
      "AGENT_JWKS",
      "POLICY",
      "PROXY_SIGNING_KEY",
      "PROXY_PUBLIC_JWKS",
      "OIDC_CLIENT_SECRET",
    ]);
    // Empty unless the environment configures OAuth sign-in: wrangler dev passes it either way.
    expect(vars.OIDC_CLIENT_SECRET).toBe(process.env.OIDC_CLIENT_SECRET ?? "");
    expect(JSON.parse(vars.AGENT_JWKS ?? "")).toEqual(jwks);
    expect(vars.POLICY).toBe(JSON.stringify(SEED_POLICY));
    const signing = JSON.parse(vars.PROXY_SIGNING_KEY ?? "");
    expect(signing).toMatchObject({ kty: "OKP", crv: "Ed25519", kid: expect.any(String) });
    expect(signing.d).toEqual(expect.any(String));
    const published = JSON.parse(vars.PROXY_PUBLIC_JWKS ?? "");
    expect(published.keys.map((k: { kid: string }) => k.kid)).toEqual([signing.kid]);
    expect(published.keys[0]).not.toHaveProperty("d");
  });

  it("gives mcp1 the agent keys and the proxy's public assertion keys, the proxy's own values", async () => {
    const { jwks } = await ensureKeys({ dir });
    const policyPath = join(dir, "policy.json");
    await writeFile(policyPath, JSON.stringify(SEED_POLICY));
    const devVarsPath = join(dir, ".dev.vars");
    const mcp1DevVarsPath = join(dir, "mcp1.dev.vars");

    await writeDevVars({ keysDir: dir, policyPath, devVarsPath, mcp1DevVarsPath });

    const read = async (path: string) =>
      Object.fromEntries(
        [...(await readFile(path, "utf8")).matchAll(/^([A-Z_]+)='(.*)'$/gm)].map((m) => [
          m[1],
          m[2],
        ]),
      );
    const proxy = await read(devVarsPath);
    const mcp1 = await read(mcp1DevVarsPath);
    expect(Object.keys(mcp1)).toEqual(["AGENT_JWKS", "PROXY_JWKS", "BATTLE_WEBHOOK_SIGNING_KEY"]);
    expect(JSON.parse(mcp1.AGENT_JWKS ?? "")).toEqual(jwks);
    expect(mcp1.PROXY_JWKS).toBe(proxy.PROXY_PUBLIC_JWKS);
    expect(mcp1.PROXY_JWKS).not.toContain('"d"');
    // mcp1's own webhook key: Ed25519, private (it signs), and the same on the next run.
    const webhookKey = JSON.parse(mcp1.BATTLE_WEBHOOK_SIGNING_KEY ?? "");
    expect(webhookKey).toMatchObject({ kty: "OKP", crv: "Ed25519", d: expect.any(String) });
    expect(webhookKey.kid).not.toBe(JSON.parse(proxy.PROXY_SIGNING_KEY ?? "").kid);
    await writeDevVars({ keysDir: dir, policyPath, devVarsPath, mcp1DevVarsPath });
    expect((await read(mcp1DevVarsPath)).BATTLE_WEBHOOK_SIGNING_KEY).toBe(
      mcp1.BATTLE_WEBHOOK_SIGNING_KEY,
    );
  });

  it("writes .dev.vars and mcp1's readable by their owner only: they hold the signing key", async () => {
    await ensureKeys({ dir });
    const policyPath = join(dir, "policy.json");
    await writeFile(policyPath, JSON.stringify(SEED_POLICY));
    const devVarsPath = join(dir, ".dev.vars");
    const mcp1DevVarsPath = join(dir, "mcp1.dev.vars");

    await writeDevVars({ keysDir: dir, policyPath, devVarsPath, mcp1DevVarsPath });

    expect((await stat(devVarsPath)).mode & 0o777).toBe(0o600);
    expect((await stat(mcp1DevVarsPath)).mode & 0o777).toBe(0o600);
  });

  it("fails on a policy that is not a JSON object, naming the file", async () => {
    await ensureKeys({ dir });
    const policyPath = join(dir, "policy.json");
    const devVarsPath = join(dir, ".dev.vars");
    await writeFile(policyPath, "{ agent_name1: ");
    await expect(writeDevVars({ keysDir: dir, policyPath, devVarsPath })).rejects.toThrow(
      /policy\.json is not valid JSON/,
    );
    await writeFile(policyPath, '["agent_name1"]');
    await expect(writeDevVars({ keysDir: dir, policyPath, devVarsPath })).rejects.toThrow(
      /must be a JSON object/,
    );
    await writeFile(policyPath, `{"it's": {}}`);
    await expect(writeDevVars({ keysDir: dir, policyPath, devVarsPath })).rejects.toThrow(/'/);
  });

  it("says to run npm run keys when there is no JWKS", async () => {
    await expect(
      writeDevVars({ keysDir: dir, devVarsPath: join(dir, ".dev.vars") }),
    ).rejects.toThrow(/npm run keys/);
  });
});

describe("policy.json", () => {
  it("holds the seed's default policy", async () => {
    const path = fileURLToPath(new URL("../../policy.json", import.meta.url));
    expect(JSON.parse(await readFile(path, "utf8"))).toEqual(SEED_POLICY);
  });
});

describe("command line", () => {
  it("parses mint options, repeating --aud for several audiences", () => {
    expect(parseMintArgs(["--agent", "agent_name1"])).toEqual({ agent: "agent_name1" });
    expect(
      parseMintArgs([
        "--agent",
        "a",
        "--scope",
        "list_tools",
        "--ttl",
        "60",
        "--aud",
        "x",
        "--iss",
        "i",
      ]),
    ).toEqual({ agent: "a", scope: "list_tools", ttlSeconds: 60, audience: "x", issuer: "i" });
    expect(parseMintArgs(["--agent", "a", "--aud", "x", "--aud", "y"]).audience).toEqual([
      "x",
      "y",
    ]);
  });

  it("rejects bad mint options with a message", () => {
    expect(() => parseMintArgs([])).toThrow(/--agent is required/);
    expect(() => parseMintArgs(["--agent", "a", "--ttl", "1h"])).toThrow(/--ttl/);
    expect(() => parseMintArgs(["--agent", "a", "--ttl", "0"])).toThrow(/--ttl/);
    expect(() => parseMintArgs(["--agent", "a", "--color"])).toThrow(/--color/);
  });

  it("mints a token bound to battles with a role, and refuses malformed ones", async () => {
    expect(
      parseMintArgs(["--agent", "a", "--battles", "b-1,game:42", "--battle-role", "judge"]),
    ).toEqual({ agent: "a", battles: ["b-1", "game:42"], battleRole: "judge" });
    expect(() => parseMintArgs(["--agent", "a", "--battles", "b 1"])).toThrow(/--battles/);
    expect(() => parseMintArgs(["--agent", "a", "--battle-role", ""])).toThrow(/--battle-role/);
    await ensureKeys({ dir });
    const token = await mintToken({
      agent: "a",
      keysDir: dir,
      battles: ["b-1"],
      battleRole: "judge",
    });
    expect(decodeJwt(token)).toMatchObject({ sub: "a", battles: ["b-1"], battle_role: "judge" });
  });

  it.each([
    ["keys/mint.ts", ["--agent"]],
    ["keys/mint.ts", ["--agent", "a", "--ttl", "soon"]],
    ["keys/generate.ts", ["--frobnicate"]],
    ["keys/generate.ts", ["--force", "--rotate"]],
  ])("%s %j exits 2 with usage on stderr", (script, args) => {
    const path = fileURLToPath(new URL(`../../${script}`, import.meta.url));
    const run = spawnSync(process.execPath, [path, ...args], { encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/usage: npm run/);
  });
});

describe("ensureProxyKey", () => {
  let keyDir: string;
  beforeEach(async () => {
    keyDir = await mkdtemp(join(tmpdir(), "mcpcp-proxy-key-"));
  });
  afterEach(async () => {
    await rm(keyDir, { recursive: true, force: true });
  });

  it("keeps the key it made, writes the private JWK 0600", async () => {
    const first = await ensureProxyKey({ dir: keyDir });
    const again = await ensureProxyKey({ dir: keyDir });
    expect(again.signingKey).toEqual(first.signingKey);
    expect((await stat(proxyKeyPaths(keyDir).signingKey)).mode & 0o777).toBe(0o600);
  });

  it("rotates to a new key while still publishing the old one, then retires it", async () => {
    const old = await ensureProxyKey({ dir: keyDir });
    const rotated = await ensureProxyKey({ dir: keyDir, rotate: true });
    expect(rotated.signingKey.kid).not.toBe(old.signingKey.kid);
    expect(rotated.jwks.keys.map((k) => k.kid)).toEqual([
      rotated.signingKey.kid,
      old.signingKey.kid,
    ]);
    const retired = await ensureProxyKey({ dir: keyDir, retire: true });
    expect(retired.jwks.keys.map((k) => k.kid)).toEqual([rotated.signingKey.kid]);
  });
});

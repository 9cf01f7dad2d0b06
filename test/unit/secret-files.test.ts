/**
 * Secrets on disk: every file `npm run keys` writes that holds a secret (the agent-token private
 * key, the proxy's signing key, both `.dev.vars`) is 0600 inside a 0700 folder, another local user
 * cannot read any of them, modes left loose by older versions are tightened once with a notice,
 * and wrangler's state folders of the launcher are the owner's alone. Everything runs in a
 * temporary folder opened to everyone (0755), so only the modes under test keep a reader out.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ensureKeys, writeDevVars } from "../../keys/generate.ts";
import { ensureProxyKey, proxyKeyPaths } from "../../keys/proxy-key.ts";
import { prepareWranglerState, wranglerStateDirs } from "../../scripts/wrangler-state.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
/** The uid the security review read the keys as: nobody. */
const OTHER_USER = 65534;

/** Whether uid 65534 can read `path`: `setpriv … cat`, exit status 0. */
function otherUserReads(path: string): boolean {
  const run = spawnSync(
    "setpriv",
    [`--reuid=${OTHER_USER}`, `--regid=${OTHER_USER}`, "--clear-groups", "cat", path],
    { stdio: "ignore" },
  );
  return run.status === 0;
}

/**
 * Whether this process can become another user at all (root, as in CI). Without that every read
 * as uid 65534 fails, for the wrong reason, so those checks are skipped, never passed vacuously.
 */
const CAN_SWITCH_USER = (() => {
  const open = mkdtempSync(join(tmpdir(), "mcpcp-switch-"));
  try {
    spawnSync("chmod", ["0755", open]);
    writeFileSync(join(open, "public"), "anyone may read this\n", { mode: 0o644 });
    return otherUserReads(join(open, "public"));
  } finally {
    rmSync(open, { recursive: true, force: true });
  }
})();

const mode = async (path: string) => (await stat(path)).mode & 0o777;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "mcpcp-secrets-"));
  // mkdtemp makes it 0700, which alone would keep uid 65534 out of everything below.
  await chmod(root, 0o755);
  await writeFile(join(root, "policy.json"), '{"agent_name1":{"mcp1":"*"}}\n', { mode: 0o644 });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(root, { recursive: true, force: true });
});

/** `npm run keys` into `root`: keys/ as a git checkout leaves it (0755), .dev.vars beside it. */
async function npmRunKeys() {
  const keysDir = join(root, "keys");
  await mkdir(keysDir, { recursive: true, mode: 0o755 });
  await mkdir(join(root, "workers", "mcp1"), { recursive: true, mode: 0o755 });
  await ensureKeys({ dir: keysDir });
  const devVars = await writeDevVars({
    keysDir,
    policyPath: join(root, "policy.json"),
    devVarsPath: join(root, ".dev.vars"),
    mcp1DevVarsPath: join(root, "workers", "mcp1", ".dev.vars"),
  });
  return { keysDir, devVars: [devVars.path, devVars.mcp1Path as string] };
}

const PUBLIC_FILES = ["jwks.json", "proxy-jwks.json", "public.pem"];

describe("npm run keys", () => {
  it("writes every secret 0600 inside a 0700 folder, and wrangler's .dev.vars 0600 beside its config", async () => {
    const { keysDir, devVars } = await npmRunKeys();

    expect(await mode(keysDir)).toBe(0o700);
    const secrets = (await readdir(keysDir)).filter((name) => !PUBLIC_FILES.includes(name));
    expect(secrets.sort()).toEqual([
      "battle-webhook.jwk.json",
      "private.pem",
      "proxy-signing.jwk.json",
    ]);
    for (const name of secrets) expect(await mode(join(keysDir, name)), name).toBe(0o600);

    // wrangler reads .dev.vars beside its config: each a regular file, 0600, not a link.
    for (const path of devVars) {
      expect((await lstat(path)).isFile(), path).toBe(true);
      expect(await mode(path), path).toBe(0o600);
    }
    expect(await readFile(devVars[0] as string, "utf8")).toMatch(/^PROXY_SIGNING_KEY='\{.*"d":/m);
    expect(await readFile(devVars[1] as string, "utf8")).toMatch(
      /^BATTLE_WEBHOOK_SIGNING_KEY='\{.*"crv":"Ed25519".*"d":/m,
    );
  });

  it.runIf(CAN_SWITCH_USER)("leaves no secret another local user can read", async () => {
    const { keysDir, devVars } = await npmRunKeys();
    // The check can succeed: uid 65534 reads a file left open to it.
    expect(otherUserReads(join(root, "policy.json"))).toBe(true);

    const secrets = (await readdir(keysDir))
      .filter((name) => !PUBLIC_FILES.includes(name))
      .map((name) => join(keysDir, name));
    for (const path of [...secrets, ...devVars]) expect(otherUserReads(path), path).toBe(false);
  });

  it("tightens what an older version left readable, and says so once", async () => {
    const keysDir = join(root, "keys");
    await ensureKeys({ dir: keysDir });
    await ensureProxyKey({ dir: keysDir });
    // As older versions left them: keys/ 0755, the private keys and .dev.vars 0644.
    await chmod(keysDir, 0o755);
    await chmod(join(keysDir, "private.pem"), 0o644);
    await chmod(proxyKeyPaths(keysDir).signingKey, 0o644);
    await writeFile(join(root, ".dev.vars"), "PROXY_SIGNING_KEY='old copy'\n", { mode: 0o644 });
    await chmod(join(root, ".dev.vars"), 0o644);

    const notices: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: string) => void notices.push(line));
    const { devVars } = await npmRunKeys();

    expect(await mode(keysDir)).toBe(0o700);
    expect(await mode(join(keysDir, "private.pem"))).toBe(0o600);
    expect(await mode(proxyKeyPaths(keysDir).signingKey)).toBe(0o600);
    expect((await lstat(join(root, ".dev.vars"))).isFile()).toBe(true);
    expect(await mode(join(root, ".dev.vars"))).toBe(0o600);
    expect(await readFile(join(root, ".dev.vars"), "utf8")).not.toContain("old copy");
    expect(notices).toEqual([
      expect.stringMatching(/keys.* from 0755 to 0700/),
      expect.stringMatching(/private\.pem from 0644 to 0600/),
      expect.stringMatching(/proxy-signing\.jwk\.json from 0644 to 0600/),
    ]);
    if (CAN_SWITCH_USER) {
      for (const path of [join(keysDir, "private.pem"), ...devVars]) {
        expect(otherUserReads(path), path).toBe(false);
      }
    }

    notices.length = 0;
    await npmRunKeys();
    expect(notices).toEqual([]);
  });

  it("leaves no temporary file behind, and git ignores every secret and temporary name", async () => {
    const { keysDir } = await npmRunKeys();
    expect((await readdir(keysDir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);

    const names = [
      "keys/private.pem",
      "keys/private-2.pem",
      "keys/proxy-signing.jwk.json",
      "keys/battle-webhook.jwk.json",
      "keys/proxy.dev.vars",
      "keys/mcp1.dev.vars",
      ".dev.vars",
      "workers/mcp1/.dev.vars",
      // writeAtomic's temporary files: <name>.<random>.tmp beside their file.
      "keys/private.pem.3f9a0c1e2b4d.tmp",
      "keys/proxy-signing.jwk.json.3f9a0c1e2b4d.tmp",
      "keys/proxy.dev.vars.3f9a0c1e2b4d.tmp",
      ".dev.vars.3f9a0c1e2b4d.tmp",
      "workers/mcp1/.dev.vars.3f9a0c1e2b4d.tmp",
    ];
    const check = spawnSync("git", ["check-ignore", "--no-index", "--verbose", ...names], {
      cwd: REPO,
      encoding: "utf8",
    });
    const ignored = check.stdout
      .trim()
      .split("\n")
      .map((line) => line.split("\t")[1]);
    expect(ignored).toEqual(names);
  });
});

describe("the launcher's wrangler state", () => {
  it("names the folders wrangler dev writes under for both Workers", () => {
    expect(wranglerStateDirs("/repo")).toEqual(["/repo/.wrangler", "/repo/workers/mcp1/.wrangler"]);
  });

  it("makes each folder 0700 before wrangler starts, tightening an old one once", async () => {
    // An older run's state: .wrangler/ 0755 with a readable database; mcp1's not made yet.
    const old = join(root, ".wrangler", "state", "v3", "d1");
    await mkdir(old, { recursive: true, mode: 0o755 });
    await chmod(join(root, ".wrangler"), 0o755);
    await writeFile(join(old, "audit.sqlite"), "agent records", { mode: 0o644 });

    const notices: string[] = [];
    await prepareWranglerState(root, (line) => notices.push(line));
    for (const dir of wranglerStateDirs(root)) expect(await mode(dir), dir).toBe(0o700);
    expect(notices).toEqual([expect.stringMatching(/\.wrangler from 0755 to 0700/)]);
    if (CAN_SWITCH_USER) expect(otherUserReads(join(old, "audit.sqlite"))).toBe(false);

    await prepareWranglerState(root, (line) => notices.push(line));
    expect(notices).toHaveLength(1);
  });
});

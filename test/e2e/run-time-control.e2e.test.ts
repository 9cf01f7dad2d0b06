/**
 * Run-time control as an operator uses it: `npm run admin` against the system `npm start` runs,
 * agents on the MCP SDK client seeing the change on their next listing, and what survives a
 * restart (live changes do; a policy file the store has never seen is taken in once).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectAgent, type Launched, launch } from "./launcher.ts";

const run = promisify(execFile);
let system: Launched;

/** `npm run admin -- ...args` as a person types it; its JSON answer, or its exit code and message. */
async function admin(...args: string[]): Promise<{ code: number; json?: unknown; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ["scripts/admin.ts", "--url", system.proxyUrl.origin, ...args],
      { cwd: join(import.meta.dirname, "..", "..") },
    );
    return { code: 0, json: JSON.parse(stdout), stderr };
  } catch (e) {
    const failed = e as { code: number; stderr: string };
    return { code: failed.code, stderr: failed.stderr };
  }
}

async function toolsOf(agent: string): Promise<string[]> {
  const client = await connectAgent(system.proxyUrl, agent);
  try {
    return (await client.listTools()).tools.map((t) => t.name).sort();
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  system = await launch();
}, 150_000);

afterAll(async () => {
  if (system?.child.exitCode === null) await system.stop();
});

describe("npm run admin", () => {
  it("dry-runs a grant, then applies it to a connected agent without a restart", async () => {
    const connected = await connectAgent(system.proxyUrl, "agent_name1");
    const before = (await connected.listTools()).tools.map((t) => t.name);
    expect(before).not.toContain("mcp2_run_docker");

    const dry = await admin("policy", "grant", "agent_name1", "mcp2", "run_docker", "--dry-run");
    expect(dry).toMatchObject({
      code: 0,
      json: { changes: { agent_name1: { gained: ["mcp2_run_docker"], lost: [] } } },
    });
    expect((await connected.listTools()).tools.map((t) => t.name)).toEqual(before);

    expect((await admin("policy", "grant", "agent_name1", "mcp2", "run_docker")).code).toBe(0);
    const after = (await connected.listTools()).tools.map((t) => t.name);
    expect(after.filter((name) => !before.includes(name))).toEqual(["mcp2_run_docker"]);
    await connected.close();
  });

  it("disables an agent: its next connection is refused (401 invalid_token); enabling lets it back", async () => {
    expect((await admin("agents", "disable", "agent_name2", "--note", "e2e")).code).toBe(0);
    await expect(toolsOf("agent_name2")).rejects.toThrow(/access token is invalid/);
    expect((await admin("agents", "enable", "agent_name2")).code).toBe(0);
    expect(await toolsOf("agent_name2")).toContain("mcp2_echo");
  });

  it("says what is wrong, and exits 1, when the API refuses", async () => {
    const refused = await admin("policy", "grant", "agent_name1", "nosuch");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/400 .*server "nosuch", which is not configured/);
  });

  it("shows who changed what", async () => {
    const { json } = await admin("policy", "history", "--limit", "5");
    const versions = (json as { versions: { actor: string; action: string }[] }).versions;
    expect(versions).toContainEqual(
      expect.objectContaining({ actor: "ops", action: "policy.put" }),
    );
  });
});

describe("across a restart", () => {
  it("keeps what was changed live when the policy file is unchanged", async () => {
    await system.stop();
    system = await launch();
    expect(await toolsOf("agent_name1")).toContain("mcp2_run_docker");
  }, 150_000);

  it("takes in a policy file it has never seen, once, as a new version by deploy", async () => {
    await system.stop();
    const dir = mkdtempSync(join(tmpdir(), "mcpcp-policy-"));
    const file = join(dir, "policy.json");
    writeFileSync(
      file,
      JSON.stringify({ agent_name1: { mcp1: ["echo"] }, agent_name2: { mcp2: "*" } }),
    );
    system = await launch({ env: { MCPCP_POLICY: file } });
    expect(await toolsOf("agent_name1")).toEqual(["mcp1_echo"]);
    const { json } = await admin("policy", "history", "--limit", "1");
    expect((json as { versions: { actor: string }[] }).versions[0]?.actor).toBe("deploy");
  }, 150_000);
});

/**
 * A server of the user's own behind the gateway, the documented way: `EXTRA_BACKENDS` in the
 * environment of `npm start` and a policy that grants it. The launcher checks both by the proxy's
 * rules, hands EXTRA_BACKENDS to the proxy, and says in its banner whether each extra backend
 * answers; agents reach its tools through /mcp as `<id>_<tool>`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../keys/mint.ts";
import { type ExchangesBackend, startExchangesBackend } from "../support/exchanges-backend.ts";
import { startThirdPartyBackend, type ThirdPartyBackend } from "../support/third-party-backend.ts";
import { connectAgent, type Launched, launch, resultText } from "./launcher.ts";

let backend: ThirdPartyBackend;
/** A backend that asks its client questions (test/support/exchanges-backend.ts). */
let asking: ExchangesBackend;
let system: Launched;
let dir: string;
/** A loopback port nothing listens on: an extra backend that is down. */
let deadPort: number;
const clients: Client[] = [];

/** A port the kernel just gave out and took back, so nothing listens on it. */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Writes a policy file for MCPCP_POLICY and returns its path. */
function policyFile(name: string, policy: object): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(policy));
  return path;
}

function extraBackends(): string {
  return JSON.stringify([
    { id: "ext", url: `${backend.url}/mcp` },
    { id: "gone", url: `http://127.0.0.1:${deadPort}/mcp` },
    { id: "exch", url: `${asking.url}/mcp` },
  ]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mcpcp-extra-"));
  backend = await startThirdPartyBackend();
  asking = await startExchangesBackend();
  deadPort = await unusedPort();
  system = await launch({
    env: {
      EXTRA_BACKENDS: extraBackends(),
      MCPCP_POLICY: policyFile("policy.json", {
        agent_ext: { mcp1: ["echo"], ext: ["echo"], gone: "*" },
        agent_asked: { exch: ["ask"] },
      }),
    },
  });
}, 150_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  if (system?.child.exitCode === null) await system.stop();
  await backend?.close();
  await asking?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("the banner", () => {
  it("shows an extra backend that answers, with its server name, version and protocol", () => {
    const line = system.output().match(/^\s+ext\s.*$/m)?.[0];
    expect(line).toMatch(
      new RegExp(
        `^\\s+ext\\s+${backend.url}/mcp\\s+\\(EXTRA_BACKENDS\\)\\s+reachable: third-party 1\\.0\\.0, protocol \\d{4}-\\d{2}-\\d{2}$`,
      ),
    );
  });

  it("marks an extra backend that is down UNREACHABLE with the reason, and the system starts anyway", () => {
    const line = system.output().match(/^\s+gone\s.*$/m)?.[0];
    expect(line).toContain(`http://127.0.0.1:${deadPort}/mcp  (EXTRA_BACKENDS)  UNREACHABLE:`);
    expect(line).toContain(`ECONNREFUSED 127.0.0.1:${deadPort}`);
    expect(system.output()).toContain("MCPCP ready");
  });
});

describe("a backend that asks its client, behind /mcp under npm start", () => {
  it("its elicitation reaches the agent over HTTP, and the agent's answer reaches the backend", async () => {
    const token = await mintToken({ agent: "agent_asked" });
    const client = new Client(
      { name: "e2e-asked", version: "1.0.0" },
      { capabilities: { elicitation: { form: {} } } },
    );
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: "accept", content: { name: "ada" } };
    });
    await client.connect(
      new StreamableHTTPClientTransport(system.proxyUrl, {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    clients.push(client);
    const result = await client.callTool({ name: "exch_ask", arguments: { label: "e2e-asked" } });
    expect(resultText(result)).toBe('e2e-asked: accept {"name":"ada"}');
    expect(asked).toHaveLength(1);
  });
});

describe("an agent granted the extra backend", () => {
  async function agent(): Promise<Client> {
    const client = await connectAgent(system.proxyUrl, "agent_ext");
    clients.push(client);
    return client;
  }

  it("lists exactly its granted tools: mcp1's echo and the extra backend's, none of the dead one", async () => {
    const { tools } = await (await agent()).listTools();
    expect(tools.map((t) => t.name)).toEqual(["ext_echo", "mcp1_echo"]);
  });

  it("calls ext_echo through /mcp and gets the extra backend's answer", async () => {
    const result = await (await agent()).callTool({
      name: "ext_echo",
      arguments: { message: "through the gateway" },
    });
    expect(result.isError).toBeFalsy();
    expect(resultText(result)).toBe("3p: through the gateway");
  });

  it("is refused a tool of the extra backend its policy does not name, like one that does not exist", async () => {
    await expect(
      (await agent()).callTool({ name: "ext_wait_for_release", arguments: { label: "x" } }),
    ).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining("Tool ext_wait_for_release not found"),
    });
  });
});

// Launched on the same ports while the system above runs: a launch that got as far as its port
// check would fail there instead ("port … is in use"), so these fail before anything starts.
describe("a launch the proxy would refuse fails before anything starts", () => {
  it("a policy naming a server that is not configured, with the server and the known ones", async () => {
    const launched = launch({
      env: {
        EXTRA_BACKENDS: extraBackends(),
        MCPCP_POLICY: policyFile("unknown-server.json", { agent_ext: { ext: "*", nope: "*" } }),
      },
    });
    await expect(launched).rejects.toThrow(
      'grants agent "agent_ext" server "nope", which is not configured (known: mcp1, mcp2, mcp3, ext, gone, exch)',
    );
    await expect(launched).rejects.not.toThrow(/in use/);
  });

  it("an EXTRA_BACKENDS entry that takes a built-in server's id, naming the variable", async () => {
    const launched = launch({
      env: { EXTRA_BACKENDS: JSON.stringify([{ id: "mcp2", url: `${backend.url}/mcp` }]) },
    });
    await expect(launched).rejects.toThrow('EXTRA_BACKENDS id "mcp2" is already taken');
    await expect(launched).rejects.not.toThrow(/in use/);
  });
});

/**
 * The Node backends (mcp2, mcp3) as an MCP client sees them, in-process on ephemeral ports, plus
 * one run of the real entry script to check startup and SIGTERM.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningBackend, startBackend } from "../../local-backends/common/backend.ts";
import { type BackendDefinition, portFromEnv } from "../../local-backends/common/run.ts";
import { mcp2 } from "../../local-backends/mcp2/backend.ts";
import { mcp3 } from "../../local-backends/mcp3/backend.ts";

const MODERN = "2026-07-28";
const JSON_POST = {
  "Content-Type": "application/json",
  Accept: "application/json, text/event-stream",
};

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((block) => block.text ?? "").join("");
}

async function v1Connect(backend: RunningBackend): Promise<V1Client> {
  const client = new V1Client({ name: "v1-test", version: "1.0.0" });
  await client.connect(new V1Transport(new URL(`${backend.url}/mcp`)));
  return client;
}

async function modernConnect(backend: RunningBackend, headers: Record<string, string> = {}) {
  const client = new ModernClient(
    { name: "v2-test", version: "1.0.0" },
    { versionNegotiation: { mode: { pin: MODERN } } },
  );
  await client.connect(
    new ModernTransport(new URL(`${backend.url}/mcp`), { requestInit: { headers } }),
  );
  return client;
}

/** Each backend's tools, in order. */
const TOOLS: Record<string, string[]> = {
  mcp2: ["echo", "run_docker"],
  mcp3: ["echo", "run_python_code"],
};

describe.each<BackendDefinition>([mcp2, mcp3])("backend $name", (definition) => {
  const tools = TOOLS[definition.name];
  let backend: RunningBackend;
  beforeAll(async () => {
    backend = await startBackend({ ...definition, port: 0 });
  });
  afterAll(() => backend.close());

  it("answers /healthz with 200 and its server id", async () => {
    const response = await fetch(`${backend.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    // Degraded, still serving, where no Docker engine answers (mcp2) or no sandbox can be made
    // (mcp3); mcp2-runtime and mcp3-sandbox tests cover which.
    const body = (await response.json()) as { status: string; server: string };
    expect(body.server).toBe(definition.name);
    expect(["ok", "degraded"]).toContain(body.status);
  });

  it("serves a v1 SDK client (2025 initialize): lists its tools and echoes", async () => {
    const client = await v1Connect(backend);
    try {
      const listed = await client.listTools();
      expect(listed.tools.map((tool) => tool.name)).toEqual(tools);
      const result = await client.callTool({ name: "echo", arguments: { message: "hi" } });
      expect(textOf(result)).toBe("Echo: hi");
      expect(client.getServerVersion()?.name).toBe(definition.name);
    } finally {
      await client.close();
    }
  });

  it(`serves a v2 client pinned to ${MODERN}: lists its tools and echoes`, async () => {
    const client = await modernConnect(backend);
    try {
      expect(client.getProtocolEra()).toBe("modern");
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      const listed = await client.listTools();
      expect(listed.tools.map((tool) => tool.name)).toEqual(tools);
      const result = await client.callTool({ name: "echo", arguments: { message: "hi" } });
      expect(textOf(result)).toBe("Echo: hi");
    } finally {
      await client.close();
    }
  });

  it("answers malformed JSON with 400 and JSON-RPC -32700, and keeps serving", async () => {
    const response = await fetch(`${backend.url}/mcp`, {
      method: "POST",
      headers: JSON_POST,
      body: '{"jsonrpc":"2.0","id":1,',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: number }; id: unknown };
    expect(body.error.code).toBe(-32700);
    expect(body.id).toBeNull();
    expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
  });

  it("answers an unknown path with a JSON 404", async () => {
    const response = await fetch(`${backend.url}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: "not_found" });
  });
});

describe("startBackend", () => {
  let backend: RunningBackend | undefined;
  afterEach(async () => {
    await backend?.close();
    backend = undefined;
  });

  it("names no agent without the proxy's keys, whatever an mcpcp-agent header says", async () => {
    backend = await startBackend({
      name: "whoami",
      port: 0,
      register: (server, ctx) => {
        server.registerTool("whoami", { inputSchema: z.object({}) }, async () => ({
          content: [{ type: "text", text: ctx.agent ?? "(nobody)" }],
        }));
      },
    });
    const named = await modernConnect(backend, { "mcpcp-agent": "agent_name2" });
    const anonymous = await modernConnect(backend);
    try {
      expect(textOf(await named.callTool({ name: "whoami", arguments: {} }))).toBe("(nobody)");
      expect(textOf(await anonymous.callTool({ name: "whoami", arguments: {} }))).toBe("(nobody)");
    } finally {
      await named.close();
      await anonymous.close();
    }
  });

  it("refuses a foreign Origin with 403 (DNS rebinding)", async () => {
    backend = await startBackend({ ...mcp2, port: 0 });
    const response = await fetch(`${backend.url}/mcp`, {
      method: "POST",
      headers: { ...JSON_POST, Origin: "https://evil.example" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(response.status).toBe(403);
  });

  it("reports a degraded health with its reason, still 200", async () => {
    backend = await startBackend({
      ...mcp2,
      port: 0,
      health: () => ({ status: "degraded", reason: "docker engine unreachable" }),
    });
    const response = await fetch(`${backend.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "degraded",
      reason: "docker engine unreachable",
      server: "mcp2",
    });
  });

  // The proxy builds one client per incoming request; with a cached DiscoverResult it must cost
  // exactly one backend round trip per MCP call, no discover and no initialize.
  it("serves a v2 client connected with a prior DiscoverResult in one request per call", async () => {
    let instances = 0;
    backend = await startBackend({
      ...mcp2,
      port: 0,
      register: (server, ctx) => {
        instances += 1;
        mcp2.register(server, ctx);
      },
    });
    const url = new URL(`${backend.url}/mcp`);
    const probe = await modernConnect(backend);
    const discover = probe.getDiscoverResult();
    await probe.close();
    if (discover === undefined) throw new Error("the pinned connect recorded no DiscoverResult");

    const sent: string[] = [];
    const countingFetch: typeof fetch = async (input, init) => {
      sent.push(`${init?.method ?? "GET"} ${JSON.parse(String(init?.body ?? "{}")).method}`);
      return fetch(input, init);
    };
    instances = 0;

    const client = new ModernClient({ name: "proxy", version: "1.0.0" });
    await client.connect(new ModernTransport(url, { fetch: countingFetch }), {
      prior: { kind: "modern", discover },
    });
    expect(sent).toEqual([]);

    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(["echo", "run_docker"]);
    expect(sent).toEqual(["POST tools/list"]);
    expect(instances).toBe(1);

    const result = await client.callTool({ name: "echo", arguments: { message: "hi" } });
    expect(textOf(result)).toBe("Echo: hi");
    expect(sent).toEqual(["POST tools/list", "POST tools/call"]);
    expect(instances).toBe(2);

    await client.close();
    expect(sent).toHaveLength(2);
  });
});

describe("portFromEnv", () => {
  it("uses the default when unset and names the variable when invalid", () => {
    expect(portFromEnv("MCP2_PORT", 9005, {})).toBe(9005);
    expect(portFromEnv("MCP2_PORT", 9005, { MCP2_PORT: "9100" })).toBe(9100);
    expect(() => portFromEnv("MCP2_PORT", 9005, { MCP2_PORT: "http" })).toThrow(/MCP2_PORT/);
    expect(() => portFromEnv("MCP2_PORT", 9005, { MCP2_PORT: "70000" })).toThrow(/MCP2_PORT/);
  });
});

describe("entry script", () => {
  it("starts from MCP3_PORT, serves /healthz, and exits 0 on SIGTERM", async () => {
    const script = fileURLToPath(new URL("../../local-backends/mcp3/server.ts", import.meta.url));
    const child = spawn(process.execPath, [script], {
      // An empty proxy JWKS: the script must start without keys/ having been generated.
      env: { ...process.env, MCP3_PORT: "0", PROXY_JWKS: '{"keys":[]}' },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = once(child, "exit");
    try {
      let stdout = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          stdout += chunk;
          const match = /health at (\S+)/.exec(stdout);
          if (match?.[1]) resolve(match[1]);
        });
        child.once("exit", (code) => reject(new Error(`exited early with ${code}: ${stdout}`)));
      });
      expect(await (await fetch(url)).json()).toEqual({ status: "ok", server: "mcp3" });
      child.kill("SIGTERM");
      expect(await exited).toEqual([0, null]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});

/**
 * The demo client (`npm run client`): the seed's client.py with the MCP SDK client, as an agent
 * would use it. For each agent it mints a token, lists the tools the gateway shows it, calls one
 * allowed `echo`, and shows that a tool outside its policy is refused.
 *
 *   npm run client                                  # against the local proxy
 *   npm run client -- --url https://gw.example/mcp --keys-dir ~/.mcpcp/production
 *                                                   # against a deployed one (docs/deploy.md)
 */
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { mintToken } from "../keys/mint.ts";

interface Demo {
  agent: string;
  /** An echo the agent may call, and a tool it may not. */
  allowed: string;
  refused: string;
}

const DEMOS: Demo[] = [
  { agent: "agent_name1", allowed: "mcp1_echo", refused: "mcp2_echo" },
  { agent: "agent_name2", allowed: "mcp2_echo", refused: "mcp1_echo" },
];

async function connect(url: URL, agent: string, keysDir?: string): Promise<Client> {
  const token = await mintToken(keysDir === undefined ? { agent } : { agent, keysDir });
  const client = new Client({ name: "mcpcp-demo-client", version: "0.1.0" });
  await client.connect(
    new StreamableHTTPClientTransport(url, {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

async function demo(url: URL, { agent, allowed, refused }: Demo, keysDir?: string): Promise<void> {
  console.log(`\n🔍 Getting tools for agent: ${agent}`);
  const client = await connect(url, agent, keysDir);
  try {
    const { tools } = await client.listTools();
    const servers = [...new Set(tools.map((t) => t.name.split("_")[0]))];
    console.log(`📋 Agent has access to servers: ${JSON.stringify(servers)}`);
    console.log(`✅ Found ${tools.length} tools:`);
    for (const tool of tools) console.log(`   - ${tool.name}`);

    const echo = await client.callTool({
      name: allowed,
      arguments: { message: `hello from ${agent}` },
    });
    const text = (echo.content as { type: string; text?: string }[])
      .map((c) => c.text ?? "")
      .join("");
    console.log(`📞 ${allowed} → ${echo.isError ? "tool error: " : ""}${text}`);

    try {
      await client.callTool({ name: refused, arguments: { message: "should not arrive" } });
      console.log(`❌ ${refused} was NOT refused: the policy is not being enforced`);
      process.exitCode = 1;
    } catch (error) {
      console.log(`🚫 ${refused} refused: ${(error as Error).message}`);
    }
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: "http://127.0.0.1:9003/mcp" },
      // Where the signing key is: keys/ by default, the production directory for a deployed proxy.
      "keys-dir": { type: "string" },
    },
  });
  const url = new URL(values.url);
  for (const entry of DEMOS) await demo(url, entry, values["keys-dir"]);
}

main().catch((error: unknown) => {
  console.error(`client failed: ${error instanceof Error ? error.message : String(error)}`);
  console.error("Is the gateway running? Start it with `npm start`.");
  process.exit(1);
});

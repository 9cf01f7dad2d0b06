/**
 * The `echo` tool every MCPCP server offers (docs/design.md, "Tools": `echo(message)` →
 * `Echo: <message>`). Shared by the Workers (mcp1) and the Node backends (mcp2, mcp3); it imports
 * only the SDK and zod, so it runs in both workerd and Node.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";

/** Registers `echo(message)` on `server`. */
export function registerEcho(server: McpServer): void {
  server.registerTool(
    "echo",
    {
      description:
        "Echo a message back, prefixed with 'Echo: '. Useful to check the path to this server.",
      inputSchema: z.object({ message: z.string().min(1).describe("The text to echo back") }),
    },
    async ({ message }) => ({ content: [{ type: "text", text: `Echo: ${message}` }] }),
  );
}
